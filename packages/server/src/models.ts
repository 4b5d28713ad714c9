// The models a server answers for: each configured `name → folder` loaded once (weights on the device, a
// Runner, the tokenizer of a text model, the class names), and the request input turned into engine input.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildModel,
  type ConfigEnvelope,
  type Device,
  type EarlyExitModel,
  type HostTensor,
  type ModelInput,
  parseJsonText,
  Runner,
} from '@offramp/core';
import { FILE_LIMITS, loadModelDir, readBoundedTextSync, resolveInside } from '@offramp/core/node';
import { FASHION_MNIST_CLASS_NAMES, MNIST_CLASS_NAMES, SENTIMENT_CLASS_NAMES, WordTokenizer } from '@offramp/train';
import { PNG } from 'pngjs';

/**
 * What a model folder holds, from its config.json: an Offramp classifier (`offramp_format`), an image
 * enhancer (`offramp_format` with architecture rbqe_enhancer), a multi-exit embedder (`architecture: encoder_embedder`) or a Hugging Face-style language model (Mamba or Llama). The
 * read is bounded; a folder that is none of these is refused by its loader.
 */
export function folderKind(dir: string): 'classifier' | 'embedder' | 'enhancer' | 'language-model' {
  const file = join(dir, 'config.json');
  const json = parseJsonText(readBoundedTextSync(file, { maxBytes: FILE_LIMITS.json, what: 'a model config' }), file);
  if (json && typeof json === 'object' && 'offramp_format' in json) {
    const model = (json as { model?: { architecture?: unknown } }).model;
    return model && typeof model === 'object' && model.architecture === 'rbqe_enhancer' ? 'enhancer' : 'classifier';
  }
  if (json && typeof json === 'object' && (json as Record<string, unknown>).architecture === 'encoder_embedder')
    return 'embedder';
  return 'language-model';
}

/** A request error: the client sent something this model cannot take (answered with a 400). */
export class InputError extends Error {
  readonly statusCode: number = 400;
}

/** A request over a limit the server was configured with (sequence length): answered with a 413. */
export class LimitError extends InputError {
  override readonly statusCode = 413;
}

export interface ServedModel {
  name: string;
  dir: string;
  envelope: ConfigEnvelope;
  architecture: string;
  kind: 'image' | 'text';
  model: EarlyExitModel;
  runner: Runner;
  classNames: string[];
  /** Image models: values per image (H·W·C); text models: the most token ids per input ([CLS] included). */
  inputSize: number;
  /** Most rows per engine batch (and per request's `inputs`). */
  maxBatch: number;
  /** Text models: the most token ids per input this server takes (≤ inputSize); requests over it get 413. */
  maxSeqLen?: number;
  image?: { height: number; width: number; channels: number };
  tokenizer?: WordTokenizer;
  /** The policy spec used when a request names none. */
  defaultPolicy: string;
}

/** One request's input, encoded for the engine (one row). */
export type EncodedRow = { features: Float32Array } | { ids: number[]; truncated: boolean };

function classNamesOf(env: ConfigEnvelope): string[] {
  const C = env.model.num_classes;
  const meta = (env.meta ?? {}) as Record<string, unknown>;
  const given = meta.class_names;
  if (Array.isArray(given) && given.length === C && given.every((n) => typeof n === 'string')) return [...given];
  const dataset = typeof meta.dataset === 'string' ? meta.dataset.toLowerCase() : '';
  const known = dataset.includes('fashion')
    ? FASHION_MNIST_CLASS_NAMES
    : dataset.includes('mnist')
      ? MNIST_CLASS_NAMES
      : /imdb|sentiment|sst/.test(dataset)
        ? SENTIMENT_CLASS_NAMES
        : undefined;
  return known && known.length === C ? [...known] : Array.from({ length: C }, (_, i) => String(i));
}

function findTokenizer(env: ConfigEnvelope, dir: string): WordTokenizer {
  const named = (env.meta as Record<string, unknown> | undefined)?.tokenizer;
  let file = typeof named === 'string' && named ? resolveInside(dir, named, join(dir, 'config.json')) : undefined;
  if (!file) {
    const found = readdirSync(dir).filter((f) => /(tokenizer|vocab).*\.json$/i.test(f));
    if (found.length) file = resolveInside(dir, found[0], join(dir, 'config.json'));
  }
  if (!file || !existsSync(file))
    throw new Error(`model folder ${dir}: a text model needs its word tokenizer (meta.tokenizer or *tokenizer*.json)`);
  return WordTokenizer.load(file);
}

export interface LoadOptions {
  maxBatch: number;
  concurrency: number;
  defaultPolicy?: string;
  /**
   * Text models: most tokens per input ([CLS] included). `strict` (a per-model setting): an image model or a
   * value over the model's own maximum is an error; otherwise (a server-wide default) it is capped.
   */
  maxSeqLen?: { value: number; strict: boolean };
}

/** Loads one configured model folder onto the device. */
export async function loadServedModel(
  device: Device,
  name: string,
  dir: string,
  options: LoadOptions,
): Promise<ServedModel> {
  const { config: envelope, tensors: raw } = await loadModelDir(dir);
  const cfg = envelope.model as ConfigEnvelope['model'] & Record<string, any>;
  const tensors = new Map<string, HostTensor & { dtype: string }>();
  for (const [k, t] of raw) {
    const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>);
    tensors.set(k, { shape: [...t.shape], data, dtype: t.dtype });
  }
  let kind: 'image' | 'text';
  let inputSize: number;
  let image: ServedModel['image'];
  let tokenizer: WordTokenizer | undefined;
  if (cfg.architecture === 'cnn_classifier') {
    kind = 'image';
    image = { height: cfg.image_size, width: cfg.image_size, channels: cfg.in_channels };
    inputSize = cfg.image_size * cfg.image_size * cfg.in_channels;
  } else if (cfg.architecture === 'mlp_classifier') {
    kind = 'image';
    inputSize = cfg.input_size;
    const side = Math.round(Math.sqrt(inputSize));
    if (side * side === inputSize) image = { height: side, width: side, channels: 1 };
  } else if (cfg.architecture === 'encoder_classifier') {
    kind = 'text';
    tokenizer = findTokenizer(envelope, dir);
    inputSize = cfg.max_position;
  } else {
    throw new Error(
      `model '${name}' (${dir}): architecture '${(cfg as { architecture: string }).architecture}' is not served (classifiers only)`,
    );
  }
  let maxSeqLen: number | undefined;
  if (options.maxSeqLen) {
    const { value, strict } = options.maxSeqLen;
    if (!Number.isInteger(value) || value < 2)
      throw new Error(`model '${name}': maxSeqLen must be an integer ≥ 2 ([CLS] and one token), got ${value}`);
    if (kind === 'image' && strict)
      throw new Error(`model '${name}' (${dir}) takes images: maxSeqLen applies to text models only`);
    if (kind === 'text' && strict && value > inputSize)
      throw new Error(
        `model '${name}': maxSeqLen ${value} is more than the model's own maximum of ${inputSize} tokens`,
      );
    if (kind === 'text') maxSeqLen = Math.min(value, inputSize);
  }
  const model = buildModel(device, envelope.model, tensors);
  const runner = new Runner(device, model, { maxBatch: options.maxBatch, concurrency: options.concurrency });
  return {
    name,
    dir,
    envelope,
    architecture: cfg.architecture,
    kind,
    model,
    runner,
    classNames: classNamesOf(envelope),
    inputSize,
    maxBatch: options.maxBatch,
    maxSeqLen,
    image,
    tokenizer,
    defaultPolicy: options.defaultPolicy ?? 'confidence:threshold=0.9',
  };
}

/** Decodes a base64 PNG into grey values in [0, 1] (RGB averaged, alpha ignored), checking its size. */
export function decodePng(b64: string, m: ServedModel): Float32Array {
  if (!m.image)
    throw new InputError(`model '${m.name}' takes ${m.inputSize} values, not an image: send input.image as an array`);
  const text = b64.replace(/^data:image\/png;base64,/, '');
  if (!/^[A-Za-z0-9+/=\s]*$/.test(text))
    throw new InputError('input.image: a string must be a base64 PNG (characters outside the base64 alphabet)');
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(text, 'base64'));
  } catch (e) {
    throw new InputError(`input.image: not a readable PNG (${(e as Error).message})`);
  }
  const { height, width, channels } = m.image;
  if (png.width !== width || png.height !== height)
    throw new InputError(`input.image: PNG is ${png.width}×${png.height}, model '${m.name}' takes ${width}×${height}`);
  if (channels !== 1) throw new InputError(`model '${m.name}' takes ${channels}-channel images: send an array`);
  const out = new Float32Array(width * height);
  for (let i = 0; i < out.length; i++) {
    const p = i * 4;
    out[i] = (png.data[p] + png.data[p + 1] + png.data[p + 2]) / (3 * 255);
  }
  return out;
}

/** A request's input for model `m`, checked and encoded as one engine row. */
export function encodeInput(
  m: ServedModel,
  input: { text: string } | { image: number[] | string },
  truncate: boolean,
): EncodedRow {
  if ('text' in input) {
    if (m.kind !== 'text' || !m.tokenizer)
      throw new InputError(`model '${m.name}' takes images (input.image), not text`);
    const limit = m.maxSeqLen ?? m.inputSize;
    const ids = m.tokenizer.encodeUnpadded(input.text, limit + 1);
    const over = ids.length > limit;
    if (over && !truncate) {
      if (limit < m.inputSize)
        throw new LimitError(
          `input.text is more than ${limit} tokens ([CLS] included), this server's maxSeqLen for model '${m.name}'; shorten it or send truncate: true`,
        );
      throw new InputError(
        `input.text is more than ${m.inputSize} tokens ([CLS] included), the most model '${m.name}' takes; shorten it or send truncate: true`,
      );
    }
    return { ids: over ? ids.slice(0, limit) : ids, truncated: over };
  }
  if (m.kind !== 'image') throw new InputError(`model '${m.name}' takes text (input.text), not an image`);
  if (typeof input.image === 'string') return { features: decodePng(input.image, m) };
  if (input.image.length !== m.inputSize)
    throw new InputError(`input.image has ${input.image.length} values, model '${m.name}' takes ${m.inputSize}`);
  return { features: Float32Array.from(input.image) };
}

/** Engine input for a batch of rows of one model. */
export function batchInput(rows: EncodedRow[]): ModelInput {
  if ('features' in rows[0]) return { features: rows.map((r) => (r as { features: Float32Array }).features) };
  return { ids: rows.map((r) => (r as { ids: number[] }).ids) };
}

/** Sequence-length bucket of one row (rows of different buckets never share a batch). */
export function bucketOf(m: ServedModel, row: EncodedRow): number {
  return 'ids' in row ? m.model.bucket({ ids: [row.ids] }) : 1;
}
