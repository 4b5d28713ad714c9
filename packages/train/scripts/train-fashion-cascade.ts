// Trains checkpoints/fashion-cascade/{s0,s1,s2,m128,large}: Fashion-MNIST MLP classifiers, each with an exit
// after every block, for cascades across separate models. s0, s1 and s2 are the ensemble members (the same
// small size, different seeds); m128 and large are single models of increasing size (the "scale the model up"
// baselines). Training uses the first 55,000 official training images; the last 5,000 are the validation split
// (windows and thresholds are fitted there), the official 10,000 test images are the held-out split.
// `pnpm train:fashion-cascade [--only s0,large] [options]`; members train one after another.
import { join } from 'node:path';
import type { MlpClassifierConfig } from '@offramp/core';
import { ensureDatasets } from '../src/data/fetch.js';
import { loadFashionMnist } from '../src/data/mnist.js';
import { COMMON_HELP, parseCommonArgs, repoRoot } from '../src/training/cli.js';
import { featureExamples, subset } from '../src/training/examples.js';
import { finishRun } from '../src/training/finish.js';
import { type TrainRun, train } from '../src/training/trainer.js';

interface Member {
  name: string;
  hidden: number;
  layers: number;
  seed: number;
  role: string;
}

export const FASHION_CASCADE_MEMBERS: readonly Member[] = [
  { name: 's0', hidden: 64, layers: 2, seed: 101, role: 'ensemble member 0 (small)' },
  { name: 's1', hidden: 64, layers: 2, seed: 202, role: 'ensemble member 1 (small, another seed)' },
  { name: 's2', hidden: 64, layers: 2, seed: 303, role: 'ensemble member 2 (small, another seed)' },
  { name: 'm128', hidden: 128, layers: 2, seed: 404, role: 'single model, medium size' },
  { name: 'large', hidden: 256, layers: 3, seed: 505, role: 'single model, large: the scale-up baseline' },
];

/** Training rows: the first TRAIN_ROWS official training images; the rest are the validation split. */
export const TRAIN_ROWS = 55_000;

const args = parseCommonArgs(process.argv.slice(2), ['only']);
if (args.help) {
  console.log(
    `pnpm train:fashion-cascade [options]\n\n  --only LIST            train only these members (comma-separated: ${FASHION_CASCADE_MEMBERS.map((m) => m.name).join(', ')})\n${COMMON_HELP}`,
  );
  process.exit(0);
}
const only = args.own.only?.split(',').map((s) => s.trim());
for (const o of only ?? [])
  if (!FASHION_CASCADE_MEMBERS.some((m) => m.name === o))
    throw new Error(`--only: unknown member '${o}'; allowed: ${FASHION_CASCADE_MEMBERS.map((m) => m.name).join(', ')}`);

await ensureDatasets(['fashion-mnist'], { log: (line) => console.error(line) });
const trainSet = loadFashionMnist('train');
const testSet = loadFashionMnist('test');
const all = featureExamples(trainSet.images, trainSet.labels, 784);
let trainEx = subset(
  all,
  Array.from({ length: TRAIN_ROWS }, (_, i) => i),
) as typeof all;
let testEx = featureExamples(testSet.images, testSet.labels, 784);
if (args.limit) {
  const lim = args.limit;
  trainEx = subset(
    trainEx,
    Array.from({ length: Math.min(lim, trainEx.n) }, (_, i) => i),
  ) as typeof trainEx;
  testEx = subset(
    testEx,
    Array.from({ length: Math.min(lim, testEx.n) }, (_, i) => i),
  ) as typeof testEx;
}

const root = repoRoot();
for (const m of FASHION_CASCADE_MEMBERS) {
  if (only && !only.includes(m.name)) continue;
  const config: MlpClassifierConfig = {
    architecture: 'mlp_classifier',
    input_size: 784,
    hidden_size: m.hidden,
    num_layers: m.layers,
    num_classes: 10,
    exits: { blocks: Array.from({ length: m.layers }, (_, i) => i), head: 'linear' },
  };
  const name = `fashion-cascade-${m.name}`;
  const run: TrainRun = {
    name,
    config,
    recipe: args.recipe ?? 'joint',
    train: trainEx,
    test: testEx,
    dataset: {
      name: 'Fashion-MNIST (Debian dataset-fashion-mnist, MIT)',
      split: `official training images 0..${TRAIN_ROWS - 1} for training (${trainEx.n.toLocaleString('en-US')} used), ${TRAIN_ROWS}..59999 kept for validation; accuracy is on the official test split (${testEx.n.toLocaleString('en-US')})`,
      preprocessing: 'pixels / 255 in [0, 1], no augmentation; input is the flat 784-value row',
    },
    epochs: args.epochs ?? 4,
    batchSize: args.batch ?? 128,
    lr: args.lr ?? 3e-3,
    weightDecay: 1e-4,
    warmup: 0.03,
    clipNorm: 5,
    seed: args.seed ?? m.seed,
    outDir: args.out ? join(args.out, m.name) : join(root, 'checkpoints', 'fashion-cascade', m.name),
    workDir: args.workDir ? join(args.workDir, m.name) : join(root, '.data', 'runs', name),
    resume: args.resume,
    checkpointEvery: args.checkpointEvery ?? 200,
    backend: args.backend,
    maxSteps: args.maxSteps,
    evalBatchSize: 1000,
    timeBudgetSeconds: 480,
    meta: { cascade_role: m.role },
  };
  const result = await train(run);
  const policies = finishRun(run, result, {
    summary: `A Fashion-MNIST MLP (${m.layers} blocks of ${m.hidden} units, a linear exit head after each): ${m.role} of the fashion-cascade set, for cascades across separate models and the uncertainty metrics.`,
    command: `pnpm train:fashion-cascade --only ${m.name}`,
    recipeNotes: 'PABEE depth-weighted cross-entropy Σ_i i·CE_i / Σ_i i over the exits, one training stage.',
    notes: [
      `Trained for ${result.state.step} steps of ${run.batchSize} images; training stops at 8 minutes of wall time if the epochs are not done by then.`,
      `Validation split: official training images ${TRAIN_ROWS}..59999, never trained on (cascade windows and thresholds are fitted there).`,
      'No model selection on the test split: the weights after the last step are shipped.',
    ],
  });
  for (const p of policies)
    console.log(`${m.name} ${p.policy}: accuracy ${(100 * p.accuracy).toFixed(2)}%, mean compute ${p.cost.toFixed(3)}`);
}
