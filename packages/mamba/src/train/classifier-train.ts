// Training DYNAMAX exit classifiers by distillation against the full model (float64, hand-written
// backward): for each early exit j and position t the target is 1 when the exit head's top-1 token is among
// the full model's top-k tokens (DYNAMAX's relaxed target), and the loss is Σ_j w_j · BCE_j with per-exit
// weights decaying linearly (w_j = 1 − j/E for E early exits; reconstructed). Two classifier kinds:
//   'mamba': a small Mamba block over the exit's hidden states (out_proj → 1 logit + bias), sequence-aware;
//   'ffn':   CALM-style fc2(ReLU(fc1(h))), per token.
import { type HostTensor, mulberry32 } from '@offramp/core';
import type { ExitClassifierConfig } from '../exit-classifier.js';
import { AdamW, type AdamWConfig } from './adamw.js';
import {
  type BlockCache,
  type BlockDims,
  type BlockParams,
  blockBackward,
  blockForward,
  initBlock,
  zerosLike,
} from './block-grad.js';
import { blockToHf } from './export.js';
import { type LmDims, type LmParams, lmHeadLogits, lmHiddenStates } from './lm-grad.js';
import { type F64, linear, linearBackward, sigmoid } from './ops.js';

export interface ExitTargets {
  Bt: number;
  T: number;
  /** Per early exit: hidden states (Bt·T, d) at the exit block. */
  hidden: F64[];
  /** Per early exit: 1 when the exit's top-1 is in the full model's top-k (Bt·T). */
  labels: Uint8Array[];
}

function topK(z: F64, o: number, V: number, k: number): number[] {
  const idx = Array.from({ length: V }, (_, i) => i);
  idx.sort((a, b) => z[o + b] - z[o + a] || a - b);
  return idx.slice(0, k);
}

/** Hidden states at the early exits and their relaxed-consistency labels for Bt windows of T tokens. */
export function exitTargets(
  p: LmParams,
  dm: LmDims,
  inputs: Int32Array,
  Bt: number,
  T: number,
  earlyExits: readonly number[],
  k: number,
): ExitTargets {
  const M = Bt * T;
  const hs = lmHiddenStates(p, dm, inputs, Bt, T);
  const full = lmHeadLogits(p, dm, hs[dm.layers - 1], M);
  const V = dm.vocab;
  const fullTop = Array.from({ length: M }, (_, m) => new Set(topK(full, m * V, V, k)));
  const hidden: F64[] = [];
  const labels: Uint8Array[] = [];
  for (const e of earlyExits) {
    const z = lmHeadLogits(p, dm, hs[e], M);
    const lab = new Uint8Array(M);
    for (let m = 0; m < M; m++) {
      let best = 0;
      for (let v = 1; v < V; v++) if (z[m * V + v] > z[m * V + best]) best = v;
      lab[m] = fullTop[m].has(best) ? 1 : 0;
    }
    hidden.push(hs[e]);
    labels.push(lab);
  }
  return { Bt, T, hidden, labels };
}

export interface FfnParams {
  W1: F64;
  b1: F64;
  W2: F64;
  b2: F64;
}

export type ClassifierParams = { kind: 'mamba'; blocks: BlockParams[] } | { kind: 'ffn'; ffns: FfnParams[] };

export function classifierDims(c: ExitClassifierConfig): BlockDims {
  return {
    d: c.hiddenSize,
    D: c.inner ?? 2 * c.hiddenSize,
    N: c.stateSize ?? 8,
    R: c.rank ?? Math.ceil(c.hiddenSize / 16),
    K: c.convKernel ?? 4,
    out: 1,
    residual: false,
    eps: c.eps ?? 1e-5,
  };
}

export function initClassifiers(c: ExitClassifierConfig, seed: number): ClassifierParams {
  const rand = mulberry32(seed);
  if (c.kind === 'mamba')
    return { kind: 'mamba', blocks: c.exits.map(() => initBlock(classifierDims(c), rand, 1, true)) };
  const d = c.hiddenSize;
  const H = c.hidden ?? 2 * d;
  const u = (n: number, lim: number) => Float64Array.from({ length: n }, () => (rand() * 2 - 1) * lim);
  return {
    kind: 'ffn',
    ffns: c.exits.map(() => ({
      W1: u(H * d, Math.sqrt(3 / d)),
      b1: new Float64Array(H),
      W2: u(H, Math.sqrt(3 / H)),
      b2: new Float64Array(1),
    })),
  };
}

function paramList(p: ClassifierParams): [string, F64][] {
  const out: [string, F64][] = [];
  const groups: object[] = p.kind === 'mamba' ? p.blocks : p.ffns;
  groups.forEach((g, j) => {
    for (const [k, v] of Object.entries(g)) if (v) out.push([`${j}.${k}`, v as F64]);
  });
  return out;
}

function zeros(p: ClassifierParams): ClassifierParams {
  if (p.kind === 'mamba') return { kind: 'mamba', blocks: p.blocks.map(zerosLike) };
  return {
    kind: 'ffn',
    ffns: p.ffns.map((f) => ({
      W1: new Float64Array(f.W1.length),
      b1: new Float64Array(f.b1.length),
      W2: new Float64Array(f.W2.length),
      b2: new Float64Array(1),
    })),
  };
}

/** Logits (Bt·T) of classifier j on hidden states h (Bt·T, d), with what the backward needs. */
function classifierForward(c: ExitClassifierConfig, p: ClassifierParams, j: number, h: F64, Bt: number, T: number) {
  const M = Bt * T;
  if (p.kind === 'mamba') {
    const r = blockForward(p.blocks[j], classifierDims(c), h, Bt, T);
    return { logits: r.y, cache: r.cache as BlockCache | null, act: null as F64 | null, pre: null as F64 | null };
  }
  const f = p.ffns[j];
  const H = f.b1.length;
  const pre = linear(h, f.W1, M, c.hiddenSize, H, f.b1);
  const act = pre.map((v) => Math.max(0, v));
  return { logits: linear(act, f.W2, M, H, 1, f.b2), cache: null, act, pre };
}

/** Exit-decision logits of every early exit (evaluation in float64; the device runs ExitClassifiers). */
export function classifierLogits(c: ExitClassifierConfig, p: ClassifierParams, data: ExitTargets): F64[] {
  return data.hidden.map((h, j) => classifierForward(c, p, j, h, data.Bt, data.T).logits);
}

export interface ClassifierTrainOptions {
  steps: number;
  /** Windows per step (drawn from the chunks). */
  batch: number;
  seed: number;
  adam?: Partial<AdamWConfig>;
  log?: (line: string) => void;
}

/** Per-exit loss weights decaying linearly: 1, 1 − 1/E, …, 1/E. */
export const exitLossWeights = (E: number): number[] => Array.from({ length: E }, (_, j) => 1 - j / E);

/**
 * Trains one classifier per early exit on `data` (windows of hidden states and labels), jointly: the loss
 * Σ_j w_j · mean BCE_j, AdamW with global-norm clipping.
 */
export function trainExitClassifiers(
  c: ExitClassifierConfig,
  data: ExitTargets,
  o: ClassifierTrainOptions,
): { params: ClassifierParams; losses: number[] } {
  const E = c.exits.length;
  const w = exitLossWeights(E);
  const p = initClassifiers(c, o.seed);
  const adam: AdamWConfig = {
    lr: 2e-3,
    beta1: 0.9,
    beta2: 0.99,
    eps: 1e-8,
    weightDecay: 0.01,
    clip: 1,
    warmup: 20,
    totalSteps: o.steps,
    minFactor: 0.1,
    ...o.adam,
  };
  const opt = new AdamW(adam, (n) => /inProj|xProj|outProj|dtW|W1|W2/.test(n));
  const rand = mulberry32(o.seed + 1);
  const { T, d } = { T: data.T, d: c.hiddenSize };
  const losses: number[] = [];
  for (let step = 0; step < o.steps; step++) {
    const pick = Array.from({ length: o.batch }, () => Math.floor(rand() * data.Bt));
    const g = zeros(p);
    let total = 0;
    for (let j = 0; j < E; j++) {
      const h = new Float64Array(o.batch * T * d);
      const y = new Uint8Array(o.batch * T);
      pick.forEach((b, k) => {
        h.set(data.hidden[j].subarray(b * T * d, (b + 1) * T * d), k * T * d);
        y.set(data.labels[j].subarray(b * T, (b + 1) * T), k * T);
      });
      const M = o.batch * T;
      const f = classifierForward(c, p, j, h, o.batch, T);
      const dz = new Float64Array(M);
      let loss = 0;
      for (let m = 0; m < M; m++) {
        const z = f.logits[m];
        // BCE with logits: softplus(z) − y·z
        loss += (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z))) - y[m] * z;
        dz[m] = (w[j] * (sigmoid(z) - y[m])) / M;
      }
      total += (w[j] * loss) / M;
      if (p.kind === 'mamba' && g.kind === 'mamba')
        blockBackward(p.blocks[j], classifierDims(c), f.cache!, dz, g.blocks[j]);
      else if (p.kind === 'ffn' && g.kind === 'ffn') {
        const fp = p.ffns[j];
        const fg = g.ffns[j];
        const H = fp.b1.length;
        const dAct = new Float64Array(M * H);
        linearBackward(dz, f.act!, fp.W2, M, H, 1, fg.W2, dAct, fg.b2);
        for (let i = 0; i < dAct.length; i++) if (f.pre![i] <= 0) dAct[i] = 0;
        linearBackward(dAct, h, fp.W1, M, d, H, fg.W1, undefined, fg.b1);
      }
    }
    opt.update(paramList(p), paramList(g));
    losses.push(total);
    if (o.log && (step % 50 === 0 || step === o.steps - 1))
      o.log(`classifier ${c.kind} step ${step}: weighted BCE ${total.toFixed(4)}`);
  }
  return { params: p, losses };
}

/** The trained classifiers as `exit_classifiers.{j}.…` tensors (see ExitClassifiers). */
export function classifiersToTensors(c: ExitClassifierConfig, p: ClassifierParams): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  if (p.kind === 'mamba') {
    const K = classifierDims(c).K;
    p.blocks.forEach((b, j) => {
      for (const [k, v] of blockToHf(b, `exit_classifiers.${j}`, K)) out.set(k, v);
    });
  } else {
    p.ffns.forEach((f, j) => {
      const H = f.b1.length;
      const pre = `exit_classifiers.${j}`;
      out.set(`${pre}.fc1.weight`, { shape: [H, c.hiddenSize], data: Float32Array.from(f.W1) });
      out.set(`${pre}.fc1.bias`, { shape: [H], data: Float32Array.from(f.b1) });
      out.set(`${pre}.fc2.weight`, { shape: [1, H], data: Float32Array.from(f.W2) });
      out.set(`${pre}.fc2.bias`, { shape: [1], data: Float32Array.from(f.b2) });
    });
  }
  return out;
}
