// Prefill attention (causal, over the whole sequence) against token-by-token decoding with kvAppend and
// attentionDecode, on the GPU device; and the parameter checks of the attention kernels.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { TOLERANCES } from '../runtime/conformance.js';
import { CpuDevice } from '../runtime/cpu-device.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { Device } from '../runtime/device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { mulberry32, randomArray } from '../util/random.js';
import { attention } from './attention.js';
import { attentionDecode, kvAppend } from './attention-decode.js';

let gpu: GpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

const { atol, rtol } = TOLERANCES.accumulate;
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= atol + rtol * Math.abs(want[i]))) {
      expect.fail(`${what}: element ${i} is ${got[i]}, want ${want[i]} (|err| ${err})`);
    }
  }
}

interface Decoded {
  /** (T, B, d): the output of every step. */
  steps: Float32Array;
  kCache: Float32Array;
  vCache: Float32Array;
}

/** Decodes the T tokens of `qkv` (B, T, 3d) one at a time: append k, v at position t, attend over t + 1. */
async function decode(
  device: Device,
  qkv: Float32Array,
  p: { B: number; T: number; Tmax: number; d: number; heads: number; scale: number },
): Promise<Decoded> {
  const { B, T, Tmax, d, heads, scale } = p;
  const kCache = device.tensor('f32', [B, Tmax, d], new Float32Array(B * Tmax * d).fill(Number.NaN), 'kCache');
  const vCache = device.tensor('f32', [B, Tmax, d], new Float32Array(B * Tmax * d).fill(Number.NaN), 'vCache');
  const tok = device.tensor('f32', [B, 3 * d], undefined, 'token qkv');
  const q = device.tensor('f32', [B, d], undefined, 'q');
  const pos = device.tensor('u32', [B], undefined, 'pos');
  const lengths = device.tensor('u32', [B], undefined, 'lengths');
  const out = device.tensor('f32', [B, d], undefined, 'out');
  const steps = new Float32Array(T * B * d);
  for (let t = 0; t < T; t++) {
    const tokHost = new Float32Array(B * 3 * d);
    const qHost = new Float32Array(B * d);
    for (let b = 0; b < B; b++) {
      const row = qkv.subarray((b * T + t) * 3 * d, (b * T + t + 1) * 3 * d);
      tokHost.set(row, b * 3 * d);
      qHost.set(row.subarray(0, d), b * d);
    }
    tok.write(tokHost);
    q.write(qHost);
    pos.write(new Uint32Array(B).fill(t));
    lengths.write(new Uint32Array(B).fill(t + 1));
    device.dispatch(kvAppend, { qkv: tok, pos, kCache, vCache }, { B, Tmax, d });
    device.dispatch(attentionDecode, { kCache, vCache, q, lengths, out }, { B, Tmax, d, heads, scale });
    steps.set(await out.read(), t * B * d);
  }
  const result = {
    steps,
    kCache: (await kCache.read()) as Float32Array,
    vCache: (await vCache.read()) as Float32Array,
  };
  for (const t of [kCache, vCache, tok, q, pos, lengths, out]) t.dispose();
  return result;
}

describe('prefill attention equals token-by-token decoding', () => {
  it.each([
    { B: 1, T: 1, d: 8, heads: 1 },
    { B: 3, T: 17, d: 32, heads: 4 },
    { B: 2, T: 64, d: 64, heads: 2 },
    { B: 2, T: 5, d: 10, heads: 2 },
  ])('B=$B T=$T d=$d heads=$heads', async ({ B, T, d, heads }) => {
    const scale = 1 / Math.sqrt(d / heads);
    const Tmax = T + 3;
    const rand = mulberry32(7 + T);
    const qkv = randomArray(B * T * 3 * d, rand);
    // row 0 sees the whole sequence; later rows stop earlier (prefill masks keys ≥ length)
    const len = Array.from({ length: B }, (_, b) => Math.max(1, T - 4 * b));

    const qkvT = gpu.tensor('f32', [B, T, 3 * d], qkv, 'qkv');
    const lengths = gpu.tensor('u32', [B], len, 'lengths');
    const out = gpu.tensor('f32', [B, T, d], undefined, 'out');
    gpu.dispatch(attention, { qkv: qkvT, lengths, out }, { B, T, d, heads, scale }, { causal: true });
    const prefill = await out.read();
    for (const t of [qkvT, lengths, out]) t.dispose();

    const dec = await decode(gpu, qkv, { B, T, Tmax, d, heads, scale });
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < len[b]; t++) {
        const want = prefill.subarray((b * T + t) * d, (b * T + t + 1) * d);
        const got = dec.steps.subarray((t * B + b) * d, (t * B + b + 1) * d);
        expectClose(got, want, `row ${b}, token ${t}`);
      }
    }
    // the caches hold every token's k and v; positions ≥ T were never written (still NaN)
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < Tmax; t++) {
        for (let c = 0; c < d; c++) {
          const i = (b * Tmax + t) * d + c;
          if (t < T) {
            expect(dec.kCache[i]).toBe(qkv[(b * T + t) * 3 * d + d + c]);
            expect(dec.vCache[i]).toBe(qkv[(b * T + t) * 3 * d + 2 * d + c]);
          } else {
            expect(dec.kCache[i]).toBeNaN();
            expect(dec.vCache[i]).toBeNaN();
          }
        }
      }
    }

    // and the CPU device (the references) decodes to the same outputs
    const cpu = await decode(new CpuDevice(), qkv, { B, T, Tmax, d, heads, scale });
    expectClose(dec.steps, cpu.steps, 'GPU vs CPU decoding');
  });
});

describe('parameter checks', () => {
  const cpu = new CpuDevice();
  const f = (n: number) => cpu.tensor('f32', [n]);
  const u = (n: number) => cpu.tensor('u32', [n]);
  it('rejects d not divisible by heads', () => {
    expect(() =>
      cpu.dispatch(attention, { qkv: f(30), lengths: u(1), out: f(10) }, { B: 1, T: 1, d: 10, heads: 3, scale: 1 }),
    ).toThrow(ValidationError);
  });
  it('rejects a head dimension over 128', () => {
    expect(() =>
      cpu.dispatch(
        attentionDecode,
        { kCache: f(258), vCache: f(258), q: f(258), lengths: u(1), out: f(258) },
        { B: 1, Tmax: 1, d: 258, heads: 2, scale: 1 },
      ),
    ).toThrow(/head dimension d \/ heads = 129 is over the supported maximum 128/);
  });
  it('rejects a fixed head size that does not match the head dimension', () => {
    expect(() =>
      cpu.dispatch(
        attention,
        { qkv: f(3 * 32), lengths: u(1), out: f(32) },
        { B: 1, T: 1, d: 32, heads: 2, scale: 1 },
        { causal: false, headDim4: 2 },
      ),
    ).toThrow(/built for head dimension ≤ 8 \(headDim4 2\) but given 16; use headDim4 4 or 0/);
  });
});

describe('a head size fixed at pipeline build', () => {
  it('gives bitwise the same outputs as the generic kernel on the GPU', async () => {
    for (const [B, T, d, heads, causal] of [
      [3, 37, 32, 2, false],
      [2, 64, 40, 4, true],
      [2, 17, 10, 2, true],
    ] as const) {
      const rand = mulberry32(B * 100 + T);
      const qkv = gpu.tensor('f32', [B * T * 3 * d], randomArray(B * T * 3 * d, rand));
      const lengths = gpu.tensor(
        'u32',
        [B],
        Uint32Array.from({ length: B }, (_, b) => (b === 0 ? T : 1 + ((b * 7) % T))),
      );
      const outs: Float32Array[] = [];
      for (const headDim4 of [0, Math.ceil(d / heads / 4)]) {
        const out = gpu.tensor('f32', [B * T * d]);
        gpu.dispatch(attention, { qkv, lengths, out }, { B, T, d, heads, scale: 0.3 }, { causal, headDim4 });
        outs.push(Float32Array.from((await gpu.read(out)) as Float32Array));
        out.dispose();
      }
      expect(Array.from(outs[1]), `B=${B} T=${T} d=${d} heads=${heads}`).toEqual(Array.from(outs[0]));
      qkv.dispose();
      lengths.dispose();
    }
  });
});
