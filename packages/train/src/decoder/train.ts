// Training loop for the decoder LM with exits: random windows of a token stream, one of the two recipes,
// AdamW with linear warm-up and a cosine decay over a step budget or a wall-clock budget, progress lines, and
// held-out bits per character at every exit.
import { mulberry32, ValidationError } from '@offramp/core';
import * as tf from '@tensorflow/tfjs';
import { AdamW, scheduledLr } from '../training/optimizer.js';
import { formatDuration } from '../training/progress.js';
import { crossEntropy, type DecoderDims, DecoderModel, detach, initValues, klDivergence } from './model.js';
import { dropoutKeep, dropoutRates, layerskipExitScales, type Recipe } from './recipes.js';

export interface DecoderTrainOptions {
  recipe: Recipe;
  dims: DecoderDims;
  /** Exits (0-based blocks), ascending, the last block included. */
  exits: number[];
  /** Sequences per step and their length. */
  batch: number;
  context: number;
  seed: number;
  lr: number;
  warmup: number;
  /** Cosine floor as a fraction of lr. */
  minFactor: number;
  weightDecay: number;
  clipNorm: number;
  /** Stop after this many steps, or after this many minutes of wall time (the schedule follows it). */
  steps?: number;
  minutes?: number;
  /** LayerSkip: largest layer-dropout rate and the exit-scale factor. */
  pMax: number;
  eScale: number;
  /** Self-distillation: weight of the KL terms. */
  alpha: number;
  /** Print a progress line every this many steps (0 = never). */
  logEvery?: number;
  log?: (line: string) => void;
}

export interface StepRecord {
  step: number;
  seconds: number;
  lr: number;
  loss: number;
  /** Train cross-entropy per exit in bits per character (with layer dropout when the recipe uses it). */
  train_bpc: number[];
  tokens_per_second: number;
}

export interface DecoderTrainResult {
  model: DecoderModel;
  steps: number;
  tokens: number;
  seconds: number;
  history: StepRecord[];
  /** Per-exit loss scales of the recipe (LayerSkip ẽ; self-distillation: the CE weights). */
  exitScales: number[];
  dropout: number[];
  /** Layer dropout actually drawn: fraction of sequences that skipped each block. */
  dropoutObserved: number[];
}

export function checkExits(exits: readonly number[], layers: number): void {
  if (!exits.length) throw new ValidationError('exits: at least one exit is needed');
  exits.forEach((e, i) => {
    if (!Number.isInteger(e) || e < 0 || e >= layers)
      throw new ValidationError(`exits[${i}] is ${e}; expected a block index in [0, ${layers})`);
    if (i > 0 && e <= exits[i - 1]) throw new ValidationError('exits must be strictly ascending');
  });
  if (exits[exits.length - 1] !== layers - 1)
    throw new ValidationError(`exits must end with the last block ${layers - 1}`);
}

/** Random training windows: inputs and next-character targets, both (B·T). */
export function sampleWindows(
  ids: Int32Array,
  B: number,
  T: number,
  rand: () => number,
): { inputs: Int32Array; targets: Int32Array } {
  if (ids.length < T + 2) throw new ValidationError(`the training text has ${ids.length} tokens; need > ${T + 1}`);
  const inputs = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const s = Math.floor(rand() * (ids.length - T - 1));
    inputs.set(ids.subarray(s, s + T), b * T);
    targets.set(ids.subarray(s + 1, s + T + 1), b * T);
  }
  return { inputs, targets };
}

/**
 * The recipe's loss on one batch as a scalar, with the per-exit cross-entropies (nats) as extra tensors.
 * `keep` is the layer-dropout draw (LayerSkip) or undefined.
 */
export function recipeLoss(
  model: DecoderModel,
  o: Pick<DecoderTrainOptions, 'recipe' | 'exits' | 'alpha'>,
  scales: readonly number[],
  inputs: Int32Array,
  targets: Int32Array,
  B: number,
  T: number,
  keep?: Float32Array[],
): { loss: tf.Scalar; ce: tf.Scalar[] } {
  const onehot = tf.oneHot(tf.tensor1d(targets, 'int32'), model.dims.vocab);
  const hs = model.hidden(inputs, B, T, o.exits, keep);
  const logits = hs.map((h) => model.head(h));
  const ce = logits.map((z) => crossEntropy(z, onehot));
  let loss = tf.mul(ce[0], scales[0]) as tf.Scalar;
  for (let j = 1; j < ce.length; j++) loss = tf.add(loss, tf.mul(ce[j], scales[j])) as tf.Scalar;
  if (o.recipe === 'selfdistill' && ce.length > 1 && o.alpha > 0) {
    const teacher = detach(tf.logSoftmax(logits[logits.length - 1]));
    const early = logits.length - 1;
    for (let j = 0; j < early; j++)
      loss = tf.add(loss, tf.mul(klDivergence(teacher, logits[j]), o.alpha / early)) as tf.Scalar;
  }
  return { loss, ce };
}

export function recipeScales(o: Pick<DecoderTrainOptions, 'recipe' | 'exits' | 'eScale' | 'dims'>): number[] {
  return o.recipe === 'layerskip'
    ? layerskipExitScales(o.exits, o.dims.layers, o.eScale)
    : o.exits.map(() => 1 / o.exits.length);
}

export async function trainDecoder(trainIds: Int32Array, o: DecoderTrainOptions): Promise<DecoderTrainResult> {
  checkExits(o.exits, o.dims.layers);
  if (o.steps === undefined && o.minutes === undefined) throw new ValidationError('give steps or minutes');
  const log = o.log ?? console.log;
  const model = new DecoderModel(o.dims, initValues(o.dims, mulberry32(o.seed)));
  const rand = mulberry32(o.seed * 7919 + 1);
  const dropRand = mulberry32(o.seed * 104729 + 7);
  const opt = new AdamW({ lr: o.lr, beta1: 0.9, beta2: 0.95, weightDecay: o.weightDecay, clipNorm: o.clipNorm });
  const scales = recipeScales(o);
  const dropout = o.recipe === 'layerskip' ? dropoutRates(o.dims.layers, o.pMax) : o.exits.map(() => 0);
  const rates = o.recipe === 'layerskip' ? dropout : undefined;
  const dropped = new Array(o.dims.layers).fill(0);
  const B = o.batch;
  const T = o.context;
  const budgetMs = o.minutes !== undefined ? o.minutes * 60_000 : Number.POSITIVE_INFINITY;
  const history: StepRecord[] = [];
  const t0 = performance.now();
  let step = 0;
  let lastT = t0;
  let lastStep = 0;
  const every = o.logEvery ?? 10;
  for (;;) {
    const elapsed = performance.now() - t0;
    if (o.steps !== undefined && step >= o.steps) break;
    if (elapsed >= budgetMs) break;
    const progress = o.steps !== undefined ? step / o.steps : elapsed / budgetMs;
    // the wall-clock schedule estimates the total step count from the pace so far
    const total = o.steps ?? Math.max(o.warmup + 1, Math.round(step / Math.max(progress, 1e-6)));
    const lr = scheduledLr(o.lr, step, { warmup: o.warmup, total, minFactor: o.minFactor });
    const { inputs, targets } = sampleWindows(trainIds, B, T, rand);
    const keep = rates ? dropoutKeep(rates, B, dropRand) : undefined;
    keep?.forEach((k, l) => {
      for (const z of k) if (z === 0) dropped[l]++;
    });
    let ceT: tf.Scalar[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const r = recipeLoss(model, o, scales, inputs, targets, B, T, keep);
      ceT = r.ce.map((c) => tf.keep(c));
      return r.loss;
    }, [...model.vars.values()]);
    const named = new Map<string, tf.Tensor>();
    for (const [k, g] of Object.entries(grads)) if (g) named.set(model.paramName(k), g);
    const norm = opt.apply(model.vars, named, lr);
    step++;
    const wantLog = every > 0 && (step === 1 || step % every === 0);
    if (wantLog || (o.steps !== undefined && step === o.steps)) {
      const loss = (await value.data())[0];
      const ce = await Promise.all(ceT.map(async (c) => (await c.data())[0] / Math.LN2));
      const now = performance.now();
      const tps = ((step - lastStep) * B * T) / ((now - lastT) / 1000);
      lastT = now;
      lastStep = step;
      const rec: StepRecord = {
        step,
        seconds: +((now - t0) / 1000).toFixed(1),
        lr: +lr.toExponential(3),
        loss: +loss.toFixed(4),
        train_bpc: ce.map((c) => +c.toFixed(4)),
        tokens_per_second: Math.round(tps),
      };
      history.push(rec);
      const secs = (now - t0) / 1000;
      const eta = o.steps !== undefined ? ((o.steps - step) * secs) / step : budgetMs / 1000 - secs;
      log(
        `step ${step}${o.steps !== undefined ? `/${o.steps}` : ''} loss ${rec.loss} bpc/exit [${rec.train_bpc.join(' ')}] ` +
          `lr ${rec.lr} ${rec.tokens_per_second} tok/s elapsed ${formatDuration(secs)} ETA ${formatDuration(eta)}`,
      );
    }
    tf.dispose([value, norm, ...ceT, ...Object.values(grads)]);
  }
  const seconds = (performance.now() - t0) / 1000;
  opt.dispose();
  return {
    model,
    steps: step,
    tokens: step * B * T,
    seconds,
    history,
    exitScales: scales,
    dropout,
    dropoutObserved: dropped.map((d) => (step ? d / (step * B) : 0)),
  };
}

/**
 * Bits per character at every exit over `count` consecutive windows of `window` characters starting at the
 * beginning of `ids` (each window's first target is its second character, so window w covers ids
 * [w·window, (w+1)·window] and the windows together score count·window characters).
 */
export async function evalBpc(
  model: DecoderModel,
  ids: Int32Array,
  exits: readonly number[],
  window: number,
  count: number,
  batch = 8,
): Promise<{ bpc: number[]; chars: number }> {
  const n = Math.min(count, Math.floor((ids.length - 1) / window));
  if (n < 1) throw new ValidationError(`evalBpc: the text has ${ids.length} tokens; need > ${window}`);
  const sums = exits.map(() => 0);
  for (let s = 0; s < n; s += batch) {
    const k = Math.min(batch, n - s);
    const inputs = new Int32Array(k * window);
    const targets = new Int32Array(k * window);
    for (let b = 0; b < k; b++) {
      const at = (s + b) * window;
      inputs.set(ids.subarray(at, at + window), b * window);
      targets.set(ids.subarray(at + 1, at + window + 1), b * window);
    }
    const ce = tf.tidy(() => {
      const onehot = tf.oneHot(tf.tensor1d(targets, 'int32'), model.dims.vocab);
      return model.hidden(inputs, k, window, exits).map((h) => crossEntropy(model.head(h), onehot));
    });
    for (let j = 0; j < ce.length; j++) sums[j] += (await ce[j].data())[0] * k * window;
    tf.dispose(ce);
  }
  const chars = n * window;
  return { bpc: sums.map((x) => x / chars / Math.LN2), chars };
}
