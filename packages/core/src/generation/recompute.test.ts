// Deferred K/V recomputation: after generation with early exits, the cache holds exactly the full-depth K/V
// of every token (against a full-depth prefill of the same sequences), each step's logits equal the float64
// reference run with full-depth K/V for the earlier tokens, and CALM propagation gives different entries.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDecoderConfig } from '../models/decoder-config.js';
import { type DecoderExitRule, DecoderLM } from '../models/decoder-lm.js';
import { randomDecoderWeights } from '../models/decoder-random.js';
import { DecoderReference } from '../models/decoder-reference.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { generateRecompute } from './recompute.js';

let device: GpuDevice;
beforeAll(async () => {
  device = await createGpuDevice();
});
afterAll(() => device?.destroy());

const config = parseDecoderConfig({
  hidden_size: 32,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 48,
  vocab_size: 29,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  offramp: { exits: [0, 1, 2] },
});

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0;
  let mx = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    mx = Math.max(mx, Math.abs(b[i]));
  }
  return err / mx;
}

const RULES: Record<string, DecoderExitRule> = {
  'fixed at block 1': { kind: 'fixed', block: 1 },
  'mixed (even argmax leaves at block 0)': {
    kind: 'custom',
    decide: (s, { block }) => Array.from(s.argmax, (a) => block === 0 && a % 2 === 0),
  },
  // argmax % 4 = 0 leaves at block 0, 1 at block 1, 2 at block 2, 3 runs to the end: owed positions join
  // the next step at different blocks, stop part-way when every token leaves, and pile up in a row
  staggered: {
    kind: 'custom',
    decide: (s, { block }) => Array.from(s.argmax, (a) => a % 4 === block),
  },
};

const CASES = Object.keys(RULES).flatMap((name) => [
  { name, fused: true },
  { name, fused: false },
]);

describe.each(CASES)('generateRecompute, $name, fused $fused', ({ name, fused }) => {
  it('later tokens attend to the full-depth K/V of exited tokens; logits equal the reference', async () => {
    const w = randomDecoderWeights(config, 31);
    const model = new DecoderLM(device, config, w);
    const ref = new DecoderReference(config, w);
    const L = config.numLayers;
    const V = config.vocabSize;
    const prompts = [[1, 2, 3], [4], [5, 6, 7, 8, 9]];
    const n = 8;
    const r = await generateRecompute(model, prompts, {
      maxNewTokens: n,
      exit: { rule: RULES[name] },
      keepLogits: true,
      keepCache: true,
      fused,
    });
    const early = r.exitBlocks.flat().filter((e) => e < L - 1).length;
    expect(early).toBeGreaterThan(0);
    expect(r.recomputedBlocks).toBe(r.exitBlocks.flatMap((e) => e.slice(1, n)).reduce((a, e) => a + (L - 1 - e), 0));
    // 1. the cache equals a full-depth prefill of the same fed tokens
    const fed = prompts.map((p, b) => [...p, ...r.tokens[b].slice(0, n - 1)]);
    const full = await model.prefill(fed);
    for (let b = 0; b < prompts.length; b++) {
      expect(r.cache!.length(b)).toBe(fed[b].length);
      for (let l = 0; l < L; l++) {
        const a = await r.cache!.readRow(l, b);
        const c = await full.cache.readRow(l, b);
        expect(relErr(a.k, c.k), `row ${b} layer ${l} keys`).toBeLessThan(1e-5);
        expect(relErr(a.v, c.v), `row ${b} layer ${l} values`).toBeLessThan(1e-5);
      }
    }
    // 2. each step's logits: the reference with full-depth K/V for every earlier token, read at the exit
    prompts.forEach((p, b) => {
      const cache = ref.newCache();
      for (const id of p) ref.token(cache, id);
      for (let t = 1; t < n; t++) {
        const out = ref.token(cache, r.tokens[b][t - 1]);
        const want = out.logits.get(r.exitBlocks[b][t])!;
        const got = r.logits![t].subarray(b * V, (b + 1) * V);
        expect(relErr(got, want), `row ${b} step ${t}`).toBeLessThan(1e-5);
      }
    });
    // 3. CALM propagation of the same tokens with the same exits writes different entries above the exits
    const calm = (await model.prefill(prompts, undefined, 20)).cache;
    for (let t = 1; t < n; t++)
      await model.step(
        prompts.map((_, b) => r.tokens[b][t - 1]),
        calm,
        { rule: RULES[name] },
      );
    let diff = 0;
    for (let b = 0; b < prompts.length; b++) {
      const a = await r.cache!.readRow(L - 1, b);
      const c = await calm.readRow(L - 1, b);
      diff = Math.max(diff, relErr(c.k, a.k));
    }
    expect(diff).toBeGreaterThan(1e-3);
    for (const c of [calm, full.cache, r.cache!]) c.dispose();
    model.dispose();
  });
});

describe.each(Object.keys(RULES))('generateRecompute fused against unfused, %s', (name) => {
  it('gives identical tokens, exit blocks, recomputed blocks and cache, greedy and sampled', async () => {
    const w = randomDecoderWeights(config, 32);
    const model = new DecoderLM(device, config, w);
    const prompts = [[3, 1], [7, 7, 2, 9], [11], [4, 5, 6]];
    for (const sampling of [{}, { temperature: 0.9, topK: 12, seed: 5 }]) {
      const run = (fused: boolean) =>
        generateRecompute(model, prompts, {
          maxNewTokens: 10,
          sampling,
          exit: { rule: RULES[name] },
          keepCache: true,
          fused,
        });
      const a = await run(true);
      const b = await run(false);
      expect(a.tokens).toEqual(b.tokens);
      expect(a.exitBlocks).toEqual(b.exitBlocks);
      expect(a.recomputedBlocks).toBe(b.recomputedBlocks);
      // the fused form did its recomputation inside the steps (only 'fixed' leaves every token early, so
      // nothing ever runs deeper and everything is settled at the end)
      expect(b.settledBlocks).toBe(0);
      if (name === 'fixed at block 1') expect(a.settledBlocks).toBe(a.recomputedBlocks);
      else expect(a.settledBlocks).toBeLessThan(a.recomputedBlocks);
      expect(a.exitBlocks.flat().some((e) => e < config.numLayers - 1)).toBe(true);
      for (let r = 0; r < prompts.length; r++)
        for (let l = 0; l < config.numLayers; l++) {
          const x = await a.cache!.readRow(l, r);
          const y = await b.cache!.readRow(l, r);
          expect(relErr(x.k, y.k), `row ${r} layer ${l} keys`).toBeLessThan(1e-6);
          expect(relErr(x.v, y.v), `row ${r} layer ${l} values`).toBeLessThan(1e-6);
        }
      a.cache!.dispose();
      b.cache!.dispose();
    }
    model.dispose();
  });
});
