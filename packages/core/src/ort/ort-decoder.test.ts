// The decoder on ONNX Runtime (real onnxruntime-node) against the float64 DecoderReference on random weights:
// prefill of ragged prompts and decode steps (GQA 4:2 and 4:1, tied and untied, llama3 rope scaling, own exit
// norms/heads), token exits with CALM propagation (every KV-cache entry compared) and with 'none', batch
// invariance, teacher-forced scoring; skipped with a message only where onnxruntime-node cannot load.
import { describe, expect, it } from 'vitest';
import { parseDecoderConfig } from '../models/decoder-config.js';
import { randomDecoderWeights } from '../models/decoder-random.js';
import { DecoderReference } from '../models/decoder-reference.js';
import { createOrtCpu, loadOrt } from './ort-cpu.js';
import { OrtDecoderLM } from './ort-decoder.js';

const ortError = await loadOrt().then(
  () => null,
  (e: Error) => e,
);
if (ortError) console.warn(`skipping the ONNX Runtime decoder tests: ${ortError.message}`);
const describeOrt = ortError ? describe.skip : describe;

// the ONNX Runtime path's logit tolerance (ort.test.ts), relative to the largest reference logit
const TOL = 2e-4;

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

const CONFIGS: Record<string, { cfg: object; own?: { ownExitNorms?: number[]; ownExitHeads?: number[] } }> = {
  'GQA 4:2, untied, own exit norm and head': {
    cfg: { ...base, num_key_value_heads: 2, offramp: { exits: [0, 1] } },
    own: { ownExitNorms: [0], ownExitHeads: [1] },
  },
  'GQA 4:1, tied, llama3 rope scaling': {
    cfg: {
      ...base,
      num_key_value_heads: 1,
      tie_word_embeddings: true,
      rope_scaling: {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 16,
      },
      offramp: { exits: [1] },
    },
  },
  'MHA, 4 blocks, head_dim 16': {
    cfg: { ...base, num_hidden_layers: 4, num_attention_heads: 2, head_dim: 16, offramp: { exits: [0, 2] } },
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

function randomTokens(n: number, V: number, seed: number): number[] {
  let x = seed;
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % V;
  });
}

async function setup(name: string, seed = 3) {
  const { cfg, own } = CONFIGS[name];
  const config = parseDecoderConfig(cfg);
  const w = randomDecoderWeights(config, seed, own);
  const model = new OrtDecoderLM(await createOrtCpu({ threads: 1 }), config, w);
  return { config, w, model, ref: new DecoderReference(config, w) };
}

/** The reference's cache of one row at block l in (Hkv, n, hd) layout. */
function refRow(
  config: ReturnType<typeof parseDecoderConfig>,
  c: { k: Float64Array[][]; v: Float64Array[][] },
  l: number,
) {
  const n = c.k[l].length;
  const { numKvHeads: Hkv, headDim: hd } = config;
  const k = new Float64Array(Hkv * n * hd);
  const v = new Float64Array(Hkv * n * hd);
  for (let h = 0; h < Hkv; h++)
    for (let t = 0; t < n; t++)
      for (let i = 0; i < hd; i++) {
        k[(h * n + t) * hd + i] = c.k[l][t][h * hd + i];
        v[(h * n + t) * hd + i] = c.v[l][t][h * hd + i];
      }
  return { k, v };
}

describeOrt('OrtDecoderLM against the float64 reference', () => {
  describe.each(Object.keys(CONFIGS))('%s', (name) => {
    it('prefill of ragged prompts and full-depth steps match the reference; the KV cache too', async () => {
      const { config, model, ref } = await setup(name);
      const V = config.vocabSize;
      const L = config.numLayers;
      const prompts = [randomTokens(5, V, 11), randomTokens(1, V, 12), randomTokens(9, V, 13)];
      const cache = model.newCache(3, 20);
      const logits = await model.prefill(prompts, cache);
      const rc = prompts.map(() => ref.newCache());
      prompts.forEach((p, b) => {
        let last: Float64Array | undefined;
        for (const id of p) last = ref.token(rc[b], id).logits.get(L - 1);
        expect(relErr(logits.subarray(b * V, (b + 1) * V), last!), `prefill row ${b}`).toBeLessThan(TOL);
      });
      expect([...cache.lengths]).toEqual([5, 1, 9]);
      for (let k = 0; k < 4; k++) {
        const toks = randomTokens(3, V, 30 + k);
        const r = await model.step(toks, cache);
        expect([...r.exitBlocks]).toEqual([L - 1, L - 1, L - 1]);
        expect(r.blocksRun).toBe(3 * L);
        toks.forEach((id, b) => {
          const want = ref.token(rc[b], id).logits.get(L - 1)!;
          expect(relErr(r.logits.subarray(b * V, (b + 1) * V), want), `step ${k} row ${b}`).toBeLessThan(TOL);
        });
      }
      for (let l = 0; l < L; l++)
        for (let b = 0; b < 3; b++) {
          const got = cache.readRow(l, b);
          const want = refRow(config, rc[b], l);
          expect(relErr(got.k, want.k), `K block ${l} row ${b}`).toBeLessThan(TOL);
          expect(relErr(got.v, want.v), `V block ${l} row ${b}`).toBeLessThan(TOL);
        }
      await model.dispose();
    });

    it('token exits by a per-row rule with CALM propagation: logits and every cache entry match the reference', async () => {
      const { config, model, ref } = await setup(name, 7);
      const V = config.vocabSize;
      const L = config.numLayers;
      const early = config.exits.slice(0, -1);
      const prompts = [randomTokens(3, V, 51), randomTokens(6, V, 52), randomTokens(2, V, 53)];
      const cache = model.newCache(3, 16);
      await model.prefill(prompts, cache);
      const rc = prompts.map((p) => {
        const c = ref.newCache();
        for (const id of p) ref.token(c, id);
        return c;
      });
      // step k: row b leaves at early exit plan[k][b] (L − 1: full depth)
      const plan = [
        [early[0], early.at(-1)!, L - 1],
        [L - 1, early[0], early[0]],
        [early.at(-1)!, L - 1, early.at(-1)!],
        [early[0], early[0], early[0]],
      ];
      for (const [k, want] of plan.entries()) {
        const toks = randomTokens(3, V, 60 + k);
        const seen: number[][] = [];
        const r = await model.step(toks, cache, {
          decide: (s, { block, rows }) => {
            seen.push([block, ...rows]);
            expect(s.maxProb.length).toBe(rows.length);
            return rows.map((row) => want[row] === block);
          },
        });
        expect([...r.exitBlocks], `step ${k}`).toEqual(want);
        expect(r.blocksRun).toBe(want.reduce((a, e) => a + e + 1, 0));
        // the rule sees only the rows still going, at each early exit in order
        const live = [0, 1, 2];
        const expected: number[][] = [];
        for (const e of early) {
          if (!live.length) break;
          expected.push([e, ...live]);
          for (const row of [...live]) if (want[row] === e) live.splice(live.indexOf(row), 1);
        }
        expect(seen).toEqual(expected);
        toks.forEach((id, b) => {
          const z = ref.token(rc[b], id, want[b]).logits.get(want[b])!;
          expect(relErr(r.logits.subarray(b * V, (b + 1) * V), z), `step ${k} row ${b}`).toBeLessThan(TOL);
        });
      }
      for (let l = 0; l < L; l++)
        for (let b = 0; b < 3; b++) {
          const got = cache.readRow(l, b);
          const want = refRow(config, rc[b], l);
          expect(relErr(got.k, want.k), `K block ${l} row ${b}`).toBeLessThan(TOL);
          expect(relErr(got.v, want.v), `V block ${l} row ${b}`).toBeLessThan(TOL);
        }
      await model.dispose();
    });
  });

  it("skip 'none' leaves the skipped blocks' entries unwritten; the exit signals are the reference's", async () => {
    const name = 'GQA 4:2, untied, own exit norm and head';
    const { config, model, ref } = await setup(name, 9);
    const V = config.vocabSize;
    const prompts = [randomTokens(4, V, 71), randomTokens(2, V, 72)];
    const cache = model.newCache(2, 8);
    await model.prefill(prompts, cache);
    const rc = prompts.map((p) => {
      const c = ref.newCache();
      for (const id of p) ref.token(c, id);
      return c;
    });
    const toks = randomTokens(2, V, 73);
    let sig: { maxProb: number[]; entropy: number[]; margin: number[]; similarity: number[] } | null = null;
    const r = await model.step(toks, cache, {
      skip: 'none',
      decide: (s, { block, rows }) => {
        if (block === 0)
          sig = {
            maxProb: [...s.maxProb],
            entropy: [...s.entropy],
            margin: [...s.margin],
            similarity: [...s.similarity],
          };
        return rows.map((row) => row === 0 && block === 0);
      },
    });
    expect([...r.exitBlocks]).toEqual([0, 2]);
    // row 0's position 4 is written at block 0 only
    for (let l = 1; l < 3; l++) {
      const { k } = cache.readRow(l, 0);
      const hd = config.headDim;
      for (let h = 0; h < config.numKvHeads; h++)
        expect(Array.from(k.subarray((h * 5 + 4) * hd, (h * 5 + 5) * hd)).every((x) => x === 0)).toBe(true);
    }
    // signals at exit 0 against the reference's logits and hidden states
    toks.forEach((id, b) => {
      const emb = ref.embed(id);
      const t = ref.token(rc[b], id);
      const z = t.logits.get(0)!;
      const m = Math.max(...z);
      const e = Array.from(z, (x) => Math.exp(x - m));
      const S = e.reduce((a, x) => a + x, 0);
      const p = e.map((x) => x / S).sort((a, c) => c - a);
      const ent = -e.reduce((a, x) => a + (x / S) * Math.log(x / S), 0);
      const h0 = t.hidden[0];
      let dot = 0;
      let na = 0;
      let nb = 0;
      h0.forEach((x, i) => {
        dot += x * emb[i];
        na += x * x;
        nb += emb[i] * emb[i];
      });
      expect(sig!.maxProb[b]).toBeCloseTo(p[0], 4);
      expect(sig!.margin[b]).toBeCloseTo(p[0] - p[1], 4);
      expect(sig!.entropy[b]).toBeCloseTo(ent, 3);
      expect(sig!.similarity[b]).toBeCloseTo(dot / Math.sqrt(na * nb), 4);
    });
    await model.dispose();
  });

  it('a row alone gives what it gives in a batch (prefill and steps with exits)', async () => {
    const { config, model } = await setup('GQA 4:1, tied, llama3 rope scaling', 5);
    const V = config.vocabSize;
    const prompts = [randomTokens(4, V, 81), randomTokens(7, V, 82), randomTokens(2, V, 83)];
    const more = [randomTokens(4, V, 84), randomTokens(4, V, 85), randomTokens(4, V, 86)];
    // a rule that depends on each row's own signals, so rows leave at different blocks
    const decide = (s: { argmax: Int32Array }) => Array.from(s.argmax, (a) => a % 3 === 0);
    const run = async (rows: number[]) => {
      const cache = model.newCache(rows.length, 16);
      const logits = [
        await model.prefill(
          rows.map((r) => prompts[r]),
          cache,
        ),
      ];
      const blocks: number[][] = [];
      for (let i = 0; i < 4; i++) {
        const r = await model.step(
          rows.map((row) => more[row][i]),
          cache,
          { decide },
        );
        logits.push(r.logits);
        blocks.push([...r.exitBlocks]);
      }
      return { logits, blocks };
    };
    const all = await run([0, 1, 2]);
    // one session per (kind, segment), whatever the batch and lengths: symbolic dimensions
    const sessions = model.sessionCount;
    for (const row of [0, 1, 2]) {
      const alone = await run([row]);
      alone.logits.forEach((z, i) => {
        expect(relErr(z, all.logits[i].subarray(row * V, (row + 1) * V)), `row ${row} call ${i}`).toBeLessThan(1e-5);
      });
      expect(alone.blocks.map((b) => b[0])).toEqual(all.blocks.map((b) => b[row]));
    }
    expect(new Set(all.blocks.flat()).size).toBeGreaterThan(1);
    expect(model.sessionCount).toBe(sessions);
    await model.dispose();
  });

  it('score: per-exit −log p of teacher-forced sequences matches the reference forward', async () => {
    const name = 'MHA, 4 blocks, head_dim 16';
    const { config, model, ref } = await setup(name, 11);
    const V = config.vocabSize;
    const seqs = [randomTokens(6, V, 91), randomTokens(3, V, 92)];
    const s = await model.score(seqs);
    expect(s.count).toBe(5 + 2);
    expect(s.exits).toEqual(config.exits);
    let i = 0;
    for (const q of seqs) {
      const full = ref.forward(q);
      for (let t = 0; t + 1 < q.length; t++, i++) {
        config.exits.forEach((_, e) => {
          const z = full[e][t];
          const m = Math.max(...z);
          const lse = m + Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0));
          expect(s.tokenNll[e][i]).toBeCloseTo(lse - z[q[t + 1]], 3);
        });
      }
    }
    expect(s.signals[0].maxProb.length).toBe(7);
    await expect(model.score([[1]])).rejects.toThrow(/at least 2/);
    await model.dispose();
  });

  it('bad input gets a clear error', async () => {
    const { config, model } = await setup('GQA 4:2, untied, own exit norm and head');
    const cache = model.newCache(2, 8);
    await expect(model.prefill([[1, 2], []], cache)).rejects.toThrow(/prompt 1 is empty/);
    await expect(model.prefill([[1, 2, 3, 4, 5, 6, 7, 8, 9]], model.newCache(1, 8))).rejects.toThrow(
      /more than the cache/,
    );
    await expect(model.prefill([[1, config.vocabSize]], model.newCache(1, 8))).rejects.toThrow(/not a token id/);
    await model.prefill([[1], [2, 3]], cache);
    await expect(model.step([1], cache)).rejects.toThrow(/1 tokens for a cache of 2 rows/);
    await expect(model.step([1, 2], cache, { decide: () => [], skip: 'freeze' })).rejects.toThrow(/propagate, none/);
    await expect(model.step([1, 2], cache, { decide: () => [true] })).rejects.toThrow(/1 decisions for 2 rows/);
    expect(() => model.newCache(1, 65)).toThrow(/maxLength must be an integer in \[1, 64\]/);
    await model.dispose();
  });
});
