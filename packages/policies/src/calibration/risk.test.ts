// Risk control: the binomial tail against exact enumeration, the Hoeffding–Bentkus bound against it, and
// the Learn-then-Test guarantee checked empirically on synthetic traces with a known disagreement curve.
import { mulberry32 } from '@offramp/core';
import { describe, expect, it } from 'vitest';
import { binomialCdf, calibrateRisk, hoeffdingBentkusPValue, logGamma } from './risk.js';
import { subsetTrace, type Trace, type TraceSample } from './trace.js';

describe('binomial tail', () => {
  it('equals exact enumeration of all outcomes for small n', () => {
    for (const n of [1, 2, 5, 9, 12]) {
      for (const p of [0.01, 0.1, 0.37, 0.5, 0.9]) {
        const byCount = new Array(n + 1).fill(0);
        for (let mask = 0; mask < 1 << n; mask++) {
          let k = 0;
          for (let b = 0; b < n; b++) k += (mask >> b) & 1;
          byCount[k] += p ** k * (1 - p) ** (n - k);
        }
        let cdf = 0;
        for (let k = 0; k <= n; k++) {
          cdf += byCount[k];
          expect(Math.abs(binomialCdf(k, n, p) - cdf)).toBeLessThan(1e-12 * Math.max(1, cdf));
        }
        expect(binomialCdf(-1, n, p)).toBe(0);
      }
    }
  });

  it('stays accurate where the terms underflow a direct product (n = 20000)', () => {
    // mean 1000, sd ≈ 30.8: P(X ≤ mean) ≈ 0.5 (plus half a point mass), far tail tiny but positive
    const mid = binomialCdf(1000, 20000, 0.05);
    expect(mid).toBeGreaterThan(0.5);
    expect(mid).toBeLessThan(0.51);
    const tail = binomialCdf(850, 20000, 0.05);
    expect(tail).toBeGreaterThan(0);
    expect(tail).toBeLessThan(1e-5);
  });

  it('log Γ matches log factorials', () => {
    let lf = 0;
    for (let k = 1; k < 200; k++) {
      lf += Math.log(k);
      expect(Math.abs(logGamma(k + 1) - lf)).toBeLessThan(1e-10 * Math.max(1, lf));
    }
  });

  it('Hoeffding–Bentkus p-values are valid but never smaller than the exact tail', () => {
    for (const n of [50, 500, 5000]) {
      for (const k of [0, 1, Math.floor(n * 0.02), Math.floor(n * 0.05)]) {
        const hb = hoeffdingBentkusPValue(k, n, 0.05);
        expect(hb).toBeGreaterThanOrEqual(binomialCdf(k, n, 0.05) - 1e-15);
        expect(hb).toBeLessThanOrEqual(1);
      }
    }
  });
});

/**
 * Synthetic two-exit traces with a known disagreement curve: exit 0's confidence m ~ U(0, 1), and exit 0
 * disagrees with the final exit with probability 0.6·(1 − m). With the confidence policy at τ, a sample
 * leaves at exit 0 iff m ≥ τ, so the true risk is R(τ) = ∫_τ^1 0.6(1 − m) dm = 0.3(1 − τ)².
 */
function syntheticTrace(n: number, rand: () => number): Trace {
  const samples: TraceSample[] = Array.from({ length: n }, () => {
    const m = Math.fround(rand());
    const final = Math.floor(rand() * 3);
    const disagree = rand() < 0.6 * (1 - m);
    return {
      maxProb: [m, 0.9],
      entropy: [0.5, 0.1],
      margin: [0.1, 0.5],
      argmax: [disagree ? (final + 1) % 3 : final, final],
      gate: [Number.NaN, Number.NaN],
      similarity: [Number.NaN, 0.9],
      finalPrediction: final,
    };
  });
  return { numExits: 2, numClasses: 3, numBlocks: 2, exitBlocks: [0, 1], costFractions: [0.5, 1], samples };
}
const trueRisk = (tau: number) => 0.3 * (1 - tau) ** 2;

describe('risk-controlled calibration (Learn-then-Test, fixed-sequence)', () => {
  const epsilon = 0.05;
  const delta = 0.1;
  // violations over S independent calibrations ~ Binomial(S, ≤ δ): allow 3 standard deviations
  const slack = (S: number) => delta + 3 * Math.sqrt((delta * (1 - delta)) / S);

  for (const method of ['binomial', 'hoeffding-bentkus'] as const) {
    it(`${method}: the true risk at the chosen threshold exceeds ε in at most about δ of calibrations`, () => {
      const rand = mulberry32(method === 'binomial' ? 1 : 2);
      const S = 200;
      let violations = 0;
      let riskSum = 0;
      for (let s = 0; s < S; s++) {
        const cal = calibrateRisk(syntheticTrace(500, rand), 'confidence', { epsilon, delta, method });
        expect(cal.threshold).not.toBeNull();
        const r = trueRisk(cal.threshold!);
        riskSum += r;
        if (r > epsilon) violations++;
      }
      expect(violations / S).toBeLessThanOrEqual(slack(S));
      // and it is not vacuous: the chosen thresholds use a good part of the allowed risk
      expect(riskSum / S).toBeGreaterThan(method === 'binomial' ? 0.6 * epsilon : 0.4 * epsilon);
    });
  }

  it('over random calibration / held-out splits, the held-out disagreement exceeds ε in at most about δ of splits', () => {
    const rand = mulberry32(7);
    const pool = syntheticTrace(4000, rand);
    const S = 150;
    let violations = 0;
    for (let s = 0; s < S; s++) {
      const idx = pool.samples.map((_, i) => i).sort(() => rand() - 0.5);
      const cal = calibrateRisk(subsetTrace(pool, idx.slice(0, 1000)), 'confidence', { epsilon, delta });
      const held = subsetTrace(pool, idx.slice(1000));
      const t = Math.fround(cal.threshold!);
      const dis =
        held.samples.filter((x) => x.maxProb[0] >= t && x.argmax[0] !== x.finalPrediction).length / held.samples.length;
      if (dis > epsilon) violations++;
    }
    // held-out estimates add their own noise (3000 samples, sd ≈ 0.004 near ε): same 3-sd slack
    expect(violations / S).toBeLessThanOrEqual(slack(S));
  });

  it('tests from the most conservative threshold down and stops at the first failure', () => {
    const trace = syntheticTrace(2000, mulberry32(3));
    const cal = calibrateRisk(trace, 'confidence', { epsilon, delta });
    expect(cal.tests[0].threshold).toBe(1);
    for (let i = 1; i < cal.tests.length; i++) expect(cal.tests[i].threshold).toBeLessThan(cal.tests[i - 1].threshold);
    expect(cal.tests.slice(0, -1).every((t) => t.pValue <= delta)).toBe(true);
    expect(cal.tests[cal.tests.length - 1].pValue).toBeGreaterThan(delta);
    expect(cal.threshold).toBe(cal.tests[cal.tests.length - 2].threshold);
    expect(cal.options).toEqual({ threshold: cal.threshold });
    expect(cal.meanCost).toBeGreaterThan(0.5);
    // too few samples to certify anything at δ = 1e-6: no threshold
    const none = calibrateRisk(subsetTrace(trace, [0, 1, 2]), 'confidence', { epsilon, delta: 1e-6 });
    expect(none.threshold).toBeNull();
    expect(() => calibrateRisk(trace, 'confidence', { epsilon: 0, delta })).toThrow(/epsilon must be in \(0, 1\)/);
    expect(() => calibrateRisk(trace, 'patience', { epsilon, delta })).toThrow(
      /policy 'patience' has no single threshold/,
    );
  });

  it('calibrates entropy on a 2-class trace: every tested threshold stays inside (0, ln 2]', () => {
    // both exits agree on every sample, so every threshold passes and the grid is tested to its end, ln 2
    const rand = mulberry32(5);
    const samples: TraceSample[] = Array.from({ length: 500 }, () => {
      const y = rand() < 0.5 ? 0 : 1;
      return {
        maxProb: [Math.fround(0.5 + 0.5 * rand()), 0.99],
        entropy: [Math.fround(Math.log(2) * rand()), 0.05],
        margin: [0.2, 0.9],
        argmax: [y, y],
        gate: [Number.NaN, Number.NaN],
        similarity: [Number.NaN, 0.9],
        finalPrediction: y,
      };
    });
    const trace: Trace = {
      numExits: 2,
      numClasses: 2,
      numBlocks: 2,
      exitBlocks: [0, 1],
      costFractions: [0.5, 1],
      samples,
    };
    const cal = calibrateRisk(trace, 'entropy', { epsilon, delta });
    expect(cal.tests).toHaveLength(101);
    for (const t of cal.tests) expect(t.threshold > 0 && t.threshold <= Math.log(2)).toBe(true);
    expect(cal.threshold).toBe(Math.log(2));
    expect(cal.options).toEqual({ threshold: Math.log(2) });
  });
});
