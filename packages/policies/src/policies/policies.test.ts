// What each built-in decides, on hand-made signal sequences, against the formulas written out here.
import { mulberry32, ValidationError } from '@offramp/core';
import { describe, expect, it } from 'vitest';
import { type ModelShape, runLoop, type SampleSignals } from '../loop.js';
import { budget } from './budget.js';
import { confidence } from './confidence.js';
import { entropy } from './entropy.js';
import { gate } from './gate.js';
import { margin } from './margin.js';
import { logBarrierDistribution, online } from './online.js';
import { oracle } from './oracle.js';
import { patience } from './patience.js';
import { ponder, ponderDraw } from './ponder.js';
import { quality } from './quality.js';
import { saturation } from './saturation.js';
import { schedule, scheduleDepth } from './schedule.js';
import { staticPolicy } from './static.js';
import { fitWindow, windowPolicy } from './window.js';

const E = 4;
const shape: ModelShape = {
  numExits: E,
  numClasses: 3,
  numBlocks: 8,
  exitBlocks: [1, 3, 5, 7],
  costFractions: [0.25, 0.5, 0.75, 1],
};
const nan = Number.NaN;
function sample(
  o: Partial<Record<Exclude<keyof SampleSignals, 'logits'>, number[]>> & { logits?: Float32Array[] },
): SampleSignals {
  const fill = (v: number) => new Array(E).fill(v);
  return {
    maxProb: o.maxProb ?? fill(0.5),
    entropy: o.entropy ?? fill(0.9),
    margin: o.margin ?? fill(0.1),
    argmax: o.argmax ?? [0, 1, 2, 0],
    gate: o.gate ?? fill(nan),
    similarity: o.similarity ?? [nan, 0, 0, 0],
    logits: o.logits,
  };
}
const exitsOf = (p: Parameters<typeof runLoop>[0], samples: SampleSignals[]) =>
  Array.from(runLoop(p, shape, samples).exits);

describe('threshold policies', () => {
  it('confidence leaves at max probability ≥ τ, compared in f32 (a value exactly at τ leaves)', () => {
    const t = Math.fround(0.7); // < 0.7
    const samples = [
      sample({ maxProb: [0.2, t, 0.9, 0.9] }),
      sample({ maxProb: [0.2, 0.6999, 0.6, 0.2] }),
      sample({ maxProb: [0.95, 0, 0, 0] }),
    ];
    expect(exitsOf(confidence({ threshold: 0.7 }), samples)).toEqual([1, 3, 0]);
    expect(exitsOf(confidence({ threshold: [0.99, 0.99, 0.5, 0.5] }), samples)).toEqual([2, 2, 3]);
    expect(confidence().options).toEqual({ threshold: 0.9 });
  });

  it('entropy leaves at H < S (strict), one S or one per exit, S checked against ln C', () => {
    const samples = [sample({ entropy: [1, 0.5, 0.2, 0.1] }), sample({ entropy: [0.3, 0.3, 0.3, 0.3] })];
    expect(exitsOf(entropy({ threshold: 0.3 }), samples)).toEqual([2, 3]);
    expect(exitsOf(entropy({ threshold: [0.1, 0.6, 0.1, 0.1] }), samples)).toEqual([1, 1]);
    expect(() => runLoop(entropy({ threshold: 1.2 }), shape, samples)).toThrow(
      /policy 'entropy': option 'threshold' must be in \(0, ln C\] = \(0, 1\.09861\] for C=3 classes, got 1\.2/,
    );
    expect(() => runLoop(entropy({ threshold: [0.1, 0.2] }), shape, samples)).toThrow(
      /policy 'entropy': option 'threshold' has one threshold per exit: expected 4 values/,
    );
    expect(() => entropy({ threshold: -1 })).toThrow(ValidationError);
    expect(() => entropy({ threshold: -1 })).toThrow(
      /policy 'entropy': option 'threshold' must be a number in \(0, ln C\]/,
    );
    expect(() => entropy({} as never)).toThrow(/option 'threshold'.*got nothing/);
  });

  it('margin ≥ τ; gate > τ (strict); NaN never leaves', () => {
    const s = [
      sample({ margin: [0.1, 0.5, 0.6, 0], gate: [0.3, 0.5, 0.51, 0] }),
      sample({ margin: [nan, nan, 0.9, 0], gate: [nan, nan, nan, nan] }),
    ];
    expect(exitsOf(margin({ threshold: 0.5 }), s)).toEqual([1, 2]);
    expect(exitsOf(gate(), s)).toEqual([2, 3]);
  });

  it('saturation leaves at cosine similarity ≥ τ and never at the first exit (NaN)', () => {
    const s = [
      sample({ similarity: [nan, 0.99, 1, 1] }),
      sample({ similarity: [nan, 0.5, 0.97, 1] }),
      sample({ similarity: [nan, 0.2, 0.3, 0.4] }),
    ];
    expect(exitsOf(saturation({ threshold: 0.97 }), s)).toEqual([1, 2, 3]);
  });

  it('quality reads its score from the gate slot by default, or another signal', () => {
    const s = [sample({ gate: [0.5, 0.7, 0.9, 0.9], maxProb: [0.9, 0.9, 0.9, 0.9] })];
    expect(exitsOf(quality(), s)).toEqual([1]);
    expect(exitsOf(quality({ threshold: 0.8 }), s)).toEqual([2]);
    expect(exitsOf(quality({ threshold: 0.8, signal: 'maxProb' }), s)).toEqual([0]);
  });

  it('explains bad options: policy, option, allowed range, value', () => {
    expect(() => confidence({ threshold: 1.5 })).toThrow(
      "policy 'confidence': option 'threshold' must be a number in [0, 1] or an array of such numbers (one per exit), got 1.5",
    );
    expect(() => confidence({ treshold: 0.5 } as never)).toThrow(
      "policy 'confidence': unknown option 'treshold' (did you mean 'threshold'?) (allowed: threshold)",
    );
    expect(() => gate({ threshold: 1 })).toThrow(/policy 'gate': option 'threshold' must be a number in \[0, 1\)/);
  });
});

describe('patience', () => {
  it('counts consecutive agreeing argmaxes and leaves when the counter reaches t', () => {
    const s = [sample({ argmax: [1, 1, 1, 1] }), sample({ argmax: [1, 2, 2, 2] }), sample({ argmax: [1, 2, 1, 2] })];
    expect(exitsOf(patience({ patience: 1 }), s)).toEqual([1, 2, 3]);
    expect(exitsOf(patience({ patience: 2 }), s)).toEqual([2, 3, 3]);
  });

  it('regression variant: |x_i − x_{i−1}| < δ on the chosen scalar', () => {
    const s = [
      sample({ maxProb: [0.5, 0.55, 0.58, 0.9] }),
      sample({ maxProb: [0.5, 0.7, 0.75, 0.76] }),
      sample({ maxProb: [0.5, 0.6, 0.65, 0.7], gate: [0.1, 0.1, 0.1, 0.1] }),
    ];
    expect(exitsOf(patience({ mode: 'regression', patience: 2 }), s)).toEqual([2, 3, 3]);
    expect(exitsOf(patience({ mode: 'regression', patience: 1, delta: 0.06 }), s)).toEqual([1, 2, 2]);
    expect(exitsOf(patience({ mode: 'regression', patience: 1, signal: 'gate' }), s)).toEqual([3, 3, 1]);
  });
});

describe('ponder', () => {
  it('q-exit leaves at the first exit whose cumulative halting probability Σ λ_i ∏_{j<i}(1−λ_j) exceeds q', () => {
    const lambdas = [
      [0.2, 0.3, 0.4, 0.1],
      [0.6, 0.1, 0.1, 0.1],
      [0.1, 0.1, 0.1, 0.1],
      [nan, 0.7, 0.1, 0.1],
    ];
    const cdfExit = (lam: number[], q: number) => {
      let cdf = 0;
      let surv = 1;
      for (let i = 0; i < lam.length; i++) {
        const l = Number.isNaN(lam[i]) ? 0 : lam[i];
        cdf += l * surv;
        surv *= 1 - l;
        if (cdf > q) return i;
      }
      return lam.length - 1;
    };
    const s = lambdas.map((g) => sample({ gate: g }));
    for (const q of [0.5, 0.3, 0.65]) expect(exitsOf(ponder({ q }), s)).toEqual(lambdas.map((l) => cdfExit(l, q)));
    expect(exitsOf(ponder(), s)).toEqual([2, 0, 3, 1]);
  });

  it('sample mode draws Bernoulli(λ) per (seed, sampleId, exit): reproducible, with the right rate', () => {
    const n = 4000;
    const s = Array.from({ length: n }, () => sample({ gate: [0.3, 0.5, 0.5, 0.5] }));
    const a = exitsOf(ponder({ mode: 'sample', seed: 11 }), s);
    expect(exitsOf(ponder({ mode: 'sample', seed: 11 }), s)).toEqual(a);
    expect(exitsOf(ponder({ mode: 'sample', seed: 12 }), s)).not.toEqual(a);
    const rate0 = a.filter((e) => e === 0).length / n;
    expect(Math.abs(rate0 - 0.3)).toBeLessThan(4 * Math.sqrt((0.3 * 0.7) / n));
    const rate1 = a.filter((e) => e === 1).length / n; // P = 0.7 · 0.5
    expect(Math.abs(rate1 - 0.35)).toBeLessThan(4 * Math.sqrt((0.35 * 0.65) / n));
    for (let i = 0; i < 50; i++) expect(a[i] === 0).toBe(ponderDraw(11, i, 0) < Math.fround(0.3));
  });

  it('expectation mode mixes the softmaxes by p_i, the leftover mass at the exit where it stops', () => {
    const z = [Float32Array.of(1, 0, -1), Float32Array.of(0, 2, 0), Float32Array.of(3, 0, 0), Float32Array.of(0, 0, 1)];
    const sm = (v: Float32Array) => {
      const e = Array.from(v, Math.exp);
      const t = e.reduce((a, b) => a + b, 0);
      return e.map((x) => x / t);
    };
    const p = ponder({ mode: 'expectation', epsilon: 0.2 });
    expect(p.needs).toContain('logits');
    expect(p.device).toBeUndefined();
    const lam = [0.5, 0.5, 0.5, 0.5];
    // S: 0.5, 0.25, 0.125 < 0.2 → stops at exit 2; weights p0 = 0.5, p1 = 0.25, leftover S1 = 0.25 at exit 2
    const res = runLoop(p, shape, [sample({ gate: lam, logits: z }), sample({ gate: [0, 0, 0, 0], logits: z })]);
    expect(Array.from(res.exits)).toEqual([2, 3]);
    const [m0, m1] = p.collectMixtures();
    const want0 = [0, 1, 2].map((c) => 0.5 * sm(z[0])[c] + 0.25 * sm(z[1])[c] + 0.25 * sm(z[2])[c]);
    for (let c = 0; c < 3; c++) expect(m0[c]).toBeCloseTo(want0[c], 6);
    // λ = 0 everywhere: all the mass stays until the forced last exit
    for (let c = 0; c < 3; c++) expect(m1[c]).toBeCloseTo(sm(z[3])[c], 6);
    expect(p.collectMixtures()).toEqual([]);
  });
});

describe('window', () => {
  it('leaves outside (wLo, wHi), goes on inside', () => {
    const s = [
      sample({ maxProb: [0.95, 0, 0, 0] }),
      sample({ maxProb: [0.05, 0, 0, 0] }),
      sample({ maxProb: [0.5, 0.6, 0.99, 0] }),
      sample({ maxProb: [0.4, 0.4, 0.4, 0.4] }),
    ];
    expect(exitsOf(windowPolicy({ wLo: 0.1, wHi: 0.9 }), s)).toEqual([0, 0, 2, 3]);
    expect(() => windowPolicy({ wLo: 0.9, wHi: 0.1 })).toThrow("policy 'window': option 'wHi' must have wLo ≤ wHi");
  });

  it('fitWindow takes the quantiles at F(τ) ± halfWidth, clamped to [0, 1]', () => {
    const scores = Array.from({ length: 1001 }, (_, i) => ((i * 389) % 1001) / 1000);
    const w = fitWindow(scores, 0.5);
    expect(w.wLo).toBeCloseTo(0.4, 2);
    expect(w.wHi).toBeCloseTo(0.6, 2);
    const inside = scores.filter((x) => x >= w.wLo && x <= w.wHi).length / scores.length;
    expect(Math.abs(inside - 0.2)).toBeLessThan(0.003);
    const edge = fitWindow(scores, 0.95, 0.1);
    expect(edge.wHi).toBe(1);
    expect(edge.wLo).toBeCloseTo(0.85, 2);
    expect(fitWindow(scores, -1).wLo).toBe(0);
    expect(() => fitWindow([], 0.5)).toThrow(/no validation scores/);
  });
});

describe('budget', () => {
  it('controller: τ moves against the cost error, within [min, max]', () => {
    const p = budget({ target: 0.5, threshold: 0.8, gain: 1 });
    expect(p.update({ meanCost: 0.7 })).toBeCloseTo(0.6, 6);
    expect(p.update([{ costFraction: 0.2 }, { costFraction: 0.4 }])).toBeCloseTo(0.8, 6);
    const code = p.device!.code;
    expect(p.device!.initState).toEqual([Math.fround(0.8)]);
    p.update({ meanCost: 0.9 });
    expect(p.device!.code).toBe(code); // τ travels in the initial state: nothing to recompile
    expect(p.device!.initState).toEqual([p.threshold]);
    expect(budget({ target: 0.5, threshold: 0.1, maxThreshold: 0.2 }).update({ meanCost: 0 })).toBeCloseTo(0.2, 6);
  });

  it('controller: converges to the target mean cost on a stream', () => {
    const rand = mulberry32(3);
    const p = budget({ target: 0.6, threshold: 0.95, gain: 0.5 });
    let last = 0;
    for (let round = 0; round < 200; round++) {
      const batch = Array.from({ length: 64 }, () =>
        sample({ maxProb: [rand(), rand(), rand(), rand()].map((x) => 0.3 + 0.7 * x) }),
      );
      const exits = runLoop(p, shape, batch).exits;
      last = Array.from(exits).reduce((a, e) => a + shape.costFractions[e], 0) / batch.length;
      p.update({ meanCost: last });
    }
    expect(Math.abs(last - 0.6)).toBeLessThan(0.08);
  });

  it("batch mode caps every request's mean cost at the target", () => {
    const rand = mulberry32(5);
    for (const target of [0.3, 0.5, 0.8]) {
      for (let trial = 0; trial < 20; trial++) {
        const batch = Array.from({ length: 1 + Math.floor(rand() * 40) }, () =>
          sample({ maxProb: [rand(), rand(), rand(), rand()] }),
        );
        const exits = runLoop(budget({ target, mode: 'batch', threshold: 0.99 }), shape, batch).exits;
        const mean = Array.from(exits).reduce((a, e) => a + shape.costFractions[e], 0) / batch.length;
        expect(mean).toBeLessThanOrEqual(target + 1e-9);
      }
    }
    expect(budget({ target: 0.5, mode: 'batch' }).device).toBeUndefined();
  });
});

describe('online (FTRL with log-barrier)', () => {
  it('π(a) = 1/(η(L_a + μ)) sums to 1', () => {
    const L = [3, 1, 7, 2.5];
    const p = logBarrierDistribution(L, 0.5);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    const mu = 1 / (0.5 * p[0]) - L[0];
    for (let a = 0; a < 4; a++) expect(p[a]).toBeCloseTo(1 / (0.5 * (L[a] + mu)), 9);
    expect(Array.from(logBarrierDistribution([0, 0, 0], 2))).toEqual(
      [1 / 3, 1 / 3, 1 / 3].map((x) => expect.closeTo(x, 12)),
    );
  });

  /** Bandit stream: arm a's loss is Bernoulli(mean[a]), as if error + λ·cost averaged over a request. */
  const play = (p: ReturnType<typeof online>, means: number[], rounds: number, rand: () => number) => {
    for (let t = 0; t < rounds; t++) p.update({ loss: rand() < means[p.arm] ? 1 : 0 });
  };

  it('concentrates on the best arm, deterministically for a seed', () => {
    const means = [0.7, 0.5, 0.2, 0.6, 0.8];
    const thresholds = [0.5, 0.6, 0.7, 0.8, 0.9];
    const p = online({ thresholds, seed: 1 });
    play(p, means, 3000, mulberry32(9));
    expect(p.probabilities[2]).toBeGreaterThan(0.8);
    expect(p.threshold).toBe(Math.fround(thresholds[p.arm]));
    const q = online({ thresholds, seed: 1 });
    play(q, means, 3000, mulberry32(9));
    expect(Array.from(q.probabilities)).toEqual(Array.from(p.probabilities));
  });

  it('follows a drift with discount < 1', () => {
    const p = online({ thresholds: [0.5, 0.7, 0.9], seed: 4, discount: 0.99 });
    const rand = mulberry32(2);
    play(p, [0.2, 0.6, 0.8], 1500, rand);
    expect(p.probabilities[0]).toBeGreaterThan(0.7);
    play(p, [0.8, 0.6, 0.2], 1500, rand);
    expect(p.probabilities[2]).toBeGreaterThan(0.7);
  });

  it('full-information updates, and the played threshold decides', () => {
    const p = online({ thresholds: [0.2, 0.9], seed: 0 });
    for (let t = 0; t < 200; t++) p.update({ losses: [1, 0] });
    expect(p.probabilities[1]).toBeGreaterThan(0.95);
    expect(exitsOf(p, [sample({ maxProb: [0.5, 0.95, 0, 0] })])).toEqual([p.arm === 1 ? 1 : 0]);
    expect(() => p.update({ losses: [1] })).toThrow(/update needs 2 losses/);
    p.update({ error: 0.1, cost: 0.5 });
  });
});

describe('schedule', () => {
  it('h(t) = max(h_min, h_max − ⌊(h_max − h_min)(t − t0)/(T − t0)⌋) is non-increasing in t', () => {
    const o = { hMin: 1, hMax: 7, t0: 2, T: 12 };
    const hs = Array.from({ length: 20 }, (_, t) => scheduleDepth(o, t));
    expect(hs.slice(0, 4)).toEqual([7, 7, 7, 7 - Math.floor(6 / 10)]);
    expect(hs[7]).toBe(7 - Math.floor((6 * 5) / 10));
    expect(hs[12]).toBe(1);
    expect(hs[19]).toBe(1);
    for (let t = 1; t < 20; t++) expect(hs[t]).toBeLessThanOrEqual(hs[t - 1]);
  });

  it('exits by position: sampleId, per-sample positions, exit or block units', () => {
    const s = Array.from({ length: 6 }, () => sample({}));
    // T = 5, h from 3 down to 0: positions 0..5 → h 3, 3, 2, 2, 1, 0
    expect(exitsOf(schedule({ hMin: 0, hMax: 3, T: 5 }), s)).toEqual([3, 3, 2, 2, 1, 0]);
    expect(exitsOf(schedule({ hMin: 0, hMax: 3, T: 5, positions: [5, 4, 3, 2, 1, 0] }), s)).toEqual([0, 1, 2, 2, 3, 3]);
    // block unit: h 6 for everyone at t = 0 → first exit with block ≥ 6 is exit 3 (block 7)
    expect(exitsOf(schedule({ hMin: 2, hMax: 6, T: 4, unit: 'block', position: 0 }), s)).toEqual([3, 3, 3, 3, 3, 3]);
    expect(exitsOf(schedule({ hMin: 2, hMax: 6, T: 4, unit: 'block', position: 9 }), s)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(schedule({ hMin: 2, hMax: 6, T: 4, unit: 'block' }).device).toBeUndefined();
    expect(() => schedule({ hMin: 3, hMax: 1, T: 4 })).toThrow("policy 'schedule': option 'hMax' must be ≥ hMin");
  });
});

describe('static and oracle', () => {
  it('static leaves at its exit; checks it against the exit count', () => {
    expect(exitsOf(staticPolicy({ exit: 2 }), [sample({}), sample({})])).toEqual([2, 2]);
    expect(() => runLoop(staticPolicy({ exit: 4 }), shape, [sample({})])).toThrow(
      "policy 'static': option 'exit' must be an exit index in [0, 3] for this model's 4 exits, got 4",
    );
  });

  it('oracle leaves at the earliest exit whose argmax is the final prediction', () => {
    const s = [sample({ argmax: [2, 1, 0, 1] }), sample({ argmax: [0, 0, 0, 0] }), sample({ argmax: [1, 2, 2, 0] })];
    expect(exitsOf(oracle({ finals: [1, 0, 0] }), s)).toEqual([1, 0, 3]);
    expect(() => runLoop(oracle({ finals: [1] }), shape, s)).toThrow(
      /policy 'oracle': option 'finals' needs one final prediction per sample \(batch of 3\)/,
    );
  });
});
