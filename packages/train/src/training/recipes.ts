// Exit-head training recipes: which parameters each stage trains and the loss it minimises, given the
// heads' outputs at every exit (logits (B, C), gate logits (B), head inputs z (B, dim)) and labels (B).
//   joint        PABEE: Σ_i i·CE_i / Σ_i i (i = 1..E)
//   two-stage    DeeBERT: backbone + final head on CE_E, then the other heads on Σ_{i<E} CE_i, backbone frozen
//   self-distill FastBERT-style: CE_E + Σ_{i<E} [(1−α)·CE_i + α·T²·KL(softmax(z_E/T) ‖ softmax(z_i/T))]
//   dual-head    main head i: CE_i + T²·KL(p_E^T ‖ p_i^T); auxiliary head i (training only): BinaryKL to z_E
//   ponder       PonderNet/PALBERT: Σ_i p_i·CE_i + β·KL(p ‖ geometric(λ_p)), p from the λ (gate) heads
//   gates        JEI-DNN-style: Σ_l P_l·CE_l + w·Σ_l P_l·cost_l + (1/E)·Σ_l CE_l, P from the gate heads
// The teacher (final exit) is never differentiated through by a distillation term.

import { cnnExitWidth, type ModelConfig, mulberry32, randn } from '@offramp/core';
import * as tf from '@tensorflow/tfjs';
import { type HeadOutput, initialWeights, isHeadParam, stopGradient, type TfModel } from './models.js';
import { sumAll } from './optimizer.js';

export const RECIPES = ['joint', 'two-stage', 'self-distill', 'dual-head', 'ponder', 'gates'] as const;
export type RecipeName = (typeof RECIPES)[number];

export interface RecipeOptions {
  /** Distillation temperature (self-distill, dual-head; default 2). */
  temperature?: number;
  /** Weight of the KL term against CE for self-distill's early exits (default 0.5). */
  alpha?: number;
  /** Weight β of the KL to the geometric prior (ponder; default 0.5). */
  beta?: number;
  /** Parameter λ_p of the geometric prior (ponder; default 1 / number of exits). */
  lambdaP?: number;
  /** Truncation ε (ponder; default 0.05): once Σ p exceeds 1 − ε the remaining p_i are ε / E. */
  epsilon?: number;
  /** Weight w of the expected cost (gates; default 0.1). */
  costWeight?: number;
  /** Compute fraction at each exit (gates); see exitCostFractions. */
  costs?: number[];
  /** Dropout rate of the auxiliary heads (dual-head; default 0.1). */
  auxDropout?: number;
  /** Train only the exit heads on a frozen backbone (e.g. fine-tuning a trained checkpoint's heads). */
  freezeBackbone?: boolean;
}

export interface Stage {
  name: string;
  /** Which model parameters this stage updates. */
  trainable(name: string): boolean;
  /** The backbone is frozen: head inputs can be computed once and cached. */
  frozenBackbone: boolean;
}

export interface LossResult {
  loss: tf.Scalar;
}

export interface Recipe {
  name: RecipeName;
  stages: Stage[];
  /** Training-only parameters (dual-head's auxiliary heads): trained, checkpointed, never exported. */
  extraParams: Map<string, tf.Variable>;
  /** The loss of stage `stage` from every exit's head outputs. `seed` seeds any dropout in the recipe. */
  loss(stage: number, heads: HeadOutput[], labels: tf.Tensor1D, seed: number): LossResult;
  /** The recipe's settings, resolved (for the checkpoint's meta). */
  settings: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------------------
// Loss pieces (all means over the batch)

/** Per-row cross-entropy (B) of logits (B, C) against integer labels (B). */
export function crossEntropyRows(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  const C = logits.shape[1];
  const logp = tf.logSoftmax(logits);
  return tf.neg(tf.sum(tf.mul(logp, tf.oneHot(labels, C)), -1)) as tf.Tensor1D;
}

export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.mean(crossEntropyRows(logits, labels)) as tf.Scalar;
}

/** T²·KL(softmax(teacher/T) ‖ softmax(student/T)), mean over rows; the teacher is not differentiated. */
export function softKl(student: tf.Tensor2D, teacher: tf.Tensor2D, T: number): tf.Scalar {
  const t = stopGradient(teacher);
  const logPt = tf.logSoftmax(tf.div(t, T));
  const logPs = tf.logSoftmax(tf.div(student, T));
  const kl = tf.sum(tf.mul(tf.exp(logPt), tf.sub(logPt, logPs)), -1);
  return tf.mul(tf.mean(kl), T * T) as tf.Scalar;
}

/**
 * BinaryKL(s, t) = T²/N · Σ_rows Σ_c KL_Bernoulli(σ(t_c/T) ‖ σ(s_c/T)): each logit read as an independent
 * binary probability (logit-level distillation). The teacher is not differentiated.
 */
export function binaryKl(student: tf.Tensor2D, teacher: tf.Tensor2D, T: number): tf.Scalar {
  const t = tf.div(stopGradient(teacher), T);
  const s = tf.div(student, T);
  const pt = tf.sigmoid(t);
  // log σ(x) = −softplus(−x), log(1 − σ(x)) = −softplus(x)
  const logPt = tf.neg(tf.softplus(tf.neg(t)));
  const log1mPt = tf.neg(tf.softplus(t));
  const logPs = tf.neg(tf.softplus(tf.neg(s)));
  const log1mPs = tf.neg(tf.softplus(s));
  const kl = tf.add(tf.mul(pt, tf.sub(logPt, logPs)), tf.mul(tf.sub(1, pt), tf.sub(log1mPt, log1mPs)));
  return tf.mul(tf.mean(tf.sum(kl, -1)), T * T) as tf.Scalar;
}

/**
 * Exit distribution from per-exit halting probabilities h (B, E) with the last forced to 1:
 * p_i = h_i · Π_{j<i} (1 − h_j). Returns p (B, E) and the survival before each exit S_i = Π_{j<i} (1 − h_j).
 */
export function exitDistribution(gateLogits: tf.Tensor1D[]): { p: tf.Tensor2D; survival: tf.Tensor2D } {
  const E = gateLogits.length;
  const B = gateLogits[0].shape[0];
  const hs = gateLogits.map((g, i) => (i === E - 1 ? tf.ones([B]) : tf.sigmoid(g)));
  const ps: tf.Tensor[] = [];
  const ss: tf.Tensor[] = [];
  let surv: tf.Tensor = tf.ones([B]);
  for (let i = 0; i < E; i++) {
    ss.push(surv);
    ps.push(tf.mul(hs[i], surv));
    surv = tf.mul(surv, tf.sub(1, hs[i]));
  }
  return { p: tf.stack(ps, 1) as tf.Tensor2D, survival: tf.stack(ss, 1) as tf.Tensor2D };
}

/** The geometric prior over E exits, q_i ∝ λ_p (1 − λ_p)^i, normalised over the E exits. */
export function geometricPrior(E: number, lambdaP: number): Float32Array {
  const q = new Float32Array(E);
  let s = 0;
  for (let i = 0; i < E; i++) {
    q[i] = lambdaP * (1 - lambdaP) ** i;
    s += q[i];
  }
  for (let i = 0; i < E; i++) q[i] /= s;
  return q;
}

/**
 * The ponder loss: Σ_i p_i·CE_i + β·KL(p ‖ q), mean over rows, with the truncation of PALBERT: at exits where
 * the probability already spent, 1 − S_i, exceeds 1 − ε, p_i is replaced by the constant ε / E.
 */
export function ponderLoss(
  logits: tf.Tensor2D[],
  gateLogits: tf.Tensor1D[],
  labels: tf.Tensor1D,
  o: { beta: number; lambdaP: number; epsilon: number },
): tf.Scalar {
  const E = logits.length;
  const { p, survival } = exitDistribution(gateLogits);
  const spent = tf.sub(1, survival);
  // 1 where the spent probability exceeds 1 − ε (tf.step: zero gradient, unlike a comparison, which has none)
  const done = tf.step(tf.sub(spent, 1 - o.epsilon));
  const pt = tf.add(tf.mul(done, o.epsilon / E), tf.mul(tf.sub(1, done), p)) as tf.Tensor2D;
  const ce = tf.stack(
    logits.map((z) => crossEntropyRows(z, labels)),
    1,
  );
  const expected = tf.mean(tf.sum(tf.mul(pt, ce), 1));
  const q = tf.tensor1d(geometricPrior(E, o.lambdaP));
  const logPt = tf.log(tf.maximum(pt, 1e-8));
  const kl = tf.mean(tf.sum(tf.mul(pt, tf.sub(logPt, tf.log(q))), 1));
  return tf.add(expected, tf.mul(kl, o.beta)) as tf.Scalar;
}

/** Σ_l P_l·CE_l + w·Σ_l P_l·cost_l + (1/E)·Σ_l CE_l, mean over rows (P from the gates, last exit forced). */
export function gateLoss(
  logits: tf.Tensor2D[],
  gateLogits: tf.Tensor1D[],
  labels: tf.Tensor1D,
  costs: number[],
  costWeight: number,
): tf.Scalar {
  const E = logits.length;
  const { p } = exitDistribution(gateLogits);
  const ce = tf.stack(
    logits.map((z) => crossEntropyRows(z, labels)),
    1,
  );
  const expectedCe = tf.mean(tf.sum(tf.mul(p, ce), 1));
  const expectedCost = tf.mean(tf.sum(tf.mul(p, tf.tensor1d(costs)), 1));
  const every = tf.div(tf.mean(tf.sum(ce, 1)), E);
  return tf.add(tf.add(expectedCe, tf.mul(expectedCost, costWeight)), every) as tf.Scalar;
}

// ---------------------------------------------------------------------------------------------------------
// Recipes

const all = () => true;
const headsOnly = (name: string) => isHeadParam(name);

function oneStage(name: string, freeze: boolean): Stage[] {
  return [{ name, trainable: freeze ? headsOnly : all, frozenBackbone: freeze }];
}

/**
 * Auxiliary head of dual-head distillation for exit j: Linear(dim → dim) → Dropout → BatchNorm (batch
 * statistics) → ReLU → Linear(dim → C). Training only.
 */
function auxHead(params: Map<string, tf.Variable>, j: number, z: tf.Tensor2D, rate: number, seed: number): tf.Tensor2D {
  const p = (k: string) => params.get(`aux.${j}.${k}`)!;
  let h = tf.add(tf.matMul(z, p('fc1.weight')), p('fc1.bias')) as tf.Tensor2D;
  if (rate > 0) h = tf.dropout(h, rate, undefined, seed) as tf.Tensor2D;
  const { mean, variance } = tf.moments(h, 0);
  h = tf.add(
    tf.mul(tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, 1e-5))), p('bn.weight')),
    p('bn.bias'),
  ) as tf.Tensor2D;
  h = tf.relu(h);
  return tf.add(tf.matMul(h, p('fc2.weight')), p('fc2.bias')) as tf.Tensor2D;
}

let auxCount = 0;

function auxParams(model: TfModel, seed: number): Map<string, tf.Variable> {
  const rand = mulberry32(seed ^ 0x5eed);
  const C = model.config.num_classes;
  const out = new Map<string, tf.Variable>();
  const E = model.exitDims.length;
  const scope = `aux${++auxCount}`;
  for (let j = 0; j < E - 1; j++) {
    const d = model.exitDims[j];
    const add = (k: string, shape: number[], data: Float32Array) =>
      out.set(`aux.${j}.${k}`, tf.variable(tf.tensor(data, shape), true, `${scope}/aux.${j}.${k}`));
    add('fc1.weight', [d, d], randn(d * d, rand, Math.sqrt(2 / d)));
    add('fc1.bias', [d], new Float32Array(d));
    add('bn.weight', [d], new Float32Array(d).fill(1));
    add('bn.bias', [d], new Float32Array(d));
    add('fc2.weight', [d, C], randn(d * C, rand, Math.sqrt(1 / d)));
    add('fc2.bias', [C], new Float32Array(C));
  }
  return out;
}

/**
 * Compute fraction spent when leaving at each exit (FLOPs of the stem, the blocks up to the exit and the heads
 * passed, over the full-depth FLOPs), counted from the config as the engine counts its ops (matmuls, convs,
 * attention; norms and element-wise ops are left out, a few percent at most).
 */
export function exitCostFractions(config: ModelConfig): number[] {
  const head = (dim: number) => {
    const e = config.exits;
    let f = 2 * dim * config.num_classes;
    if (e.head === 'pooler') f += 2 * dim * dim;
    if (e.gate) f += 2 * dim * (e.gate_hidden ?? 64) + 2 * (e.gate_hidden ?? 64);
    return f;
  };
  let stem = 0;
  const blocks: number[] = [];
  const heads: number[] = [];
  if (config.architecture === 'encoder_classifier') {
    const d = config.hidden_size;
    const T = config.max_position;
    for (let i = 0; i < config.num_layers; i++)
      blocks.push(T * (2 * d * 3 * d + 2 * d * d + 4 * d * config.intermediate_size) + 4 * T * T * d);
    config.exits.blocks.forEach(() => {
      heads.push(head(d));
    });
  } else if (config.architecture === 'mlp_classifier') {
    for (let i = 0; i < config.num_layers; i++)
      blocks.push(2 * (i === 0 ? config.input_size : config.hidden_size) * config.hidden_size);
    config.exits.blocks.forEach(() => {
      heads.push(head(config.hidden_size));
    });
  } else {
    let hw = config.image_size;
    stem = 2 * config.in_channels * 9 * config.stem_channels * hw * hw;
    let c = config.stem_channels;
    config.channels.forEach((co, i) => {
      hw = Math.floor((hw - 1) / config.strides[i]) + 1;
      blocks.push(2 * c * 9 * co * hw * hw + 2 * co * 9 * co * hw * hw);
      c = co;
    });
    config.exits.blocks.forEach((b) => {
      heads.push(head(cnnExitWidth(config, b)));
    });
  }
  const E = config.exits.blocks.length;
  const at = (j: number) => {
    let f = stem;
    for (let b = 0; b <= config.exits.blocks[j]; b++) f += blocks[b];
    for (let k = 0; k <= j; k++) f += heads[k];
    return f;
  };
  const full = at(E - 1);
  return Array.from({ length: E }, (_, j) => at(j) / full);
}

/** Builds the named recipe for `model`. */
export function createRecipe(name: RecipeName, model: TfModel, options: RecipeOptions = {}, seed = 0): Recipe {
  const E = model.exitDims.length;
  const freeze = options.freezeBackbone ?? false;
  const T = options.temperature ?? 2;
  const extraParams = new Map<string, tf.Variable>();
  const needGates = () => {
    if (!model.config.exits.gate) {
      throw new Error(`recipe '${name}' trains gate/λ heads: set exits.gate = true in the model config`);
    }
  };
  switch (name) {
    case 'joint': {
      const norm = (E * (E + 1)) / 2;
      return {
        name,
        stages: oneStage('joint', freeze),
        extraParams,
        settings: { weights: 'i / Σi', freezeBackbone: freeze },
        loss: (_s, heads, labels) => ({
          loss: tf.div(sumAll(heads.map((h, i) => tf.mul(crossEntropy(h.logits, labels), i + 1))), norm) as tf.Scalar,
        }),
      };
    }
    case 'two-stage': {
      const last = E - 1;
      const stages: Stage[] = [
        { name: 'backbone', trainable: (n) => !isHeadParam(n) || isHeadParam(n, last), frozenBackbone: false },
        { name: 'exits', trainable: (n) => isHeadParam(n) && !isHeadParam(n, last), frozenBackbone: true },
      ];
      if (freeze) stages.shift();
      const offset = freeze ? 1 : 0;
      return {
        name,
        stages,
        extraParams,
        settings: { stages: stages.map((s) => s.name), freezeBackbone: freeze },
        loss: (s, heads, labels) => {
          if (s + offset === 0) return { loss: crossEntropy(heads[last].logits, labels) };
          if (E === 1) return { loss: tf.mul(crossEntropy(heads[0].logits, labels), 0) as tf.Scalar };
          return { loss: sumAll(heads.slice(0, last).map((h) => crossEntropy(h.logits, labels))) as tf.Scalar };
        },
      };
    }
    case 'self-distill': {
      const alpha = options.alpha ?? 0.5;
      return {
        name,
        stages: oneStage('self-distill', freeze),
        extraParams,
        settings: { temperature: T, alpha, freezeBackbone: freeze },
        loss: (_s, heads, labels) => {
          const teacher = heads[E - 1].logits;
          const parts: tf.Tensor[] = [crossEntropy(teacher, labels)];
          for (let i = 0; i < E - 1; i++) {
            parts.push(tf.mul(crossEntropy(heads[i].logits, labels), 1 - alpha));
            parts.push(tf.mul(softKl(heads[i].logits, teacher, T), alpha));
          }
          return { loss: sumAll(parts) as tf.Scalar };
        },
      };
    }
    case 'dual-head': {
      const rate = options.auxDropout ?? 0.1;
      for (const [k, v] of auxParams(model, seed)) extraParams.set(k, v);
      return {
        name,
        stages: oneStage('dual-head', freeze),
        extraParams,
        settings: {
          temperature: T,
          auxDropout: rate,
          auxHead: 'Linear → Dropout → BatchNorm → ReLU → Linear (training only)',
          freezeBackbone: freeze,
        },
        loss: (_s, heads, labels, stepSeed) => {
          const teacher = heads[E - 1].logits;
          const parts: tf.Tensor[] = [crossEntropy(teacher, labels)];
          for (let i = 0; i < E - 1; i++) {
            parts.push(crossEntropy(heads[i].logits, labels));
            parts.push(softKl(heads[i].logits, teacher, T));
            parts.push(binaryKl(auxHead(extraParams, i, heads[i].z, rate, stepSeed + i), teacher, T));
          }
          return { loss: sumAll(parts) as tf.Scalar };
        },
      };
    }
    case 'ponder': {
      needGates();
      const o = { beta: options.beta ?? 0.5, lambdaP: options.lambdaP ?? 1 / E, epsilon: options.epsilon ?? 0.05 };
      return {
        name,
        stages: oneStage('ponder', freeze),
        extraParams,
        settings: { ...o, freezeBackbone: freeze },
        loss: (_s, heads, labels) => ({
          loss: ponderLoss(
            heads.map((h) => h.logits),
            heads.map((h) => h.gate!),
            labels,
            o,
          ),
        }),
      };
    }
    case 'gates': {
      needGates();
      const costs = options.costs ?? exitCostFractions(model.config);
      if (costs.length !== E) throw new Error(`recipe 'gates': ${costs.length} exit costs for ${E} exits`);
      const costWeight = options.costWeight ?? 0.1;
      return {
        name,
        stages: oneStage('gates', freeze),
        extraParams,
        settings: { costWeight, costs, freezeBackbone: freeze },
        loss: (_s, heads, labels) => ({
          loss: gateLoss(
            heads.map((h) => h.logits),
            heads.map((h) => h.gate!),
            labels,
            costs,
            costWeight,
          ),
        }),
      };
    }
    default:
      throw new Error(`unknown recipe '${name as string}'; recipes: ${RECIPES.join(', ')}`);
  }
}

/** Seeded values for fresh gate heads (used when a checkpoint without gates is fine-tuned with gate heads). */
export function freshGateWeights(
  config: ModelConfig,
  seed: number,
): Map<string, { shape: number[]; data: Float32Array }> {
  const init = initialWeights(config, { seed });
  return new Map([...init].filter(([n]) => /\.gate\./.test(n)));
}
