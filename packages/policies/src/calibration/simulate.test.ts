// Offline evaluation: simulate against direct computation, sweeps, the Pareto frontier, threshold choice
// against brute force, per-exit entropy thresholds, the oracle.

import { definePolicy } from '@offramp/core';
import { describe, expect, it } from 'vitest';
import { createPolicy } from '../registry.js';
import { randomTrace } from '../testing-internal/random-trace.js';
import { chooseThreshold } from './choose.js';
import { oracleExits, paretoFrontier, simulate, sweep } from './simulate.js';
import type { Trace } from './trace.js';

const trace = randomTrace(600, 1);

/** Direct evaluation of "leave at the first exit with maxProb ≥ τ". */
function direct(t: Trace, tau: number) {
  const tt = Math.fround(tau);
  const exits = t.samples.map((s) => {
    for (let e = 0; e < t.numExits - 1; e++) if (s.maxProb[e] >= tt) return e;
    return t.numExits - 1;
  });
  const n = t.samples.length;
  const acc = t.samples.filter((s, i) => s.argmax[exits[i]] === s.label).length / n;
  const full = t.samples.filter((s) => s.finalPrediction === s.label).length / n;
  const agree = t.samples.filter((s, i) => s.argmax[exits[i]] === s.finalPrediction).length / n;
  const cost = exits.reduce((a, e) => a + t.costFractions[e], 0) / n;
  const block = exits.reduce((a, e) => a + t.exitBlocks[e], 0) / n;
  return { exits, acc, full, agree, cost, block };
}

describe('simulate', () => {
  it('matches a direct evaluation of a threshold rule', () => {
    for (const tau of [0.3, 0.6, 0.85, 1]) {
      const d = direct(trace, tau);
      const r = simulate(createPolicy('confidence', { threshold: tau }), trace);
      expect(Array.from(r.exits)).toEqual(d.exits);
      expect(r.accuracy).toBeCloseTo(d.acc, 12);
      expect(r.fullAccuracy).toBeCloseTo(d.full, 12);
      expect(r.accuracyDrop).toBeCloseTo(d.full - d.acc, 12);
      expect(r.agreement).toBeCloseTo(d.agree, 12);
      expect(r.meanCost).toBeCloseTo(d.cost, 12);
      expect(r.meanExitBlock).toBeCloseTo(d.block, 12);
      expect(r.exitHistogram).toEqual([0, 1, 2, 3].map((e) => d.exits.filter((x) => x === e).length));
    }
  });

  it('without labels reports agreement only', () => {
    const unlabelled = { ...trace, samples: trace.samples.map(({ label: _l, ...s }) => s) };
    const r = simulate(createPolicy('confidence', { threshold: 0.7 }), unlabelled);
    expect(r.accuracy).toBeNull();
    expect(r.accuracyDrop).toBeNull();
    expect(r.agreement).toBeCloseTo(direct(trace, 0.7).agree, 12);
  });

  it('replays in chunks like a runner with maxBatch (matters for batch-dependent policies)', () => {
    const p = () => createPolicy('budget', { target: 0.5, mode: 'batch' });
    const whole = simulate(p(), trace);
    const chunked = simulate(p(), trace, { maxBatch: 7 });
    expect(whole.meanCost).toBeLessThanOrEqual(0.5 + 1e-9);
    expect(chunked.meanCost).toBeLessThanOrEqual(0.5 + 1e-9);
    expect(Array.from(chunked.exits)).not.toEqual(Array.from(whole.exits));
  });

  it('oracle exits: the earliest exit agreeing with the final one', () => {
    const r = oracleExits(trace);
    expect(r.agreement).toBe(1);
    trace.samples.forEach((s, i) => {
      const first = s.argmax.indexOf(s.finalPrediction);
      expect(r.exits[i]).toBe(first);
    });
    const finals = trace.samples.map((s) => s.finalPrediction);
    expect(Array.from(simulate(createPolicy('oracle', { finals }), trace).exits)).toEqual(Array.from(r.exits));
  });
});

describe('sweep and Pareto frontier', () => {
  it('sweeps a grid (object of lists or list of options)', () => {
    const pts = sweep('confidence', { threshold: [0.5, 0.7, 0.9] }, trace);
    expect(pts.map((p) => p.options)).toEqual([{ threshold: 0.5 }, { threshold: 0.7 }, { threshold: 0.9 }]);
    expect(pts[1].meanCost).toBeCloseTo(direct(trace, 0.7).cost, 12);
    const two = sweep('patience', { patience: [1, 2], mode: ['argmax', 'regression'] }, trace);
    expect(two).toHaveLength(4);
    expect(sweep('entropy', [{ threshold: 0.5 }, { threshold: [0.2, 0.4, 0.6, 0.8] }], trace)).toHaveLength(2);
  });

  it('sweeps a plugin over the grid it declares, ranges expanded, as it sweeps the built-in it mirrors', () => {
    const plugin = definePolicy({
      name: 'plugin-confidence',
      defaults: { tau: 0.9 },
      sweep: { tau: { from: 0.5, to: 0.9, steps: 3 } },
      create: (o) => ({ ...createPolicy('confidence', { threshold: o.tau }), name: 'plugin-confidence' }),
    });
    const pts = sweep(plugin, undefined, trace);
    expect(pts.map((p) => p.options)).toEqual([{ tau: 0.5 }, { tau: 0.7 }, { tau: 0.9 }]);
    const builtin = sweep('confidence', { threshold: [0.5, 0.7, 0.9] }, trace);
    expect(pts.map(({ options: _o, ...s }) => s)).toEqual(builtin.map(({ options: _o, ...s }) => s));
    // an explicit grid wins; a plugin without a grid must be given one
    expect(sweep(plugin, { tau: [0.6] }, trace)).toHaveLength(1);
    const bare = definePolicy({ name: 'bare', defaults: { tau: 0.9 }, create: () => createPolicy('confidence') });
    expect(() => sweep(bare, undefined, trace)).toThrow(/no grid given and the policy declares none/);
  });

  it('keeps exactly the non-dominated points, by cost', () => {
    const pts = [
      { meanCost: 0.5, accuracy: 0.8 },
      { meanCost: 0.4, accuracy: 0.7 },
      { meanCost: 0.6, accuracy: 0.75 },
      { meanCost: 0.9, accuracy: 0.9 },
      { meanCost: 0.4, accuracy: 0.72 },
      { meanCost: 1, accuracy: 0.9 },
    ];
    expect(paretoFrontier(pts)).toEqual([pts[4], pts[0], pts[3]]);
    const swept = sweep('confidence', { threshold: [0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 1] }, trace);
    const front = paretoFrontier(swept);
    for (const p of swept) {
      const dominated = front.some((f) => f.meanCost <= p.meanCost && (f.accuracy as number) >= (p.accuracy as number));
      expect(dominated).toBe(true);
    }
  });
});

describe('chooseThreshold', () => {
  /** Every distinct threshold that changes a decision, evaluated by brute force. */
  const brute = () => {
    const vals = [...new Set(trace.samples.flatMap((s) => s.maxProb.slice(0, -1)))].concat([1]);
    return vals.map((t) => ({ t, ...direct(trace, t) }));
  };

  it('{ maxDrop }: the cheapest threshold within the accuracy drop', () => {
    const c = chooseThreshold(trace, 'confidence', { maxDrop: 0.02 }, { maxCandidates: 1e6 });
    expect(c.feasible).toBe(true);
    expect(c.metrics.accuracyDrop!).toBeLessThanOrEqual(0.02);
    const best = Math.min(
      ...brute()
        .filter((b) => b.full - b.acc <= 0.02)
        .map((b) => b.cost),
    );
    expect(c.metrics.meanCost).toBeCloseTo(best, 12);
    expect(c.options).toEqual({ threshold: c.threshold });
  });

  it('{ budget }: the most accurate threshold within the mean cost', () => {
    const c = chooseThreshold(trace, 'confidence', { budget: 0.6 }, { maxCandidates: 1e6 });
    expect(c.metrics.meanCost).toBeLessThanOrEqual(0.6);
    const best = Math.max(
      ...brute()
        .filter((b) => b.cost <= 0.6)
        .map((b) => b.acc),
    );
    expect(c.metrics.accuracy).toBeCloseTo(best, 12);
    expect(chooseThreshold(trace, 'confidence', { budget: 0.1 }).feasible).toBe(false);
  });

  it('per-exit entropy thresholds do at least as well as one shared threshold', () => {
    const shared = chooseThreshold(trace, 'entropy', { maxDrop: 0.01 });
    const per = chooseThreshold(trace, 'entropy', { maxDrop: 0.01 }, { perExit: true, perExitCandidates: 60 });
    expect(Array.isArray(per.threshold)).toBe(true);
    expect((per.threshold as number[]).length).toBe(4);
    expect(per.feasible).toBe(true);
    expect(per.metrics.accuracyDrop!).toBeLessThanOrEqual(0.01);
    expect(per.metrics.meanCost).toBeLessThanOrEqual(shared.metrics.meanCost + 1e-12);
    // the chosen thresholds rebuild a policy that reproduces the metrics
    const again = simulate(createPolicy('entropy', per.options), trace);
    expect(again.meanCost).toBeCloseTo(per.metrics.meanCost, 12);
  });

  it('refuses policies without one threshold', () => {
    expect(() => chooseThreshold(trace, 'ponder', { maxDrop: 0.01 })).toThrow(/has no single threshold to calibrate/);
    expect(() => chooseThreshold(trace, 'confidence', { maxDrop: -1 })).toThrow(/maxDrop must be a number ≥ 0/);
  });
});
