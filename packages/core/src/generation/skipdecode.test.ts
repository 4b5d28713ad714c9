// SkipDecode: the schedule (non-increasing h, warm-up blocks, the K/V invariant), and the device run against
// the float64 reference run with the same skipping (logits of every step), with the cache poisoned with NaN
// so that any read of a skipped (never written) entry would show as NaN logits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDecoderConfig } from '../models/decoder-config.js';
import { DecoderLM } from '../models/decoder-lm.js';
import { randomDecoderWeights } from '../models/decoder-random.js';
import { DecoderReference, type ReferenceCache } from '../models/decoder-reference.js';
import { argmaxOf } from '../models/sampling.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { deviceLoop } from './gpu-loop.js';
import { generateSkipDecode, skipDepth, skipPlan } from './skipdecode.js';

let device: GpuDevice;
beforeAll(async () => {
  device = await createGpuDevice();
});
afterAll(() => device?.destroy());

const config = parseDecoderConfig({
  hidden_size: 32,
  num_hidden_layers: 6,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 48,
  vocab_size: 31,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  offramp: { exits: [1, 3] },
});

describe('skipPlan', () => {
  it('h(t) is non-increasing from hMax to hMin; warm-up and top blocks run; the invariant holds', () => {
    const plan = skipPlan(6, 10, { hMin: 2, hMax: 5, warmup: 1, t0: 2, T: 8 });
    let prevH = Number.POSITIVE_INFINITY;
    for (let t = 1; t <= 10; t++) {
      const h = skipDepth(t, 2, 5, 2, 8);
      expect(h).toBeLessThanOrEqual(prevH);
      expect(h).toBe(t <= 2 ? 5 : Math.max(2, 5 - Math.floor((3 * (t - 2)) / 6)));
      prevH = h;
      const b = plan.blocks(t);
      expect(b).toEqual([0, ...Array.from({ length: h }, (_, i) => 6 - h + i)]);
    }
    expect(skipDepth(8, 2, 5, 2, 8)).toBe(2);
    expect(skipDepth(100, 2, 5, 2, 8)).toBe(2);
  });

  it('rejects schedules that do not fit the model', () => {
    expect(() => skipPlan(6, 5, { hMin: 0 })).toThrow(/hMin/);
    expect(() => skipPlan(6, 5, { hMin: 3, hMax: 2 })).toThrow(/hMin ≤ hMax/);
    expect(() => skipPlan(6, 5, { hMin: 2, hMax: 6, warmup: 1 })).toThrow(/warmup \+ hMax ≤ 6/);
    expect(() => skipPlan(6, 5, { hMin: 2, warmup: 6 })).toThrow(/warmup/);
    expect(() => skipPlan(6, 5, { hMin: 2, t0: 4, T: 4 })).toThrow(/t0 < T/);
  });
});

describe('generateSkipDecode', () => {
  it('equals the float64 reference with the same skipping, and never reads a skipped K/V entry', async () => {
    const w = randomDecoderWeights(config, 23);
    const model = new DecoderLM(device, config, w);
    const ref = new DecoderReference(config, w);
    // the reference's own block function, run with the skipping (private in its class; used as is)
    const block = (
      ref as unknown as {
        block: (l: number, h: Float64Array, p: number, k: Float64Array[], v: Float64Array[]) => Float64Array;
      }
    ).block.bind(ref);
    const prompts = [
      [1, 5, 9],
      [2, 7],
      [3, 4, 11, 12, 30],
    ];
    const maxNewTokens = 9;
    const schedule = { hMin: 2, hMax: 4, warmup: 2, t0: 1, T: 7 };
    const r = await generateSkipDecode(model, prompts, {
      maxNewTokens,
      schedule,
      stepsPerSubmit: 4,
      recordLogits: true,
      poisonCache: true,
    });
    const L = config.numLayers;
    let blocks = 0;
    prompts.forEach((p, b) => {
      const cache: ReferenceCache = ref.newCache();
      let z: Float64Array | undefined;
      for (const id of p) z = ref.token(cache, id).logits.get(L - 1);
      expect(r.tokens[b][0]).toBe(argmaxOf(z!));
      for (let t = 1; t < maxNewTokens; t++) {
        const pos = p.length + t - 1;
        let h = ref.embed(r.tokens[b][t - 1]);
        const run = r.plan.blocks(t);
        blocks += run.length;
        for (const l of run) {
          // every earlier position has its K/V at this block: nothing the token attends to is missing
          expect(cache.k[l].length, `step ${t} block ${l}`).toBe(pos);
          const { k, v } = ref.kv(l, h, pos);
          cache.k[l].push(k);
          cache.v[l].push(v);
          h = block(l, h, pos, cache.k[l], cache.v[l]);
        }
        const want = ref.exitLogits(L - 1, h);
        const got = r.logits![t].subarray(b * config.vocabSize, (b + 1) * config.vocabSize);
        expect(got.every(Number.isFinite), `step ${t} row ${b}: finite logits`).toBe(true);
        let err = 0;
        let mx = 0;
        for (let i = 0; i < want.length; i++) {
          err = Math.max(err, Math.abs(got[i] - want[i]));
          mx = Math.max(mx, Math.abs(want[i]));
        }
        expect(err / mx, `step ${t} row ${b}`).toBeLessThan(1e-5);
        expect(r.tokens[b][t]).toBe(argmaxOf(got));
      }
    });
    // skipped blocks are really skipped
    expect(r.blocksComputed).toBe(blocks);
    expect(r.blocksComputed).toBeLessThan(prompts.length * (maxNewTokens - 1) * L);
    model.dispose();
  });

  it('the poisoned cache does show a read of a skipped entry (a schedule that goes deeper again)', async () => {
    const model = new DecoderLM(device, config, randomDecoderWeights(config, 23));
    const all = [0, 1, 2, 3, 4, 5];
    const r = await deviceLoop(
      model,
      [[1, 2, 3]],
      { maxNewTokens: 4, recordLogits: true, poisonCache: true, stepsPerSubmit: 4 },
      (t) => (t === 1 ? [0, 5] : all),
      'test',
    );
    expect(r.logits![1].every(Number.isFinite)).toBe(true);
    expect(r.logits![2].some(Number.isNaN)).toBe(true);
    model.dispose();
  });
});
