// What the completions routes and their decode scheduler need of a language model, for the two kinds the
// server takes: a Mamba LM (@offramp/mamba) and a Llama-style decoder (@offramp/core's DecoderLM). The
// scheduler merges and compacts rows of a decode batch by copying each row's state, so a backend names its
// per-row state: tensors whose rows are contiguous blocks (Mamba: conv and SSM states per layer; the decoder:
// keys and values per layer) plus, for the decoder, the host-side cached length of each row. The states are
// device tensors here; the ONNX Runtime CPU path's backends (completions-ort.ts) hand host arrays through the
// same RowState shape.
import type { DecoderCache, DecoderExitRule, DecoderLM } from '@offramp/core';
import type { ExitOptions, MambaCache, MambaLM } from '@offramp/mamba';

export interface LmCache {
  readonly batch: number;
  dispose(): void;
}

/**
 * One per-row state buffer of a cache, (batch, ...) with row-contiguous blocks: a device Tensor, or a host
 * array wrapped by hostRowState. The scheduler reads whole buffers and writes whole new ones.
 */
export interface RowState {
  readonly length: number;
  read(): Promise<ArrayLike<number>>;
  write(data: Float32Array): void;
}

/** A host array as a RowState (read gives the array itself; write copies into it). */
export function hostRowState(a: Float32Array): RowState {
  return {
    length: a.length,
    read: async () => a,
    write: (data) => {
      if (data.length !== a.length)
        throw new RangeError(`a row state of ${a.length} floats cannot take ${data.length} (a scheduler bug)`);
      a.set(data);
    },
  };
}

export interface LmBackend<C extends LmCache = LmCache> {
  readonly kind: 'mamba' | 'decoder';
  /** What runs the model: 'webgpu' (the device's kernels) or 'ort-cpu' (ONNX Runtime on the host). */
  readonly path: 'webgpu' | 'ort-cpu';
  /** The path in words, for logs (e.g. 'decoder on onnxruntime-node cpu, 2 threads'). */
  readonly pathDetail: string;
  /** Vocabulary size (logits per row). */
  readonly V: number;
  /** Blocks (an exit block of L − 1 is full depth). */
  readonly L: number;
  /** Exit blocks, increasing; the last is L − 1. */
  readonly exits: readonly number[];
  /** Longest prompt prefill takes. */
  readonly maxPromptTokens: number;
  /** Most prompt + generated tokens one sequence may hold (the decoder's cache length); none for Mamba. */
  readonly maxContext?: number;
  prefill(prompts: readonly (readonly number[])[]): Promise<{ logits: Float32Array; cache: C }>;
  step(
    tokens: readonly number[],
    cache: C,
    exit?: ExitOptions,
  ): Promise<{ logits: Float32Array; exitBlocks: Int32Array }>;
  newCache(batch: number): C;
  /** The per-row states of a cache, each (batch, ...) with row-contiguous blocks. */
  stateTensors(cache: C): RowState[];
  /** Host-side per-row metadata that travels with a row (the decoder's cached length). */
  rowLength?(cache: C, row: number): number;
  setRowLength?(cache: C, row: number, length: number): void;
  dispose(): void;
}

export function mambaBackend(lm: MambaLM): LmBackend<MambaCache> {
  return {
    kind: 'mamba',
    path: 'webgpu',
    pathDetail: 'Mamba on the WebGPU device',
    V: lm.V,
    L: lm.L,
    exits: lm.exits,
    maxPromptTokens: lm.maxPromptTokens,
    prefill: async (prompts) => {
      const r = await lm.prefill(prompts);
      return { logits: r.logits, cache: r.cache };
    },
    step: (tokens, cache, exit) => lm.step(tokens, cache, exit),
    newCache: (batch) => lm.newCache(batch),
    stateTensors: (c) => c.layers.flatMap((l) => [l.conv, l.ssm]),
    dispose: () => lm.dispose(),
  };
}

/** The longest context a served decoder gets by default (its cache is allocated at this length per row). */
export const DEFAULT_DECODER_CONTEXT = 2048;

/**
 * A served decoder: every sequence's cache holds `context` positions (min of the model's
 * max_position_embeddings and `context`), so prompt + max_tokens must fit in it. Exit rules are the Mamba
 * server's (never, fixed, maxProb, entropy); skipped blocks' keys and values are propagated from the exit's
 * hidden state (CALM), whatever `skip` the request named for a Mamba model.
 */
export function decoderBackend(lm: DecoderLM, context = DEFAULT_DECODER_CONTEXT): LmBackend<DecoderCache> {
  const maxContext = Math.min(lm.config.maxPositionEmbeddings, context);
  return {
    kind: 'decoder',
    path: 'webgpu',
    pathDetail: 'decoder on the WebGPU device',
    V: lm.V,
    L: lm.L,
    exits: lm.exits,
    maxPromptTokens: Math.min(lm.maxTokens, maxContext - 1),
    maxContext,
    prefill: (prompts) =>
      lm.prefill(
        prompts.map((p) => [...p]),
        undefined,
        maxContext,
      ),
    step: async (tokens, cache, exit) => {
      const r = await lm.step(
        [...tokens],
        cache,
        exit ? { rule: exit.rule as DecoderExitRule, skip: 'propagate' } : undefined,
      );
      return { logits: r.logits, exitBlocks: r.exitBlocks };
    },
    newCache: (batch) => lm.newCache(batch, maxContext),
    stateTensors: (c) => c.k.flatMap((k, l) => [k, c.v[l]]),
    rowLength: (c, row) => c.length(row),
    setRowLength: (c, row, n) => c.setLength(row, n),
    dispose: () => lm.dispose(),
  };
}
