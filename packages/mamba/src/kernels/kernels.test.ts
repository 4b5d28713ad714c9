// Every Mamba kernel against its TypeScript reference on the GPU (lavapipe in CI) and through the CPU
// device's plumbing, outputs and read_write state compared; then T decode steps of selectiveStateUpdate
// (and conv1dStep) against one selectiveScan prefill (and convStateFromSequence): outputs and final states.
import {
  CpuDevice,
  checkKernel,
  conv1dCausal,
  conv1dStep,
  createGpuDevice,
  type Device,
  type GpuDevice,
  type Kernel,
  mulberry32,
  randomArray,
  TOLERANCES,
  ValidationError,
} from '@offramp/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convStateFromSequence, mambaKernels, selectiveScan, selectiveStateUpdate } from './index.js';

let gpu: GpuDevice;
const cpu = new CpuDevice();
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

const all = Object.values(mambaKernels) as Kernel<any>[];

describe.each(all)('kernel $name on the GPU', (kernel) => {
  it.each(kernel.testCases.map((tc, i) => ({ tc, i, label: tc.label ?? kernel.key(tc.spec) })))(
    '$label',
    async ({ tc, i }) => {
      const r = await checkKernel(gpu, kernel, tc, 2000 + i);
      expect(r.mismatches, `max abs err ${r.maxAbsErr}`).toEqual([]);
      expect(r.ok).toBe(true);
    },
  );
});

describe.each(all)('kernel $name on the CPU device', (kernel) => {
  it.each(kernel.testCases.map((tc, i) => ({ tc, i, label: tc.label ?? kernel.key(tc.spec) })))(
    '$label',
    async ({ tc, i }) => {
      const r = await checkKernel(cpu, kernel, tc, 2000 + i);
      expect(r.ok).toBe(true);
    },
  );
});

it('covers every kernel with at least two cases, and the read_write state of the decode step', () => {
  for (const k of all) expect(k.testCases.length, k.name).toBeGreaterThanOrEqual(2);
  expect(selectiveStateUpdate.bindings.state.access).toBe('read_write');
});

const { atol, rtol } = TOLERANCES.accumulate;
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= atol + rtol * Math.abs(want[i]))) {
      expect.fail(`${what}[${i}]: got ${got[i]}, want ${want[i]}`);
    }
  }
}

/** Rows t of a (B, T, W) array as a (B, W) array. */
function stepOf(a: ArrayLike<number>, B: number, T: number, W: number, t: number): Float32Array {
  const out = new Float32Array(B * W);
  for (let b = 0; b < B; b++) for (let k = 0; k < W; k++) out[b * W + k] = a[(b * T + t) * W + k];
  return out;
}

describe.each([
  { name: 'GPU', dev: () => gpu as Device },
  { name: 'CPU', dev: () => cpu as Device },
])('T decode steps equal one prefill ($name device)', ({ dev }) => {
  it.each([
    { B: 1, T: 1, D: 1, N: 1, K: 1, gate: true },
    { B: 2, T: 7, D: 5, N: 4, K: 4, gate: false },
    { B: 3, T: 19, D: 67, N: 16, K: 4, gate: true },
    { B: 1, T: 40, D: 130, N: 7, K: 3, gate: true },
  ])('B=$B T=$T D=$D N=$N K=$K gate=$gate', async ({ B, T, D, N, K, gate }) => {
    const device = dev();
    const rand = mulberry32(31 + T * D);
    const host = {
      x: randomArray(B * T * D, rand),
      delta: randomArray(B * T * D, rand),
      dtBias: randomArray(D, rand),
      A_log: randomArray(D * N, rand),
      Bm: randomArray(B * T * N, rand),
      Cm: randomArray(B * T * N, rand),
      Dskip: randomArray(D, rand),
      z: randomArray(B * T * D, rand),
      convIn: randomArray(B * T * D, rand),
      convW: randomArray(D * K, rand),
      convB: randomArray(D, rand),
    };
    const t = (shape: number[], data?: ArrayLike<number>) => device.tensor('f32', shape, data);
    const shared = { dtBias: t([D], host.dtBias), A_log: t([D, N], host.A_log), Dskip: t([D], host.Dskip) };
    // the prefill scan reads dtBias and Dskip from one (2, D) binding
    const scanShared = { chan: t([2, D], [...host.dtBias, ...host.Dskip]), A_log: shared.A_log };
    const lengths = device.tensor('u32', [1]);
    // prefill
    const y = t([B, T, D]);
    const state = t([B, D, N]);
    const seq = {
      x: t([B, T, D], host.x),
      delta: t([B, T, D], host.delta),
      Bm: t([B, T, N], host.Bm),
      Cm: t([B, T, N], host.Cm),
      z: t([B, T, D], host.z),
    };
    device.dispatch(selectiveScan, { ...seq, ...scanShared, lengths, y, state }, { B, T, D }, { N, gate });
    const convIn = t([B, T, D], host.convIn);
    const convState = t([B, D, K]);
    device.dispatch(convStateFromSequence, { x: convIn, lengths, state: convState }, { B, T, D, K });
    const wantY = await y.read();
    const wantState = await state.read();
    const wantConv = await convState.read();
    // T decode steps from zero states
    const s = t([B, D, N], new Float32Array(B * D * N));
    const cs = t([B, D, K], new Float32Array(B * D * K));
    const convW = t([D, K], host.convW);
    const convB = t([D], host.convB);
    const convY = t([B, T, D]);
    device.dispatch(conv1dCausal, { x: convIn, weight: convW, bias: convB, y: convY }, { B, T, D, K }, { bias: true });
    const wantConvY = await convY.read();
    const step = {
      x: t([B, D]),
      delta: t([B, D]),
      Bm: t([B, N]),
      Cm: t([B, N]),
      z: t([B, D]),
      y: t([B, D]),
      cx: t([B, D]),
      cy: t([B, D]),
    };
    for (let k = 0; k < T; k++) {
      step.x.write(stepOf(host.x, B, T, D, k));
      step.delta.write(stepOf(host.delta, B, T, D, k));
      step.Bm.write(stepOf(host.Bm, B, T, N, k));
      step.Cm.write(stepOf(host.Cm, B, T, N, k));
      step.z.write(stepOf(host.z, B, T, D, k));
      device.dispatch(
        selectiveStateUpdate,
        { x: step.x, delta: step.delta, Bm: step.Bm, Cm: step.Cm, z: step.z, ...shared, state: s, y: step.y },
        { B, D },
        { N, gate },
      );
      expectClose(await step.y.read(), stepOf(wantY, B, T, D, k), `y at step ${k}`);
      step.cx.write(stepOf(host.convIn, B, T, D, k));
      device.dispatch(
        conv1dStep,
        { x: step.cx, state: cs, weight: convW, bias: convB, y: step.cy },
        { B, D, K },
        { bias: true },
      );
      expectClose(await step.cy.read(), stepOf(wantConvY, B, T, D, k), `conv y at step ${k}`);
    }
    expectClose(await s.read(), wantState, 'final ssm state');
    expect(Array.from(await cs.read())).toEqual(Array.from(wantConv));
  });
});

describe('varlen prefill', () => {
  it('gives each sequence the final state of its own prefix, on the GPU', async () => {
    const B = 4;
    const T = 11;
    const D = 19;
    const N = 6;
    const K = 4;
    const lens = [11, 3, 0, 7];
    const rand = mulberry32(77);
    const mk = (n: number) => randomArray(n, rand);
    const host = {
      x: mk(B * T * D),
      delta: mk(B * T * D),
      Bm: mk(B * T * N),
      Cm: mk(B * T * N),
      z: mk(B * T * D),
      dtBias: mk(D),
      A_log: mk(D * N),
      Dskip: mk(D),
    };
    const t = (shape: number[], data?: ArrayLike<number>) => gpu.tensor('f32', shape, data);
    const shared = { chan: t([2, D], [...host.dtBias, ...host.Dskip]), A_log: t([D, N], host.A_log) };
    const lengths = gpu.tensor('u32', [B], lens);
    const y = t([B, T, D]);
    const state = t([B, D, N]);
    const convState = t([B, D, K]);
    const x = t([B, T, D], host.x);
    const bind = {
      x,
      delta: t([B, T, D], host.delta),
      Bm: t([B, T, N], host.Bm),
      Cm: t([B, T, N], host.Cm),
      z: t([B, T, D], host.z),
    };
    gpu.dispatch(selectiveScan, { ...bind, ...shared, lengths, y, state }, { B, T, D }, { N, varlen: true });
    gpu.dispatch(convStateFromSequence, { x, lengths, state: convState }, { B, T, D, K }, { varlen: true });
    const gotY = await y.read();
    const gotState = await state.read();
    const gotConv = await convState.read();
    for (let b = 0; b < B; b++) {
      const L = lens[b];
      // the same sequence alone, truncated to its length
      const cut = (a: Float32Array, W: number) => a.slice(b * T * W, (b * T + L) * W);
      const ya = t([Math.max(1, L), D]);
      const sa = t([D, N]);
      const ca = t([D, K]);
      const xa = t([Math.max(1, L), D], L ? cut(host.x, D) : [0].concat(Array(D - 1).fill(0)));
      if (L > 0) {
        gpu.dispatch(
          selectiveScan,
          {
            x: xa,
            delta: t([L, D], cut(host.delta, D)),
            Bm: t([L, N], cut(host.Bm, N)),
            Cm: t([L, N], cut(host.Cm, N)),
            z: t([L, D], cut(host.z, D)),
            ...shared,
            lengths,
            y: ya,
            state: sa,
          },
          { B: 1, T: L, D },
          { N },
        );
        gpu.dispatch(convStateFromSequence, { x: xa, lengths, state: ca }, { B: 1, T: L, D, K });
        expectClose(gotY.slice(b * T * D, (b * T + L) * D), await ya.read(), `y of sequence ${b}`);
        expectClose(gotState.slice(b * D * N, (b + 1) * D * N), await sa.read(), `state of sequence ${b}`);
        expect(Array.from(gotConv.slice(b * D * K, (b + 1) * D * K))).toEqual(Array.from(await ca.read()));
      } else {
        expect(Array.from(gotState.slice(b * D * N, (b + 1) * D * N)).every((v) => v === 0)).toBe(true);
        expect(Array.from(gotConv.slice(b * D * K, (b + 1) * D * K)).every((v) => v === 0)).toBe(true);
      }
      // padded steps write zeros
      expect(Array.from(gotY.slice((b * T + L) * D, (b + 1) * T * D)).every((v) => v === 0)).toBe(true);
    }
  });
});

it('explains a bad state size', () => {
  const f = (n: number) => cpu.tensor('f32', [n]);
  expect(() =>
    cpu.dispatch(
      selectiveStateUpdate,
      {
        x: f(1),
        delta: f(1),
        dtBias: f(1),
        A_log: f(1),
        Bm: f(1),
        Cm: f(1),
        Dskip: f(1),
        z: f(1),
        state: f(1),
        y: f(1),
      },
      { B: 1, D: 1 },
      { N: 0 },
    ),
  ).toThrow(ValidationError);
  expect(() => selectiveScan.sizes({ B: 1, T: 1, D: 1 }, selectiveScan.resolveSpec({ N: 1000 }))).toThrow(/\[1, 256\]/);
});

it('every Mamba kernel binds at most 10 storage buffers (the most a browser adapter may offer: SwiftShader)', () => {
  for (const k of Object.values(mambaKernels)) expect(k.bindingNames.length, k.name).toBeLessThanOrEqual(10);
});
