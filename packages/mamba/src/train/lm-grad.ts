// A Mamba language model with exits, in float64 with a hand-written backward, for training: embedding →
// blocks → at each exit block: norm_f → tied LM head (the embedding) → cross-entropy on the next token.
// The loss is Σ_j w_j · CE_j over the exits; the exit heads share norm_f and the head (DYNAMAX's exits).
import { mulberry32 } from '@offramp/core';
import {
  type BlockCache,
  type BlockDims,
  type BlockParams,
  blockBackward,
  blockForward,
  initBlock,
  zerosLike,
} from './block-grad.js';
import { type F64, linear, linearBackward, rmsNormBackward, rmsNormForward } from './ops.js';

export interface LmDims {
  vocab: number;
  d: number;
  layers: number;
  D: number;
  N: number;
  R: number;
  K: number;
  eps: number;
}

export interface LmParams {
  /** (vocab, d); also the LM head (tied). */
  emb: F64;
  normF: F64;
  layers: BlockParams[];
}

export const blockDimsOf = (dm: LmDims): BlockDims => ({
  d: dm.d,
  D: dm.D,
  N: dm.N,
  R: dm.R,
  K: dm.K,
  out: dm.d,
  residual: true,
  eps: dm.eps,
});

/** Standard deviation of the initial embedding (also the tied head). */
const EMB_STD = 0.1;

export function initLm(dm: LmDims, seed: number): LmParams {
  const rand = mulberry32(seed);
  const emb = new Float64Array(dm.vocab * dm.d);
  for (let i = 0; i < emb.length; i += 2) {
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u)) * EMB_STD;
    emb[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < emb.length) emb[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  const layers = Array.from({ length: dm.layers }, () => initBlock(blockDimsOf(dm), rand, dm.layers, false));
  return { emb, normF: new Float64Array(dm.d).fill(1), layers };
}

export function zeroGrads(p: LmParams): LmParams {
  return {
    emb: new Float64Array(p.emb.length),
    normF: new Float64Array(p.normF.length),
    layers: p.layers.map(zerosLike),
  };
}

/** Every parameter array with a stable name (the optimizer's and the exporter's view). */
export function lmParamList(p: LmParams): [string, F64][] {
  const out: [string, F64][] = [
    ['emb', p.emb],
    ['normF', p.normF],
  ];
  p.layers.forEach((l, i) => {
    for (const [k, v] of Object.entries(l)) if (v) out.push([`layers.${i}.${k}`, v]);
  });
  return out;
}

export interface LmStepResult {
  /** Mean cross-entropy (nats per token) at each exit. */
  losses: number[];
  /** Σ_j w_j · losses[j]. */
  total: number;
}

/** Log-softmax cross-entropy of logits (M, V) against targets; returns mean loss and, if asked, dlogits·scale. */
function crossEntropy(
  logits: F64,
  targets: Int32Array,
  M: number,
  V: number,
  gradScale?: number,
): { loss: number; grad?: F64 } {
  let loss = 0;
  const grad = gradScale === undefined ? undefined : new Float64Array(M * V);
  for (let m = 0; m < M; m++) {
    const o = m * V;
    let mx = Number.NEGATIVE_INFINITY;
    for (let v = 0; v < V; v++) mx = Math.max(mx, logits[o + v]);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[o + v] - mx);
    const lse = mx + Math.log(s);
    loss += lse - logits[o + targets[m]];
    if (grad) {
      for (let v = 0; v < V; v++) grad[o + v] = (Math.exp(logits[o + v] - lse) * gradScale!) / M;
      grad[o + targets[m]] -= gradScale! / M;
    }
  }
  return { loss: loss / M, grad };
}

/** Splits Bt windows of T + 1 ids into inputs (Bt·T) and next-token targets (Bt·T). */
export function splitWindows(windows: Int32Array, Bt: number, T: number): { inputs: Int32Array; targets: Int32Array } {
  const inputs = new Int32Array(Bt * T);
  const targets = new Int32Array(Bt * T);
  for (let b = 0; b < Bt; b++) {
    inputs.set(windows.subarray(b * (T + 1), b * (T + 1) + T), b * T);
    targets.set(windows.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
  }
  return { inputs, targets };
}

/**
 * Loss at each exit block and, when `grads` is given, the gradient of Σ_j weights[j]·CE_j accumulated into it.
 * `onHidden` sees each exit's hidden state (M, d) and the exit's logits (M, V) (used to build distillation data).
 */
export function lmStep(
  p: LmParams,
  dm: LmDims,
  inputs: Int32Array,
  targets: Int32Array,
  Bt: number,
  T: number,
  exits: readonly number[],
  weights: readonly number[],
  grads?: LmParams,
): LmStepResult {
  const { d, vocab: V } = dm;
  const M = Bt * T;
  const bd = blockDimsOf(dm);
  let h: F64 = new Float64Array(M * d);
  for (let m = 0; m < M; m++) h.set(p.emb.subarray(inputs[m] * d, (inputs[m] + 1) * d), m * d);
  const caches: BlockCache[] = [];
  const heads = new Map<number, { hn: F64; rstd: F64; h: F64; grad?: F64 }>();
  const losses: number[] = [];
  let total = 0;
  for (let i = 0; i < dm.layers; i++) {
    const r = blockForward(p.layers[i], bd, h, Bt, T);
    caches.push(r.cache);
    h = r.y;
    const j = exits.indexOf(i);
    if (j >= 0) {
      const { y: hn, rstd } = rmsNormForward(h, p.normF, M, d, dm.eps);
      const logits = linear(hn, p.emb, M, d, V);
      const ce = crossEntropy(logits, targets, M, V, grads ? weights[j] : undefined);
      losses.push(ce.loss);
      total += weights[j] * ce.loss;
      heads.set(i, { hn, rstd, h, grad: ce.grad });
    }
  }
  if (!grads) return { losses, total };
  let dh: F64 = new Float64Array(M * d);
  for (let i = dm.layers - 1; i >= 0; i--) {
    const head = heads.get(i);
    if (head) {
      const dhn = new Float64Array(M * d);
      linearBackward(head.grad!, head.hn, p.emb, M, d, V, grads.emb, dhn);
      rmsNormBackward(dhn, head.h, p.normF, head.rstd, M, d, dh, grads.normF);
    }
    dh = blockBackward(p.layers[i], bd, caches[i], dh, grads.layers[i]);
  }
  for (let m = 0; m < M; m++) {
    const o = inputs[m] * d;
    for (let k = 0; k < d; k++) grads.emb[o + k] += dh[m * d + k];
  }
  return { losses, total };
}

/** Hidden states after every block (M, d) each, from the embedding of `inputs` (no gradients). */
export function lmHiddenStates(p: LmParams, dm: LmDims, inputs: Int32Array, Bt: number, T: number): F64[] {
  const { d } = dm;
  const M = Bt * T;
  let h: F64 = new Float64Array(M * d);
  for (let m = 0; m < M; m++) h.set(p.emb.subarray(inputs[m] * d, (inputs[m] + 1) * d), m * d);
  const out: F64[] = [];
  for (let i = 0; i < dm.layers; i++) {
    h = blockForward(p.layers[i], blockDimsOf(dm), h, Bt, T).y;
    out.push(h);
  }
  return out;
}

/** Logits (M, V) of the shared exit head on hidden states (M, d). */
export function lmHeadLogits(p: LmParams, dm: LmDims, h: F64, M: number): F64 {
  const { y: hn } = rmsNormForward(h, p.normF, M, dm.d, dm.eps);
  return linear(hn, p.emb, M, dm.d, dm.vocab);
}
