// The compiled program checks every binding against the device's storage binding limit before it creates
// buffers or pipelines, so an oversized model or batch fails with a message naming the tensor, its size and
// the limit (instead of Dawn validation text and a GPU error naming no tensor).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import type { MlpClassifierConfig } from '../models/config.js';
import { buildModel, randomWeights } from '../models/index.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { Runner } from './runner.js';

let gpu: GpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

const wide: MlpClassifierConfig = {
  architecture: 'mlp_classifier',
  input_size: 4,
  hidden_size: 65_536,
  num_layers: 1,
  num_classes: 2,
  exits: { blocks: [0], head: 'linear' },
};

describe('Program: binding sizes', () => {
  it('refuses activations over the binding limit before allocating them, naming the tensor and a batch that fits', () => {
    const model = buildModel(gpu, wide, randomWeights(wide, 1));
    const limit = gpu.limits.maxStorageBufferBindingSize;
    const rows = 4 * Math.ceil(limit / (65_536 * 4));
    const allocated = gpu.pool.stats.allocatedBytes;
    let err: unknown;
    try {
      new Runner(gpu, model, { maxBatch: rows }).program(1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^op '[^']+': tensor '[^']+' \\(binding '[a-z]+'\\) is ${65_536 * 4 * rows} bytes \\(65536 values per row × ${rows} rows\\), over this device's maxStorageBufferBindingSize of ${limit} bytes; use a batch of at most ${Math.floor(limit / 4 / 65_536)} rows$`,
      ),
    );
    // nothing was allocated for the refused plan beyond the engine's small tensors
    expect(gpu.pool.stats.allocatedBytes - allocated).toBeLessThan(1024 * 1024);
    // a batch that fits compiles
    const ok = new Runner(gpu, model, { maxBatch: 8 });
    expect(ok.program(1).compiled).toBe(true);
  });
});
