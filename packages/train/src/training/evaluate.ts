// Evaluation of a tfjs model with exits: per-exit predictions, confidences and gate probabilities over a
// split, per-exit accuracy, and what the engine's exit rules would do with them (confidence threshold, Q-exit
// on the λ heads, gate > 0.5) as accuracy against mean compute fraction. Also caches head inputs (frozen
// backbones train their heads on these).
import * as tf from '@tensorflow/tfjs';
import { disposeBatch, type Examples, makeBatch } from './examples.js';
import type { TfModel } from './models.js';

export interface ExitRecords {
  n: number;
  labels: Int32Array;
  /** Per exit: predicted class per sample. */
  argmax: Int32Array[];
  /** Per exit: max softmax probability per sample. */
  maxProb: Float32Array[];
  /** Per exit: σ(gate logit) per sample, when the model has gate heads. */
  gate?: Float32Array[];
  /** Per exit: the raw head inputs (n, dim) row-major, when asked for. */
  features?: Float32Array[];
}

/** Head inputs of every sample at every exit: per exit (n, dim) row-major. */
export interface CachedFeatures {
  n: number;
  dims: number[];
  data: Float32Array[];
  labels: Int32Array;
}

function rangeIdx(from: number, to: number): Int32Array {
  return Int32Array.from({ length: to - from }, (_, i) => from + i);
}

/** Runs the backbone (eval mode) over every sample and keeps the raw head inputs. */
export async function cacheFeatures(
  model: TfModel,
  ex: Examples,
  batchSize: number,
  onBatch?: (done: number) => void,
): Promise<CachedFeatures> {
  const dims = model.exitDims;
  const data = dims.map((d) => new Float32Array(ex.n * d));
  for (let s = 0; s < ex.n; s += batchSize) {
    const e = Math.min(ex.n, s + batchSize);
    const batch = makeBatch(ex, rangeIdx(s, e));
    const feats = tf.tidy(() => model.features(batch.input));
    for (let j = 0; j < dims.length; j++) data[j].set((await feats[j].data()) as Float32Array, s * dims[j]);
    tf.dispose(feats);
    disposeBatch(batch);
    onBatch?.(e);
  }
  return { n: ex.n, dims, data, labels: ex.labels };
}

/** Rows `idx` of cached features as (B, dim) tensors per exit. */
export function featureBatch(c: CachedFeatures, idx: ArrayLike<number>): tf.Tensor2D[] {
  return c.dims.map((d, j) => {
    const out = new Float32Array(idx.length * d);
    for (let i = 0; i < idx.length; i++) out.set(c.data[j].subarray(idx[i] * d, (idx[i] + 1) * d), i * d);
    return tf.tensor2d(out, [idx.length, d]);
  });
}

async function collect(
  E: number,
  n: number,
  hasGate: boolean,
  labels: Int32Array,
  batchSize: number,
  run: (idx: Int32Array) => { logits: tf.Tensor2D; gate?: tf.Tensor1D; feature?: tf.Tensor2D }[],
  featureDims?: number[],
): Promise<ExitRecords> {
  const argmax = Array.from({ length: E }, () => new Int32Array(n));
  const maxProb = Array.from({ length: E }, () => new Float32Array(n));
  const gate = hasGate ? Array.from({ length: E }, () => new Float32Array(n)) : undefined;
  const features = featureDims?.map((d) => new Float32Array(n * d));
  for (let s = 0; s < n; s += batchSize) {
    const e = Math.min(n, s + batchSize);
    const res = tf.tidy(() =>
      run(rangeIdx(s, e)).map((h) => {
        const p = tf.softmax(h.logits);
        return [
          tf.argMax(h.logits, -1),
          tf.max(p, -1),
          h.gate ? tf.sigmoid(h.gate) : undefined,
          features ? h.feature : undefined,
        ] as const;
      }),
    );
    for (let j = 0; j < E; j++) {
      const [am, mp, g, f] = res[j];
      argmax[j].set((await am.data()) as Int32Array, s);
      maxProb[j].set((await mp.data()) as Float32Array, s);
      if (g && gate) gate[j].set((await g.data()) as Float32Array, s);
      if (f && features && featureDims) features[j].set((await f.data()) as Float32Array, s * featureDims[j]);
      tf.dispose([am, mp, g, f].filter((t) => t !== undefined));
    }
  }
  return { n, labels, argmax, maxProb, gate, features };
}

/** Per-exit records of the model over every sample of `ex` (eval mode), with the head inputs if asked. */
export async function evaluateModel(
  model: TfModel,
  ex: Examples,
  batchSize: number,
  options: { features?: boolean } = {},
): Promise<ExitRecords> {
  const E = model.exitDims.length;
  return collect(
    E,
    ex.n,
    Boolean(model.config.exits.gate),
    ex.labels,
    batchSize,
    (idx) => {
      const batch = makeBatch(ex, idx);
      try {
        const out = model.forward(batch.input);
        return out.heads.map((h, j) => ({ ...h, feature: out.features[j] }));
      } finally {
        disposeBatch(batch);
      }
    },
    options.features ? model.exitDims : undefined,
  );
}

/** Per-exit records from cached head inputs (heads only). */
export async function evaluateHeads(model: TfModel, c: CachedFeatures, batchSize: number): Promise<ExitRecords> {
  const E = model.exitDims.length;
  return collect(E, c.n, Boolean(model.config.exits.gate), c.labels, batchSize, (idx) => {
    const feats = featureBatch(c, idx);
    return feats.map((f, j) => model.head(j, f));
  });
}

export function exitAccuracy(r: ExitRecords): number[] {
  return r.argmax.map((am) => {
    let ok = 0;
    for (let i = 0; i < r.n; i++) if (am[i] === r.labels[i]) ok++;
    return ok / r.n;
  });
}

export interface PolicyPoint {
  policy: string;
  accuracy: number;
  /** Mean compute fraction spent per sample. */
  cost: number;
  /** Share of samples leaving at each exit. */
  exitShare: number[];
}

/** Accuracy and mean cost when each sample leaves at the exit `choose` picks. */
export function simulate(r: ExitRecords, costs: number[], policy: string, choose: (i: number) => number): PolicyPoint {
  const E = r.argmax.length;
  const share = new Array(E).fill(0);
  let ok = 0;
  let cost = 0;
  for (let i = 0; i < r.n; i++) {
    const j = choose(i);
    share[j]++;
    cost += costs[j];
    if (r.argmax[j][i] === r.labels[i]) ok++;
  }
  return { policy, accuracy: ok / r.n, cost: cost / r.n, exitShare: share.map((s) => s / r.n) };
}

/** Leave at the first exit whose max softmax probability reaches τ. */
export function confidencePolicy(r: ExitRecords, costs: number[], tau: number): PolicyPoint {
  const E = r.argmax.length;
  return simulate(r, costs, `maxProb >= ${tau}`, (i) => {
    for (let j = 0; j < E - 1; j++) if (r.maxProb[j][i] >= tau) return j;
    return E - 1;
  });
}

/** Q-exit (PALBERT): cdf += λ_i·Π_{j<i}(1 − λ_j), leave at the first exit where cdf > q. */
export function qExitPolicy(r: ExitRecords, costs: number[], q = 0.5): PolicyPoint {
  if (!r.gate) throw new Error('qExitPolicy needs gate (λ) heads');
  const E = r.argmax.length;
  return simulate(r, costs, `Q-exit q=${q}`, (i) => {
    let surv = 1;
    let cdf = 0;
    for (let j = 0; j < E - 1; j++) {
      const lam = r.gate![j][i];
      cdf += lam * surv;
      surv *= 1 - lam;
      if (cdf > q) return j;
    }
    return E - 1;
  });
}

/** Leave at the first exit whose gate probability exceeds `threshold` (JEI-DNN's rule at 0.5). */
export function gatePolicy(r: ExitRecords, costs: number[], threshold = 0.5): PolicyPoint {
  if (!r.gate) throw new Error('gatePolicy needs gate heads');
  const E = r.argmax.length;
  return simulate(r, costs, `gate > ${threshold}`, (i) => {
    for (let j = 0; j < E - 1; j++) if (r.gate![j][i] > threshold) return j;
    return E - 1;
  });
}
