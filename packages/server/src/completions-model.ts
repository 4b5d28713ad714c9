// A language model served by the completions routes: a Mamba LM or a Llama-style decoder, its tokenizer and
// its decode scheduler; loadLm reads a Hugging Face-style folder (MambaForCausalLM or LlamaForCausalLM
// config.json, safetensors, a char or BPE tokenizer). Where the device carries the ONNX Runtime CPU path
// (`auto` on a software adapter), the routes run OrtDecoderLM / OrtMambaLM instead (completions-ort.ts); the
// WebGPU model stays loaded as `model` (its tokenizer, limits and own generate).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DecoderLM, Device } from '@offramp/core';
import { OrtDecoderLM, ortCpuOf, parseJsonText } from '@offramp/core';
import { FILE_LIMITS, loadDecoderLM, readBoundedTextSync, resolveInside } from '@offramp/core/node';
import { type MambaLM, OrtMambaLM } from '@offramp/mamba';
import { loadMambaLM } from '@offramp/mamba/node';
import { CharTokenizer, loadBpeTokenizer } from '@offramp/train';
import { decoderBackend, type LmBackend, mambaBackend } from './completions-backend.js';
import { ortDecoderBackend, ortMambaBackend } from './completions-ort.js';
import { DecodeScheduler, type DecodeSchedulerOptions } from './completions-scheduler.js';

/** Text ↔ token ids. */
export interface LmTokenizer {
  encode(text: string): ArrayLike<number>;
  decode(ids: ArrayLike<number>): string;
}

export interface LoadedLm {
  /** The model itself (its own generate, score, ...). */
  model: MambaLM | DecoderLM;
  /** What the routes and the scheduler use of it. */
  backend: LmBackend;
  tokenizer: LmTokenizer;
  /** Batches the decode steps of every request to this model. */
  scheduler: DecodeScheduler;
  /** Most prompt plus max_tokens tokens a request may ask for (a server limit); none when unset. */
  maxSeqLen?: number;
}

export function createLoadedLm(
  model: MambaLM | DecoderLM,
  tokenizer: LmTokenizer,
  options: DecodeSchedulerOptions = {},
  backendOverride?: LmBackend,
): LoadedLm {
  const backend: LmBackend =
    backendOverride ??
    ('blocks' in model
      ? (mambaBackend(model as MambaLM) as LmBackend)
      : (decoderBackend(model as DecoderLM) as LmBackend));
  return { model, backend, tokenizer, scheduler: new DecodeScheduler(backend, options) };
}

/** True for a Llama-style decoder folder (architectures LlamaForCausalLM or model_type llama). */
function isDecoderFolder(dir: string): boolean {
  const file = join(dir, 'config.json');
  const j = parseJsonText(readBoundedTextSync(file, { maxBytes: FILE_LIMITS.json, what: 'a model config' }), file) as {
    architectures?: unknown;
    model_type?: unknown;
  } | null;
  return (Array.isArray(j?.architectures) && j.architectures.includes('LlamaForCausalLM')) || j?.model_type === 'llama';
}

/**
 * Loads a Mamba language model folder with its tokenizer: the file named by `offramp.tokenizer` in
 * config.json (inside the folder), else char-tokenizer.json, else tokenizer.json (BPE).
 */
export async function loadLm(device: Device, dir: string, options: DecodeSchedulerOptions = {}): Promise<LoadedLm> {
  if (isDecoderFolder(dir)) {
    const { model, loaded } = await loadDecoderLM(dir, device);
    const tok = loaded.tokenizer;
    if (!tok) {
      model.dispose();
      throw new Error(`${dir}: no tokenizer (offramp.tokenizer in config.json or tokenizer.json)`);
    }
    const ortCpu = ortCpuOf(device);
    let ort: LmBackend | undefined;
    try {
      if (ortCpu)
        ort = ortDecoderBackend(new OrtDecoderLM(ortCpu, loaded.config, loaded.tensors, { exits: [...model.exits] }), {
          maxPromptTokens: model.maxTokens,
          disposeAlso: () => model.dispose(),
        }) as LmBackend;
    } catch (e) {
      model.dispose();
      throw e;
    }
    return createLoadedLm(
      model,
      { encode: (t) => tok.encode(t), decode: (ids) => tok.decode(Array.from(ids)) },
      options,
      ort,
    );
  }
  const { model, loaded } = await loadMambaLM(device, dir);
  try {
    const named = (loaded.rawConfig.offramp as { tokenizer?: unknown } | undefined)?.tokenizer;
    let file: string | undefined;
    if (typeof named === 'string') file = resolveInside(dir, named, join(dir, 'config.json'));
    else if (existsSync(join(dir, 'char-tokenizer.json'))) file = join(dir, 'char-tokenizer.json');
    else file = loaded.tokenizerPath;
    if (!file || !existsSync(file))
      throw new Error(`${dir}: no tokenizer (offramp.tokenizer in config.json, char-tokenizer.json or tokenizer.json)`);
    const tokenizer: LmTokenizer =
      file.endsWith('tokenizer.json') && !file.endsWith('char-tokenizer.json')
        ? loadBpeTokenizer(file)
        : CharTokenizer.load(file);
    const ortCpu = ortCpuOf(device);
    const ort = ortCpu
      ? (ortMambaBackend(new OrtMambaLM(ortCpu, loaded.config, loaded.tensors, { exits: [...model.exits] }), {
          maxPromptTokens: model.maxPromptTokens,
          disposeAlso: () => model.dispose(),
        }) as LmBackend)
      : undefined;
    return createLoadedLm(model, tokenizer, options, ort);
  } catch (e) {
    model.dispose();
    throw e;
  }
}
