// Every registered kernel against its reference on the GPU (lavapipe in CI), over its test cases.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkKernel } from '../runtime/conformance.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import type { Kernel } from '../runtime/kernel.js';
import { kernels } from './index.js';

let device: GpuDevice;
beforeAll(async () => {
  device = await createGpuDevice();
});
afterAll(() => device?.destroy());

describe.each(Object.values(kernels) as Kernel<any>[])('kernel $name', (kernel) => {
  it.each(kernel.testCases.map((tc, i) => ({ tc, i, label: tc.label ?? kernel.key(tc.spec) })))(
    '$label',
    async ({ tc, i }) => {
      const r = await checkKernel(device, kernel, tc, 1000 + i);
      expect(r.mismatches, `max abs err ${r.maxAbsErr}`).toEqual([]);
      expect(r.ok).toBe(true);
    },
  );
});

it('covers every kernel with at least two cases', () => {
  for (const k of Object.values(kernels) as Kernel<any>[]) expect(k.testCases.length, k.name).toBeGreaterThanOrEqual(2);
});
