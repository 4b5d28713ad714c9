// The Austen Mamba (checkpoints/austen-mamba, a HuggingFace-style Mamba-1 folder) in the browser: config.json
// parsed by @offramp/mamba's parser, model.safetensors by core's reader, names normalized as the Node loader
// does (normalizeMambaTensors), and the char tokenizer read from char-tokenizer.json with the same class the
// CLI uses for Mamba folders. Decoding is greedy and token by token (MambaLM prefill / step, the same loop as
// MambaLM.generate), each token reported as soon as it is known.

import { parseSafetensors } from '@offramp/core';
import { type ExitRule, MambaLM, normalizeMambaTensors, parseMambaConfig, sampleToken } from '@offramp/mamba';
import { CharTokenizer } from '@offramp/tokenizers/char';
import type { StreamedToken } from './decoder.ts';
import { fetchCheckpointFile, fetchCheckpointJson, getDevice } from './runtime.ts';

export interface LoadedMamba {
  lm: MambaLM;
  tokenizer: CharTokenizer;
  numLayers: number;
  exits: readonly number[];
  /** Longest prompt the prefill takes, in tokens. */
  maxPromptTokens: number;
}

export const MAMBA_CHECKPOINT = 'austen-mamba';

let mamba: Promise<LoadedMamba> | null = null;

/** Loads (once) the Austen Mamba: config, weights, tokenizer and the model on the page's device. */
export function loadMamba(): Promise<LoadedMamba> {
  if (!mamba) {
    mamba = (async () => {
      const name = MAMBA_CHECKPOINT;
      const device = await getDevice();
      const config = parseMambaConfig(await fetchCheckpointJson(name, 'config.json'), `${name}/config.json`);
      const { bytes } = await fetchCheckpointFile(name, 'model.safetensors');
      const { tensors } = normalizeMambaTensors(config, parseSafetensors(bytes).tensors, `${name}/model.safetensors`, {
        onWarning: (m) => console.warn(`${name}: ${m}`),
      });
      const tokenizer = CharTokenizer.fromJSON(
        await fetchCheckpointJson(name, 'char-tokenizer.json'),
        `${name}/char-tokenizer.json`,
      );
      const lm = new MambaLM(device, config, tensors);
      return { lm, tokenizer, numLayers: lm.L, exits: lm.exits, maxPromptTokens: lm.maxPromptTokens };
    })();
    mamba.catch(() => {
      mamba = null;
    });
  }
  return mamba;
}

/**
 * Greedy decoding of `maxNewTokens` tokens after `prompt` with the Mamba, each token after the first (the
 * prefill's, full depth) leaving by `rule`; `onToken` gets each token as soon as it is known.
 */
export async function streamGreedyMamba(
  m: LoadedMamba,
  prompt: string,
  maxNewTokens: number,
  rule: ExitRule,
  onToken: (t: StreamedToken) => void,
  shouldStop: () => boolean = () => false,
): Promise<StreamedToken[]> {
  const ids = Array.from(m.tokenizer.encode(prompt));
  const V = m.lm.V;
  const { logits, cache } = await m.lm.prefill([ids]);
  const out: StreamedToken[] = [];
  const rand = () => 0;
  try {
    let next = sampleToken(logits, 0, V, {}, rand);
    const push = (id: number, exitBlock: number) => {
      const t = { index: out.length, id, text: m.tokenizer.decode([id]), exitBlock };
      out.push(t);
      onToken(t);
    };
    push(next, m.numLayers - 1);
    for (let k = 1; k < maxNewTokens && !shouldStop(); k++) {
      const r = await m.lm.step([next], cache, { rule });
      next = sampleToken(r.logits, 0, V, {}, rand);
      push(next, r.exitBlocks[0]);
    }
    return out;
  } finally {
    cache.dispose();
  }
}
