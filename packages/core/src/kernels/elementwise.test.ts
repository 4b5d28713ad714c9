// Relative accuracy of activations where absolute tolerances cannot tell (softplus far below zero, where
// Mamba's Δ = softplus(·) lives).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createGpuDevice } from '../runtime/create-device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { activationRef, unary } from './elementwise.js';

let device: GpuDevice;
beforeAll(async () => {
  device = await createGpuDevice();
});
afterAll(() => device?.destroy());

it('softplus keeps its relative accuracy for very negative inputs', async () => {
  const xs = [-15.5, -16, -20, -30, -60, -80];
  const x = device.tensor('f32', [xs.length], xs);
  const y = device.tensor('f32', [xs.length]);
  device.dispatch(unary, { x, y }, { n: xs.length }, { op: 'softplus' });
  const got = await y.read();
  xs.forEach((v, i) => {
    const want = activationRef.softplus(v);
    expect(want).toBeGreaterThan(0);
    expect(Math.abs(got[i] - want) / want).toBeLessThan(1e-4);
  });
});
