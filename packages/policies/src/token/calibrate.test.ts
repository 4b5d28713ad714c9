// Risk-controlled calibration of token exits on a random decoder: the risk calibrateTokenPolicy tests at each
// threshold equals the disagreement counted directly from the teacher-forced signals, the risk varies over
// the grid, and the chosen threshold keeps the disagreement ≤ ε on fresh tokens in at least 1 − δ of
// random calibration / test splits (up to the binomial spread of the split count).
import {
  createGpuDevice,
  DecoderLM,
  decoderGenerationModel,
  type GpuDevice,
  mulberry32,
  parseDecoderConfig,
  randomDecoderWeights,
} from '@offramp/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binomialCdf } from '../calibration/risk.js';
import { subsetTrace, type Trace } from '../calibration/trace.js';
import { calibrateTokenPolicy, tokenTrace } from './calibrate.js';

let device: GpuDevice;
let lm: DecoderLM;
let trace: Trace;
beforeAll(async () => {
  device = await createGpuDevice();
  const config = parseDecoderConfig({
    hidden_size: 32,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    intermediate_size: 48,
    vocab_size: 19,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    offramp: { exits: [0, 1, 2] },
  });
  lm = new DecoderLM(device, config, randomDecoderWeights(config, 11));
  const rand = mulberry32(5);
  const seqs = Array.from({ length: 64 }, () => Array.from({ length: 50 }, () => Math.floor(rand() * 19)));
  trace = await tokenTrace(decoderGenerationModel(lm), seqs);
});
afterAll(() => {
  lm?.dispose();
  device?.destroy();
});

/** Disagreement of the confidence rule at threshold t, counted from the signals. */
function directRisk(t: Trace, threshold: number): number {
  const th = Math.fround(threshold);
  let bad = 0;
  for (const s of t.samples) {
    let e = 0;
    while (e < t.numExits - 1 && !(s.maxProb[e] >= th)) e++;
    if (s.argmax[e] !== s.finalPrediction) bad++;
  }
  return bad / t.samples.length;
}

describe('token-level risk-controlled calibration', () => {
  it('tests the disagreement with the full model that the signals give, over a grid where it varies', () => {
    expect(trace.samples.length).toBe(64 * 49);
    const thresholds = Array.from({ length: 21 }, (_, i) => 1 - i * 0.05);
    const cal = calibrateTokenPolicy(trace, 'confidence', { epsilon: 0.5, delta: 0.1, thresholds });
    const risks = cal.tests.map((x) => x.risk);
    cal.tests.forEach((x) => {
      expect(x.risk).toBeCloseTo(directRisk(trace, x.threshold), 12);
    });
    // full depth at threshold 1 (no token leaves early, no disagreement); the risk grows as τ falls
    expect(risks[0]).toBe(0);
    const all = thresholds.map((t) => directRisk(trace, t));
    expect(Math.max(...all)).toBeGreaterThan(0.3);
  });

  it('keeps the risk ≤ ε on fresh tokens with probability ≥ 1 − δ', () => {
    const n = trace.samples.length;
    const epsilon = 0.2;
    const delta = 0.1;
    const splits = 40;
    const rand = mulberry32(21);
    let violations = 0;
    let chosen = 0;
    for (let k = 0; k < splits; k++) {
      const idx = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [idx[i], idx[j]] = [idx[j], idx[i]];
      }
      const cal = subsetTrace(trace, idx.slice(0, n / 2));
      const test = subsetTrace(trace, idx.slice(n / 2));
      const r = calibrateTokenPolicy(cal, 'confidence', {
        epsilon,
        delta,
        thresholds: Array.from({ length: 41 }, (_, i) => 1 - i * 0.025),
      });
      if (r.threshold === null) continue;
      chosen++;
      if (directRisk(test, r.threshold) > epsilon) violations++;
    }
    expect(chosen).toBeGreaterThan(splits / 2);
    // P(violations ≥ v) under the guarantee (each split fails with probability ≤ δ) must not be tiny
    expect(1 - binomialCdf(violations - 1, chosen, delta)).toBeGreaterThan(0.01);
  });
});
