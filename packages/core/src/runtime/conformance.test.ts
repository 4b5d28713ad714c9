// The conformance harness itself: it must fail deliberately broken kernels on the GPU, and the CPU device
// (which runs each kernel's reference) must pass every registered kernel's cases through its own plumbing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernels } from '../kernels/index.js';
import { checkKernel } from './conformance.js';
import { CpuDevice } from './cpu-device.js';
import { createGpuDevice } from './create-device.js';
import type { GpuDevice } from './gpu-device.js';
import { defineKernel, type Kernel } from './kernel.js';

/** y = x over n elements, with the WGSL body given; the reference is always the correct copy. */
function copyKernel(name: string, body: string) {
  return defineKernel({
    name,
    bindings: { x: { access: 'read', type: 'f32' }, y: { access: 'write', type: 'f32' } },
    params: { n: 'u32' },
    workgroupSize: () => [64, 1, 1],
    linear: true,
    dispatch: (p) => [Math.ceil(p.n / 64), 1, 1],
    sizes: (p) => ({ x: p.n, y: p.n }),
    wgsl: () => `
@compute @workgroup_size(64) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = linear_wg(wg, nwg) * 64u + li;
  if (i >= P.n) { return; }
  ${body}
}`,
    reference: ({ x, y }, p) => {
      for (let i = 0; i < p.n; i++) y[i] = x[i];
    },
    testCases: [{ params: { n: 1000 } }, { params: { n: 1 } }],
    tolerance: 'accumulate',
  });
}

describe('the harness on the GPU', () => {
  let device: GpuDevice;
  beforeAll(async () => {
    device = await createGpuDevice();
  });
  afterAll(() => device?.destroy());

  it('passes a correct kernel (control)', async () => {
    const r = await checkKernel(device, copyKernel('copyCorrect', 'y[i] = x[i];'), { params: { n: 1000 } });
    expect(r.mismatches).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it('fails a kernel that writes only the even indices (poisoned outputs)', async () => {
    const k = copyKernel('copyEvenOnly', 'if (i % 2u == 0u) { y[i] = x[i]; }');
    const r = await checkKernel(device, k, { params: { n: 1000 } });
    expect(r.ok).toBe(false);
    expect(r.mismatches.length).toBeGreaterThan(0);
    for (const m of r.mismatches) {
      expect(m.index % 2).toBe(1);
      expect(m.got).toBeNaN();
    }
  });

  it('fails a kernel that is off by 1e-2 (beyond the accumulate tolerance)', async () => {
    const k = copyKernel('copyOffBy', 'y[i] = x[i] + 0.01;');
    const r = await checkKernel(device, k, { params: { n: 1000 } });
    expect(r.ok).toBe(false);
    expect(r.maxAbsErr).toBeGreaterThan(0.009);
    expect(r.maxAbsErr).toBeLessThan(0.011);
  });

  it('fails a kernel that loses a NaN', async () => {
    const k = copyKernel(
      'copyDropsNan',
      'let v = x[i]; y[i] = select(v, 0.0, v != v || (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u);',
    );
    const r = await checkKernel(device, k, {
      params: { n: 100 },
      inject: [{ binding: 'x', index: 42, value: Number.NaN }],
    });
    expect(r.ok).toBe(false);
    expect(r.mismatches).toEqual([{ binding: 'y', index: 42, got: 0, want: Number.NaN }]);
  });
});

describe.each(Object.values(kernels) as Kernel<any>[])('CPU device runs kernel $name', (kernel) => {
  const device = new CpuDevice();
  it.each(kernel.testCases.map((tc, i) => ({ tc, i, label: tc.label ?? kernel.key(tc.spec) })))(
    '$label',
    async ({ tc, i }) => {
      const r = await checkKernel(device, kernel, tc, 1000 + i);
      expect(r.mismatches, `max abs err ${r.maxAbsErr}`).toEqual([]);
      expect(r.ok).toBe(true);
    },
  );
});
