// A language model served by the completions routes: the MambaLM, its tokenizer and its decode scheduler;
// loadLm reads a HuggingFace-style folder (config.json, safetensors, a char or BPE tokenizer).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Device } from '@offramp/core';
import { resolveInside } from '@offramp/core/node';
import type { MambaLM } from '@offramp/mamba';
import { loadMambaLM } from '@offramp/mamba/node';
import { CharTokenizer, loadBpeTokenizer } from '@offramp/train';
import { DecodeScheduler, type DecodeSchedulerOptions } from './completions-scheduler.js';

/** Text ↔ token ids. */
export interface LmTokenizer {
  encode(text: string): ArrayLike<number>;
  decode(ids: ArrayLike<number>): string;
}

export interface LoadedLm {
  model: MambaLM;
  tokenizer: LmTokenizer;
  /** Batches the decode steps of every request to this model. */
  scheduler: DecodeScheduler;
  /** Most prompt plus max_tokens tokens a request may ask for (a server limit); none when unset. */
  maxSeqLen?: number;
}

export function createLoadedLm(model: MambaLM, tokenizer: LmTokenizer, options: DecodeSchedulerOptions = {}): LoadedLm {
  return { model, tokenizer, scheduler: new DecodeScheduler(model, options) };
}

/**
 * Loads a Mamba language model folder with its tokenizer: the file named by `offramp.tokenizer` in
 * config.json (inside the folder), else char-tokenizer.json, else tokenizer.json (BPE).
 */
export async function loadLm(device: Device, dir: string, options: DecodeSchedulerOptions = {}): Promise<LoadedLm> {
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
    return createLoadedLm(model, tokenizer, options);
  } catch (e) {
    model.dispose();
    throw e;
  }
}
