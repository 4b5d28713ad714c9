// `offramp demo`: the shipped Fashion-MNIST CNN (checkpoints/fashion-cnn) on a slice of the Fashion-MNIST
// test set: evaluates the built-in policies (trace, offline sweep, real runs), prints the tables, says which
// adapter ran it and where the plot went. Fetches the data when it is missing; without the checkpoint it
// falls back to a seeded random-weights CNN of the same shape, and says so.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend, CnnClassifierConfig } from '@offramp/core';
import type { EvalResult, MeasureMode, ModeOption } from '../evaluate.js';
import type { Logger } from '../util/log.js';
import { checkpointsDir } from '../util/workspace.js';
import { evalCommand } from './eval.js';

export interface DemoOptions {
  model?: string;
  data?: string;
  limit: number;
  batch: number;
  device: Backend;
  mode: ModeOption;
  measure: MeasureMode;
  policies?: string[];
  out?: string;
  /** Accuracy drop allowed for the chosen settings (default DEMO_MAX_DROP). */
  maxDrop?: number;
  /** Timed passes per real run (default 3). */
  repeats?: number;
}

/**
 * The demo chooses within 0.25 points of full-depth accuracy: at 1 point a fixed exit after block 0 already
 * qualifies and every policy's choice sends every image there, which hides what per-input decisions buy.
 */
export const DEMO_MAX_DROP = 0.0025;

/** The shape of checkpoints/fashion-cnn, for the random-weights fallback. */
export const FASHION_CNN_SHAPE: CnnClassifierConfig = {
  architecture: 'cnn_classifier',
  image_size: 28,
  in_channels: 1,
  stem_channels: 16,
  channels: [24, 48, 96],
  strides: [2, 2, 2],
  num_classes: 10,
  exits: { blocks: [0, 1, 2], head: 'linear' },
};

async function fallbackModel(log: Logger): Promise<string> {
  const core = await import('@offramp/core');
  const { saveModelDir } = await import('@offramp/core/node');
  const dir = join(tmpdir(), 'offramp-demo-random-cnn');
  if (!existsSync(join(dir, 'model.safetensors'))) {
    await saveModelDir(
      dir,
      {
        offramp_format: 1,
        model: FASHION_CNN_SHAPE,
        meta: {
          dataset: 'Fashion-MNIST (random weights: demo fallback)',
          note: 'seeded random weights (seed 1), untrained',
        },
      },
      core.randomWeights(FASHION_CNN_SHAPE, 1),
    );
  }
  log.warn(
    `checkpoints/fashion-cnn is not there yet: the demo runs a CNN of the same shape with seeded random weights (${dir}); its accuracy is chance level. Train the real one with \`pnpm train:fashion-cnn\`.`,
  );
  return dir;
}

export async function demoCommand(o: DemoOptions, log: Logger): Promise<EvalResult> {
  let model = o.model;
  if (!model) {
    const ck = checkpointsDir();
    const shipped = ck ? join(ck, 'fashion-cnn') : null;
    model = shipped && existsSync(join(shipped, 'config.json')) ? shipped : await fallbackModel(log);
  }
  log.info(
    log.c.bold(log.c.cyan('offramp demo')) +
      log.c.dim(`: early-exit policies on ${model.split('/').pop()} with ${o.limit} test images, batch ${o.batch}`),
  );
  return evalCommand(
    {
      model,
      data: o.data ?? 'fashion-mnist',
      split: 'test',
      limit: o.limit,
      fetch: true,
      policies: o.policies,
      // a finer threshold grid: the sweep is offline (cheap), the real runs stay one per policy
      grid: 16,
      batch: o.batch,
      device: o.device,
      mode: o.mode,
      measure: o.measure,
      repeats: o.repeats ?? 3,
      maxDrop: o.maxDrop ?? DEMO_MAX_DROP,
      out: o.out ?? join(tmpdir(), 'offramp-demo'),
    },
    log,
    'demo',
  );
}
