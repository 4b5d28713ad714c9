// Per-exit option lists are checked against the model's exit count in host and device mode alike: the
// engine runs the policy's init in both modes, where the check lives.
import {
  buildModel,
  createGpuDevice,
  type GpuDevice,
  type MlpClassifierConfig,
  mulberry32,
  Runner,
  randomArray,
  randomWeights,
} from '@offramp/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPolicy } from '../registry.js';

const cfg: MlpClassifierConfig = {
  architecture: 'mlp_classifier',
  input_size: 16,
  hidden_size: 12,
  num_layers: 3,
  num_classes: 4,
  exits: { blocks: [0, 1, 2], head: 'linear' },
};

let gpu: GpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

describe('per-exit threshold lists', () => {
  it('refuses a list of the wrong length with the same message in host and device mode', async () => {
    const runner = new Runner(gpu, buildModel(gpu, cfg, randomWeights(cfg, 3)), { maxBatch: 8 });
    const rand = mulberry32(4);
    const input = { features: Array.from({ length: 4 }, () => randomArray(16, rand, 1)) };
    const message =
      "policy 'confidence': option 'threshold' has one threshold per exit: expected 3 values for this model's 3 exits, got [0.9,0.8]";
    for (const mode of ['host', 'device'] as const) {
      await expect(
        runner.run(input, { policy: createPolicy('confidence', { threshold: [0.9, 0.8] }), mode }),
      ).rejects.toThrow(message);
      await expect(
        runner.run(input, { policy: createPolicy('entropy', { threshold: [0.5, 0.5, 0.5, 0.5] }), mode }),
      ).rejects.toThrow("policy 'entropy': option 'threshold' has one threshold per exit: expected 3 values");
    }
    // the right length runs, and both modes exit alike
    const good = () => createPolicy('confidence', { threshold: [0.3, 0.3, 0.3] });
    const host = await runner.run(input, { policy: good(), mode: 'host' });
    const device = await runner.run(input, { policy: good(), mode: 'device' });
    expect(device.samples.map((s) => s.exitIndex)).toEqual(host.samples.map((s) => s.exitIndex));
  });
});
