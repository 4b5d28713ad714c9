// The dispatch gate kernel against its reference (GPU and CPU devices), and indirect dispatch through it: a
// gated dispatch runs in full when some row is live and not at all when none is, on both devices.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkKernel } from '../runtime/conformance.js';
import { CpuDevice } from '../runtime/cpu-device.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { Device } from '../runtime/device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { dispatchGate } from './dispatch-gate.js';
import { binary } from './elementwise.js';

let gpu: GpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

const devices: [string, () => Device][] = [
  ['gpu', () => gpu],
  ['cpu', () => new CpuDevice()],
];

describe.each(devices)('dispatchGate on the %s device', (_name, dev) => {
  it.each(dispatchGate.testCases.map((tc, i) => ({ tc, i, label: tc.label! })))('$label', async ({ tc, i }) => {
    const r = await checkKernel(dev(), dispatchGate, tc, 2000 + i);
    expect(r.mismatches).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it('gates an indirect dispatch: full grid with a live row, nothing without', async () => {
    const d = dev();
    const n = 1000; // 4 workgroups of the elementwise kernel (a grid of more than one)
    const a = Float32Array.from({ length: n }, (_, i) => i * 0.5);
    const b = Float32Array.from({ length: n }, (_, i) => 3 - i);
    const x = d.tensor('f32', [n], a);
    const y = d.tensor('f32', [n], b);
    const dims = d.tensor('u32', [6]);
    const args = d.tensor('u32', [6]);
    const params = { n, period: n };
    const grid = d.dispatchDims!(binary, params, { op: 'add' });
    expect(grid[0] * grid[1] * grid[2]).toBeGreaterThan(1);
    for (const live of [
      [0, 0, 0],
      [0, 1, 0],
    ]) {
      const liveT = d.tensor('u32', [3], live);
      const out = d.tensor('f32', [n], new Float32Array(n).fill(-7));
      // slot 1 holds the grid (slot 0 a dummy), put there by the gate kernel itself
      d.dispatch(
        dispatchGate,
        { live: liveT, dims, args },
        { rows: 3, count: 2, put: 1, slot: 1, x: grid[0], y: grid[1], z: grid[2] },
      );
      d.dispatchIndirect!(binary, { x, b: y, y: out }, params, { op: 'add' }, args, 3);
      const got = (await out.read()) as Float32Array;
      const gotArgs = Array.from((await args.read()) as Uint32Array).slice(3);
      if (live.some((v) => v)) {
        expect(gotArgs).toEqual(grid);
        for (let i = 0; i < n; i++) expect(got[i]).toBe(Math.fround(a[i] + b[i]));
      } else {
        expect(gotArgs).toEqual([0, 0, 0]);
        expect(Array.from(got).every((v) => v === -7)).toBe(true);
      }
      out.dispose();
      liveT.dispose();
    }
    for (const t of [x, y, dims, args]) t.dispose();
  });
});

it('rejects indirect arguments outside a u32 tensor', () => {
  const d = new CpuDevice();
  const args = d.tensor('u32', [3]);
  const f = d.tensor('f32', [3]);
  const x = d.tensor('f32', [4]);
  expect(() => d.dispatchIndirect(binary, { x, b: x, y: x }, { n: 4, period: 4 }, { op: 'add' }, args, 1)).toThrow(
    /3 u32/,
  );
  expect(() => d.dispatchIndirect(binary, { x, b: x, y: x }, { n: 4, period: 4 }, { op: 'add' }, f, 0)).toThrow(
    /3 u32/,
  );
});
