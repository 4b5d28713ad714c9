// Tests of the depth-scan exit policy: features, distillation targets from a trace, that the policy's
// stepwise decisions equal the classifier run over each sample's whole exit sequence, and that it runs
// under @offramp/policies' simulate.
import type { ExitContext, ExitSignals } from '@offramp/core';
import { simulate, type Trace } from '@offramp/policies';
import { describe, expect, it } from 'vitest';
import { classifierLogits, initClassifiers } from '../src/train/classifier-train.js';
import {
  DEPTH_FEATURES,
  depthClassifierConfig,
  depthFeatures,
  depthScanPolicy,
  traceToDepthTargets,
  trainDepthClassifier,
} from './depth-policy.js';

function randomTrace(n: number, E: number, C: number, seed: number): Trace {
  let x = seed;
  const r = () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
  const samples = Array.from({ length: n }, () => {
    const maxProb = Array.from({ length: E }, () => 0.2 + 0.8 * r());
    const argmax = Array.from({ length: E }, () => Math.floor(r() * C));
    return {
      maxProb,
      entropy: maxProb.map((p) => (1 - p) * Math.log(C)),
      margin: maxProb.map((p) => p * r()),
      argmax,
      gate: new Array(E).fill(0),
      similarity: new Array(E).fill(0),
      finalPrediction: argmax[E - 1],
    };
  });
  return {
    numExits: E,
    numClasses: C,
    numBlocks: 2 * E,
    exitBlocks: Array.from({ length: E }, (_, e) => 2 * e + 1),
    costFractions: Array.from({ length: E }, (_, e) => (e + 1) / E),
    samples,
  };
}

describe('depthFeatures', () => {
  it('normalises entropy by ln C and flags a changed argmax (never at the first exit)', () => {
    expect(depthFeatures(0.9, Math.log(10) / 2, 0.5, 3, -1, 0.25, 10)).toEqual([0.9, 0.5, 0.5, 0, 0.25, 1]);
    expect(depthFeatures(0.9, 0, 0.5, 3, 3, 0.5, 10)[3]).toBe(0);
    expect(depthFeatures(0.9, 0, 0.5, 3, 4, 0.5, 10)[3]).toBe(1);
    expect(depthFeatures(0.9, 0, 0.5, 0, 1, 0.5, 1)).toHaveLength(DEPTH_FEATURES);
  });
});

describe('traceToDepthTargets', () => {
  it('lays out one sequence of numExits steps per sample, target = exit argmax equals the final one', () => {
    const t = randomTrace(5, 3, 4, 1);
    const d = traceToDepthTargets(t);
    expect(d.Bt).toBe(5);
    expect(d.T).toBe(3);
    expect(d.hidden[0]).toHaveLength(5 * 3 * DEPTH_FEATURES);
    t.samples.forEach((s, i) => {
      for (let e = 0; e < 3; e++) {
        expect(d.labels[0][i * 3 + e]).toBe(s.argmax[e] === s.finalPrediction ? 1 : 0);
        expect(d.hidden[0][(i * 3 + e) * DEPTH_FEATURES]).toBeCloseTo(s.maxProb[e], 12);
      }
      expect(d.labels[0][i * 3 + 2]).toBe(1);
    });
  });
});

describe('depthScanPolicy', () => {
  const trace = randomTrace(40, 4, 6, 7);
  for (const kind of ['mamba', 'ffn'] as const) {
    it(`${kind}: each decision equals σ of the classifier over the sample's whole sequence at that step`, () => {
      const config = depthClassifierConfig(kind);
      const params = initClassifiers(config, 3);
      const full = classifierLogits(config, params, traceToDepthTargets(trace))[0];
      const E = trace.numExits;
      const policy = depthScanPolicy(config, params, 0.5);
      const state = policy.init({
        batchSize: 40,
        numExits: E,
        numClasses: 6,
        exitBlocks: trace.exitBlocks,
        costFractions: trace.costFractions,
      });
      // feed every sample through every exit (no one leaves), in a shuffled row order
      const order = Array.from({ length: 40 }, (_, i) => (i * 17) % 40);
      for (let e = 0; e < E; e++) {
        const ctx: ExitContext = {
          exitIndex: e,
          numExits: E,
          block: trace.exitBlocks[e],
          numBlocks: trace.numBlocks,
          isLast: e === E - 1,
          costFraction: trace.costFractions[e],
          numClasses: 6,
        };
        const s: ExitSignals = {
          count: 40,
          sampleIds: Int32Array.from(order),
          maxProb: Float32Array.from(order, (i) => trace.samples[i].maxProb[e]),
          entropy: Float32Array.from(order, (i) => trace.samples[i].entropy[e]),
          margin: Float32Array.from(order, (i) => trace.samples[i].margin[e]),
          argmax: Int32Array.from(order, (i) => trace.samples[i].argmax[e]),
          gate: new Float32Array(40),
          similarity: new Float32Array(40),
        };
        const d = policy.decide(ctx, s, state);
        let compared = 0;
        order.forEach((i, r) => {
          // the policy sees float32 signals, the reference float64 ones: compare away from the threshold
          const z = full[i * E + e];
          if (Math.abs(z) > 1e-3) {
            expect(Boolean(d[r])).toBe(1 / (1 + Math.exp(-z)) >= 0.5);
            compared++;
          }
        });
        expect(compared).toBeGreaterThan(30);
      }
    });
  }

  it('runs under simulate: threshold 0 exits everything at the first exit, threshold 1 almost nothing early', () => {
    const config = depthClassifierConfig('mamba');
    const params = initClassifiers(config, 5);
    const all = simulate(depthScanPolicy(config, params, 0), trace);
    expect(all.exitHistogram[0]).toBe(40);
    const none = simulate(depthScanPolicy(config, params, 1), trace);
    expect(none.meanCost).toBeGreaterThan(all.meanCost);
  });

  it('training lowers the distillation loss', () => {
    const t = randomTrace(200, 3, 3, 11);
    const r = trainDepthClassifier('mamba', t, { steps: 60, batch: 32, seed: 1 });
    const head = r.losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const tail = r.losses.slice(-5).reduce((a, b) => a + b) / 5;
    expect(tail).toBeLessThan(head);
  });

  it('rejects a threshold outside [0, 1] and a classifier of the wrong width', () => {
    const config = depthClassifierConfig('ffn');
    const params = initClassifiers(config, 1);
    expect(() => depthScanPolicy(config, params, 1.5)).toThrow(/threshold must be in \[0, 1\]/);
    expect(() => depthScanPolicy({ ...config, hiddenSize: 4 }, params, 0.5)).toThrow(/width 6/);
  });
});
