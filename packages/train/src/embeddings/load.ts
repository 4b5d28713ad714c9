// Loads a code-search embedder folder (config.json + model.safetensors + tokenizer.json) onto a device, and
// embeds texts with it: the tokenizer, the engine's EncoderEmbedder and embed() of @offramp/core together. On a
// device with the ONNX Runtime CPU path attached (createDevice 'auto' on a software adapter) the embedder runs
// there, unless { ort: false }.
import path from 'node:path';
import {
  buildEmbedder,
  type Device,
  type EmbedResult,
  type EncoderEmbedder,
  type EncoderEmbedderConfig,
  embed,
  FormatError,
  parseEmbedderConfig,
  Runner,
} from '@offramp/core';
import { readBoundedText, readSafetensorsFile } from '@offramp/core/node';
import type { BpeTokenizer } from '../tokenizers/bpe.js';
import { CODE_TOKENIZER_FILE, encodeTexts, loadBpeTokenizer, readTextForm, type TextForm } from './tokenizer.js';

export interface LoadedEmbedder {
  dir: string;
  config: EncoderEmbedderConfig;
  tokenizer: BpeTokenizer;
  /** How texts are prepared before BPE (text_form.json; 'one-line' when absent). */
  textForm: TextForm;
  model: EncoderEmbedder;
  runner: Runner;
  /** Token ids of texts as the model reads them (one line, at most max_position ids). */
  tokenize(texts: readonly string[]): number[][];
  /** Unit-length embeddings of texts at one exit (default: the last) or at every exit ('all'). */
  embedTexts(texts: readonly string[], options?: { exit?: number | 'all' }): Promise<EmbedResult>;
  dispose(): void;
}

export async function loadEmbedder(
  dir: string,
  device: Device,
  options: {
    maxBatch?: number;
    /**
     * Run on the ONNX Runtime CPU path where `device` has it (createDevice 'auto' on a software adapter, or an
     * 'ort-cpu' device). Default true; false keeps the device's own kernels (WebGPU, or the CPU reference).
     */
    ort?: boolean;
  } = {},
): Promise<LoadedEmbedder> {
  const cfgPath = path.join(dir, 'config.json');
  let raw: unknown;
  const text = await readBoundedText(cfgPath, { maxBytes: 1 << 20, what: 'the embedder config' });
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${cfgPath}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  const config = parseEmbedderConfig(raw, cfgPath);
  const tensors = await readSafetensorsFile(path.join(dir, 'model.safetensors'), 'the embedder weights');
  const host = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of tensors) host.set(name, { shape: t.shape, data: Float32Array.from(t.data) });
  const tokenizer = loadBpeTokenizer(path.join(dir, CODE_TOKENIZER_FILE));
  const textForm = readTextForm(dir);
  if (tokenizer.vocabSize !== config.vocab_size) {
    throw new FormatError(
      `${dir}: ${CODE_TOKENIZER_FILE} has ${tokenizer.vocabSize} ids but config.json says vocab_size ${config.vocab_size}`,
    );
  }
  const model = buildEmbedder(device, config, host);
  const runner = new Runner(device, model, { maxBatch: options.maxBatch ?? 32, ort: options.ort ?? true });
  const pad = config.pad_token_id ?? 0;
  const tokenize = (texts: readonly string[]) => encodeTexts(tokenizer, texts, config.max_position, pad, textForm);
  return {
    dir,
    config,
    tokenizer,
    textForm,
    model,
    runner,
    tokenize,
    embedTexts: (texts, o = {}) => embed(runner, { ids: tokenize(texts) }, o),
    dispose() {
      runner.dispose();
      model.dispose();
    },
  };
}
