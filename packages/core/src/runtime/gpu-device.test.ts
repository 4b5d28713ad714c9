// GpuDevice's read-only views for servers: the buffer pool's byte counts (checked against the sizes of the
// buffers it hands out, from sizeClass) and the reason of a lost device (after a real GPUDevice.destroy()).
import { afterAll, beforeAll, expect, test } from 'vitest';
import { GpuError } from '../errors.js';
import { sizeClass } from './buffer-pool.js';
import { createGpuDevice } from './create-device.js';
import type { GpuDevice } from './gpu-device.js';

let device: GpuDevice;
beforeAll(async () => {
  device = await createGpuDevice();
});
afterAll(() => device?.destroy());

test('memoryStats counts the bytes the pool holds and hands out, and is a copy', async () => {
  const before = device.memoryStats();
  const n = 3000; // 12 000 bytes: a size class above 4 KiB
  const t = device.tensor('f32', [n], new Float32Array(n).fill(1));
  const held = device.memoryStats();
  expect(held.inUseBytes - before.inUseBytes).toBe(sizeClass(n * 4));
  expect(held.allocatedBytes - before.allocatedBytes).toBe(sizeClass(n * 4));
  held.allocatedBytes = -1; // a copy: the pool's own counts do not change
  expect(device.memoryStats().allocatedBytes).toBe(before.allocatedBytes + sizeClass(n * 4));
  t.dispose();
  const after = device.memoryStats();
  expect(after.inUseBytes).toBe(before.inUseBytes); // back in the pool, still held
  expect(after.allocatedBytes).toBe(before.allocatedBytes + sizeClass(n * 4));
  // the same size again is a reuse, not a new allocation
  const again = device.tensor('f32', [n]);
  expect(device.memoryStats().allocatedBytes).toBe(after.allocatedBytes);
  expect(device.memoryStats().reuses).toBe(after.reuses + 1);
  again.dispose();
});

test('lostReason is null while usable and says why once the GPUDevice is lost', async () => {
  const d = await createGpuDevice();
  expect(d.lostReason).toBeNull();
  expect(d.isDestroyed).toBe(false);
  d.gpu.destroy(); // the underlying device, as a driver reset would: not GpuDevice.destroy()
  await d.gpu.lost;
  await new Promise((r) => setImmediate(r));
  expect(d.lostReason).toMatch(/^destroyed: /);
  expect(() => d.tensor('f32', [4])).toThrow(GpuError);
  expect(() => d.tensor('f32', [4])).toThrow(/the GPU device was lost \(destroyed: .*\); create a new device/);
  d.destroy();
  expect(d.isDestroyed).toBe(true);
});
