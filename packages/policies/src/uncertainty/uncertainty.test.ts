// Uncertainty metrics against hand-computed small cases and independent brute-force forms (pair counting,
// explicit threshold scans, explicit bin membership) on seeded random data with many ties.
import { mulberry32 } from '@offramp/core';
import { describe, expect, it } from 'vitest';
import {
  aurc,
  auroc,
  confidenceScores,
  coverageAtRisk,
  ece,
  fprAtTpr,
  misclassificationAuroc,
  oodDetection,
  predictions,
  reliability,
  reliabilitySpec,
  riskCoverage,
  scoreOf,
} from './index.js';

describe('hand-computed cases', () => {
  it('risk–coverage, AURC and coverage at a risk', () => {
    const s = [0.9, 0.8, 0.7, 0.6];
    const c = [1, 1, 0, 1];
    const curve = riskCoverage(s, c);
    expect(curve.map((p) => p.coverage)).toEqual([0.25, 0.5, 0.75, 1]);
    expect(curve.map((p) => p.risk)).toEqual([0, 0, 1 / 3, 1 / 4]);
    expect(aurc(s, c)).toBeCloseTo((0 + 0 + 1 / 3 + 1 / 4) / 4, 15);
    expect(coverageAtRisk(s, c, 0.05)).toEqual({ coverage: 0.5, threshold: 0.8, risk: 0 });
    expect(coverageAtRisk(s, c, 0.25)).toEqual({ coverage: 1, threshold: 0.6, risk: 0.25 });
    expect(coverageAtRisk([0.5], [0], 0.05)).toEqual({ coverage: 0, threshold: Number.POSITIVE_INFINITY, risk: 0 });
  });

  it('tied scores are accepted together', () => {
    const curve = riskCoverage([0.9, 0.9, 0.5], [true, false, true]);
    expect(curve).toHaveLength(2);
    expect(curve[0]).toMatchObject({ coverage: 2 / 3, risk: 0.5, accepted: 2, errors: 1 });
    expect(aurc([0.9, 0.9, 0.5], [1, 0, 1])).toBeCloseTo(0.5 * (2 / 3) + (1 / 3) * (1 / 3), 15);
  });

  it('AUROC and FPR at 95% TPR', () => {
    expect(auroc([0.9, 0.8, 0.4], [0.5, 0.3])).toBeCloseTo(5 / 6, 15);
    expect(auroc([0.5], [0.5])).toBe(0.5);
    expect(auroc([0.5, 0.7], [0.5])).toBeCloseTo(0.75, 15);
    const pos = Array.from({ length: 10 }, (_, i) => (i + 1) / 10);
    expect(fprAtTpr(pos, [0.05, 0.15, 0.5])).toEqual({ fpr: 2 / 3, tpr: 1, threshold: 0.1 });
    // 20 positives: 95% keeps 19, so the threshold is the second lowest
    const pos20 = Array.from({ length: 20 }, (_, i) => i);
    expect(fprAtTpr(pos20, [0.5, 1, 1.5, 30])).toEqual({ fpr: 0.75, tpr: 0.95, threshold: 1 });
    expect(misclassificationAuroc([0.9, 0.2, 0.8, 0.1], [1, 0, 1, 0])).toBe(1);
    expect(oodDetection([0.9, 0.8], [0.1, 0.85])).toMatchObject({ auroc: 0.75, fpr95: 0.5, threshold95: 0.8 });
  });

  it('ECE and reliability bins, edges in the lower bin', () => {
    const r = reliability([0.95, 0.95, 0.55, 0.55], [1, 0, 1, 1], 10);
    expect(r.ece).toBeCloseTo(0.45, 12);
    expect(r.mce).toBeCloseTo(0.45, 12);
    expect(r.bins[9]).toMatchObject({ count: 2, accuracy: 0.5 });
    expect(r.bins[5]).toMatchObject({ count: 2, accuracy: 1 });
    const edges = reliability([0, 0.2, 0.6, 1], [1, 1, 1, 1], 5);
    expect(edges.bins.map((b) => b.count)).toEqual([2, 0, 1, 0, 1]);
    expect(ece([0.7, 0.7, 0.7], [1, 1, 0], 1)).toBeCloseTo(Math.abs(2 / 3 - 0.7), 15);
  });

  it('scores from max probability and from entropy', () => {
    expect(scoreOf([0.25, 0.75])).toBe(0.75);
    expect(scoreOf([0.5, 0.5], 'entropy')).toBeCloseTo(-Math.LN2, 15);
    expect(scoreOf([1, 0], 'entropy')).toBe(0);
    const flat = { data: [0.1, 0.9, 0.6, 0.4], numClasses: 2 };
    expect(Array.from(confidenceScores(flat))).toEqual([0.9, 0.6]);
    expect(Array.from(predictions(flat))).toEqual([1, 0]);
  });
});

describe('against brute-force forms on random data with ties', () => {
  const rand = mulberry32(17);
  for (const n of [7, 60, 333]) {
    const scores = Array.from({ length: n }, () => Math.round(rand() * 20) / 20);
    const correct = scores.map((s) => (rand() < 0.3 + 0.65 * s ? 1 : 0));
    it(`n=${n}: AUROC by pair counting`, () => {
      const pos = scores.filter((_, i) => correct[i]);
      const neg = scores.filter((_, i) => !correct[i]);
      let wins = 0;
      for (const p of pos) for (const q of neg) wins += p > q ? 1 : p === q ? 0.5 : 0;
      expect(misclassificationAuroc(scores, correct)).toBeCloseTo(wins / (pos.length * neg.length), 12);
    });
    it(`n=${n}: AURC as the mean selective risk of accepting everything at least as confident`, () => {
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const acc = scores.map((s, j) => [s, j] as const).filter(([s]) => s >= scores[i]);
        sum += acc.filter(([, j]) => !correct[j]).length / acc.length;
      }
      expect(aurc(scores, correct)).toBeCloseTo(sum / n, 12);
    });
    it(`n=${n}: coverage at 5% and 20% risk by scanning every threshold`, () => {
      for (const r of [0.05, 0.2]) {
        let best = 0;
        for (const t of new Set(scores)) {
          const acc = scores.map((s, j) => [s, j] as const).filter(([s]) => s >= t);
          const risk = acc.filter(([, j]) => !correct[j]).length / acc.length;
          if (risk <= r) best = Math.max(best, acc.length / n);
        }
        expect(coverageAtRisk(scores, correct, r).coverage).toBeCloseTo(best, 12);
      }
    });
    it(`n=${n}: FPR at 95% TPR by scanning every threshold`, () => {
      const id = scores;
      const ood = Array.from({ length: Math.ceil(n / 2) }, () => Math.round(rand() * 12) / 20);
      let best = 1;
      for (const t of new Set([...id, ...ood])) {
        const tpr = id.filter((s) => s >= t).length / id.length;
        if (tpr >= 0.95) best = Math.min(best, ood.filter((s) => s >= t).length / ood.length);
      }
      expect(oodDetection(id, ood).fpr95).toBeCloseTo(best, 12);
    });
    it(`n=${n}: ECE by explicit bin membership`, () => {
      const conf = scores.map((s) => 0.1 + 0.9 * s);
      for (const B of [1, 4, 10, 15]) {
        let e = 0;
        for (let b = 0; b < B; b++) {
          const lo = b / B;
          const hi = (b + 1) / B;
          const inBin = conf.map((p, i) => [p, i] as const).filter(([p]) => (b === 0 ? p <= hi : p > lo && p <= hi));
          if (inBin.length === 0) continue;
          const acc = inBin.filter(([, i]) => correct[i]).length / inBin.length;
          const mean = inBin.reduce((a, [p]) => a + p, 0) / inBin.length;
          e += (inBin.length / n) * Math.abs(acc - mean);
        }
        expect(ece(conf, correct, B)).toBeCloseTo(e, 12);
      }
    });
  }
});

describe('bad input', () => {
  it('names what was wrong', () => {
    expect(() => aurc([0.1, 0.2], [1])).toThrow(/1 correctness flags for 2 scores/);
    expect(() => aurc([0.1, Number.NaN], [1, 0])).toThrow(/score 1 is NaN/);
    expect(() => aurc([0.1], [2])).toThrow(/correctness flag 0 is 2; allowed/);
    expect(() => auroc([], [0.1])).toThrow(/at least one positive and one negative/);
    expect(() => fprAtTpr([0.1], [0.2], 0)).toThrow(/tpr must be in \(0, 1\]/);
    expect(() => reliability([1.5], [1])).toThrow(/confidence 0 is 1.5/);
    expect(() => reliability([0.5], [1], 0)).toThrow(/numBins must be an integer/);
    expect(() => confidenceScores({ data: [0.1, 0.2, 0.7], numClasses: 2 })).toThrow(/not whole rows/);
    expect(() => scoreOf([0.5, 0.5], 'margin' as never)).toThrow(/unknown kind 'margin'/);
  });
});

it('the reliability diagram spec holds every non-empty bin of every model', () => {
  const spec = reliabilitySpec([
    { name: 'a', reliability: reliability([0.95, 0.55], [1, 0], 10) },
    { name: 'b', reliability: reliability([0.35], [1], 10) },
  ]) as { data: { values: { model: string; lo: number }[] } };
  expect(spec.data.values.map((v) => [v.model, v.lo])).toEqual([
    ['a (ECE 30.00%)', 0.5],
    ['a (ECE 30.00%)', 0.9],
    ['b (ECE 65.00%)', 0.3],
  ]);
});
