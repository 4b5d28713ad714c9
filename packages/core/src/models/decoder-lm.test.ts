// The GPU decoder (prefill, extend, step with exits and CALM propagation, forwardLayers, score) against the
// float64 reference, on small random models of several shapes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGpuDevice } from '../runtime/create-device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { parseDecoderConfig } from './decoder-config.js';
import { DecoderLM } from './decoder-lm.js';
import { randomDecoderWeights } from './decoder-random.js';
import { DecoderReference } from './decoder-reference.js';

let device: GpuDevice;
beforeAll(async () => {
  device = await createGpuDevice();
});
afterAll(() => device?.destroy());

const base = {
  hidden_size: 32,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  intermediate_size: 48,
  vocab_size: 37,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
};

const CONFIGS: Record<string, object> = {
  'GQA 4:2, untied': { ...base, num_key_value_heads: 2, offramp: { exits: [0, 1] } },
  'GQA 4:1, tied, llama3 rope scaling': {
    ...base,
    num_key_value_heads: 1,
    tie_word_embeddings: true,
    rope_scaling: {
      rope_type: 'llama3',
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 64,
    },
    offramp: { exits: [1] },
  },
  'MHA, 4 blocks, head_dim 16': {
    ...base,
    num_hidden_layers: 4,
    num_attention_heads: 2,
    head_dim: 16,
    offramp: { exits: [0, 2] },
  },
};

/** max |a − b| over max |b|. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let err = 0;
  let mx = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    mx = Math.max(mx, Math.abs(b[i]));
  }
  return err / mx;
}

const TOL = 1e-5;

function setup(name: string, seed = 3, own: { ownExitNorms?: number[]; ownExitHeads?: number[] } = {}) {
  const config = parseDecoderConfig(CONFIGS[name]);
  const w = randomDecoderWeights(config, seed, own);
  return { config, w, model: new DecoderLM(device, config, w), ref: new DecoderReference(config, w) };
}

function randomTokens(n: number, V: number, seed: number): number[] {
  let x = seed;
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % V;
  });
}

describe.each(Object.keys(CONFIGS))('%s', (name) => {
  it('reference: whole-sequence forward equals token-by-token decoding', () => {
    const { config, ref } = setup(name);
    const ids = randomTokens(7, config.vocabSize, 1);
    const full = ref.forward(ids);
    const cache = ref.newCache();
    ids.forEach((id, t) => {
      const r = ref.token(cache, id);
      config.exits.forEach((e, k) => {
        expect(relErr(r.logits.get(e)!, full[k][t])).toBeLessThan(1e-12);
      });
    });
  });

  it('prefill of prompts of different lengths, then extend and steps, match the reference', async () => {
    const { config, model, ref } = setup(name);
    const V = config.vocabSize;
    const prompts = [randomTokens(5, V, 11), randomTokens(1, V, 12), randomTokens(9, V, 13)];
    const { logits, cache } = await model.prefill(prompts, undefined, 20);
    const refCaches = prompts.map(() => ref.newCache());
    prompts.forEach((p, b) => {
      let last: Float64Array | undefined;
      for (const id of p) last = ref.token(refCaches[b], id).logits.get(config.numLayers - 1);
      expect(relErr(logits.subarray(b * V, (b + 1) * V), last!), `row ${b}`).toBeLessThan(TOL);
    });
    // extend by different numbers of tokens per row (none for row 1)
    const more = [randomTokens(3, V, 21), [], randomTokens(2, V, 22)];
    const ext = await model.extend(more, cache);
    more.forEach((toks, b) => {
      toks.forEach((id, i) => {
        const want = ref.token(refCaches[b], id).logits.get(config.numLayers - 1)!;
        const o = (ext.offsets[b] + i) * V;
        expect(relErr(ext.logits.subarray(o, o + V), want), `extend row ${b} token ${i}`).toBeLessThan(TOL);
      });
    });
    expect([...cache.lengths]).toEqual([8, 1, 11]);
    for (let k = 0; k < 3; k++) {
      const toks = randomTokens(3, V, 30 + k);
      const r = await model.step(toks, cache);
      expect([...r.exitBlocks]).toEqual([2, 2, 2].map(() => config.numLayers - 1));
      expect(r.blocksRun).toBe(3 * config.numLayers);
      toks.forEach((id, b) => {
        const want = ref.token(refCaches[b], id).logits.get(config.numLayers - 1)!;
        expect(relErr(r.logits.subarray(b * V, (b + 1) * V), want), `step ${k} row ${b}`).toBeLessThan(TOL);
      });
    }
    cache.dispose();
    model.dispose();
  });

  it('extend(k) equals k single steps, and a row gives the same logits alone or in a batch', async () => {
    const { config, model } = setup(name, 5);
    const V = config.vocabSize;
    const prompts = [randomTokens(4, V, 41), randomTokens(7, V, 42)];
    const more = [randomTokens(4, V, 43), randomTokens(4, V, 44)];
    const a = (await model.prefill(prompts, undefined, 16)).cache;
    const ext = await model.extend(more, a);
    const b = (await model.prefill(prompts, undefined, 16)).cache;
    for (let i = 0; i < 4; i++) {
      const r = await model.step([more[0][i], more[1][i]], b);
      for (let row = 0; row < 2; row++) {
        const o = (ext.offsets[row] + i) * V;
        expect(relErr(r.logits.subarray(row * V, (row + 1) * V), ext.logits.subarray(o, o + V))).toBeLessThan(1e-6);
      }
    }
    // row 1 alone
    const c = (await model.prefill([prompts[1]], undefined, 16)).cache;
    const alone = await model.extend([more[1]], c);
    const o = ext.offsets[1] * V;
    expect(relErr(alone.logits, ext.logits.subarray(o, o + 4 * V))).toBeLessThan(1e-6);
    for (const x of [a, b, c]) x.dispose();
    model.dispose();
  });
});

describe('token-level exits', () => {
  it('CALM propagation: exited tokens leave no stale cache entries, later tokens match the reference', async () => {
    const name = 'GQA 4:2, untied';
    const { config, model, ref } = setup(name, 7);
    const V = config.vocabSize;
    const prompts = [randomTokens(3, V, 51), randomTokens(6, V, 52)];
    const { cache } = await model.prefill(prompts, undefined, 16);
    const rc = prompts.map((p) => {
      const c = ref.newCache();
      for (const id of p) ref.token(c, id);
      return c;
    });
    // step 1: every row leaves after block 0; step 2: only row 1 leaves (custom rule), at block 1;
    // step 3: full depth
    const plan: { rule: Parameters<typeof model.step>[2]; exits: number[] }[] = [
      { rule: { rule: { kind: 'fixed', block: 0 } }, exits: [0, 0] },
      {
        rule: {
          rule: { kind: 'custom', decide: (_s, { block, rows }) => rows.map((r) => block === 1 && r === 1) },
        },
        exits: [2, 1],
      },
      { rule: undefined, exits: [2, 2] },
    ];
    for (const [k, { rule, exits }] of plan.entries()) {
      const toks = randomTokens(2, V, 60 + k);
      const r = await model.step(toks, cache, rule);
      expect([...r.exitBlocks], `step ${k}`).toEqual(exits);
      expect(r.propagatedBlocks).toBe(exits.reduce((a, e) => a + (config.numLayers - 1 - e), 0));
      expect(r.blocksRun).toBe(exits.reduce((a, e) => a + e + 1, 0));
      toks.forEach((id, b) => {
        const want = ref.token(rc[b], id, exits[b]).logits.get(exits[b])!;
        expect(relErr(r.logits.subarray(b * V, (b + 1) * V), want), `step ${k} row ${b}`).toBeLessThan(TOL);
      });
    }
    // every cache entry of every layer equals the reference's (propagated ones included), none is zero
    for (let l = 0; l < config.numLayers; l++) {
      for (let b = 0; b < 2; b++) {
        const { k, v } = await cache.readRow(l, b);
        const n = cache.lengths[b];
        const hd = config.headDim;
        const wantK = new Float64Array(k.length);
        const wantV = new Float64Array(v.length);
        for (let h = 0; h < config.numKvHeads; h++)
          for (let t = 0; t < n; t++)
            for (let i = 0; i < hd; i++) {
              wantK[(h * n + t) * hd + i] = rc[b].k[l][t][h * hd + i];
              wantV[(h * n + t) * hd + i] = rc[b].v[l][t][h * hd + i];
            }
        expect(relErr(k, wantK), `K layer ${l} row ${b}`).toBeLessThan(TOL);
        expect(relErr(v, wantV), `V layer ${l} row ${b}`).toBeLessThan(TOL);
        for (let t = 0; t < n; t++) expect(Math.abs(k[t * hd]) + Math.abs(v[t * hd])).toBeGreaterThan(0);
      }
    }
    cache.dispose();
    model.dispose();
  });

  it('signal rules: thresholds pick the rows the reference signals pick', async () => {
    const { config, w, ref } = setup('GQA 4:2, untied', 9);
    const model = new DecoderLM(device, config, w, { exits: [0] }); // one early exit
    const V = config.vocabSize;
    const prompts = [0, 1, 2, 3].map((b) => randomTokens(2 + b, V, 70 + b));
    const toks = randomTokens(4, V, 80);
    // signals of each row at exit 0 from the reference
    const refMax: number[] = [];
    const refCos: number[] = [];
    prompts.forEach((p, b) => {
      const c = ref.newCache();
      for (const id of p) ref.token(c, id);
      const r = ref.token(c, toks[b]);
      const z = r.logits.get(0)!;
      const m = Math.max(...z);
      const se = z.reduce((a, x) => a + Math.exp(x - m), 0);
      refMax.push(1 / se);
      const e = ref.embed(toks[b]);
      const h = r.hidden[0];
      let dot = 0;
      let na = 0;
      let nb = 0;
      h.forEach((x, i) => {
        dot += x * e[i];
        na += x * x;
        nb += e[i] * e[i];
      });
      refCos.push(dot / Math.sqrt(na * nb));
    });
    const sorted = [...refMax].sort((a, b) => a - b);
    const thr = (sorted[1] + sorted[2]) / 2;
    const { cache } = await model.prefill(prompts, undefined, 16);
    const r = await model.step(toks, cache, { rule: { kind: 'maxProb', threshold: thr }, keepHidden: true });
    expect([...r.exitBlocks]).toEqual(refMax.map((p) => (p >= thr ? 0 : config.numLayers - 1)));
    expect(r.exitHidden!.length).toBe(4 * config.hiddenSize);
    cache.dispose();
    const sortedCos = [...refCos].sort((a, b) => a - b);
    const thrCos = (sortedCos[0] + sortedCos[1]) / 2;
    const c2 = (await model.prefill(prompts, undefined, 16)).cache;
    const r2 = await model.step(toks, c2, { rule: { kind: 'saturation', threshold: thrCos } });
    expect([...r2.exitBlocks]).toEqual(refCos.map((x) => (x >= thrCos ? 0 : config.numLayers - 1)));
    c2.dispose();
    model.dispose();
  });
});

describe('layer ranges (self-speculative decoding pattern)', () => {
  it('drafting blocks < E token by token, then verifying blocks E.. over all drafted tokens in one pass, equals extend', async () => {
    const { config, model } = setup('MHA, 4 blocks, head_dim 16', 13);
    const V = config.vocabSize;
    const L = config.numLayers;
    const E = 1; // the draft runs blocks [0, E) and reads the exit after block E − 1 = 0
    const prompts = [randomTokens(5, V, 91), randomTokens(2, V, 92)];
    const draft = [randomTokens(3, V, 93), randomTokens(3, V, 94)];
    const a = (await model.prefill(prompts, undefined, 16)).cache;
    const want = await model.extend(draft, a);
    const b = (await model.prefill(prompts, undefined, 16)).cache;
    const hE: Float32Array[] = [];
    // drafting: one token per row at a time through blocks [0, E), with the draft exit's logits
    for (let i = 0; i < 3; i++) {
      const h0 = model.embed([draft[0][i], draft[1][i]]);
      const rows = [0, 1];
      const pos = rows.map((r) => b.lengths[r] + i);
      const h = model.forwardLayers(h0, b, rows, pos, 0, E);
      const z = model.exitLogits(h, 2, E - 1);
      expect(z.shape).toEqual([2, V]);
      hE.push((await h.read()) as Float32Array);
      for (const t of [h0, h, z]) t.dispose();
    }
    // verification: all drafted tokens of both rows through blocks [E, L) in one pass, reusing the
    // draft's keys and values of blocks < E
    const rows = [0, 0, 0, 1, 1, 1];
    const pos = rows.map((r, k) => b.lengths[r] + (k % 3));
    const d = config.hiddenSize;
    const hv = new Float32Array(6 * d);
    for (let k = 0; k < 6; k++) hv.set(hE[k % 3].subarray(rows[k] * d, (rows[k] + 1) * d), k * d);
    const hin = device.tensor('f32', [6, d], hv);
    const hout = model.forwardLayers(hin, b, rows, pos, E, L);
    const z = (await model.exitLogits(hout, 6, L - 1).read()) as Float32Array;
    expect(relErr(z, want.logits)).toBeLessThan(1e-6);
    b.setLength(0, b.lengths[0] + 3);
    b.setLength(1, b.lengths[1] + 3);
    // both caches continue identically
    const t = randomTokens(2, V, 95);
    const ra = await model.step(t, a);
    const rb = await model.step(t, b);
    expect(relErr(rb.logits, ra.logits)).toBeLessThan(1e-6);
    // rolling a row back (a rejected draft) and re-extending gives the same logits again
    b.truncate(1, b.lengths[1] - 2);
    const again = await model.extend([[], draft[1].slice(2).concat(t[1])], b);
    expect(relErr(again.logits.subarray(V), ra.logits.subarray(V))).toBeLessThan(1e-6);
    for (const x of [hin, hout]) x.dispose();
    a.dispose();
    b.dispose();
    model.dispose();
  });

  it('score gives every exit the reference teacher-forced NLL, for sequences of different lengths', async () => {
    const { config, model, ref } = setup('GQA 4:2, untied', 15);
    const V = config.vocabSize;
    const seqs = [randomTokens(6, V, 101), randomTokens(3, V, 102), randomTokens(9, V, 103)];
    const r = await model.score(seqs);
    expect(r.count).toBe(5 + 2 + 8);
    expect(r.exits).toEqual(config.exits);
    config.exits.forEach((_e, k) => {
      let want = 0;
      for (const q of seqs) {
        const full = ref.forward(q);
        for (let t = 0; t < q.length - 1; t++) {
          const z = full[k][t];
          const m = Math.max(...z);
          want += m + Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0)) - z[q[t + 1]];
        }
      }
      expect(Math.abs(r.nll[k] - want) / want, `exit ${k}`).toBeLessThan(1e-5);
    });
    model.dispose();
  });

  it('windowed embedding and LM head (tables over one binding) give the same logits', async () => {
    const config = parseDecoderConfig({ ...CONFIGS['GQA 4:2, untied'], vocab_size: 150 });
    const w = randomDecoderWeights(config, 3);
    const plain = new DecoderLM(device, config, w);
    // bindings of 64 rows (offsets aligned to 256 bytes): 150 rows → 3 windows
    const small = new DecoderLM(device, config, w, { maxBindingBytes: 64 * 32 * 4 });
    expect(small.windowCount).toBe(3);
    const prompts = [randomTokens(4, config.vocabSize, 111)];
    const a = await plain.prefill(prompts);
    const b = await small.prefill(prompts);
    expect(relErr(b.logits, a.logits)).toBeLessThan(1e-6);
    a.cache.dispose();
    b.cache.dispose();
    plain.dispose();
    small.dispose();
  });
});
