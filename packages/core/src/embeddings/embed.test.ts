// The engine's embedder against the float64 reference (embedReference), on the GPU (lavapipe in CI) and the CPU
// reference device: every exit in one pass, one exit at a time (rows leave there), padding, unit length, FLOPs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Runner } from '../engine/runner.js';
import { CpuDevice } from '../runtime/cpu-device.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { Device } from '../runtime/device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { mulberry32 } from '../util/random.js';
import { type EncoderEmbedderConfig, parseEmbedderConfig } from './config.js';
import { embed } from './embed.js';
import { buildEmbedder } from './model.js';
import { randomEmbedderWeights } from './random-weights.js';
import { embedReference } from './reference.js';

const cfg: EncoderEmbedderConfig = {
  architecture: 'encoder_embedder',
  vocab_size: 50,
  max_position: 40,
  hidden_size: 16,
  num_layers: 3,
  num_heads: 2,
  intermediate_size: 24,
  layer_norm_eps: 1e-5,
  pad_token_id: 49,
  exit_blocks: [0, 1, 2],
  embedding_dim: 12,
  exit_embedding_dim: 4,
  pooling: 'mean',
};

const weights = randomEmbedderWeights(cfg, 3);
const rand = mulberry32(11);
// token ids in [0, 49): never the pad id; lengths 1 .. 37 (buckets 8, 16, 32, 40)
const rows = [1, 2, 5, 9, 17, 30, 37].map((len) => Array.from({ length: len }, () => Math.floor(rand() * 49)));
const reference = rows.map((r) => embedReference(cfg, weights, r));

let gpu: GpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

const cpu = new CpuDevice();
const devices: [string, () => Device][] = [
  ['gpu', () => gpu],
  ['cpu', () => cpu],
];

describe.each(devices)('embedder on the %s device', (_name, device) => {
  it('every exit in one pass matches the float64 reference, padded or not', async () => {
    const model = buildEmbedder(device(), cfg, weights);
    const runner = new Runner(device(), model, { maxBatch: 4 });
    for (const input of [{ ids: rows }, { ids: rows.map((r) => [...r, 49, 49, 49].slice(0, 40)) }]) {
      const r = await embed(runner, input, { exit: 'all' });
      expect(r.exits).toEqual([0, 1, 2]);
      for (let j = 0; j < 3; j++) {
        rows.forEach((_, i) => {
          const got = r.vectors[j].subarray(i * 12, (i + 1) * 12);
          let maxErr = 0;
          let sq = 0;
          got.forEach((v, k) => {
            maxErr = Math.max(maxErr, Math.abs(v - reference[i][j][k]));
            sq += v * v;
          });
          expect(maxErr, `row ${i}, exit ${j}`).toBeLessThan(2e-5);
          expect(Math.sqrt(sq)).toBeCloseTo(1, 5);
        });
      }
    }
    runner.dispose();
    model.dispose();
  });

  it('one exit at a time: the same vectors, and FLOPs grow with the exit', async () => {
    const model = buildEmbedder(device(), cfg, weights);
    const runner = new Runner(device(), model, { maxBatch: 8 });
    const all = await embed(runner, { ids: rows }, { exit: 'all' });
    let prev = 0;
    for (let j = 0; j < 3; j++) {
      const r = await embed(runner, { ids: rows }, { exit: j });
      expect(r.exits).toEqual([j]);
      r.vectors[0].forEach((v, k) => {
        expect(Math.abs(v - all.vectors[j][k])).toBeLessThan(1e-6);
      });
      expect(r.flops[0]).toBeGreaterThan(prev);
      prev = r.flops[0];
    }
    expect(all.flops[0]).toBe(prev);
    await expect(embed(runner, { ids: rows }, { exit: 3 })).rejects.toThrow(
      /exit is 3; expected an integer in \[0, 2\]/,
    );
    runner.dispose();
    model.dispose();
  });
});

describe('embedder config and weights', () => {
  it('rejects bad configs and weights with the field and what is allowed', () => {
    expect(() => parseEmbedderConfig({ ...cfg, exit_blocks: [0, 1] })).toThrow(/exit_blocks is \[0,1\]; expected/);
    expect(() => parseEmbedderConfig({ ...cfg, pooling: 'cls' })).toThrow(/pooling is "cls"; allowed: "mean"/);
    expect(() => parseEmbedderConfig({ ...cfg, hidden_size: 15 })).toThrow(/divisible by num_heads/);
    const missing = new Map(weights);
    missing.delete('head.exit_embedding.weight');
    expect(() => buildEmbedder(new CpuDevice(), cfg, missing)).toThrow(/head\.exit_embedding\.weight/);
  });
});
