// Training a model with exits on users' own data: a JSONL or CSV file of {text, label} or {image, label} rows.
// Texts train an encoder with a word tokenizer of the training rows, images of a square number of values a CNN,
// other feature rows an MLP. Held-out rows come from --test (labels mapped through the training data's classes)
// or a stratified 20% of the data. Behind `offramp train --data FILE` and `pnpm train:custom`.
import { basename, extname, join, resolve } from 'node:path';
import { type ModelConfig, ValidationError } from '@offramp/core';
import { stratifiedSplit } from '../data/split.js';
import { loadCsv, loadJsonl, type UserDataOptions, type UserDataset } from '../data/user.js';
import { WordTokenizer } from '../tokenizers/word.js';
import type { TrainBackend } from './backend.js';
import { runPaths } from './cli.js';
import { type Examples, featureExamples, tokenExamples } from './examples.js';
import { finishRun } from './finish.js';
import type { Progress } from './progress.js';
import type { RecipeName } from './recipes.js';
import { type TrainResult, type TrainRun, train } from './trainer.js';

export interface CustomTrainOptions {
  /** The folder relative paths (data, test, out, workDir) resolve from, and the default out's (default cwd). */
  cwd?: string;
  /** Training rows (.jsonl or .csv). */
  data: string;
  /** Held-out rows; default a stratified 20% of `data` (seed 7 unless `seed`). */
  test?: string;
  /** Model name (default: the name of the `out` folder, else the data file's name without extension + '-model'). */
  name?: string;
  /** Where the model goes (default ./NAME). */
  out?: string;
  workDir?: string;
  arch?: 'cnn' | 'mlp' | 'encoder';
  /** Encoder: tokens per text including [CLS] (default 128). */
  seqLen?: number;
  /** Encoder: vocabulary size (default 10,000). */
  vocab?: number;
  /** Use at most this many training rows and this many held-out rows (a seeded sample). */
  limit?: number;
  /** Wall-clock budget in minutes: training stops cleanly when it is spent and still writes the model. */
  minutes?: number;
  epochs?: number;
  batch?: number;
  lr?: number;
  seed?: number;
  recipe?: RecipeName;
  backend?: TrainBackend;
  maxSteps?: number;
  resume?: boolean;
  checkpointEvery?: number;
  /** The command line for the model card's "Reproduce". */
  command?: string;
  progress?: Progress;
}

const ARCH_TITLE: Record<ModelConfig['architecture'], string> = {
  encoder_classifier: 'An encoder classifier',
  cnn_classifier: 'A CNN classifier',
  mlp_classifier: 'An MLP classifier',
};

type Row = { x?: Float32Array; text?: string; label: number };

function load(file: string, options?: UserDataOptions): UserDataset {
  const ext = extname(file).toLowerCase();
  if (ext === '.csv') return loadCsv(file, options);
  if (ext === '.jsonl' || ext === '.ndjson') return loadJsonl(file, options);
  throw new ValidationError(`${file}: expected a .jsonl or .csv file of {text, label} or {image, label} rows`);
}

function rowsOf(d: UserDataset): Row[] {
  if (d.kind === 'text') return d.examples;
  return Array.from({ length: d.n }, (_, i) => ({
    x: d.images.subarray(i * d.features, (i + 1) * d.features),
    label: d.labels[i],
  }));
}

/** At most `n` rows: a seeded sample that keeps each class's share (all rows when n ≥ their number). */
function sample(rows: Row[], n: number | undefined, seed: number): Row[] {
  if (n === undefined || rows.length <= n) return rows;
  return stratifiedSplit(rows, (r) => String(r.label), n / rows.length, seed).test.slice(0, n);
}

function positiveInt(v: number | undefined, what: string): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= 1))
    throw new ValidationError(`${what} must be an integer >= 1, got ${v}`);
}

/** Trains, evaluates and writes the model directory with its tokenizer (text) and model card. */
export async function trainCustom(o: CustomTrainOptions): Promise<{ run: TrainRun; result: TrainResult }> {
  positiveInt(o.limit, '--limit');
  positiveInt(o.seqLen, '--seq-len');
  positiveInt(o.epochs, '--epochs');
  if (o.minutes !== undefined && !(o.minutes > 0))
    throw new ValidationError(`--minutes must be a number of minutes > 0, got ${o.minutes}`);
  if (o.vocab !== undefined && !(Number.isInteger(o.vocab) && o.vocab > 3))
    throw new ValidationError(`--vocab must be an integer > 3 (3 ids are reserved), got ${o.vocab}`);
  if (o.arch !== undefined && !['cnn', 'mlp', 'encoder'].includes(o.arch))
    throw new ValidationError(`--arch must be cnn, mlp or encoder, got '${o.arch}'`);
  const cwd = o.cwd ?? process.cwd();
  const dataFile = resolve(cwd, o.data);
  const data = load(dataFile);
  const seed = o.seed ?? 7;
  // the name: --name, else the --out folder's name, else the data file's name + '-model'
  const name =
    o.name ??
    (o.out !== undefined
      ? basename(resolve(cwd, o.out))
          .replace(/[^\w.-]+/g, '-')
          .replace(/^\.+/, '') || 'model'
      : `${basename(dataFile, extname(dataFile))}-model`);
  if (!/^[\w.-]{1,100}$/.test(name) || name.startsWith('.'))
    throw new ValidationError(
      `--name '${name}': use letters, digits, '.', '_' and '-' (at most 100, not starting with '.')`,
    );

  let trainRows = rowsOf(data);
  let testRows: Row[];
  if (o.test) {
    const testFile = resolve(cwd, o.test);
    // the held-out labels map through the training data's classes: an unseen label is an error, not a shift
    const t = load(testFile, { classNames: data.classNames, classesOf: `the training data (${basename(dataFile)})` });
    if (t.kind !== data.kind)
      throw new ValidationError(`${testFile} holds ${t.kind} rows but ${dataFile} holds ${data.kind} rows`);
    if (t.kind === 'image' && data.kind === 'image' && t.features !== data.features)
      throw new ValidationError(
        `${testFile}: images have ${t.features} values but those of ${dataFile} have ${data.features}`,
      );
    testRows = rowsOf(t);
  } else ({ train: trainRows, test: testRows } = stratifiedSplit(trainRows, (r) => String(r.label), 0.2, seed));
  trainRows = sample(trainRows, o.limit, seed);
  testRows = sample(testRows, o.limit, seed + 1);
  if (testRows.length === 0)
    throw new ValidationError(
      `${dataFile}: too few rows to hold out 20% for evaluation; give more rows or --test FILE`,
    );
  const classes = data.classNames.length;
  if (classes < 2)
    throw new ValidationError(
      `${dataFile}: every row has the label ${JSON.stringify(data.classNames[0])}; a classifier needs at least 2 classes`,
    );

  let config: ModelConfig;
  let toExamples: (rows: Row[]) => Examples;
  let tokenizer: WordTokenizer | undefined;
  let preprocessing: string | undefined;
  if (data.kind === 'text') {
    if (o.arch && o.arch !== 'encoder')
      throw new ValidationError(`--arch ${o.arch}: ${dataFile} holds texts, which train an encoder`);
    const T = o.seqLen ?? 128;
    tokenizer = WordTokenizer.fromTexts(
      trainRows.map((r) => r.text!),
      { vocabSize: o.vocab ?? 10_000 },
    );
    const tok = tokenizer;
    preprocessing = `word tokenizer of the training rows (${tok.vocabSize} ids), [CLS] + at most ${T - 1} tokens`;
    config = {
      architecture: 'encoder_classifier',
      vocab_size: tok.vocabSize,
      max_position: T,
      hidden_size: 64,
      num_layers: 4,
      num_heads: 4,
      intermediate_size: 128,
      num_classes: classes,
      pad_token_id: 0,
      exits: { blocks: [0, 1, 2, 3], head: 'linear' },
    };
    toExamples = (rows) =>
      tokenExamples(
        tok.encodeBatch(
          rows.map((r) => r.text!),
          T,
        ),
        rows.map((r) => r.label),
        T,
      );
  } else {
    const width = data.features;
    const side = Math.round(Math.sqrt(width));
    const arch = o.arch ?? (side * side === width ? 'cnn' : 'mlp');
    if (arch === 'encoder') throw new ValidationError(`--arch encoder: ${dataFile} holds images, not texts`);
    if (arch === 'cnn' && side * side !== width)
      throw new ValidationError(`--arch cnn needs square images; the rows of ${dataFile} have ${width} values`);
    config =
      arch === 'cnn'
        ? {
            architecture: 'cnn_classifier',
            image_size: side,
            in_channels: 1,
            stem_channels: 16,
            channels: [16, 32, 64],
            strides: [1, 2, 2],
            num_classes: classes,
            exits: { blocks: [0, 1, 2], head: 'linear' },
          }
        : {
            architecture: 'mlp_classifier',
            input_size: width,
            hidden_size: 128,
            num_layers: 3,
            num_classes: classes,
            exits: { blocks: [0, 1, 2], head: 'linear' },
          };
    toExamples = (rows) => {
      const x = new Float32Array(rows.length * width);
      rows.forEach((r, i) => {
        x.set(r.x!, i * width);
      });
      return featureExamples(
        x,
        rows.map((r) => r.label),
        width,
      );
    };
  }

  const paths = runPaths(name, {
    out: resolve(cwd, o.out ?? name),
    workDir: o.workDir === undefined ? undefined : resolve(cwd, o.workDir),
  });
  const batchSize = o.batch ?? Math.min(64, trainRows.length);
  if (batchSize > trainRows.length)
    throw new ValidationError(
      `--batch ${batchSize} is more than the ${trainRows.length} training rows; use --batch ${trainRows.length} or less`,
    );
  const run: TrainRun = {
    name,
    config,
    recipe: o.recipe ?? 'joint',
    train: toExamples(trainRows),
    test: toExamples(testRows),
    dataset: {
      name: basename(dataFile),
      split: o.test
        ? `${trainRows.length} training rows, ${testRows.length} held-out rows from ${basename(o.test)}`
        : `stratified 80/20 split of the file (seed ${seed}): ${trainRows.length} training rows, ${testRows.length} held-out rows`,
      ...(preprocessing ? { preprocessing } : {}),
    },
    epochs: o.epochs ?? 10,
    batchSize,
    lr: o.lr ?? (data.kind === 'text' ? 1e-3 : 3e-3),
    weightDecay: 0.01,
    clipNorm: 1,
    seed,
    ...paths,
    resume: o.resume,
    checkpointEvery: o.checkpointEvery,
    backend: o.backend,
    maxSteps: o.maxSteps,
    timeBudgetSeconds: o.minutes !== undefined ? o.minutes * 60 : undefined,
    modelOptions: config.architecture === 'cnn_classifier' ? { batchNorm: true } : undefined,
    meta: { class_names: data.classNames, ...(tokenizer ? { tokenizer: 'word-tokenizer.json' } : {}) },
    progress: o.progress,
  };
  const result = await train(run);
  if (tokenizer) tokenizer.save(join(paths.outDir, 'word-tokenizer.json'));
  finishRun(run, result, {
    summary: `${ARCH_TITLE[config.architecture]} with exits trained on ${run.dataset.name}.`,
    command: o.command ?? `offramp train --data ${basename(dataFile)}`,
    extraFiles: tokenizer ? ['word-tokenizer.json'] : [],
  });
  return { run, result };
}
