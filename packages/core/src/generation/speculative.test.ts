// Self-speculative decoding against plain decoding: greedy output token for token equal to plain full-depth
// greedy decoding (DecoderLM.generate, and the float64 reference) on a suite of prompts at batch 1 and 8,
// for several (k, E) and the adaptive k; the KV cache afterwards equal to plain decoding's; and sampling
// equal in distribution to the full model's (chi-square against the reference's exact distribution, with a
// wrong acceptance rule detected by the same test).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import type { HostTensor } from '../models/common.js';
import { parseDecoderConfig } from '../models/decoder-config.js';
import { DecoderLM } from '../models/decoder-lm.js';
import { randomDecoderWeights } from '../models/decoder-random.js';
import { DecoderReference } from '../models/decoder-reference.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { chiSquareTest, chiSquareUpperTail } from '../testing-internal/chi-square.js';
import { adaptiveK, samplingProbs, speculativeGenerate } from './speculative.js';

let device: GpuDevice;
beforeAll(async () => {
  device = await createGpuDevice();
});
afterAll(() => device?.destroy());

const CONFIG = {
  hidden_size: 32,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 48,
  vocab_size: 37,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  offramp: { exits: [0, 1, 2] },
};

/** Random weights with the residual branches of blocks ≥ 1 scaled by `scale` (early exits agree more). */
function weights(config: ReturnType<typeof parseDecoderConfig>, seed: number, scale: number) {
  const w = randomDecoderWeights(config, seed);
  for (const [name, t] of w) {
    const m = /^model\.layers\.(\d+)\.(self_attn\.o_proj|mlp\.down_proj)\.weight$/.exec(name);
    if (m && Number(m[1]) >= 1) w.set(name, { shape: t.shape, data: t.data.map((x) => x * scale) } as HostTensor);
  }
  return w;
}

function randomTokens(n: number, V: number, seed: number): number[] {
  let x = seed;
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % V;
  });
}

const LENGTHS = [1, 2, 3, 5, 8, 13, 17, 24];
const NEW = 20;

/** Plain greedy decoding in the float64 reference. */
function referenceGreedy(ref: DecoderReference, prompt: number[], n: number): number[] {
  const c = ref.newCache();
  let z: Float64Array | undefined;
  const L = ref.config.numLayers;
  for (const t of prompt) z = ref.token(c, t).logits.get(L - 1);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let v = 1; v < z!.length; v++) if (z![v] > z![best]) best = v;
    out.push(best);
    if (i < n - 1) z = ref.token(c, best).logits.get(L - 1);
  }
  return out;
}

describe.each([
  ['random weights (low acceptance)', 1],
  ['upper blocks scaled by 0.15 (high acceptance)', 0.15],
])('greedy self-speculative decoding, %s', (_name, scale) => {
  it('equals plain full-depth greedy decoding token for token at batch 1 and 8, for several (k, E) and adaptive k', async () => {
    const config = parseDecoderConfig(CONFIG);
    const w = weights(config, 21, scale);
    const model = new DecoderLM(device, config, w);
    const ref = new DecoderReference(config, w);
    const V = config.vocabSize;
    const prompts = LENGTHS.map((n, i) => randomTokens(n, V, 100 + i));
    const plain = (await model.generate(prompts, { maxNewTokens: NEW })).tokens;
    // the plain decoding itself against the float64 reference
    for (const i of [0, 5]) expect(plain[i]).toEqual(referenceGreedy(ref, prompts[i], NEW));
    const settings = [
      { k: 1, draftExit: 0 },
      { k: 3, draftExit: 0 },
      { k: 4, draftExit: 1 },
      { k: 2, draftExit: 2 },
      { k: 2, draftExit: 0, adaptive: true },
    ];
    let accepted = 0;
    let drafted = 0;
    for (const s of settings) {
      const r8 = await speculativeGenerate(model, prompts, { maxNewTokens: NEW, ...s });
      expect(r8.tokens, JSON.stringify(s)).toEqual(plain);
      r8.rows.forEach((row, b) => {
        expect(row.tokens).toBe(NEW);
        expect(row.accepted).toBeLessThanOrEqual(row.drafted);
        // every round yields its accepted drafts and one token of the full model
        expect(row.accepted + row.rounds).toBeGreaterThanOrEqual(NEW - 1);
        expect(row.blocks).toBe((row.rounds + row.drafted) * config.numLayers);
        expect(row.ks.length).toBe(row.rounds);
        expect(b).toBeLessThan(8);
      });
      accepted += r8.rows.reduce((a, r) => a + r.accepted, 0);
      drafted += r8.rows.reduce((a, r) => a + r.drafted, 0);
    }
    // batch 1, every prompt, two settings
    for (const s of [settings[1], settings[4]]) {
      for (let i = 0; i < prompts.length; i++) {
        const r1 = await speculativeGenerate(model, [prompts[i]], { maxNewTokens: NEW, ...s });
        expect(r1.tokens[0], `prompt ${i}, ${JSON.stringify(s)}`).toEqual(plain[i]);
      }
    }
    // both regimes are exercised: rejections always; long accepted runs with the scaled model
    expect(accepted).toBeLessThan(drafted);
    if (scale < 1) expect(accepted / drafted).toBeGreaterThan(0.5);
    // stop tokens end rows at the same place as plain decoding
    const stopTok = plain[3][6];
    const plainStop = (await model.generate(prompts, { maxNewTokens: NEW, stop: [stopTok] })).tokens;
    const specStop = await speculativeGenerate(model, prompts, {
      maxNewTokens: NEW,
      k: 3,
      draftExit: 0,
      stop: [stopTok],
    });
    expect(specStop.tokens).toEqual(plainStop);
    expect(plainStop[3].length).toBeLessThanOrEqual(7);
    model.dispose();
  });
});

describe('the cache after speculative decoding', () => {
  it('equals the cache of plain decoding at every layer for every accepted position', async () => {
    const config = parseDecoderConfig(CONFIG);
    const w = weights(config, 23, 0.15);
    const model = new DecoderLM(device, config, w);
    const V = config.vocabSize;
    const prompts = LENGTHS.map((n, i) => randomTokens(n, V, 300 + i));
    const spec = await speculativeGenerate(model, prompts, { maxNewTokens: NEW, k: 4, draftExit: 0, keepCache: true });
    const cache = spec.cache!;
    expect(spec.acceptanceRate).toBeGreaterThan(0.3);
    // plain decoding: prefill, then one full-depth step per generated token but the last
    const { cache: plain } = await model.prefill(prompts, undefined, 64);
    for (let i = 0; i < NEW - 1; i++)
      await model.step(
        prompts.map((_, b) => spec.tokens[b][i]),
        plain,
      );
    for (let b = 0; b < prompts.length; b++) {
      expect(cache.length(b)).toBe(prompts[b].length + NEW - 1);
      expect(plain.length(b)).toBe(cache.length(b));
      for (let l = 0; l < config.numLayers; l++) {
        const a = await cache.readRow(l, b);
        const p = await plain.readRow(l, b);
        for (const [x, y] of [
          [a.k, p.k],
          [a.v, p.v],
        ]) {
          let err = 0;
          let mx = 0;
          for (let i = 0; i < y.length; i++) {
            err = Math.max(err, Math.abs(x[i] - y[i]));
            mx = Math.max(mx, Math.abs(y[i]));
          }
          expect(err / mx, `row ${b}, layer ${l}`).toBeLessThan(1e-5);
        }
      }
    }
    cache.dispose();
    plain.dispose();
    model.dispose();
  });
});

describe('speculative sampling', () => {
  it('chi-square helper matches tabulated critical values', () => {
    // χ² critical values at the 0.05 and 0.001 levels
    expect(chiSquareUpperTail(3.841, 1)).toBeCloseTo(0.05, 4);
    expect(chiSquareUpperTail(18.307, 10)).toBeCloseTo(0.05, 4);
    expect(chiSquareUpperTail(29.588, 10)).toBeCloseTo(0.001, 5);
    expect(chiSquareUpperTail(43.773, 30)).toBeCloseTo(0.05, 4);
    expect(chiSquareUpperTail(2.733, 8)).toBeCloseTo(0.95, 4);
  });

  it('the tokens after the prefill follow the full model distribution; always-accept is detected', async () => {
    const config = parseDecoderConfig({
      ...CONFIG,
      hidden_size: 16,
      num_hidden_layers: 3,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      intermediate_size: 24,
      vocab_size: 6,
      offramp: { exits: [0] },
    });
    const w = weights(config, 5, 0.6);
    const model = new DecoderLM(device, config, w);
    const ref = new DecoderReference(config, w);
    const V = 6;
    const L = config.numLayers;
    const prompt = [1, 4, 2];
    const softmax = (z: Float64Array) => {
      const m = Math.max(...z);
      const e = z.map((x) => Math.exp(x - m));
      const s = e.reduce((a, b) => a + b, 0);
      return e.map((x) => x / s);
    };
    // exact joint distribution of (t2, t3) under the full model, marginal over t1, in float64
    const c0 = ref.newCache();
    let z: Float64Array | undefined;
    for (const t of prompt) z = ref.token(c0, t).logits.get(L - 1);
    const p1 = softmax(z!);
    const exact = new Float64Array(V * V);
    const withPrefix = (ids: number[]) => {
      const c = ref.newCache();
      let zz: Float64Array | undefined;
      for (const t of ids) zz = ref.token(c, t).logits.get(L - 1);
      return softmax(zz!);
    };
    const exact4 = new Float64Array(V);
    for (let a = 0; a < V; a++) {
      const p2 = withPrefix([...prompt, a]);
      for (let b = 0; b < V; b++) {
        const p3 = withPrefix([...prompt, a, b]);
        for (let c = 0; c < V; c++) {
          exact[b * V + c] += p1[a] * p2[b] * p3[c];
          const p4 = withPrefix([...prompt, a, b, c]);
          for (let e = 0; e < V; e++) exact4[e] += p1[a] * p2[b] * p3[c] * p4[e];
        }
      }
    }
    const ROWS = 48;
    const CALLS = 50;
    const draws = async (acceptance: 'exact' | 'always') => {
      const counts = new Float64Array(V * V);
      const counts4 = new Float64Array(V);
      let acc = 0;
      let dr = 0;
      for (let i = 0; i < CALLS; i++) {
        const r = await speculativeGenerate(
          model,
          Array.from({ length: ROWS }, () => prompt),
          { maxNewTokens: 4, k: 2, draftExit: 0, sampling: { temperature: 1, seed: 7000 + i }, acceptance },
        );
        for (const t of r.tokens) {
          counts[t[1] * V + t[2]]++;
          counts4[t[3]]++;
        }
        acc += r.rows.reduce((s, x) => s + x.accepted, 0);
        dr += r.rows.reduce((s, x) => s + x.drafted, 0);
      }
      return { counts, counts4, rate: acc / dr };
    };
    const good = await draws('exact');
    const bad = await draws('always');
    const tGood = chiSquareTest(good.counts, exact);
    const tBad = chiSquareTest(bad.counts, exact);
    const ALPHA = 0.001;
    expect(tGood.cells).toBeGreaterThan(10);
    expect(tGood.pValue, JSON.stringify(tGood)).toBeGreaterThan(ALPHA);
    expect(tBad.pValue, JSON.stringify(tBad)).toBeLessThan(ALPHA);
    // the fourth token (the bonus token after two accepted drafts, or a later round's)
    const t4 = chiSquareTest(good.counts4, exact4);
    expect(t4.pValue, JSON.stringify(t4)).toBeGreaterThan(ALPHA);
    // both branches of the rejection rule ran
    expect(good.rate).toBeGreaterThan(0.2);
    expect(good.rate).toBeLessThan(0.95);
    expect(bad.rate).toBe(1);
    model.dispose();
  });

  it('samplingProbs is the distribution sampleToken draws from (temperature, top-k, top-p)', () => {
    const z = [0.5, 2, -1, 2, 0.1];
    const p = samplingProbs(z, 0, 5, { temperature: 0.5, topK: 3 });
    // top 3: ids 1, 3 (tie, lower id first), 0
    const w = [Math.exp((0.5 - 2) / 0.5), 1, 0, 1, 0];
    const s = w.reduce((a, b) => a + b, 0);
    w.forEach((x, i) => {
      expect(p[i]).toBeCloseTo(x / s, 12);
    });
    const g = samplingProbs(z, 0, 5, {});
    expect(Array.from(g)).toEqual([0, 1, 0, 0, 0]);
    const n = samplingProbs(z, 0, 5, { temperature: 1, topP: 0.5 });
    // ids 1 and 3 each hold e^2 / Σ e^z ≈ 0.42: the smallest prefix reaching 0.5 has both
    expect(Array.from(n).map((x) => x > 0)).toEqual([false, true, false, true, false]);
  });
});

describe('options and the adaptive rule', () => {
  it('refuses a draft exit that is not an early exit, and bad k', async () => {
    const config = parseDecoderConfig(CONFIG);
    const model = new DecoderLM(device, config, randomDecoderWeights(config, 2), { exits: [1] });
    const p = [[1, 2, 3]];
    await expect(speculativeGenerate(model, p, { maxNewTokens: 4, k: 2, draftExit: 0 })).rejects.toThrow(
      /draftExit 0 is not an early exit of this model.*\[1\]/,
    );
    await expect(speculativeGenerate(model, p, { maxNewTokens: 4, k: 2, draftExit: 3 })).rejects.toThrow(
      ValidationError,
    );
    await expect(speculativeGenerate(model, p, { maxNewTokens: 4, k: 0, draftExit: 1 })).rejects.toThrow(/k must be/);
    model.dispose();
  });

  it('adaptive k: the rate-maximising draft length grows with the acceptance rate', () => {
    const E = 1;
    const L = 8;
    expect(adaptiveK(0, E, L, 1, 8)).toBe(1);
    expect(adaptiveK(0.999, E, L, 1, 8)).toBe(8);
    let prev = 1;
    for (let a = 0; a < 1; a += 0.05) {
      const k = adaptiveK(a, E, L, 1, 8);
      expect(k).toBeGreaterThanOrEqual(prev);
      prev = k;
      // brute force over the same cost model
      const rate = (kk: number) => (1 - a ** (kk + 1)) / (1 - a) / ((kk + 1) * E + (L - E));
      for (let kk = 1; kk <= 8; kk++) expect(rate(k)).toBeGreaterThanOrEqual(rate(kk) - 1e-12);
    }
  });
});
