// The training loop on synthetic data (tiny MLP with gates, tfjs CPU backend): every recipe trains and exports
// a model directory the engine's loader accepts; the loss falls on a learnable task; an interrupted run resumed
// from its work directory ends bit-identical to an uninterrupted one; batches, permutations, AdamW and the
// learning-rate schedule behave as documented.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MlpClassifierConfig, mulberry32 } from '@offramp/core';
import { loadModelDir } from '@offramp/core/node';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { loadCheckpoint } from './checkpoint.js';
import { featureExamples, makeBatch, permutation, TOKEN_LENGTH_QUANTUM, tokenExamples } from './examples.js';
import { AdamW, scheduledLr } from './optimizer.js';
import { Progress } from './progress.js';
import { RECIPES } from './recipes.js';
import { type TrainRun, train } from './trainer.js';

let dir: string;
beforeAll(async () => {
  await initBackend('cpu', () => {});
  dir = mkdtempSync(join(tmpdir(), 'offramp-train-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cfg: MlpClassifierConfig = {
  architecture: 'mlp_classifier',
  input_size: 8,
  hidden_size: 12,
  num_layers: 3,
  num_classes: 3,
  exits: { blocks: [0, 1, 2], head: 'linear', gate: true, gate_hidden: 4 },
};

/** A learnable task: the class is the index of the largest of the first three features. */
function synthetic(n: number, seed: number) {
  const rand = mulberry32(seed);
  const x = Float32Array.from({ length: n * 8 }, () => rand() * 2 - 1);
  const y = Array.from({ length: n }, (_, i) => {
    const r = x.subarray(i * 8, i * 8 + 3);
    return r.indexOf(Math.max(...r));
  });
  return featureExamples(x, y, 8);
}

const quiet = () => new Progress({ stream: { write: () => true }, tty: false });

function baseRun(name: string, over: Partial<TrainRun> = {}): TrainRun {
  return {
    name,
    config: cfg,
    recipe: 'joint',
    train: synthetic(192, 1),
    test: synthetic(96, 2),
    dataset: { name: 'synthetic', split: '192 / 96' },
    epochs: 3,
    batchSize: 32,
    lr: 1e-2,
    seed: 7,
    outDir: join(dir, name, 'out'),
    workDir: join(dir, name, 'work'),
    checkpointEvery: 4,
    backend: 'cpu',
    progress: quiet(),
    ...over,
  };
}

describe('train()', () => {
  it.each(RECIPES)('recipe %s trains and exports a model directory the engine loader accepts', async (recipe) => {
    const run = baseRun(`recipe-${recipe}`, { recipe, epochs: 1 });
    const res = await train(run);
    const loaded = await loadModelDir(run.outDir);
    expect(loaded.config.model).toEqual(cfg);
    expect(loaded.config.meta?.recipe).toBe(recipe);
    const metrics = loaded.config.meta?.metrics as { heldout_accuracy_per_exit: number[] } | undefined;
    expect(metrics?.heldout_accuracy_per_exit).toHaveLength(3);
    expect([...loaded.tensors.keys()].some((k) => k.startsWith('aux.'))).toBe(false);
    const curves = JSON.parse(readFileSync(join(run.outDir, 'curves.json'), 'utf8'));
    expect(curves.eval.length).toBeGreaterThan(0);
    expect(readFileSync(join(run.outDir, 'curves.csv'), 'utf8').split('\n')[0]).toBe(
      'step,stage,epoch,loss,acc,lr,seconds',
    );
    res.model.dispose();
  });

  it('learns the synthetic task (final-exit accuracy well above chance)', async () => {
    const res = await train(baseRun('learn', { epochs: 15 }));
    expect(res.accuracy[2]).toBeGreaterThan(0.7);
    expect(res.state.curves[res.state.curves.length - 1].loss).toBeLessThan(res.state.curves[0].loss);
    res.model.dispose();
  });

  it('resumes an interrupted run to the same final weights', async () => {
    const full = baseRun('full');
    const a = await train(full);
    // an interrupted run: stop after 5 steps, then resume with the complete settings
    const cut = baseRun('cut', { maxSteps: 5 });
    const b0 = await train(cut);
    b0.model.dispose();
    const st = loadCheckpoint(cut.workDir, []).state;
    expect(st.done).toBe(true);
    // same settings as `full` but in the interrupted run's folders: the fingerprint differs, so resume refuses
    await expect(train({ ...full, outDir: cut.outDir, workDir: cut.workDir, resume: true })).rejects.toThrow(
      /different settings/,
    );
    // a genuinely interrupted state: rewrite the work directory by a run that checkpoints mid-way and is cut off
    const part = baseRun('part');
    const stop = new Error('stop');
    let steps = 0;
    const counting = new Progress({
      stream: {
        write: (s: string) => {
          if (/^joint ep/.test(s) && ++steps === 6) throw stop;
          return true;
        },
      },
      tty: false,
      everySeconds: 0,
    });
    await expect(train({ ...part, progress: counting })).rejects.toBe(stop);
    const mid = loadCheckpoint(part.workDir, []).state;
    expect(mid.step).toBe(4);
    const b = await train({ ...part, resume: true });
    expect(b.state.step).toBe(a.state.step);
    const wa = readFileSync(join(full.outDir, 'model.safetensors'));
    const wb = readFileSync(join(part.outDir, 'model.safetensors'));
    expect(Buffer.compare(wa, wb)).toBe(0);
    a.model.dispose();
    b.model.dispose();
  });
});

describe('time budget and epochs run', () => {
  it('stops at the budget inside an epoch, exports a valid model, and --resume finishes it to the same weights', async () => {
    const full = baseRun('budget-full');
    const a = await train(full);
    expect(a.stopped).toBeUndefined();
    expect(a.epochsRun).toEqual([3]);
    // 192 rows / 32 = 6 steps an epoch, 18 in all; the budget runs out long before (each step takes ms)
    let lines = '';
    const cut = baseRun('budget-cut', {
      timeBudgetSeconds: 0.001,
      progress: new Progress({ stream: { write: (t: string) => (lines += t) }, tty: false, everySeconds: 0 }),
    });
    const b0 = await train(cut);
    expect(b0.stopped).toBe('time-budget');
    expect(b0.state.step).toBeGreaterThan(0);
    expect(b0.state.step).toBeLessThan(18);
    expect(b0.epochsRun).toEqual([b0.state.step / 6]);
    expect(lines).toMatch(/the time budget of 0s is spent after \d+ steps? of stage 'joint'/);
    expect(lines).toMatch(/stage 'joint' after \d+ steps? \([\d.]+ of 3 epochs\): held-out accuracy/);
    const loaded = await loadModelDir(cut.outDir);
    const training = loaded.config.meta?.training as { stopped?: string; epochs_run?: number[] } | undefined;
    expect(training?.stopped).toBe('time-budget');
    expect(training?.epochs_run).toEqual([Number((b0.state.step / 6).toFixed(3))]);
    expect(loadCheckpoint(cut.workDir, []).state.done).toBe(false);
    b0.model.dispose();
    const b = await train({ ...cut, timeBudgetSeconds: undefined, resume: true, progress: quiet() });
    expect(b.stopped).toBeUndefined();
    expect(b.state.step).toBe(18);
    expect(b.epochsRun).toEqual([3]);
    const wa = readFileSync(join(full.outDir, 'model.safetensors'));
    const wb = readFileSync(join(cut.outDir, 'model.safetensors'));
    expect(Buffer.compare(wa, wb)).toBe(0);
    a.model.dispose();
    b.model.dispose();
  });

  it('reports the epochs that ran when --max-steps cuts a stage short', async () => {
    const res = await train(baseRun('cut-steps', { epochs: 10, maxSteps: 4 }));
    expect(res.stopped).toBe('max-steps');
    expect(res.epochsRun).toEqual([4 / 6]);
    res.model.dispose();
  });
});

describe('examples and optimizer', () => {
  it('permutation is a seeded permutation', () => {
    const p = permutation(50, 3);
    expect([...p].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect([...permutation(50, 3)]).toEqual([...p]);
    expect([...permutation(50, 4)]).not.toEqual([...p]);
  });

  it('token batches keep valid lengths and are trimmed to a multiple of the quantum', async () => {
    const T = 100;
    const ids = new Int32Array(3 * T);
    [5, 40, 1].forEach((len, r) => {
      for (let t = 0; t < len; t++) ids[r * T + t] = 2 + t;
    });
    const ex = tokenExamples(ids, [0, 1, 0], T);
    expect([...ex.lengths]).toEqual([5, 40, 1]);
    const b = makeBatch(ex, [0, 2]);
    const input = b.input as { ids: tf.Tensor2D; lengths: tf.Tensor1D };
    expect(input.ids.shape).toEqual([2, TOKEN_LENGTH_QUANTUM]);
    expect([...((await input.lengths.data()) as Int32Array)]).toEqual([5, 1]);
    const b2 = makeBatch(ex, [1]);
    expect((b2.input as { ids: tf.Tensor2D }).ids.shape).toEqual([1, Math.min(T, 2 * TOKEN_LENGTH_QUANTUM)]);
  });

  it('AdamW takes the bias-corrected step with decoupled weight decay on matrices only', async () => {
    const w = tf.variable(tf.tensor2d([[1, -2]]), true, 'adamw-test/w');
    const b = tf.variable(tf.tensor1d([0.5]), true, 'adamw-test/b');
    const opt = new AdamW({ lr: 0.1, weightDecay: 0.01 });
    const vars = new Map<string, tf.Variable>([
      ['fc.weight', w],
      ['fc.bias', b],
    ]);
    opt.apply(
      vars,
      new Map<string, tf.Tensor>([
        ['fc.weight', tf.tensor2d([[0.2, -0.4]])],
        ['fc.bias', tf.tensor1d([3])],
      ]),
      0.1,
    );
    // first step: m̂ = g, v̂ = g², update = g / (|g| + eps) = sign(g)
    const wv = (await w.data()) as Float32Array;
    expect(wv[0]).toBeCloseTo(1 - 0.1 * (1 + 0.01 * 1), 5);
    expect(wv[1]).toBeCloseTo(-2 - 0.1 * (-1 + 0.01 * -2), 5);
    expect(((await b.data()) as Float32Array)[0]).toBeCloseTo(0.5 - 0.1, 5);
    opt.dispose();
    w.dispose();
    b.dispose();
  });

  it('the schedule warms up linearly and decays by cosine to the floor', () => {
    const s = { warmup: 10, total: 110, minFactor: 0.1 };
    expect(scheduledLr(1, 0, s)).toBeCloseTo(0.1);
    expect(scheduledLr(1, 9, s)).toBeCloseTo(1);
    expect(scheduledLr(1, 60, s)).toBeCloseTo(0.1 + 0.9 * 0.5);
    expect(scheduledLr(1, 110, s)).toBeCloseTo(0.1);
  });
});
