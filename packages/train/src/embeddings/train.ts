// Contrastive training of the multi-exit embedder (tfjs): InfoNCE with in-batch negatives (symmetric, query →
// code and code → query, temperature τ) and, per variant,
//   'mose':        InfoNCE at every exit + self-distillation from the last exit: KL(softmax(S_L/τ) ‖ softmax(S_j/τ))
//                  for every lower exit j, rows and columns, the last exit's similarities held constant
//   'independent': InfoNCE at every exit, no distillation
//   'last':        InfoNCE at the last exit only (the baseline: lower exits get no training signal of their own)
// S_j = Q_j · C_jᵀ (unit-length embeddings of the batch's queries and codes at exit j).
import { mulberry32 } from '@offramp/core';
import * as tf from '@tensorflow/tfjs';
import { shuffleInPlace } from '../data/split.js';
import { stopGradient } from '../training/models.js';
import { gatherRows, padBatch, type TfEmbedder } from './model.js';

export const EMBED_VARIANTS = ['mose', 'independent', 'last'] as const;
export type EmbedVariant = (typeof EMBED_VARIANTS)[number];

export interface EmbedTrainOptions {
  variant: EmbedVariant;
  /** Token ids of each training pair's query and code. */
  queries: number[][];
  codes: number[][];
  /**
   * Each pair's split unit (package or module). Given, batches are drawn from one unit at a time (see
   * unitBuckets): its functions share names and vocabulary, so the in-batch negatives are harder than random
   * ones.
   */
  units?: readonly string[];
  padId: number;
  steps: number;
  batchSize: number;
  lr: number;
  /** Temperature of the similarities (default 0.05). */
  tau?: number;
  /** Weight of the distillation terms ('mose'; default 1). */
  distillWeight?: number;
  seed: number;
  /** Code rows are padded up to a multiple of this (fewer distinct shapes to compile). */
  padMultiple?: number;
  /** Steps of linear warm-up before the cosine decay to 10 % of `lr` (default 0: constant `lr`). */
  warmup?: number;
  /**
   * The token embedding table's learning rate as a multiple of `lr` (default 1; 0 freezes the table, e.g. when
   * it comes from a stage that trained it with larger batches).
   */
  tableLrScale?: number;
  /** Called after `evalEvery` steps and at the end (e.g. a validation MRR per exit for the learning curve). */
  evaluate?: (step: number) => Promise<number[]>;
  evalEvery?: number;
  log?: (line: string) => void;
}

export interface EmbedTrainResult {
  steps: number;
  seconds: number;
  /** Mean loss over each tenth of the run. */
  lossCurve: number[];
  /** What `evaluate` returned, with the step it ran after. */
  evalCurve: { step: number; values: number[] }[];
}

/** Learning rate at `step` of `steps`: linear warm-up over `warmup` steps, then cosine decay to 10 % of `lr`. */
export function scheduledLr(lr: number, step: number, steps: number, warmup: number): number {
  if (warmup <= 0) return lr;
  if (step < warmup) return (lr * (step + 1)) / warmup;
  const t = (step - warmup) / Math.max(1, steps - warmup);
  return lr * (0.1 + 0.45 * (1 + Math.cos(Math.PI * t)));
}

/** Sets an Adam optimizer's learning rate (tfjs reads the field at every update). */
function setLr(opt: tf.AdamOptimizer, lr: number): void {
  (opt as unknown as { learningRate: number }).learningRate = lr;
}

function infoNce(S: tf.Tensor2D): tf.Scalar {
  const B = S.shape[0];
  const eye = tf.eye(B);
  const rows = tf.neg(tf.mean(tf.sum(tf.mul(eye, tf.logSoftmax(S, 1)), 1)));
  const cols = tf.neg(tf.mean(tf.sum(tf.mul(eye, tf.logSoftmax(tf.transpose(S), 1)), 1)));
  return tf.mul(0.5, tf.add(rows, cols)) as tf.Scalar;
}

function kl(teacher: tf.Tensor2D, student: tf.Tensor2D): tf.Scalar {
  const lp = tf.logSoftmax(teacher, 1);
  return tf.mean(tf.sum(tf.mul(tf.exp(lp), tf.sub(lp, tf.logSoftmax(student, 1))), 1)) as tf.Scalar;
}

/** The variant's loss on one batch's per-exit similarity matrices (already divided by τ). */
export function embedLoss(variant: EmbedVariant, S: tf.Tensor2D[], distillWeight = 1): tf.Scalar {
  const E = S.length;
  if (variant === 'last') return infoNce(S[E - 1]);
  let loss = tf.div(tf.addN(S.map(infoNce)), E) as tf.Scalar;
  if (variant === 'mose' && E > 1) {
    const t = stopGradient(S[E - 1]);
    const tT = tf.transpose(t) as tf.Tensor2D;
    const terms = S.slice(0, -1).map((s) => tf.mul(0.5, tf.add(kl(t, s), kl(tT, tf.transpose(s) as tf.Tensor2D))));
    loss = tf.add(loss, tf.mul(distillWeight / (E - 1), tf.addN(terms))) as tf.Scalar;
  }
  return loss;
}

/**
 * One epoch's order: shuffled, then cut into groups of 8 batches, each group sorted by code length, so a batch
 * holds codes of similar length (little padding) while its members stay random; batch order shuffled.
 */
export function lengthBuckets(codes: readonly number[][], batchSize: number, rand: () => number): number[] {
  const all = shuffleInPlace(
    Array.from({ length: codes.length }, (_, i) => i),
    rand,
  );
  const batches: number[][] = [];
  const group = 8 * batchSize;
  for (let g = 0; g < all.length; g += group) {
    const part = all.slice(g, g + group).sort((a, b) => codes[a].length - codes[b].length);
    for (let b = 0; b + batchSize <= part.length; b += batchSize) batches.push(part.slice(b, b + batchSize));
  }
  return shuffleInPlace(batches, rand).flat();
}

/**
 * One epoch's order with batches drawn from one unit each: every unit's pairs shuffled and cut into groups of
 * 8 batches sorted by code length, as lengthBuckets; the pairs of units too small for a whole batch (and each
 * unit's remainder) are pooled and batched as lengthBuckets does. Batch order shuffled.
 */
export function unitBuckets(
  units: readonly string[],
  codes: readonly number[][],
  batchSize: number,
  rand: () => number,
): number[] {
  const byUnit = new Map<string, number[]>();
  units.forEach((u, i) => {
    const list = byUnit.get(u);
    if (list) list.push(i);
    else byUnit.set(u, [i]);
  });
  const batches: number[][] = [];
  const pooled: number[] = [];
  const group = 8 * batchSize;
  for (const u of [...byUnit.keys()].sort()) {
    const all = shuffleInPlace(byUnit.get(u)!, rand);
    const whole = all.length - (all.length % batchSize);
    for (let g = 0; g < whole; g += group) {
      const part = all.slice(g, Math.min(g + group, whole)).sort((a, b) => codes[a].length - codes[b].length);
      for (let b = 0; b < part.length; b += batchSize) batches.push(part.slice(b, b + batchSize));
    }
    pooled.push(...all.slice(whole));
  }
  shuffleInPlace(pooled, rand);
  const group2 = 8 * batchSize;
  for (let g = 0; g < pooled.length; g += group2) {
    const part = pooled.slice(g, g + group2).sort((a, b) => codes[a].length - codes[b].length);
    for (let b = 0; b + batchSize <= part.length; b += batchSize) batches.push(part.slice(b, b + batchSize));
  }
  return shuffleInPlace(batches, rand).flat();
}

export async function trainEmbedder(model: TfEmbedder, o: EmbedTrainOptions): Promise<EmbedTrainResult> {
  const tau = o.tau ?? 0.05;
  const mult = o.padMultiple ?? 32;
  const rand = mulberry32(o.seed);
  const tableScale = o.tableLrScale ?? 1;
  if (!(tableScale >= 0)) throw new Error(`tableLrScale is ${tableScale}; expected a number >= 0`);
  const table = model.params.get('embeddings.token.weight')!;
  const opt = tf.train.adam(o.lr);
  const tableOpt = tableScale > 0 && tableScale !== 1 ? tf.train.adam(o.lr * tableScale) : null;
  const vars = [...model.params.values()].filter((v) => tableScale === 1 || v !== table);
  let order: number[] = [];
  const losses: number[] = [];
  const evalCurve: { step: number; values: number[] }[] = [];
  const t0 = performance.now();
  let evalSeconds = 0;
  const evaluate = async (step: number) => {
    if (!o.evaluate) return;
    const e0 = performance.now();
    const values = await o.evaluate(step);
    evalSeconds += (performance.now() - e0) / 1000;
    evalCurve.push({ step, values });
    o.log?.(`after step ${step}: ${values.map((v) => v.toFixed(3)).join(' / ')}`);
  };
  await evaluate(0);
  for (let step = 0; step < o.steps; step++) {
    const rate = scheduledLr(o.lr, step, o.steps, o.warmup ?? 0);
    setLr(opt, rate);
    if (tableOpt) setLr(tableOpt, rate * tableScale);
    if (order.length < o.batchSize)
      order = o.units ? unitBuckets(o.units, o.codes, o.batchSize, rand) : lengthBuckets(o.codes, o.batchSize, rand);
    const idx = order.splice(0, o.batchSize);
    const qRows = idx.map((i) => o.queries[i]);
    const cRows = idx.map((i) => o.codes[i]);
    const q = padBatch(qRows, o.padId, 16);
    const c = padBatch(cRows, o.padId, mult);
    const cIds = c.ids;
    const cLen = c.lengths;
    const lossFn = () => {
      const qe = model.embed(q.ids, q.lengths);
      const ce = model.embed(cIds, cLen);
      const S = qe.map((x, j) => tf.div(tf.matMul(x, ce[j], false, true), tau) as tf.Tensor2D);
      return embedLoss(o.variant, S, o.distillWeight);
    };
    let loss: tf.Scalar;
    if (!tableOpt) loss = opt.minimize(lossFn, true, vars) as tf.Scalar;
    else {
      // two learning rates: one gradient pass, each optimizer applies its own part
      const { value, grads } = tf.variableGrads(lossFn, [...vars, table]);
      const { [table.name]: tableGrad, ...rest } = grads;
      opt.applyGradients(rest as unknown as Parameters<typeof opt.applyGradients>[0]);
      tableOpt.applyGradients({ [table.name]: tableGrad } as unknown as Parameters<typeof opt.applyGradients>[0]);
      tf.dispose(Object.values(grads));
      loss = value;
    }
    losses.push((await loss.data())[0]);
    tf.dispose([loss, q.ids, q.lengths, cIds, cLen]);
    if (o.log && (step % 20 === 0 || step < 10 || step === o.steps - 1)) {
      const s = (performance.now() - t0) / 1000;
      o.log(`step ${step + 1}/${o.steps}: loss ${losses[losses.length - 1].toFixed(4)} (${s.toFixed(0)} s)`);
    }
    if (o.evalEvery && (step + 1) % o.evalEvery === 0 && step + 1 < o.steps) await evaluate(step + 1);
  }
  await evaluate(o.steps);
  opt.dispose();
  tableOpt?.dispose();
  const tenth = Math.max(1, Math.floor(losses.length / 10));
  const lossCurve: number[] = [];
  for (let s = 0; s < losses.length; s += tenth) {
    const part = losses.slice(s, s + tenth);
    lossCurve.push(part.reduce((a, b) => a + b, 0) / part.length);
  }
  return { steps: o.steps, seconds: (performance.now() - t0) / 1000 - evalSeconds, lossCurve, evalCurve };
}

export interface PretrainOptions {
  vocabSize: number;
  dim: number;
  queries: number[][];
  codes: number[][];
  padId: number;
  steps: number;
  batchSize: number;
  lr: number;
  seed: number;
  tau?: number;
  /** Warm-up steps of the schedule (see scheduledLr; default 0: constant lr). */
  warmup?: number;
  /** Called with the current table after `evalEvery` steps and at the end (the learning curve). */
  evaluate?: (table: tf.Variable, step: number) => Promise<number>;
  evalEvery?: number;
  log?: (line: string) => void;
}

/**
 * Stage 0: token embeddings trained as a bag-of-embeddings dual encoder (the unit-length mean of a text's token
 * embeddings) with the same symmetric InfoNCE; cheap (no blocks), it gives the encoder a useful start.
 */
export async function pretrainTokenEmbeddings(
  o: PretrainOptions,
): Promise<{ table: Float32Array; seconds: number; loss: number; evalCurve: { step: number; value: number }[] }> {
  const rand = mulberry32(o.seed);
  const table = tf.variable(
    tf.randomNormal([o.vocabSize, o.dim], 0, 0.02, 'float32', o.seed),
    true,
    `pretrain${o.seed}`,
  );
  const tau = o.tau ?? 0.05;
  const opt = tf.train.adam(o.lr);
  const bag = (rows: number[][]) => {
    const p = padBatch(rows, o.padId, 16);
    const T = p.ids.shape[1];
    const valid = tf.cast(tf.less(tf.range(0, T, 1, 'int32').expandDims(0), p.lengths.expandDims(1)), 'float32');
    const e = tf.sum(tf.mul(gatherRows(table, p.ids), valid.expandDims(2)), 1) as tf.Tensor2D;
    return { e: tf.div(e, tf.maximum(tf.norm(e, 2, 1, true), 1e-12)) as tf.Tensor2D, dispose: [p.ids, p.lengths] };
  };
  let order: number[] = [];
  let last = 0;
  const evalCurve: { step: number; value: number }[] = [];
  let evalSeconds = 0;
  const evaluate = async (step: number) => {
    if (!o.evaluate) return;
    const e0 = performance.now();
    const value = await o.evaluate(table, step);
    evalSeconds += (performance.now() - e0) / 1000;
    evalCurve.push({ step, value });
    o.log?.(`stage 0 after step ${step}: ${value.toFixed(3)}`);
  };
  const t0 = performance.now();
  for (let step = 0; step < o.steps; step++) {
    setLr(opt, scheduledLr(o.lr, step, o.steps, o.warmup ?? 0));
    if (order.length < o.batchSize) order = lengthBuckets(o.codes, o.batchSize, rand);
    const idx = order.splice(0, o.batchSize);
    const loss = opt.minimize(
      () => {
        const q = bag(idx.map((i) => o.queries[i]));
        const c = bag(idx.map((i) => o.codes[i]));
        return embedLoss('last', [tf.div(tf.matMul(q.e, c.e, false, true), tau) as tf.Tensor2D]);
      },
      true,
      [table],
    ) as tf.Scalar;
    last = (await loss.data())[0];
    loss.dispose();
    if (o.log && (step % 50 === 0 || step === o.steps - 1))
      o.log(
        `stage 0 step ${step + 1}/${o.steps}: loss ${last.toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
      );
    if (o.evalEvery && (step + 1) % o.evalEvery === 0 && step + 1 < o.steps) await evaluate(step + 1);
  }
  await evaluate(o.steps);
  opt.dispose();
  const out = Float32Array.from(await table.data());
  table.dispose();
  return { table: out, seconds: (performance.now() - t0) / 1000 - evalSeconds, loss: last, evalCurve };
}
