import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { mulberry32, parseSafetensors, randn } from '@offramp/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../training/backend.js';
import {
  dimsFromLlamaConfig,
  fromHfTensors,
  llamaConfig,
  readDecoderSafetensors,
  toHfTensors,
  writeDecoderSafetensors,
} from './export.js';
import { type DecoderDims, DecoderModel, initValues, paramCount } from './model.js';
import { depthFactor, dropoutKeep, dropoutRates, layerskipExitScales } from './recipes.js';
import { type HfTensors, referenceLogits, rope } from './reference.js';
import { type DecoderTrainOptions, evalBpc, trainDecoder } from './train.js';

const tiny: DecoderDims = {
  vocab: 11,
  d: 16,
  layers: 3,
  heads: 4,
  kvHeads: 2,
  ffn: 24,
  ropeTheta: 100,
  eps: 1e-5,
  maxPos: 16,
};

/** Values with larger random norms and matrices than the initialisation, so every part of the block matters. */
function randomValues(dims: DecoderDims, seed: number): Map<string, Float32Array> {
  const rand = mulberry32(seed);
  const v = initValues(dims, rand);
  for (const [name, a] of v) {
    const r = name.includes('ln') || name === 'norm' ? randn(a.length, rand, 0.3) : randn(a.length, rand, 0.35);
    for (let i = 0; i < a.length; i++) a[i] = name.includes('ln') || name === 'norm' ? 1 + r[i] : r[i];
  }
  return v;
}

async function tfLogits(m: DecoderModel, ids: Int32Array, B: number, T: number, exits: number[]) {
  const ts = tf.tidy(() => m.hidden(ids, B, T, exits).map((h) => m.head(h)));
  const out = await Promise.all(ts.map((t) => t.data()));
  tf.dispose(ts);
  return out as Float32Array[];
}

beforeAll(async () => {
  await initBackend('cpu', () => {});
});

describe('LayerSkip recipe pieces', () => {
  it('D(l) runs from 0 at the first block to 1 at the last, e^{l·ln2/(L−1)} − 1 in between', () => {
    const L = 6;
    expect(depthFactor(0, L)).toBe(0);
    expect(depthFactor(L - 1, L)).toBeCloseTo(1, 12);
    for (let l = 0; l < L; l++) expect(depthFactor(l, L)).toBeCloseTo(2 ** (l / (L - 1)) - 1, 12);
    expect(dropoutRates(L, 0.2)[L - 1]).toBeCloseTo(0.2, 12);
  });

  it('drawn layer dropout follows p(l) = D(l)·p_max per block', () => {
    const L = 6;
    const rates = dropoutRates(L, 0.3);
    const B = 4000;
    const draws = 5;
    const dropped = new Array(L).fill(0);
    const rand = mulberry32(5);
    for (let s = 0; s < draws; s++)
      dropoutKeep(rates, B, rand).forEach((k, l) => {
        for (const z of k) if (z === 0) dropped[l]++;
      });
    const n = B * draws;
    for (let l = 0; l < L; l++) {
      const p = depthFactor(l, L) * 0.3;
      const sd = Math.sqrt((p * (1 - p)) / n);
      expect(Math.abs(dropped[l] / n - p)).toBeLessThanOrEqual(4 * sd + 1e-12);
    }
    expect(dropped[0]).toBe(0);
  });

  it('exit scales: e_scale·Σ_{i≤l} i below the top, L−1 + e_scale·Σ_{i≤L−2} i at the top, normalised', () => {
    const L = 6;
    const e: number[] = [];
    for (const l of [1, 2, 3, 4, 5]) {
      let s = 0;
      for (let i = 0; i <= Math.min(l, L - 2); i++) s += i;
      e.push(l === L - 1 ? L - 1 + 0.5 * s : 0.5 * s);
    }
    const total = e.reduce((a, b) => a + b, 0);
    const got = layerskipExitScales([1, 2, 3, 4, 5], L, 0.5);
    for (const [j, g] of got.entries()) expect(g).toBeCloseTo(e[j] / total, 12);
    expect(got.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    for (let j = 1; j < got.length; j++) expect(got[j]).toBeGreaterThan(got[j - 1]);
  });

  it('a dropped block leaves that sequence as if the block were absent, other sequences untouched', async () => {
    const m = new DecoderModel(tiny, randomValues(tiny, 3));
    const T = 8;
    const ids = Int32Array.from({ length: 2 * T }, (_, i) => (i * 5 + 1) % tiny.vocab);
    const mixed = await tfLogits2(m, ids, T, [
      new Float32Array([1, 1]),
      new Float32Array([1, 0]),
      new Float32Array([1, 1]),
    ]);
    const full = await tfLogits2(m, ids, T, undefined);
    const skip = await tfLogits2(m, ids, T, [
      new Float32Array([1, 1]),
      new Float32Array([0, 0]),
      new Float32Array([1, 1]),
    ]);
    const row = T * tiny.vocab;
    for (let i = 0; i < row; i++) {
      expect(mixed[i]).toBeCloseTo(full[i], 5);
      expect(mixed[row + i]).toBeCloseTo(skip[row + i], 5);
    }
    expect(Math.max(...full.subarray(row).map((x, i) => Math.abs(x - skip[row + i])))).toBeGreaterThan(1e-2);
    m.dispose();
  });
});

async function tfLogits2(m: DecoderModel, ids: Int32Array, T: number, keep: Float32Array[] | undefined) {
  const t = tf.tidy(() => m.head(m.hidden(ids, 2, T, [m.dims.layers - 1], keep)[0]));
  const out = (await t.data()) as Float32Array;
  t.dispose();
  return out;
}

describe('training', () => {
  const text = Int32Array.from(
    { length: 4000 },
    (_, i) => [1, 2, 3, 4, 5, 6, 2, 3, 7, 8][i % 10] + (i % 37 === 0 ? 1 : 0),
  );
  const base: DecoderTrainOptions = {
    recipe: 'layerskip',
    dims: tiny,
    exits: [1, 2],
    batch: 4,
    context: 12,
    seed: 2,
    lr: 1e-2,
    warmup: 3,
    minFactor: 0.1,
    weightDecay: 0.01,
    clipNorm: 1,
    steps: 30,
    pMax: 0.2,
    eScale: 1,
    alpha: 1,
    logEvery: 0,
  };

  for (const recipe of ['layerskip', 'selfdistill'] as const) {
    it(`the ${recipe} recipe lowers the loss at every exit`, async () => {
      const heldBefore = new DecoderModel(tiny, initValues(tiny, mulberry32(2)));
      const before = await evalBpc(heldBefore, text, [1, 2], 12, 8);
      heldBefore.dispose();
      const r = await trainDecoder(text, { ...base, recipe, logEvery: 1, log: () => {} });
      const after = await evalBpc(r.model, text, [1, 2], 12, 8);
      expect(r.steps).toBe(30);
      expect(r.tokens).toBe(30 * 4 * 12);
      for (const [j, b] of after.bpc.entries()) expect(b).toBeLessThan(before.bpc[j] - 1);
      const first = r.history[0].loss;
      const last = r.history[r.history.length - 1].loss;
      expect(last).toBeLessThan(first * 0.6);
      if (recipe === 'layerskip') {
        expect(r.dropout[0]).toBe(0);
        expect(r.dropout[2]).toBeCloseTo(0.2, 12);
      } else expect(r.dropoutObserved.every((x) => x === 0)).toBe(true);
      r.model.dispose();
    });
  }
});

describe('export', () => {
  it('writes HF Llama names, (out, in) shapes, the dtype and a config that round-trip', () => {
    const values = randomValues(tiny, 4);
    const expected = new Set(['model.embed_tokens.weight', 'model.norm.weight']);
    for (let i = 0; i < tiny.layers; i++)
      for (const n of [
        'input_layernorm',
        'post_attention_layernorm',
        'self_attn.q_proj',
        'self_attn.k_proj',
        'self_attn.v_proj',
        'self_attn.o_proj',
        'mlp.gate_proj',
        'mlp.up_proj',
        'mlp.down_proj',
      ])
        expected.add(`model.layers.${i}.${n}.weight`);
    const dir = mkdtempSync(path.join(tmpdir(), 'decoder-export-'));
    for (const dtype of ['F32', 'F16'] as const) {
      const file = path.join(dir, `model-${dtype}.safetensors`);
      writeFileSync(file, writeDecoderSafetensors(values, tiny, dtype));
      const parsed = parseSafetensors(new Uint8Array(readFileSync(file)));
      expect(new Set(parsed.tensors.keys())).toEqual(expected);
      expect(parsed.metadata).toEqual({ format: 'pt' });
      let count = 0;
      for (const t of parsed.tensors.values()) {
        expect(t.dtype).toBe(dtype);
        count += t.data.length;
      }
      expect(count).toBe(paramCount(tiny));
      const q = parsed.tensors.get('model.layers.1.self_attn.q_proj.weight')!;
      const k = parsed.tensors.get('model.layers.1.self_attn.k_proj.weight')!;
      const down = parsed.tensors.get('model.layers.2.mlp.down_proj.weight')!;
      expect(q.shape).toEqual([16, 16]);
      expect(k.shape).toEqual([8, 16]);
      expect(down.shape).toEqual([16, 24]);
      // HF Linear (out, in): element [o][i] is our (in, out) element [i][o]
      const wk = values.get('layers.1.wk')!;
      const wd = values.get('layers.2.wd')!;
      const tol = dtype === 'F32' ? 0 : 2e-3;
      for (const [o, i] of [
        [0, 5],
        [7, 15],
        [3, 0],
      ]) {
        expect(Math.abs(k.data[o * 16 + i] - wk[i * 8 + o])).toBeLessThanOrEqual(tol * Math.abs(wk[i * 8 + o]) + 1e-7);
        expect(Math.abs(down.data[o * 24 + i] - wd[i * 16 + o])).toBeLessThanOrEqual(
          tol * Math.abs(wd[i * 16 + o]) + 1e-7,
        );
      }
      const back = fromHfTensors(readDecoderSafetensors(new Uint8Array(readFileSync(file))), tiny);
      for (const [name, a] of values) {
        const b = back.get(name)!;
        for (let i = 0; i < a.length; i++)
          expect(Math.abs(b[i] - a[i])).toBeLessThanOrEqual(tol * Math.abs(a[i]) + 1e-7);
      }
    }
    const cfg = llamaConfig(tiny, 'F16', { exits: [1, 2], tokenizer: 'char-tokenizer.json', recipe: 'layerskip' });
    const json = JSON.parse(JSON.stringify(cfg));
    expect(json.architectures).toEqual(['LlamaForCausalLM']);
    expect(json.model_type).toBe('llama');
    expect(json.tie_word_embeddings).toBe(true);
    expect(json.torch_dtype).toBe('float16');
    expect(json.num_key_value_heads).toBe(2);
    expect(json.offramp.exits).toEqual([1, 2]);
    expect(dimsFromLlamaConfig(json)).toEqual(tiny);
    expect(toHfTensors(values, tiny).has('lm_head.weight')).toBe(false);
  });
});

describe('independent float64 forward', () => {
  it('equals the TF.js forward on exported weights at every exit', async () => {
    const values = randomValues(tiny, 6);
    const hf = readDecoderSafetensors(writeDecoderSafetensors(values, tiny, 'F32'));
    const m = new DecoderModel(tiny, fromHfTensors(hf, tiny));
    const T = 14;
    const B = 2;
    const rand = mulberry32(9);
    const ids = Int32Array.from({ length: B * T }, () => Math.floor(rand() * tiny.vocab));
    const exits = [0, 1, 2];
    const got = await tfLogits(m, ids, B, T, exits);
    let scale = 0;
    for (let b = 0; b < B; b++) {
      const ref = referenceLogits(hf, tiny, ids.subarray(b * T, (b + 1) * T), exits);
      for (const [j, rows] of ref.entries())
        for (const [p, z] of rows.entries())
          for (const [c, v] of z.entries()) {
            scale = Math.max(scale, Math.abs(v));
            expect(Math.abs(got[j][(b * T + p) * tiny.vocab + c] - v)).toBeLessThan(1e-4 * Math.max(1, Math.abs(v)));
          }
    }
    expect(scale).toBeGreaterThan(0.5);
    m.dispose();
  });

  it('groups query heads as Hugging Face does: GQA equals MHA with each K/V head repeated', () => {
    const values = randomValues(tiny, 8);
    const hf = readDecoderSafetensors(writeDecoderSafetensors(values, tiny, 'F32'));
    const mha: DecoderDims = { ...tiny, kvHeads: tiny.heads };
    const hd = tiny.d / tiny.heads;
    const G = tiny.heads / tiny.kvHeads;
    const expanded: HfTensors = new Map(hf);
    for (let l = 0; l < tiny.layers; l++)
      for (const w of ['k_proj', 'v_proj']) {
        const name = `model.layers.${l}.self_attn.${w}.weight`;
        const src = hf.get(name)!.data;
        const out = new Float32Array(tiny.heads * hd * tiny.d);
        // query head h reads kv head ⌊h / G⌋ (HF repeat_kv)
        for (let h = 0; h < tiny.heads; h++)
          out.set(
            src.subarray(Math.floor(h / G) * hd * tiny.d, (Math.floor(h / G) + 1) * hd * tiny.d),
            h * hd * tiny.d,
          );
        expanded.set(name, { shape: [tiny.heads * hd, tiny.d], data: out });
      }
    const ids = [3, 1, 4, 1, 5, 9, 2, 6];
    const a = referenceLogits(hf, tiny, ids, [2])[0];
    const b = referenceLogits(expanded, mha, ids, [2])[0];
    for (const [p, z] of a.entries()) for (const [c, v] of z.entries()) expect(b[p][c]).toBeCloseTo(v, 10);
  });

  it('is causal: a shared prefix gives identical logits', () => {
    const values = randomValues(tiny, 10);
    const hf = readDecoderSafetensors(writeDecoderSafetensors(values, tiny, 'F32'));
    const long = [2, 7, 1, 8, 2, 8, 1, 8];
    const a = referenceLogits(hf, tiny, long, [2])[0];
    const b = referenceLogits(hf, tiny, long.slice(0, 5), [2])[0];
    for (const [p, z] of b.entries()) for (const [c, v] of z.entries()) expect(a[p][c]).toBeCloseTo(v, 12);
  });

  it('RoPE pairs dims i and i + hd/2 with inv_freq θ^(−2i/hd); scores depend on relative position', () => {
    const hd = 8;
    const theta = 100;
    for (let i = 0; i < hd / 2; i++) {
      const v = new Float64Array(hd);
      v[i] = 1;
      rope(v, 1, hd, 3, theta);
      const a = 3 * theta ** ((-2 * i) / hd);
      const want = new Float64Array(hd);
      want[i] = Math.cos(a);
      want[i + hd / 2] = Math.sin(a);
      for (const [k, x] of v.entries()) expect(x).toBeCloseTo(want[k], 12);
    }
    const rand = mulberry32(12);
    const q0 = Float64Array.from({ length: hd }, () => rand() - 0.5);
    const k0 = Float64Array.from({ length: hd }, () => rand() - 0.5);
    const score = (m: number, n: number) => {
      const q = q0.slice();
      const k = k0.slice();
      rope(q, 1, hd, m, theta);
      rope(k, 1, hd, n, theta);
      return q.reduce((s, x, i) => s + x * k[i], 0);
    };
    expect(score(7, 4)).toBeCloseTo(score(13, 10), 12);
    expect(Math.abs(score(7, 4) - score(7, 5))).toBeGreaterThan(1e-3);
  });
});
