// The Austen decoder (checkpoints/austen-decoder, a Llama-format folder) in the browser: config, weights and
// char tokenizer fetched like the classifiers', and a token-by-token greedy decode loop with early exits
// (core's DecoderLM prefill / step, the same loop as DecoderLM.generate) that reports each token as it comes.
import {
  checkDecoderTensors,
  type DecoderExitRule,
  DecoderLM,
  parseDecoderConfig,
  parseSafetensors,
  sampleToken,
} from '@offramp/core';
import { CharTokenizer } from '@offramp/tokenizers/char';
import { fetchCheckpointFile, fetchCheckpointJson, getDevice, hostTensors } from './runtime.ts';

export interface LoadedDecoder {
  lm: DecoderLM;
  tokenizer: CharTokenizer;
  numLayers: number;
  exits: readonly number[];
  maxPositions: number;
}

let decoder: Promise<LoadedDecoder> | null = null;

export function loadDecoder(): Promise<LoadedDecoder> {
  if (!decoder) {
    decoder = (async () => {
      const name = 'austen-decoder';
      const device = await getDevice();
      const raw = (await fetchCheckpointJson(name, 'config.json')) as Record<string, unknown>;
      const config = parseDecoderConfig(raw, `${name}/config.json`);
      const { bytes } = await fetchCheckpointFile(name, 'model.safetensors');
      const tensors = hostTensors(parseSafetensors(bytes).tensors) as Map<
        string,
        { shape: number[]; data: Float32Array }
      >;
      checkDecoderTensors(config, tensors, `${name}/model.safetensors`);
      const tokenizer = CharTokenizer.fromJSON(
        await fetchCheckpointJson(name, 'char-tokenizer.json'),
        `${name}/char-tokenizer.json`,
      );
      const lm = new DecoderLM(device, config, tensors);
      return {
        lm,
        tokenizer,
        numLayers: config.numLayers,
        exits: lm.exits,
        maxPositions: config.maxPositionEmbeddings,
      };
    })();
    decoder.catch(() => {
      decoder = null;
    });
  }
  return decoder;
}

export interface StreamedToken {
  /** Position among the generated tokens (0 = the first). */
  index: number;
  id: number;
  text: string;
  /** Block the token left from (numLayers − 1 = full depth; the first token comes from the prefill). */
  exitBlock: number;
}

/**
 * Greedy decoding of `maxNewTokens` tokens after `prompt`, each token leaving by `rule`; `onToken` gets each
 * token as soon as it is known. Returns the tokens.
 */
export async function streamGreedy(
  d: LoadedDecoder,
  prompt: string,
  maxNewTokens: number,
  rule: DecoderExitRule,
  onToken: (t: StreamedToken) => void,
  shouldStop: () => boolean = () => false,
): Promise<StreamedToken[]> {
  const ids = Array.from(d.tokenizer.encode(prompt));
  const maxLen = ids.length + maxNewTokens;
  const V = d.lm.V;
  const { logits, cache } = await d.lm.prefill([ids], undefined, maxLen);
  const out: StreamedToken[] = [];
  const rand = () => 0;
  try {
    let next = sampleToken(logits, 0, V, {}, rand);
    const push = (id: number, exitBlock: number) => {
      const t = { index: out.length, id, text: d.tokenizer.decode([id]), exitBlock };
      out.push(t);
      onToken(t);
    };
    push(next, d.numLayers - 1);
    for (let k = 1; k < maxNewTokens && !shouldStop(); k++) {
      const r = await d.lm.step([next], cache, { rule });
      next = sampleToken(r.logits, 0, V, {}, rand);
      push(next, r.exitBlocks[0]);
    }
    return out;
  } finally {
    cache.dispose();
  }
}
