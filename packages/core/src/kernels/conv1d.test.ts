// conv1dStep run T times from a zero state against conv1dCausal over the whole sequence, on the GPU
// device: the outputs agree and the final state holds the last K inputs (zeros before the sequence start).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { TOLERANCES } from '../runtime/conformance.js';
import { CpuDevice } from '../runtime/cpu-device.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { mulberry32, randomArray } from '../util/random.js';
import { conv1dCausal, conv1dStep } from './conv1d.js';

let gpu: GpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

const { atol, rtol } = TOLERANCES.transcendental;

describe('conv1dStep over a sequence equals conv1dCausal', () => {
  it.each([
    { B: 1, T: 1, D: 1, K: 1, bias: false, silu: false },
    { B: 2, T: 2, D: 5, K: 4, bias: true, silu: true },
    { B: 3, T: 17, D: 67, K: 4, bias: true, silu: true },
    { B: 2, T: 9, D: 13, K: 7, bias: false, silu: false },
    { B: 1, T: 33, D: 96, K: 3, bias: true, silu: false },
  ])('B=$B T=$T D=$D K=$K bias=$bias silu=$silu', async ({ B, T, D, K, bias, silu }) => {
    const spec = { bias, silu };
    const rand = mulberry32(11 + T * K);
    const xs = randomArray(B * T * D, rand);
    const w = randomArray(D * K, rand);
    const bs = randomArray(D, rand);

    const x = gpu.tensor('f32', [B, T, D], xs, 'x');
    const weight = gpu.tensor('f32', [D, K], w, 'weight');
    const biasT = gpu.tensor('f32', [D], bs, 'bias');
    const y = gpu.tensor('f32', [B, T, D], undefined, 'y');
    gpu.dispatch(conv1dCausal, { x, weight, bias: biasT, y }, { B, T, D, K }, spec);
    const whole = await y.read();

    const state = gpu.tensor('f32', [B, D, K], new Float32Array(B * D * K), 'state');
    const xt = gpu.tensor('f32', [B, D], undefined, 'x_t');
    const yt = gpu.tensor('f32', [B, D], undefined, 'y_t');
    for (let t = 0; t < T; t++) {
      const step = new Float32Array(B * D);
      for (let b = 0; b < B; b++) step.set(xs.subarray((b * T + t) * D, (b * T + t + 1) * D), b * D);
      xt.write(step);
      gpu.dispatch(conv1dStep, { x: xt, state, weight, bias: biasT, y: yt }, { B, D, K }, spec);
      const got = await yt.read();
      for (let b = 0; b < B; b++) {
        for (let c = 0; c < D; c++) {
          const g = got[b * D + c];
          const want = whole[(b * T + t) * D + c];
          if (!(Math.abs(g - want) <= atol + rtol * Math.abs(want))) {
            expect.fail(`step ${t}, row ${b}, channel ${c}: ${g}, conv1dCausal gives ${want}`);
          }
        }
      }
    }
    const final = await state.read();
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < D; c++) {
        for (let j = 0; j < K; j++) {
          const t = T - K + j;
          const want = t >= 0 ? xs[(b * T + t) * D + c] : 0;
          expect(final[(b * D + c) * K + j], `state[${b}, ${c}, ${j}]`).toBe(want);
        }
      }
    }
    for (const t of [x, weight, biasT, y, state, xt, yt]) t.dispose();
  });
});

it('rejects a kernel size of 0', () => {
  const cpu = new CpuDevice();
  const f = (n: number) => cpu.tensor('f32', [n]);
  expect(() =>
    cpu.dispatch(conv1dCausal, { x: f(4), weight: f(1), bias: f(4), y: f(4) }, { B: 1, T: 1, D: 4, K: 0 }),
  ).toThrow(ValidationError);
});
