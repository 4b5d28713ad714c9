// The device sampler: greedy against the host argmax, the empirical distribution of temperature / top-k /
// top-p draws against the exact softmax over the kept set (chi-square at α = 0.001 on a tiny vocabulary),
// excluded tokens never drawn, and draws keyed by (seed, row key, step) independent of the batch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmaxOf } from '../models/sampling.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { mulberry32 } from '../util/random.js';
import { sampleReferenceRow, sampleTokens, uniform3 } from './sample.js';

let device: GpuDevice;
beforeAll(async () => {
  device = await createGpuDevice();
});
afterAll(() => device?.destroy());

interface Opts {
  temperature: number;
  topK?: number;
  topP?: number;
  seed?: number;
  step?: number;
}

async function sample(logits: Float32Array, rows: number, V: number, o: Opts, keys?: number[]): Promise<Uint32Array> {
  const z = device.tensor('f32', [rows, V], logits);
  const k = device.tensor('u32', [rows], keys ?? Array.from({ length: rows }, (_, i) => i));
  const t = device.tensor('u32', [rows]);
  device.dispatch(
    sampleTokens,
    { logits: z, keys: k, tokens: t },
    {
      rows,
      V,
      temperature: o.temperature,
      topK: o.topK ?? 0,
      topP: o.topP ?? 1,
      seed: o.seed ?? 0,
      step: o.step ?? 0,
    },
  );
  const out = (await t.read()) as Uint32Array;
  for (const x of [z, k, t]) x.dispose();
  return out;
}

/** Exact kept-set distribution in f64: sort by logit (index on ties), top-k, softmax at T, top-p. */
function exactDistribution(z: number[], o: Opts): Float64Array {
  const V = z.length;
  const ids = Array.from({ length: V }, (_, i) => i).sort((a, b) => z[b] - z[a] || a - b);
  const k = o.topK && o.topK < V ? o.topK : V;
  const top = ids.slice(0, k);
  const m = z[top[0]];
  const w = top.map((i) => Math.exp((z[i] - m) / o.temperature));
  const total = w.reduce((a, b) => a + b, 0);
  let keep = k;
  if (o.topP !== undefined && o.topP < 1) {
    let acc = 0;
    keep = w.findIndex((x) => {
      acc += x / total;
      return acc >= o.topP!;
    });
    keep = keep < 0 ? k : keep + 1;
  }
  const p = new Float64Array(V);
  const mass = w.slice(0, keep).reduce((a, b) => a + b, 0);
  for (let i = 0; i < keep; i++) p[top[i]] = w[i] / mass;
  return p;
}

// upper 0.1% points of chi-square with df = 1..7
const CHI2_999 = [10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322];

describe('sampleTokens', () => {
  it('greedy equals the host argmax (lowest index on ties), over several vocabulary sizes', async () => {
    const rand = mulberry32(7);
    for (const V of [1, 5, 37, 64, 65, 1000, 4099]) {
      const rows = 6;
      const z = Float32Array.from({ length: rows * V }, () => Math.round((rand() * 2 - 1) * 8) / 2);
      const got = await sample(z, rows, V, { temperature: 0 });
      for (let r = 0; r < rows; r++) expect(got[r], `V ${V} row ${r}`).toBe(argmaxOf(z, r * V, V));
    }
  });

  const z = [1.3, 0.2, -0.4, 2.0, 0.9, -1.7];
  const cases: [string, Opts][] = [
    ['temperature 1', { temperature: 1 }],
    ['temperature 0.6', { temperature: 0.6 }],
    ['temperature 1.5, top-k 3', { temperature: 1.5, topK: 3 }],
    ['temperature 1, top-p 0.8', { temperature: 1, topP: 0.8 }],
    ['temperature 0.8, top-k 4, top-p 0.9', { temperature: 0.8, topK: 4, topP: 0.9 }],
  ];
  it.each(cases)('%s: empirical distribution matches the exact one (chi-square, α = 0.001)', async (_, o) => {
    const V = z.length;
    const p = exactDistribution(z, o);
    const counts = new Float64Array(V);
    // many draws: 4 seeds × 2500 row keys
    let n = 0;
    for (const seed of [1, 2, 3, 4]) {
      const rows = 2500;
      const logits = new Float32Array(rows * V);
      for (let r = 0; r < rows; r++) logits.set(z, r * V);
      const got = await sample(logits, rows, V, { ...o, seed, step: seed * 11 });
      for (const t of got) counts[t]++;
      n += rows;
    }
    let chi2 = 0;
    let df = -1;
    for (let i = 0; i < V; i++) {
      if (p[i] === 0) {
        expect(counts[i], `excluded token ${i} drawn`).toBe(0);
        continue;
      }
      df++;
      chi2 += (counts[i] - n * p[i]) ** 2 / (n * p[i]);
    }
    expect(df).toBeGreaterThan(0);
    expect(chi2, `chi-square ${chi2.toFixed(2)} with ${df} degrees of freedom`).toBeLessThan(CHI2_999[df - 1]);
  });

  it('top-k and top-p never emit excluded tokens (random rows, V = 300, ties included)', async () => {
    const rand = mulberry32(3);
    const V = 300;
    const rows = 64;
    const zs = Float32Array.from({ length: rows * V }, () => Math.round(rand() * 40) / 4);
    for (const o of [
      { temperature: 1, topK: 5 },
      { temperature: 0.7, topP: 0.5 },
      { temperature: 2, topK: 20, topP: 0.3 },
      { temperature: 1, topK: 1 },
    ]) {
      for (const step of [0, 1, 2]) {
        const got = await sample(zs, rows, V, { ...o, seed: 9, step });
        for (let r = 0; r < rows; r++) {
          const row = Array.from(zs.subarray(r * V, (r + 1) * V));
          const p = exactDistribution(row, o);
          expect(p[got[r]], `row ${r}, ${JSON.stringify(o)}: token ${got[r]} is outside the kept set`).toBeGreaterThan(
            0,
          );
          // the kernel's cut-offs equal the sorted f64 reference's
          expect(got[r]).toBe(sampleReferenceRow(zs, r * V, { rows, V, topK: 0, topP: 1, seed: 9, step, ...o }, r));
        }
      }
    }
  });

  it('a draw depends on (seed, row key, step) only, not on the batch around it', async () => {
    const rand = mulberry32(11);
    const V = 50;
    const rows = 8;
    const zs = Float32Array.from({ length: rows * V }, () => rand() * 4);
    const o = { temperature: 1.2, topK: 20, topP: 0.95, seed: 1234, step: 17 };
    const keys = [40, 41, 42, 43, 44, 45, 46, 47];
    const batch = await sample(zs, rows, V, o, keys);
    // each row alone, and the batch reversed
    for (let r = 0; r < rows; r++) {
      const one = await sample(zs.slice(r * V, (r + 1) * V), 1, V, o, [keys[r]]);
      expect(one[0]).toBe(batch[r]);
    }
    const rev = new Float32Array(rows * V);
    for (let r = 0; r < rows; r++) rev.set(zs.subarray(r * V, (r + 1) * V), (rows - 1 - r) * V);
    const back = await sample(rev, rows, V, o, [...keys].reverse());
    for (let r = 0; r < rows; r++) expect(back[rows - 1 - r]).toBe(batch[r]);
    // and a different step or seed changes the uniform numbers
    expect(uniform3(1234, 40, 17)).not.toBe(uniform3(1234, 40, 18));
    expect(uniform3(1234, 40, 17)).not.toBe(uniform3(1235, 40, 17));
  });

  it('the hash gives uniform numbers (chi-square over 16 bins, α = 0.001)', () => {
    const bins = new Float64Array(16);
    let n = 0;
    for (let key = 0; key < 64; key++)
      for (let step = 0; step < 500; step++) {
        bins[Math.floor(uniform3(5, key, step) * 16)]++;
        n++;
      }
    const e = n / 16;
    const chi2 = bins.reduce((a, c) => a + (c - e) ** 2 / e, 0);
    expect(chi2).toBeLessThan(37.697); // df 15
  });
});
