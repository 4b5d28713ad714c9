// Trains a model with exits on your own data: a JSONL or CSV file of {text, label} or {image, label} rows
// (see the README's "Your own data"). Images of a square number of values train a CNN, other feature rows an
// MLP, texts an encoder with a word tokenizer of the training split.
// `pnpm train:custom --data FILE --name NAME [--test FILE] [--arch cnn|mlp|encoder] [options]`
import { join } from 'node:path';
import type { ModelConfig } from '@offramp/core';
import { stratifiedSplit } from '../src/data/split.js';
import { loadCsv, loadJsonl, type UserDataset } from '../src/data/user.js';
import { WordTokenizer } from '../src/tokenizers/word.js';
import { COMMON_HELP, parseCommonArgs, repoRoot, runPaths } from '../src/training/cli.js';
import { type Examples, featureExamples, tokenExamples } from '../src/training/examples.js';
import { finishRun } from '../src/training/finish.js';
import { type TrainRun, train } from '../src/training/trainer.js';

const args = parseCommonArgs(process.argv.slice(2), ['data', 'test', 'name', 'arch', 'seq-len', 'vocab']);
const own = args.own;
if (args.help || !own.data || !own.name) {
  console.log(`pnpm train:custom --data FILE --name NAME [options]

  --data FILE            training rows (.jsonl or .csv; {text, label} or {image, label})
  --test FILE            held-out rows (default: a stratified 20% of --data, seed 7)
  --name NAME            model name: the model goes to checkpoints/NAME unless --out is given
  --arch cnn|mlp|encoder architecture (default: encoder for text, cnn for square images, else mlp)
  --seq-len N            encoder: tokens per text including [CLS] (default 128)
  --vocab N              encoder: vocabulary size (default 10000)
${COMMON_HELP}`);
  process.exit(args.help ? 0 : 2);
}

const load = (file: string): UserDataset => (file.endsWith('.csv') ? loadCsv(file) : loadJsonl(file));
const data = load(own.data);
const seed = args.seed ?? 7;

function rowsOf(d: UserDataset): { x?: Float32Array; text?: string; label: number }[] {
  if (d.kind === 'text') return d.examples;
  return Array.from({ length: d.n }, (_, i) => ({
    x: d.images.subarray(i * d.features, (i + 1) * d.features),
    label: d.labels[i],
  }));
}
let trainRows = rowsOf(data);
let testRows: typeof trainRows;
if (own.test) {
  const t = load(own.test);
  if (t.kind !== data.kind) throw new Error(`--test holds ${t.kind} rows but --data holds ${data.kind} rows`);
  testRows = rowsOf(t);
} else ({ train: trainRows, test: testRows } = stratifiedSplit(trainRows, (r) => String(r.label), 0.2, seed));
const classes = data.classNames.length;

let config: ModelConfig;
let toExamples: (rows: typeof trainRows) => Examples;
let tokenizer: WordTokenizer | undefined;
if (data.kind === 'text') {
  const T = Number(own['seq-len'] ?? 128);
  tokenizer = WordTokenizer.fromTexts(
    trainRows.map((r) => r.text!),
    { vocabSize: Number(own.vocab ?? 10_000) },
  );
  const tok = tokenizer;
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
  const arch = own.arch ?? (side * side === width ? 'cnn' : 'mlp');
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
  if (arch === 'cnn' && side * side !== width)
    throw new Error(`--arch cnn needs square images; rows have ${width} values`);
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

const paths = runPaths(own.name, args);
const run: TrainRun = {
  name: own.name,
  config,
  recipe: args.recipe ?? 'joint',
  train: toExamples(trainRows),
  test: toExamples(testRows),
  dataset: {
    name: own.data.replace(`${repoRoot()}/`, ''),
    split: own.test ? `held-out rows from ${own.test}` : `stratified 80/20 split of the file (seed ${seed})`,
  },
  epochs: args.epochs ?? 10,
  batchSize: args.batch ?? 64,
  lr: args.lr ?? (data.kind === 'text' ? 1e-3 : 3e-3),
  weightDecay: 0.01,
  clipNorm: 1,
  seed,
  ...paths,
  resume: args.resume,
  checkpointEvery: args.checkpointEvery,
  backend: args.backend,
  maxSteps: args.maxSteps,
  modelOptions: config.architecture === 'cnn_classifier' ? { batchNorm: true } : undefined,
  meta: { class_names: data.classNames, ...(tokenizer ? { tokenizer: 'word-tokenizer.json' } : {}) },
};
const result = await train(run);
if (tokenizer) tokenizer.save(join(paths.outDir, 'word-tokenizer.json'));
finishRun(run, result, {
  summary: `A ${config.architecture} with exits trained on ${run.dataset.name}.`,
  command: `pnpm train:custom ${process.argv.slice(2).join(' ')}`,
  extraFiles: tokenizer ? ['word-tokenizer.json'] : [],
});
