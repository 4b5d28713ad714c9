// Evaluation data for a model: a named dataset from the cache (fashion-mnist, mnist, imdb, sentiment) or a
// JSONL / CSV file of {image, label} or {text, label} rows, turned into the model's input (flat images for
// CNN / MLP classifiers, token ids for encoders, through the tokenizer saved beside the model).
import { existsSync, readdirSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import type { ConfigEnvelope, ModelInput } from '@offramp/core';
import { resolveInside } from '@offramp/core/node';
import { RuntimeError, UsageError } from './errors.js';
import { fileInModelDir, metaNumber, metaString } from './model.js';
import type { Logger } from './util/log.js';
import { didYouMean } from './util/suggest.js';

export const DATASETS = ['fashion-mnist', 'mnist', 'imdb', 'sentiment'] as const;
export type DatasetName = (typeof DATASETS)[number];
export type Split = 'train' | 'test';

export interface EvalData {
  /** Dataset name or file path. */
  name: string;
  split: Split | 'file';
  /** Rows used (after offset and limit). */
  n: number;
  /** Rows available before the limit. */
  available: number;
  kind: 'image' | 'text';
  input: ModelInput;
  labels: Int32Array;
  classNames: string[];
}

export interface DataRequest {
  spec: string;
  split?: Split;
  limit?: number;
  offset?: number;
  /** Fetch a missing named dataset into the cache (@offramp/train's fetchDatasets). */
  fetch?: boolean;
  log?: Logger;
}

/** The dataset a model was trained on, from its meta (free text such as 'Fashion-MNIST (...)'). */
export function datasetOfModel(env: ConfigEnvelope): DatasetName | undefined {
  const d = metaString(env, 'dataset', 'data');
  if (!d) return undefined;
  const s = d.toLowerCase();
  if (s.includes('fashion')) return 'fashion-mnist';
  if (/\bmnist\b/.test(s)) return 'mnist';
  if (s.includes('imdb')) return 'imdb';
  if (s.includes('sentiment')) return 'sentiment';
  return undefined;
}

function isFile(spec: string): boolean {
  return ['.jsonl', '.csv', '.json', '.ndjson'].includes(extname(spec).toLowerCase()) || spec.includes('/');
}

/** Checks a --data value without loading anything (usage errors early). */
export function checkDataSpec(spec: string): void {
  if (isFile(spec)) {
    if (!existsSync(resolve(spec)))
      throw new RuntimeError(
        `data file '${spec}' does not exist; give a .jsonl or .csv file of {image, label} or {text, label} rows, or a dataset name (${DATASETS.join(', ')})`,
      );
    const ext = extname(spec).toLowerCase();
    if (ext !== '.jsonl' && ext !== '.ndjson' && ext !== '.csv')
      throw new UsageError(`data file '${spec}': expected a .jsonl or .csv file, got '${ext || 'no extension'}'`);
    return;
  }
  if (!(DATASETS as readonly string[]).includes(spec)) {
    throw new UsageError(
      `unknown dataset '${spec}'${didYouMean(spec, DATASETS)}: use one of ${DATASETS.join(', ')}, or a .jsonl / .csv file`,
    );
  }
}

/** Fetches one dataset into the cache with @offramp/train's fetchDatasets, progress on stderr. */
export async function fetchDataset(name: DatasetName, log?: Logger): Promise<void> {
  const { fetchDatasets } = await import('@offramp/train');
  const { fetchProgress } = await import('./commands/data.js');
  log?.info(`${name} is not in the data cache: fetching it (once) ...`);
  const r = await fetchDatasets({ names: [name], onProgress: fetchProgress() });
  if (r.failed.length > 0) {
    throw new RuntimeError(`fetching ${name} into ${r.dataDir} failed: ${r.failed[0].message}`);
  }
}

function isNotFound(e: unknown): boolean {
  return e instanceof Error && e.name === 'DataNotFoundError';
}

/**
 * The model's class names: `meta.class_names` in config.json, else those of the named dataset it was trained on,
 * else none (then a data file's labels must be integer class indices).
 */
export async function modelClassNames(env: ConfigEnvelope): Promise<string[] | undefined> {
  const C = env.model.num_classes;
  const names = (env.meta as Record<string, unknown> | undefined)?.class_names;
  if (names !== undefined) {
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string'))
      throw new RuntimeError('config.json: meta.class_names must be an array of strings, one per class');
    if (names.length !== C)
      throw new RuntimeError(
        `config.json: meta.class_names has ${names.length} names but the model has num_classes = ${C}; give one name per class`,
      );
    return [...names];
  }
  const ds = datasetOfModel(env);
  if (!ds) return undefined;
  const train = await import('@offramp/train');
  const known =
    ds === 'fashion-mnist'
      ? train.FASHION_MNIST_CLASS_NAMES
      : ds === 'mnist'
        ? train.MNIST_CLASS_NAMES
        : train.SENTIMENT_CLASS_NAMES;
  return known.length === C ? [...known] : undefined;
}

/** Loads evaluation data shaped for the model. */
export async function loadEvalData(env: ConfigEnvelope, modelDir: string, req: DataRequest): Promise<EvalData> {
  checkDataSpec(req.spec);
  const train = await import('@offramp/train');
  const arch = env.model.architecture;
  const wantsText = arch === 'encoder_classifier';
  const split: Split = req.split ?? 'test';
  let kind: 'image' | 'text';
  let images: Float32Array | null = null;
  let width = 0;
  let texts: string[] = [];
  let labels: Int32Array;
  let classNames: string[];
  let name = req.spec;
  let splitOut: EvalData['split'] = split;

  const load = async <T>(f: () => T): Promise<T> => {
    try {
      return f();
    } catch (e) {
      if (isNotFound(e) && req.fetch && !isFile(req.spec)) {
        await fetchDataset(req.spec as DatasetName, req.log);
        return f();
      }
      if (isNotFound(e))
        throw new RuntimeError(`${(e as Error).message} (or pass --fetch to fetch it now)`, { cause: e });
      throw e;
    }
  };

  if (isFile(req.spec)) {
    const path = resolve(req.spec);
    // labels map through the model's classes, not the file's own label set (a file may hold some classes only)
    const names = await modelClassNames(env);
    const options = {
      kind: wantsText ? ('text' as const) : ('image' as const),
      ...(names ? { classNames: names } : { numClasses: env.model.num_classes }),
    };
    const ds = extname(path).toLowerCase() === '.csv' ? train.loadCsv(path, options) : train.loadJsonl(path, options);
    splitOut = 'file';
    classNames = ds.classNames;
    if (ds.kind === 'image') {
      kind = 'image';
      images = ds.images;
      width = ds.features;
      labels = Int32Array.from(ds.labels);
    } else {
      kind = 'text';
      texts = ds.examples.map((x) => x.text);
      labels = Int32Array.from(ds.examples, (x) => x.label);
    }
  } else {
    const n = req.spec as DatasetName;
    name = n;
    if (n === 'fashion-mnist' || n === 'mnist') {
      const ds = await load(() => (n === 'mnist' ? train.loadMnist(split) : train.loadFashionMnist(split)));
      kind = 'image';
      images = ds.images;
      width = ds.height * ds.width;
      labels = Int32Array.from(ds.labels);
      classNames = [...ds.classNames];
    } else {
      const ds = await load(() => (n === 'imdb' ? train.loadImdb() : train.loadSentiment()));
      const rows = split === 'train' ? ds.train : ds.test;
      kind = 'text';
      texts = rows.map((r) => r.text);
      labels = Int32Array.from(rows, (r) => r.label);
      classNames = [...train.SENTIMENT_CLASS_NAMES];
    }
  }

  if (wantsText !== (kind === 'text')) {
    throw new UsageError(
      `the model is a${wantsText ? 'n encoder (text)' : ` ${arch.replace('_classifier', '')} (image / feature)`} classifier but '${req.spec}' holds ${kind} data; give ${wantsText ? 'text data (imdb, sentiment, or {text, label} rows)' : 'image data (fashion-mnist, mnist, or {image, label} rows)'}`,
    );
  }
  const available = labels.length;
  const offset = req.offset ?? 0;
  if (offset >= available)
    throw new UsageError(`--offset ${offset} is past the end of '${req.spec}' (${available} rows)`);
  const end = req.limit ? Math.min(available, offset + req.limit) : available;
  const n = end - offset;
  labels = labels.slice(offset, end);
  const C = env.model.num_classes;
  const bad = labels.findIndex((l) => l < 0 || l >= C);
  if (bad >= 0)
    throw new UsageError(
      `'${req.spec}' row ${offset + bad} has label ${labels[bad]}, but the model has ${C} classes (labels 0..${C - 1})`,
    );

  let input: ModelInput;
  if (kind === 'image') {
    const want =
      arch === 'cnn_classifier'
        ? env.model.image_size * env.model.image_size * env.model.in_channels
        : arch === 'mlp_classifier'
          ? env.model.input_size
          : 0;
    if (width !== want)
      throw new UsageError(`'${req.spec}' has ${width} values per image, but the model takes ${want}`);
    input = { features: images!.slice(offset * width, end * width) };
  } else {
    if (env.model.architecture !== 'encoder_classifier') throw new Error('internal: text data for a non-encoder model');
    const { tokenizer, length } = await loadTokenizer(env, modelDir);
    const maxLen = Math.min(length, env.model.max_position);
    const ids = texts.slice(offset, end).map((t) => tokenizer.encodeUnpadded(t, maxLen));
    const V = env.model.vocab_size;
    if (tokenizer.vocabSize > V)
      throw new RuntimeError(
        `${modelDir}: the tokenizer has ${tokenizer.vocabSize} ids but the model's vocab_size is ${V}`,
      );
    input = { ids };
  }
  return { name, split: splitOut, n, available, kind, input, labels, classNames };
}

/** The word tokenizer saved beside a text model, and the token length it was trained with. */
async function loadTokenizer(env: ConfigEnvelope, dir: string) {
  const { WordTokenizer } = await import('@offramp/train');
  const named = metaString(env, 'tokenizer', 'tokenizer_file', 'vocab', 'vocab_file');
  // a name written in config.json must stay inside the model folder (no absolute path, no '..', no link out)
  let file = named ? resolveInside(dir, named, join(dir, 'config.json')) : undefined;
  if (!file) {
    const found = readdirSync(dir).filter((f) => /(tokenizer|vocab).*\.json$/i.test(f));
    if (found.length) file = fileInModelDir(dir, found[0]);
  }
  if (!file || !existsSync(file)) {
    throw new RuntimeError(
      `${dir}: no tokenizer found for this text model (looked for meta.tokenizer in config.json and *tokenizer*.json / *vocab*.json files); save the WordTokenizer beside the model`,
    );
  }
  const tokenizer = WordTokenizer.load(file);
  const m = env.model.architecture === 'encoder_classifier' ? env.model.max_position : 512;
  const length = metaNumber(env, 'max_length', 'seq_len', 'sequence_length', 'max_tokens') ?? m;
  return { tokenizer, length };
}
