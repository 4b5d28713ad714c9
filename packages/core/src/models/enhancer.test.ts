// The RBQE enhancer through the Runner on the GPU against the float64 forward (testing-internal): every exit's
// output image, the quality score the engine writes into the gate signal, per-sample exits in host mode,
// FLOPs per exit; padding helpers and validation.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePolicy, neverExit } from '../engine/policy.js';
import { Runner } from '../engine/runner.js';
import { QUALITY_SSM_THRESHOLD, qualityScoreReference } from '../kernels/quality-score-reference.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { refEnhancer } from '../testing-internal/enhancer-reference.js';
import { mulberry32 } from '../util/random.js';
import { loadEnhancerDir, saveEnhancerDir } from '../weights/enhancer-dir.js';
import {
  cropPlane,
  type EnhancerConfig,
  enhancerTensorSpec,
  padReplicate,
  padUp,
  RbqeEnhancer,
  randomEnhancerWeights,
  uploadEnhancerWeights,
} from './enhancer.js';
import { ImageEnhancer } from './image-enhancer.js';

const cfg: EnhancerConfig = { architecture: 'rbqe_enhancer', levels: 3, channels: 8, attention_hidden: 4 };
const H = 40;
const W = 48;

/** Piecewise-smooth images with 8×8 blocking steps and some noise: JPEG-like inputs. */
function images(n: number, seed: number): Float32Array[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const img = new Float32Array(H * W);
    const a = rand();
    const gx = (rand() - 0.5) * 0.02;
    const noise = rand() * 0.2;
    const block = rand() * 0.1;
    const steps = Array.from({ length: (H / 8) * (W / 8) }, () => (rand() - 0.5) * block);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const v = a + gx * x + steps[(y >> 3) * (W / 8) + (x >> 3)] + (rand() - 0.5) * noise;
        img[y * W + x] = Math.min(1, Math.max(0, v));
      }
    return img;
  });
}

const exitBySample = definePolicy((o: { plan: number[] }) => ({
  name: 'by-sample',
  init: () => null,
  decide: (ctx, s) => Array.from(s.sampleIds, (sid) => o.plan[sid] <= ctx.exitIndex),
}));

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

let gpu: GpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

describe('RbqeEnhancer on the Runner', () => {
  const host = randomEnhancerWeights(cfg, 5);
  const n = 7;
  const inputs = images(n, 11);
  const refs = inputs.map((img) => refEnhancer(cfg, host, img, H, W));

  it('never-exit gives the last exit of the float64 forward; the gate signal is each exit’s quality score', async () => {
    const weights = uploadEnhancerWeights(gpu, cfg, host);
    const model = new RbqeEnhancer(cfg, weights, H, W, true);
    const runner = new Runner(gpu, model, { maxBatch: 8 });
    const res = await runner.run({ features: inputs }, { policy: neverExit(), trace: true, mode: 'device' });
    for (let i = 0; i < n; i++) {
      const s = res.samples[i];
      expect(s.exitIndex).toBe(cfg.levels - 1);
      expect(s.logits).toHaveLength(H * W);
      expect(maxAbsDiff(s.logits, refs[i][cfg.levels - 1])).toBeLessThan(1e-4);
      expect(s.trace?.gate).toHaveLength(cfg.levels);
      for (let k = 0; k < cfg.levels; k++) {
        const q = qualityScoreReference(refs[i][k], 1, H, W);
        // f32 outputs differ from float64 by ~1e-6: no block may sit that close to the SSM threshold
        expect(Math.min(...q.blocks.map((b) => Math.abs(b.ssm - QUALITY_SSM_THRESHOLD)))).toBeGreaterThan(1e-5);
        expect(Math.abs((s.trace?.gate[k] ?? Number.NaN) - q.score), `sample ${i} exit ${k}`).toBeLessThan(1e-3);
      }
    }
    runner.dispose();
    model.dispose();
  });

  it('per-sample exits: each sample leaves where planned with that exit’s image; FLOPs grow with depth', async () => {
    const weights = uploadEnhancerWeights(gpu, cfg, host);
    const model = new RbqeEnhancer(cfg, weights, H, W, true);
    const runner = new Runner(gpu, model, { maxBatch: 8 });
    const plan = Array.from({ length: n }, (_, i) => (i * 2) % cfg.levels);
    const res = await runner.run({ features: inputs }, { policy: exitBySample({ plan }), mode: 'host' });
    const flopsAt: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = res.samples[i];
      expect(s.exitIndex).toBe(plan[i]);
      expect(maxAbsDiff(s.logits, refs[i][plan[i]])).toBeLessThan(1e-4);
      flopsAt[plan[i]] = s.flops;
    }
    expect(flopsAt[0]).toBeLessThan(flopsAt[1]);
    expect(flopsAt[1]).toBeLessThan(flopsAt[2]);
    expect(res.samples.find((s) => s.exitIndex === 2)?.costFraction).toBe(1);
    runner.dispose();
    model.dispose();
  });
});

describe('enhancer helpers and validation', () => {
  it('pads by replicating edges and crops back exactly', () => {
    const rand = mulberry32(2);
    const img = Float32Array.from({ length: 13 * 21 }, () => rand());
    const ph = padUp(13, 8);
    const pw = padUp(21, 8);
    expect([ph, pw]).toEqual([16, 24]);
    const p = padReplicate(img, 13, 21, ph, pw);
    expect(p[15 * pw + 23]).toBe(img[12 * 21 + 20]);
    expect(p[3 * pw + 22]).toBe(img[3 * 21 + 20]);
    expect(Array.from(cropPlane(p, pw, 13, 21))).toEqual(Array.from(img));
  });

  it('rejects sizes that are not multiples of 2^levels, bad configs and wrong weights', () => {
    const w = uploadEnhancerWeights(gpu, cfg, randomEnhancerWeights(cfg, 1));
    expect(() => new RbqeEnhancer(cfg, w, 40, 44)).toThrow(/multiples of 2\^levels = 8/);
    expect(() => enhancerTensorSpec({ ...cfg, channels: 0 })).toThrow(/channels must be an integer/);
    const bad = randomEnhancerWeights(cfg, 1);
    bad.delete('node.0.1.weight');
    expect(() => uploadEnhancerWeights(gpu, cfg, bad)).toThrow(/'node\.0\.1\.weight' is missing/);
    for (const t of w.values()) t.dispose();
  });
});

describe('ImageEnhancer: any size, mixed sizes, folders', () => {
  it('pads, groups sizes, crops back to the float64 forward of the padded image, and rejects huge images', async () => {
    const host = randomEnhancerWeights(cfg, 3);
    const enh = new ImageEnhancer(gpu, cfg, host, { maxPixels: 64 * 64 });
    const rand = mulberry32(8);
    const sizes = [
      [37, 45],
      [40, 48],
      [33, 41],
    ];
    const imgs = sizes.map(([h, w]) => ({
      width: w,
      height: h,
      data: Float32Array.from({ length: h * w }, () => rand()),
    }));
    const out = await enh.enhance(imgs, { policy: neverExit() });
    for (const [i, img] of imgs.entries()) {
      const ph = padUp(img.height, 8);
      const pw = padUp(img.width, 8);
      const ref = refEnhancer(cfg, host, padReplicate(img.data, img.height, img.width, ph, pw), ph, pw)[cfg.levels - 1];
      const want = cropPlane(ref, pw, img.height, img.width).map((v) => Math.min(1, Math.max(0, v)));
      expect([out[i].width, out[i].height]).toEqual([img.width, img.height]);
      expect(maxAbsDiff(out[i].data, want)).toBeLessThan(1e-4);
      expect(out[i].exitIndex).toBe(cfg.levels - 1);
    }
    const flops = enh.flopsPerExit(45, 37);
    expect(flops).toHaveLength(cfg.levels);
    expect(flops[0]).toBeLessThan(flops[2]);
    await expect(
      enh.enhance([{ width: 100, height: 90, data: new Float32Array(9000) }], { policy: neverExit() }),
    ).rejects.toThrow(/100×90 \(9,000 pixels\); at most 4,096 pixels/);
    await expect(
      enh.enhance([{ width: 8, height: 90, data: new Float32Array(720) }], { policy: neverExit() }),
    ).rejects.toThrow(/at least 16×16/);
    enh.dispose();
  });

  it('keeps at most maxSizes compiled sizes (least recently used idle ones go) and gives the same images after', async () => {
    const host = randomEnhancerWeights(cfg, 4);
    const small = new ImageEnhancer(gpu, cfg, host, { maxSizes: 2 });
    const rand = mulberry32(9);
    const img = (h: number, w: number) => ({
      width: w,
      height: h,
      data: Float32Array.from({ length: h * w }, () => rand()),
    });
    const a = img(16, 16);
    const imgs = [a, img(24, 16), img(16, 24), a];
    const first: Float32Array[] = [];
    for (const x of imgs) {
      const [r] = await small.enhance([x], { policy: neverExit() });
      first.push(r.data);
      expect(small.cachedSizes).toBeLessThanOrEqual(2);
    }
    // the 16×16 runner was evicted by the third size and built again for the fourth image
    expect(maxAbsDiff(first[3], first[0])).toBe(0);
    // all four in one call (three sizes) still keeps two and matches
    const all = await small.enhance(imgs, { policy: neverExit() });
    all.forEach((r, i) => {
      expect(maxAbsDiff(r.data, first[i])).toBe(0);
    });
    expect(small.cachedSizes).toBeLessThanOrEqual(2);
    expect(() => new ImageEnhancer(gpu, cfg, host, { maxSizes: 0 })).toThrow(/maxSizes must be a positive integer/);
    small.dispose();
  });

  it('saves and loads a model folder; a classifier folder is refused by name', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rbqe-'));
    const host = randomEnhancerWeights(cfg, 4);
    saveEnhancerDir(dir, cfg, host, { note: 'test' });
    const back = loadEnhancerDir(dir);
    expect(back.config).toEqual(cfg);
    expect(back.meta).toEqual({ note: 'test' });
    for (const [name, t] of host) expect(Array.from(back.tensors.get(name)?.data ?? [])).toEqual(Array.from(t.data));
    writeFileSync(
      path.join(dir, 'config.json'),
      JSON.stringify({ offramp_format: 1, model: { architecture: 'cnn_classifier' } }),
    );
    expect(() => loadEnhancerDir(dir)).toThrow(/'cnn_classifier' is not an image enhancer/);
    expect(() => loadEnhancerDir(path.join(dir, 'nope'))).toThrow(/does not exist/);
    rmSync(dir, { recursive: true });
  });
});
