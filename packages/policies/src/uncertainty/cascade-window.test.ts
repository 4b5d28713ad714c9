// The built-in window policy as a cascade's deferral rule on the GPU: the window fitted on validation scores
// (fitWindow) sends on exactly the samples whose combined confidence after stage 0 falls inside it, host and
// device mode agree bit for bit.
import {
  buildModel,
  Cascade,
  createGpuDevice,
  type GpuDevice,
  type MlpClassifierConfig,
  mulberry32,
  neverExit,
  Runner,
  randomWeights,
} from '@offramp/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fitWindow, windowPolicy } from '../policies/window.js';
import { confidenceScores } from './index.js';

let gpu: GpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

it('window cascade: deferrals follow the fitted window; host and device agree', async () => {
  const cfg = (hidden: number): MlpClassifierConfig => ({
    architecture: 'mlp_classifier',
    input_size: 12,
    hidden_size: hidden,
    num_layers: 2,
    num_classes: 3,
    exits: { blocks: [1], head: 'linear' },
  });
  const runners = [16, 24].map((h, k) => new Runner(gpu, buildModel(gpu, cfg(h), randomWeights(cfg(h), 3 + k))));
  const rand = mulberry32(8);
  const rows = (n: number) => ({
    features: Array.from({ length: n }, () => Float32Array.from({ length: 12 }, () => 4 * rand() - 2)),
  });
  const val = rows(60);
  const test = rows(30);
  // stage 0 alone on the validation rows gives the scores the window is fitted on
  const first = await new Cascade([runners[0]]).run(val, { policy: neverExit(), mode: 'host' });
  const scores = Array.from(confidenceScores(first.samples.map((s) => s.probs)));
  const sorted = [...scores].sort((a, b) => a - b);
  const w = fitWindow(scores, sorted[30], 0.2);
  const cascade = new Cascade(runners);
  const host = await cascade.run(test, { policy: windowPolicy(w), mode: 'host' });
  const device = await cascade.run(test, { policy: windowPolicy(w), mode: 'device' });
  const alone = await new Cascade([runners[0]]).run(test, { policy: neverExit(), mode: 'host' });
  const lo = Math.fround(w.wLo);
  const hi = Math.fround(w.wHi);
  alone.samples.forEach((s, i) => {
    const p = Math.max(...s.probs);
    const inside = !(p > hi || p < lo);
    expect(host.samples[i].stage).toBe(inside ? 1 : 0);
    expect(device.samples[i].stage).toBe(host.samples[i].stage);
    expect(Array.from(device.samples[i].logits)).toEqual(Array.from(host.samples[i].logits));
  });
  expect(host.summary.stageCounts[1]).toBeGreaterThan(0);
  expect(host.summary.stageCounts[0]).toBeGreaterThan(0);
});
