// Encoder inputs and padding: a row padded with pad_token_id (as WordTokenizer.encode returns it) or given
// with explicit lengths gives exactly the logits of the unpadded row, on the GPU (lavapipe) and the CPU device.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelInput } from '../engine/model.js';
import { neverExit } from '../engine/policy.js';
import { Runner } from '../engine/runner.js';
import { CpuDevice } from '../runtime/cpu-device.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { Device } from '../runtime/device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { mulberry32 } from '../util/random.js';
import type { EncoderClassifierConfig } from './config.js';
import { buildModel, randomWeights } from './index.js';

const cfg: EncoderClassifierConfig = {
  architecture: 'encoder_classifier',
  vocab_size: 40,
  max_position: 32,
  hidden_size: 16,
  num_layers: 2,
  num_heads: 2,
  intermediate_size: 32,
  num_classes: 3,
  pad_token_id: 0,
  exits: { blocks: [0, 1], head: 'linear' },
};
const weights = randomWeights(cfg, 5);
const rand = mulberry32(9);
// [CLS]=2 then tokens in [3, 40): never the pad id 0
const rows = Array.from({ length: 6 }, (_, i) => [
  2,
  ...Array.from({ length: 2 + 3 * i }, () => 3 + Math.floor(rand() * 37)),
]);
const padded = (len: number) => rows.map((r) => [...r, ...new Array(len - r.length).fill(0)]);

let gpu: GpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

async function logits(device: Device, input: ModelInput, c: EncoderClassifierConfig = cfg): Promise<number[][]> {
  const model = buildModel(device, c, weights);
  const runner = new Runner(device, model, { maxBatch: 8 });
  const res = await runner.run(input, { policy: neverExit() });
  runner.dispose();
  model.dispose();
  return res.samples.map((s) => Array.from(s.logits));
}

describe.each([
  ['gpu', () => gpu as Device],
  ['cpu', () => new CpuDevice() as Device],
])('encoder padding on the %s device', (_name, device) => {
  it('padded rows (trailing pad_token_id) give bit-identical logits to the unpadded rows', async () => {
    const plain = await logits(device(), { ids: rows });
    for (const len of [rows[rows.length - 1].length, 24, 32]) {
      expect(await logits(device(), { ids: padded(len) })).toEqual(plain);
    }
    // and each row alone, padded, equals the batch (the padding does not leak into neighbours)
    const alone = await logits(device(), { ids: [padded(32)[1]] });
    expect(alone[0]).toEqual(plain[1]);
  });

  it('explicit lengths ignore what follows, for models without a pad id too', async () => {
    const noPad: EncoderClassifierConfig = { ...cfg, pad_token_id: undefined };
    const plain = await logits(device(), { ids: rows }, noPad);
    const junk = rows.map((r) => [...r, 7, 7, 0, 9]);
    expect(await logits(device(), { ids: junk, lengths: rows.map((r) => r.length) }, noPad)).toEqual(plain);
    // without a pad id and without lengths, trailing zeros are tokens: the logits differ
    const zeros = await logits(device(), { ids: padded(32) }, noPad);
    expect(zeros[0]).not.toEqual(plain[0]);
  });
});

describe('encoder lengths are checked', () => {
  it('refuses a lengths array of the wrong size or a length outside [1, row length]', () => {
    const model = buildModel(new CpuDevice(), cfg, weights) as unknown as {
      bucket(i: ModelInput): number;
      dispose(): void;
    };
    expect(() => model.bucket({ ids: rows, lengths: [1] })).toThrow('lengths has 1 entries for 6 sequences');
    expect(() => model.bucket({ ids: [[2, 3]], lengths: [3] })).toThrow(
      'lengths[0] is 3; expected an integer in [1, 2] (the length of sequence 0)',
    );
    expect(() => model.bucket({ ids: [[2, 3]], lengths: [0] })).toThrow(/lengths\[0\] is 0/);
    // a padded row longer than max_position is fine when its valid length fits
    expect(model.bucket({ ids: [[2, 3, ...new Array(40).fill(0)]] })).toBe(8);
    model.dispose();
  });
});
