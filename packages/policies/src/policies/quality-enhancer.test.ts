// The quality policy on the RBQE enhancer (core), end to end on the GPU: per-sample exits decided from the
// no-reference quality score the engine writes into the gate slot, device mode identical to host mode, and
// every sample leaving at the first exit whose score reaches the threshold.
import {
  createGpuDevice,
  type EnhancerConfig,
  type GpuDevice,
  mulberry32,
  neverExit,
  RbqeEnhancer,
  Runner,
  randomEnhancerWeights,
  uploadEnhancerWeights,
} from '@offramp/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { quality } from './quality.js';

const cfg: EnhancerConfig = { architecture: 'rbqe_enhancer', levels: 3, channels: 8, attention_hidden: 4 };
const H = 32;
const W = 40;

let gpu: GpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

it('quality policy: device mode equals host mode, exits at the first score ≥ threshold, mixed depths', async () => {
  const rand = mulberry32(4);
  const n = 12;
  const inputs = Array.from({ length: n }, (_, i) => {
    const noise = (i / n) * 0.3;
    const a = 0.2 + 0.6 * rand();
    return Float32Array.from({ length: H * W }, (_, p) =>
      Math.min(1, Math.max(0, a + ((p % W) - W / 2) * 0.004 + (rand() - 0.5) * noise)),
    );
  });
  const model = new RbqeEnhancer(cfg, uploadEnhancerWeights(gpu, cfg, randomEnhancerWeights(cfg, 9)), H, W, true);
  const runner = new Runner(gpu, model, { maxBatch: 16 });
  const traced = await runner.run({ features: inputs }, { policy: neverExit(), trace: true });
  const scores = traced.samples.map((s) => s.trace?.gate ?? []);
  // a threshold between two observed first-exit scores, far (relative to f32) from every score
  const all = scores.flat().sort((x, y) => x - y);
  let t = Number.NaN;
  let best = 0;
  const first = scores.map((s) => s[0]).sort((x, y) => x - y);
  for (let i = 1; i < first.length; i++) {
    const mid = (first[i - 1] + first[i]) / 2;
    const gap = Math.min(...all.map((v) => Math.abs(v - mid)));
    if (i >= 3 && i <= n - 3 && gap > best) {
      best = gap;
      t = mid;
    }
  }
  expect(best).toBeGreaterThan(1e-5);
  const host = await runner.run({ features: inputs }, { policy: quality({ threshold: t }), mode: 'host' });
  const device = await runner.run({ features: inputs }, { policy: quality({ threshold: t }), mode: 'device' });
  const depths = new Set<number>();
  for (let i = 0; i < n; i++) {
    const firstOk = scores[i].findIndex((q) => q >= t);
    const want = firstOk < 0 ? cfg.levels - 1 : firstOk;
    expect(host.samples[i].exitIndex, `sample ${i}`).toBe(want);
    expect(device.samples[i].exitIndex, `sample ${i}`).toBe(want);
    expect(Array.from(device.samples[i].logits)).toEqual(Array.from(host.samples[i].logits));
    depths.add(want);
  }
  expect(depths.size).toBeGreaterThan(1);
  runner.dispose();
  model.dispose();
});
