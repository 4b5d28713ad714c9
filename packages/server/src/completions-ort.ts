// The completions backends of the ONNX Runtime CPU path: OrtDecoderLM (@offramp/core) and OrtMambaLM
// (@offramp/mamba), used where the device carries that path (`auto` on a software adapter). Their caches are
// host arrays (keys and values per block and each row's length; conv and SSM states per block), which the
// decode scheduler merges and compacts through hostRowState as it does the device tensors of the WebGPU path.
// The server's exit rules (never, fixed, maxProb, entropy, custom) become the models' per-row decide
// functions, with the thresholds and comparisons of DecoderLM and MambaLM.
import type { GenerationExit, OrtDecoderCache, OrtDecoderLM, TokenExitDecide } from '@offramp/core';
import type { ExitOptions, ExitRule, OrtMambaCache, OrtMambaLM } from '@offramp/mamba';
import { DEFAULT_DECODER_CONTEXT, hostRowState, type LmBackend } from './completions-backend.js';

/** A served exit rule as a per-row decide function; undefined for 'never' (full depth, no exit work). */
export function ruleDecide(rule: ExitRule): TokenExitDecide | undefined {
  switch (rule.kind) {
    case 'never':
      return undefined;
    case 'fixed':
      return (s, { block }) => new Array<boolean>(s.maxProb.length).fill(block === rule.block);
    case 'maxProb':
      return (s) => Array.from(s.maxProb, (p) => p >= rule.threshold);
    case 'entropy':
      return (s) => Array.from(s.entropy, (h) => h <= rule.threshold);
    case 'custom':
      return rule.decide;
    default:
      throw new RangeError(
        `the exit rule '${rule.kind}' is not served on the ONNX Runtime CPU path; use never, fixed, maxProb or entropy`,
      );
  }
}

function generationExit(exit: ExitOptions | undefined, skip: string): GenerationExit | undefined {
  const decide = exit ? ruleDecide(exit.rule) : undefined;
  return decide ? { decide, skip } : undefined;
}

export interface OrtBackendLimits {
  /** Longest prompt prefill takes (the WebGPU model's, so both paths accept the same requests). */
  maxPromptTokens: number;
  /** Called once when the backend is disposed (the WebGPU model loaded alongside, for its weights and tokenizer). */
  disposeAlso?: () => void;
}

/**
 * A served decoder on ONNX Runtime: as decoderBackend, every row's cache holds `context` positions (min of
 * max_position_embeddings and `context`) and skipped blocks' keys and values are propagated (CALM).
 */
export function ortDecoderBackend(
  lm: OrtDecoderLM,
  limits: OrtBackendLimits,
  context = DEFAULT_DECODER_CONTEXT,
): LmBackend<OrtDecoderCache> {
  const maxContext = Math.min(lm.config.maxPositionEmbeddings, context);
  return {
    kind: 'decoder',
    path: 'ort-cpu',
    pathDetail: lm.describe(),
    V: lm.vocabSize,
    L: lm.numLayers,
    exits: lm.exits,
    maxPromptTokens: Math.min(limits.maxPromptTokens, maxContext - 1),
    maxContext,
    prefill: async (prompts) => {
      const cache = lm.newCache(prompts.length, maxContext);
      return { logits: await lm.prefill(prompts, cache), cache };
    },
    step: async (tokens, cache, exit) => {
      const r = await lm.step(tokens, cache, generationExit(exit, 'propagate'));
      return { logits: r.logits, exitBlocks: r.exitBlocks };
    },
    newCache: (batch) => lm.newCache(batch, maxContext),
    stateTensors: (c) => c.k.flatMap((k, l) => [hostRowState(k), hostRowState(c.v[l])]),
    rowLength: (c, row) => c.lengths[row],
    setRowLength: (c, row, n) => {
      c.lengths[row] = n;
    },
    dispose: () => {
      void lm.dispose();
      limits.disposeAlso?.();
    },
  };
}

/** A served Mamba LM on ONNX Runtime (skipped blocks' state: the request's skip, default freeze). */
export function ortMambaBackend(lm: OrtMambaLM, limits: OrtBackendLimits): LmBackend<OrtMambaCache> {
  return {
    kind: 'mamba',
    path: 'ort-cpu',
    pathDetail: `Mamba on ${lm.ortCpu.describe()}`,
    V: lm.vocabSize,
    L: lm.numLayers,
    exits: lm.exits,
    maxPromptTokens: limits.maxPromptTokens,
    prefill: async (prompts) => {
      const cache = lm.newCache(prompts.length);
      return { logits: await lm.prefill(prompts, cache), cache };
    },
    step: async (tokens, cache, exit) => {
      const r = await lm.step(tokens, cache, generationExit(exit, exit?.skip ?? 'freeze'));
      return { logits: r.logits, exitBlocks: r.exitBlocks };
    },
    newCache: (batch) => lm.newCache(batch),
    stateTensors: (c) => c.conv.flatMap((conv, l) => [hostRowState(conv), hostRowState(c.ssm[l])]),
    dispose: () => {
      void lm.dispose();
      limits.disposeAlso?.();
    },
  };
}
