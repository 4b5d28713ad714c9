// The tfjs RBQE enhancer (training) against the engine's (inference): random weights saved as a model folder,
// loaded by the engine on the GPU; every exit's output image must match the tfjs forward of that exit. Also the
// weight layout round trip and the crop sampler.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createGpuDevice,
  definePolicy,
  type EnhancerConfig,
  type GpuDevice,
  ImageEnhancer,
  mulberry32,
  randomEnhancerWeights,
} from '@offramp/core';
import { loadEnhancerDir, saveEnhancerDir } from '@offramp/core/node';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { forwardTf, fromTf, makePool, Rng, sampleBatch, toTf } from './rbqe.js';

const cfg: EnhancerConfig = { architecture: 'rbqe_enhancer', levels: 3, channels: 6, attention_hidden: 3 };
let gpu: GpuDevice;
beforeAll(async () => {
  await initBackend('cpu', () => {});
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

const exitAt = definePolicy((o: { k: number }) => ({
  name: 'exit-at',
  init: () => null,
  decide: (ctx, s) => new Uint8Array(s.count).fill(ctx.exitIndex >= o.k ? 1 : 0),
}));

describe('rbqe training model', () => {
  it('tfjs forward equals the engine at every exit after a save / load round trip', async () => {
    const host = randomEnhancerWeights(cfg, 12);
    const w = toTf(cfg, host);
    const back = await fromTf(cfg, w);
    for (const [name, t] of host) expect(Array.from(back.get(name)?.data ?? [])).toEqual(Array.from(t.data));
    const dir = mkdtempSync(join(tmpdir(), 'rbqe-parity-'));
    saveEnhancerDir(dir, cfg, back);
    const loaded = loadEnhancerDir(dir);
    const enh = new ImageEnhancer(gpu, loaded.config, loaded.tensors);
    const H = 24;
    const W = 32;
    const rand = mulberry32(5);
    const img = Float32Array.from({ length: H * W }, () => rand());
    const tfOuts = tf.tidy(() =>
      forwardTf(cfg, w, tf.tensor4d(img, [1, H, W, 1])).map((o) => o.dataSync() as Float32Array),
    );
    for (let k = 0; k < cfg.levels; k++) {
      const [res] = await enh.enhance([{ width: W, height: H, data: img }], { policy: exitAt({ k }), mode: 'host' });
      expect(res.exitIndex).toBe(k);
      let m = 0;
      for (let i = 0; i < H * W; i++) m = Math.max(m, Math.abs(res.data[i] - Math.min(1, Math.max(0, tfOuts[k][i]))));
      expect(m, `exit ${k}`).toBeLessThan(1e-4);
    }
    enh.dispose();
    for (const v of w.values()) v.dispose();
    rmSync(dir, { recursive: true });
  });

  it('samples aligned input / target crops at random qualities, deterministic per seed', () => {
    const rand = mulberry32(1);
    const img = { width: 40, height: 36, data: Float32Array.from({ length: 40 * 36 }, () => rand()) };
    const pool = makePool([img]);
    const a = sampleBatch(pool, new Rng(3), 4, 16);
    const b = sampleBatch(pool, new Rng(3), 4, 16);
    expect(Array.from(a.x)).toEqual(Array.from(b.x));
    // every target value is a pixel of the clean image, and inputs differ from targets (JPEG)
    const values = new Set(img.data);
    for (const v of a.y) expect(values.has(v)).toBe(true);
    let diff = 0;
    for (let i = 0; i < a.x.length; i++) diff += Math.abs(a.x[i] - a.y[i]);
    expect(diff / a.x.length).toBeGreaterThan(0.01);
  });
});
