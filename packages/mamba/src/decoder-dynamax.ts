// DYNAMAX for the Llama-style decoder: exit classifiers (a small Mamba block that keeps its own conv/SSM state
// across tokens, or a CALM-style FFN; see exit-classifier.ts) read the decoder's hidden state at each early
// exit and give σ(logit) = the probability that leaving there agrees with the full model.
//   decoderExitFeatures: teacher-forced hidden states at every early exit of equal-length windows, with the
//     relaxed top-k target (the exit's top-1 token is among the full model's top-k, as classifier-train's
//     exitTargets for the Mamba LM) and each exit's argmax and max probability;
//   classifierDeviceLogits: the classifiers run on the device over such features (teacher-forced);
//   dynamaxDecoderModel: the decoder on the common GenerationModel interface with the classifiers' σ as the
//     exit signal `gate`; the recurrent classifier state lives in the cache, is prefilled with the prompts and
//     advanced at exit j by every token that reaches exit j (a token that left earlier skips it, as in MambaLM).
import {
  type DecoderCache,
  type DecoderLM,
  decoderScore,
  type GenerationCache,
  type GenerationExit,
  type GenerationModel,
  type GenerationScore,
  type GenerationStepResult,
  type Tensor,
  ValidationError,
} from '@offramp/core';
import { type BlockState, Scope } from './block.js';
import type { ExitClassifiers } from './exit-classifier.js';
import type { ExitTargets } from './train/classifier-train.js';

export interface DecoderExitFeatures extends ExitTargets {
  /** Early exit blocks the features are taken at (the decoder's exits but the last). */
  early: number[];
  /** All exit blocks (the last is numLayers − 1). */
  exits: number[];
  /** The k of the relaxed target. */
  k: number;
  /** Per exit (early exits, then the last): argmax of the exit's logits at every position (Bt·T). */
  argmax: Int32Array[];
  /** Per exit: max softmax probability at every position. */
  maxProb: Float32Array[];
}

/** Indices of the k largest values of z[o..o+V) (ties: lowest index first). */
function topK(z: ArrayLike<number>, o: number, V: number, k: number): number[] {
  const best: number[] = [];
  for (let v = 0; v < V; v++) {
    let i = best.length;
    while (i > 0 && z[o + v] > z[o + best[i - 1]]) i--;
    if (i < k) {
      best.splice(i, 0, v);
      if (best.length > k) best.pop();
    }
  }
  return best;
}

/**
 * Teacher-forced features of windows of equal length T (each window's T tokens are the inputs): the hidden
 * state after every early exit block per token, its label (1 when the exit's top-1 is among the full
 * model's top-k), and every exit's argmax and max probability. Positions are window-major (b·T + t).
 */
export async function decoderExitFeatures(
  lm: DecoderLM,
  windows: readonly (readonly number[])[],
  k: number,
): Promise<DecoderExitFeatures> {
  if (windows.length === 0) throw new ValidationError('decoderExitFeatures: no windows');
  const T = windows[0].length;
  if (T < 1 || windows.some((w) => w.length !== T))
    throw new ValidationError(
      `decoderExitFeatures: windows must all have the same length ≥ 1, got lengths ${[...new Set(windows.map((w) => w.length))].join(', ')}`,
    );
  if (T > lm.config.maxPositionEmbeddings)
    throw new ValidationError(
      `decoderExitFeatures: windows of ${T} tokens exceed the decoder's ${lm.config.maxPositionEmbeddings} positions`,
    );
  if (!Number.isInteger(k) || k < 1 || k > lm.V)
    throw new ValidationError(`decoderExitFeatures: k must be an integer in [1, ${lm.V}], got ${k}`);
  if (T > lm.maxTokens)
    throw new ValidationError(
      `decoderExitFeatures: windows of ${T} tokens exceed the decoder's ${lm.maxTokens} per call`,
    );
  const exits = [...lm.exits];
  const early = exits.slice(0, -1);
  const E = exits.length;
  const Bt = windows.length;
  const M = Bt * T;
  const d = lm.d;
  const V = lm.V;
  const hidden = early.map(() => new Float64Array(M * d));
  const argmax = exits.map(() => new Int32Array(M));
  const maxProb = exits.map(() => new Float32Array(M));
  const labels = early.map(() => new Uint8Array(M));
  const per = Math.max(1, Math.floor(lm.maxTokens / T));
  for (let a = 0; a < Bt; a += per) {
    const group = windows.slice(a, a + per);
    const n = group.length * T;
    const o = a * T;
    const rows = group.flatMap((w, r) => w.map(() => r));
    const positions = group.flatMap((w) => w.map((_, t) => t));
    const cache = lm.newCache(group.length, T);
    const owned: Tensor[] = [];
    try {
      let h = lm.embed(group.flat());
      owned.push(h);
      let l = 0;
      const fullTop: number[][] = [];
      for (let e = 0; e < E; e++) {
        h = lm.forwardLayers(h, cache, rows, positions, l, exits[e] + 1);
        owned.push(h);
        l = exits[e] + 1;
        const zt = lm.exitLogits(h, n, exits[e]);
        owned.push(zt);
        const z = (await zt.read()) as Float32Array;
        for (let i = 0; i < n; i++) {
          let best = 0;
          let mx = z[i * V];
          for (let v = 1; v < V; v++)
            if (z[i * V + v] > mx) {
              mx = z[i * V + v];
              best = v;
            }
          let se = 0;
          for (let v = 0; v < V; v++) se += Math.exp(z[i * V + v] - mx);
          argmax[e][o + i] = best;
          maxProb[e][o + i] = 1 / se;
          if (e === E - 1) fullTop.push(topK(z, i * V, V, k));
        }
        if (e < E - 1) hidden[e].set((await h.read()) as Float32Array, o * d);
      }
      for (let e = 0; e < E - 1; e++)
        for (let i = 0; i < n; i++) labels[e][o + i] = fullTop[i].includes(argmax[e][o + i]) ? 1 : 0;
    } finally {
      for (const t of new Set(owned)) t.dispose();
      cache.dispose();
    }
  }
  return { Bt, T, hidden, labels, early, exits, k, argmax, maxProb };
}

function checkClassifiers(lm: DecoderLM, c: ExitClassifiers): void {
  const early = lm.exits.slice(0, -1);
  if (c.config.hiddenSize !== lm.d || c.config.exits.some((e) => !early.includes(e)))
    throw new ValidationError(
      `exit classifiers read blocks [${c.config.exits.join(', ')}] of width ${c.config.hiddenSize}; this decoder's early exits are [${early.join(', ')}] of width ${lm.d}`,
    );
}

/**
 * The classifiers on the device over teacher-forced features (each window from a zero state): per
 * classifier exit, the logits of every position (Bt·T), window-major.
 */
export async function classifierDeviceLogits(
  classifiers: ExitClassifiers,
  features: DecoderExitFeatures,
): Promise<Float32Array[]> {
  const { Bt, T } = features;
  const d = classifiers.config.hiddenSize;
  const out: Float32Array[] = [];
  for (const [j, block] of classifiers.config.exits.entries()) {
    const e = features.early.indexOf(block);
    if (e < 0 || features.hidden[e].length !== Bt * T * d)
      throw new ValidationError(
        `classifierDeviceLogits: classifier ${j} reads block ${block} of width ${d}; the features are at blocks [${features.early.join(', ')}] of width ${features.hidden[0]?.length / (Bt * T)}`,
      );
    const s = new Scope(classifiers.device);
    const state = classifiers.newState(j, Bt);
    try {
      const h = s.f32([Bt * T, d], Float32Array.from(features.hidden[e]));
      out.push((await classifiers.prefill(s, j, h, Bt, T, null, state).read()) as Float32Array);
    } finally {
      s.dispose();
      state?.conv.dispose();
      state?.ssm.dispose();
    }
  }
  return out;
}

/** The decoder's K/V cache and the classifiers' per-row state. */
export class DynamaxDecoderCache implements GenerationCache {
  constructor(
    readonly decoder: DecoderCache,
    readonly classifiers: ExitClassifiers,
    readonly states: (BlockState | null)[],
  ) {}
  get batch(): number {
    return this.decoder.batch;
  }
  dispose(): void {
    this.decoder.dispose();
    for (const st of this.states) {
      st?.conv.dispose();
      st?.ssm.dispose();
    }
  }
}

const SKIPS = ['propagate', 'none'] as const;

/**
 * The decoder as a GenerationModel whose exit signal `gate` is σ(exit classifier logit) (NaN at exits
 * without a classifier). Skip strategies as the decoder's ('propagate' = CALM, the default; 'none').
 */
export function dynamaxDecoderModel(lm: DecoderLM, classifiers: ExitClassifiers): GenerationModel<DynamaxDecoderCache> {
  checkClassifiers(lm, classifiers);
  const cexits = classifiers.config.exits;
  const d = lm.d;
  return {
    kind: 'decoder',
    numLayers: lm.numLayers,
    exits: lm.exits,
    vocabSize: lm.V,
    maxSequenceLength: lm.config.maxPositionEmbeddings,
    skipStrategies: SKIPS,
    newCache: (batch, maxLength) =>
      new DynamaxDecoderCache(
        lm.newCache(batch, maxLength),
        classifiers,
        cexits.map((_, j) => classifiers.newState(j, batch)),
      ),
    async prefill(prompts, cache) {
      const B = cache.batch;
      if (prompts.length !== B)
        throw new ValidationError(`prefill: ${prompts.length} prompts for a cache of ${B} rows`);
      prompts.forEach((p, b) => {
        if (p.length === 0) throw new ValidationError(`prefill: prompt ${b} is empty`);
        if (cache.decoder.lengths[b] !== 0)
          throw new ValidationError(`prefill: cache row ${b} is not empty (${cache.decoder.lengths[b]} positions)`);
        if (p.length > cache.decoder.maxLength)
          throw new ValidationError(
            `prefill: prompt ${b} has ${p.length} tokens, more than the cache's ${cache.decoder.maxLength}`,
          );
      });
      const n = prompts.reduce((a, p) => a + p.length, 0);
      if (n > lm.maxTokens)
        throw new ValidationError(`prefill: ${n} prompt tokens, more than the decoder's ${lm.maxTokens} per call`);
      const rows = prompts.flatMap((p, r) => p.map(() => r));
      const positions = prompts.flatMap((p) => p.map((_, t) => t));
      const T = Math.max(...prompts.map((p) => p.length));
      const starts: number[] = [];
      let acc = 0;
      for (const p of prompts) {
        starts.push(acc);
        acc += p.length;
      }
      const owned: Tensor[] = [];
      const s = new Scope(lm.device);
      try {
        let h = lm.embed(prompts.flat());
        owned.push(h);
        let l = 0;
        const lengths = s.u32(prompts.map((p) => p.length));
        for (const block of lm.exits) {
          h = lm.forwardLayers(h, cache.decoder, rows, positions, l, block + 1);
          owned.push(h);
          l = block + 1;
          const j = cexits.indexOf(block);
          if (j < 0) continue;
          // right-padded (B, T) rows of hidden states for the classifier's prefill
          const hv = (await h.read()) as Float32Array;
          const pad = new Float32Array(B * T * d);
          prompts.forEach((p, b) => {
            pad.set(hv.subarray(starts[b] * d, (starts[b] + p.length) * d), b * T * d);
          });
          classifiers.prefill(s, j, s.f32([B * T, d], pad), B, T, lengths, cache.states[j]);
        }
        const hv = (await h.read()) as Float32Array;
        const last = new Float32Array(B * d);
        prompts.forEach((p, b) => {
          last.set(hv.subarray((starts[b] + p.length - 1) * d, (starts[b] + p.length) * d), b * d);
        });
        const zt = lm.exitLogits(s.f32([B, d], last), B, lm.numLayers - 1);
        owned.push(zt);
        const z = (await zt.read()) as Float32Array;
        prompts.forEach((p, b) => {
          cache.decoder.setLength(b, p.length);
        });
        return z;
      } finally {
        for (const t of new Set(owned)) t.dispose();
        s.dispose();
      }
    },
    async step(tokens, cache, exit?: GenerationExit): Promise<GenerationStepResult> {
      const skip = exit?.skip ?? 'propagate';
      if (!(SKIPS as readonly string[]).includes(skip))
        throw new ValidationError(`decoder step: skip strategy '${skip}' is not one of ${SKIPS.join(', ')}`);
      const s = new Scope(lm.device);
      try {
        // the rule always reads signals, so every token that reaches a classifier's exit advances its state
        const r = await lm.step(tokens, cache.decoder, {
          rule: {
            kind: 'custom',
            decide: (signals, ctx) => {
              if (!exit) return new Array(ctx.rows.length).fill(false);
              const dd = exit.decide(signals, ctx);
              return Array.from({ length: dd.length }, (_, i) => Boolean(dd[i]));
            },
          },
          skip: skip as 'propagate' | 'none',
          gate: (h, n, ctx) => {
            const j = cexits.indexOf(ctx.block);
            if (j < 0) return null;
            const rowsT = classifiers.stateful ? s.u32(ctx.rows) : null;
            return classifiers.step(s, j, h, n, rowsT, cache.states[j]);
          },
        });
        return { logits: r.logits, exitBlocks: r.exitBlocks, blocksRun: r.blocksRun };
      } finally {
        s.dispose();
      }
    },
    score: (sequences) => dynamaxScore(lm, classifiers, sequences),
  };
}

/**
 * Teacher-forced signals at every exit (decoderScore) with `gate` = σ(classifier logit), each sequence's
 * classifier state starting from zero at its first token.
 */
export async function dynamaxScore(
  lm: DecoderLM,
  classifiers: ExitClassifiers,
  sequences: readonly (readonly number[])[],
): Promise<GenerationScore> {
  checkClassifiers(lm, classifiers);
  const sc = await decoderScore(lm, sequences);
  let done = 0;
  for (const q of sequences) {
    const f = await decoderExitFeatures(lm, [q.slice(0, -1)], 1);
    const logits = await classifierDeviceLogits(classifiers, f);
    classifiers.config.exits.forEach((block, j) => {
      const gate = sc.signals[lm.exits.indexOf(block)].gate;
      for (let t = 0; t < q.length - 1; t++) gate[done + t] = 1 / (1 + Math.exp(-logits[j][t]));
    });
    done += q.length - 1;
  }
  return sc;
}
