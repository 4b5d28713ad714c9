// Trains checkpoints/fashion-cnn: a 28×28 CNN with an exit after every block on Fashion-MNIST (official
// 60,000 / 10,000 split), recipe `joint` by default. `pnpm train:fashion-cnn [--resume] [options]`.
import type { CnnClassifierConfig } from '@offramp/core';
import { loadFashionMnist } from '../src/data/mnist.js';
import { COMMON_HELP, parseCommonArgs, runPaths } from '../src/training/cli.js';
import { featureExamples, subset } from '../src/training/examples.js';
import { finishRun } from '../src/training/finish.js';
import { type TrainRun, train } from '../src/training/trainer.js';

const NAME = 'fashion-cnn';
const args = parseCommonArgs(process.argv.slice(2));
if (args.help) {
  console.log(`pnpm train:${NAME} [options]\n\n${COMMON_HELP}`);
  process.exit(0);
}

export const FASHION_CNN_CONFIG: CnnClassifierConfig = {
  architecture: 'cnn_classifier',
  image_size: 28,
  in_channels: 1,
  stem_channels: 8,
  channels: [16, 32, 64],
  strides: [2, 2, 2],
  num_classes: 10,
  // heads read the whole feature map: a global average pool of 16 channels at 14×14 loses where the
  // garment's parts are and leaves the first exit too weak to take many images
  exit_pool: 'flatten',
  exits: { blocks: [0, 1, 2], head: 'linear' },
};

const trainSet = loadFashionMnist('train');
const testSet = loadFashionMnist('test');
let trainEx = featureExamples(trainSet.images, trainSet.labels, 784);
let testEx = featureExamples(testSet.images, testSet.labels, 784);
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

const run: TrainRun = {
  name: NAME,
  config: FASHION_CNN_CONFIG,
  recipe: args.recipe ?? 'joint',
  train: trainEx,
  test: testEx,
  dataset: {
    name: 'Fashion-MNIST (Debian dataset-fashion-mnist, MIT)',
    split: `official split: ${trainEx.n.toLocaleString('en-US')} train / ${testEx.n.toLocaleString('en-US')} test; accuracy is on the test split`,
    preprocessing: 'pixels / 255 in [0, 1], no augmentation; input is the flat 784-value row (NCHW, 1 channel)',
  },
  epochs: args.epochs ?? 3,
  batchSize: args.batch ?? 64,
  lr: args.lr ?? 4e-3,
  weightDecay: 1e-4,
  warmup: 0.03,
  clipNorm: 5,
  seed: args.seed ?? 1234,
  ...runPaths(NAME, args),
  resume: args.resume,
  checkpointEvery: args.checkpointEvery ?? 100,
  backend: args.backend,
  maxSteps: args.maxSteps,
  evalBatchSize: 500,
  modelOptions: { batchNorm: true },
  exportEveryEpoch: true,
};

const result = await train(run);
const policies = finishRun(run, result, {
  summary:
    'A small convolutional network for 28×28 grey images with an exit head (linear on the flattened feature map) after each of its three blocks: the image classifier of the Offramp demos.',
  command: `pnpm train:${NAME}`,
  recipeNotes: 'PABEE depth-weighted cross-entropy Σ_i i·CE_i / Σ_i i over the three exits, one training stage.',
  notes: [
    "Trained with batch normalisation after every convolution; at export it is folded into the convolution weights and biases, so the shipped model is exactly the engine's cnn_classifier.",
    `Trained for ${result.state.step} steps of ${run.batchSize} images (${((result.state.step * run.batchSize) / trainEx.n).toFixed(2)} epochs); the compute budget of the machine, not convergence, set the length.`,
    'No model selection on the test split: the weights after the last step are shipped.',
  ],
});
for (const p of policies)
  console.log(`${p.policy}: accuracy ${(100 * p.accuracy).toFixed(2)}%, mean compute ${p.cost.toFixed(3)}`);
