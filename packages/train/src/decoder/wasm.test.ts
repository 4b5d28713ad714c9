import { mulberry32, randn } from '@offramp/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initDecoderBackend } from './backend.js';
import { fromHfTensors, readDecoderSafetensors, writeDecoderSafetensors } from './export.js';
import { type DecoderDims, DecoderModel, initValues } from './model.js';
import { referenceLogits } from './reference.js';

const dims: DecoderDims = {
  vocab: 13,
  d: 32,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  ffn: 40,
  ropeTheta: 1000,
  eps: 1e-5,
  maxPos: 32,
};

beforeAll(async () => {
  expect(await initDecoderBackend('wasm', () => {})).toBe('wasm');
});

describe('decoder on the WebAssembly backend (the training backend of austen-decoder)', () => {
  it('gives the float64 reference logits on exported weights', async () => {
    const rand = mulberry32(21);
    const values = initValues(dims, rand);
    for (const [name, a] of values) {
      const r = randn(a.length, rand, 0.3);
      for (let i = 0; i < a.length; i++) a[i] = /ln|norm/.test(name) ? 1 + r[i] : r[i];
    }
    const hf = readDecoderSafetensors(writeDecoderSafetensors(values, dims, 'F32'));
    const m = new DecoderModel(dims, fromHfTensors(hf, dims));
    expect(tf.getBackend()).toBe('wasm');
    const T = 20;
    const ids = Int32Array.from({ length: T }, () => Math.floor(rand() * dims.vocab));
    const t = tf.tidy(() => m.hidden(ids, 1, T, [0, 1]).map((h) => m.head(h)));
    const got = (await Promise.all(t.map((x) => x.data()))) as Float32Array[];
    tf.dispose(t);
    const ref = referenceLogits(hf, dims, ids, [0, 1]);
    let worst = 0;
    for (const [j, rows] of ref.entries())
      for (const [p, z] of rows.entries())
        for (const [c, v] of z.entries())
          worst = Math.max(worst, Math.abs(got[j][p * dims.vocab + c] - v) / Math.max(1, Math.abs(v)));
    expect(worst).toBeLessThan(1e-4);
    m.dispose();
  });
});
