// Llama-format folders written from random weights (F32, F16, BF16, sharded) load back through
// loadDecoderLM and give the reference's logits on the stored (rounded) weights; hostile folders fail with
// clear errors.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDecoderConfig } from '../models/decoder-config.js';
import { randomDecoderWeights } from '../models/decoder-random.js';
import { DecoderReference } from '../models/decoder-reference.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { loadDecoderDir, loadDecoderLM } from './decoder-dir.js';
import {
  halfToNumber,
  numberToBFloat16,
  numberToHalf,
  type SafetensorsDType,
  writeSafetensors,
} from './safetensors.js';

let device: GpuDevice;
let root: string;
beforeAll(async () => {
  device = await createGpuDevice();
  root = await mkdtemp(path.join(tmpdir(), 'offramp-decoder-'));
});
afterAll(async () => {
  device?.destroy();
  await rm(root, { recursive: true, force: true });
});

const CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 32,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 40,
  vocab_size: 29,
  max_position_embeddings: 32,
  rms_norm_eps: 1e-6,
  rope_theta: 500000,
  hidden_act: 'silu',
  attention_bias: false,
  torch_dtype: 'float32',
  tie_word_embeddings: false,
  offramp: { exits: [0, 1] },
};

let n = 0;
async function writeFolder(
  cfg: Record<string, unknown>,
  o: { dtype?: SafetensorsDType; shards?: number; own?: boolean; edit?: (w: Map<string, any>) => void } = {},
) {
  const dir = path.join(root, `m${n++}`);
  await mkdir(dir);
  const config = parseDecoderConfig(cfg);
  const w = randomDecoderWeights(config, 17, o.own ? { ownExitNorms: [0], ownExitHeads: [1] } : {});
  o.edit?.(w);
  const entries = [...w].map(([name, t]) => [name, { dtype: o.dtype ?? 'F32', shape: t.shape, data: t.data }] as const);
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(cfg));
  if (!o.shards) await writeFile(path.join(dir, 'model.safetensors'), writeSafetensors(new Map(entries)));
  else {
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < o.shards; s++) {
      const file = `model-0000${s + 1}-of-0000${o.shards}.safetensors`;
      const part = entries.filter((_, i) => i % o.shards! === s);
      for (const [name] of part) weightMap[name] = file;
      await writeFile(path.join(dir, file), writeSafetensors(new Map(part)));
    }
    await writeFile(
      path.join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
  }
  return { dir, w, config };
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0;
  let mx = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    mx = Math.max(mx, Math.abs(b[i]));
  }
  return err / mx;
}

const round: Record<string, (x: number) => number> = {
  F32: (x) => Math.fround(x),
  F16: (x) => halfToNumber(numberToHalf(x)),
  BF16: (x) => new Float32Array(new Uint32Array([numberToBFloat16(x) << 16]).buffer)[0],
};

describe('Llama-format folders load back', () => {
  const cases: [string, SafetensorsDType, number, boolean, Record<string, unknown>][] = [
    ['F32', 'F32', 0, false, CONFIG],
    ['F16, own exit norm and head', 'F16', 0, true, CONFIG],
    [
      'BF16, tied, llama3 rope',
      'BF16',
      0,
      false,
      {
        ...CONFIG,
        tie_word_embeddings: true,
        rope_scaling: {
          rope_type: 'llama3',
          factor: 8,
          low_freq_factor: 1,
          high_freq_factor: 4,
          original_max_position_embeddings: 16,
        },
      },
    ],
    ['F32, 3 shards', 'F32', 3, false, CONFIG],
  ];
  it.each(cases)('%s', async (_label, dtype, shards, own, cfg) => {
    const { dir, w, config } = await writeFolder(cfg, { dtype, shards, own });
    const { model, loaded } = await loadDecoderLM(dir, device);
    expect(loaded.config).toEqual(config);
    // the stored weights are the originals rounded to the dtype
    for (const [name, t] of w) {
      const got = loaded.tensors.get(name)!;
      expect(got.shape).toEqual(t.shape);
      expect(loaded.dtypes.get(name)).toBe(dtype);
      for (let i = 0; i < t.data.length; i += 7) expect(got.data[i]).toBe(round[dtype](t.data[i]));
    }
    const ref = new DecoderReference(config, loaded.tensors);
    const ids = [3, 7, 1, 28, 0, 5, 9];
    const full = ref.forward(ids);
    const { logits, cache } = await model.prefill([ids.slice(0, 4), ids], undefined, 12);
    const V = config.vocabSize;
    expect(relErr(logits.subarray(0, V), full.at(-1)![3])).toBeLessThan(1e-5);
    expect(relErr(logits.subarray(V), full.at(-1)![6])).toBeLessThan(1e-5);
    cache.dispose();
    const sc = await model.score([ids]);
    config.exits.forEach((_e, k) => {
      let want = 0;
      for (let t = 0; t < ids.length - 1; t++) {
        const z = full[k][t];
        const m = Math.max(...z);
        want += m + Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0)) - z[ids[t + 1]];
      }
      expect(Math.abs(sc.nll[k] - want) / want).toBeLessThan(1e-5);
    });
    model.dispose();
  });

  it('accepts the training information the trainer writes in the offramp section', () => {
    const c = parseDecoderConfig({
      ...CONFIG,
      offramp: {
        exits: [1, 2],
        recipe: 'LayerSkip',
        exit_loss_scales: [0.4, 0.6],
        layer_dropout: [0, 0.1, 0.2],
        heldout_bpc: [3.3, 3.2],
      },
    });
    expect(c.exits).toEqual([1, 2]);
  });

  it('reads a tokenizer named by offramp.tokenizer (char) and keeps it inside the folder', async () => {
    const { dir } = await writeFolder({ ...CONFIG, offramp: { exits: [1], tokenizer: 'chars.json' } });
    await writeFile(path.join(dir, 'chars.json'), JSON.stringify({ type: 'char', version: 1, chars: [...'abc xyz'] }));
    const loaded = await loadDecoderDir(dir);
    expect(loaded.tokenizer!.kind).toBe('char');
    const ids = loaded.tokenizer!.encode('ab zq');
    expect(ids).toEqual([1, 2, 4, 7, 0]);
    expect(loaded.tokenizer!.decode(ids)).toBe('ab z\uFFFD');
    const esc = await writeFolder({ ...CONFIG, offramp: { exits: [1], tokenizer: '../chars.json' } });
    await expect(loadDecoderDir(esc.dir)).rejects.toThrow(/inside|outside/);
  });
});

describe('hostile folders', () => {
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['kv heads not dividing heads', { ...CONFIG, num_key_value_heads: 3 }, /must divide "num_attention_heads"/],
    [
      'unsupported rope scaling',
      { ...CONFIG, rope_scaling: { rope_type: 'yarn', factor: 4 } },
      /"yarn" is not supported/,
    ],
    ['gelu', { ...CONFIG, hidden_act: 'gelu' }, /"hidden_act" must be "silu"/],
    ['biases', { ...CONFIG, attention_bias: true }, /biases are not supported/],
    ['negative vocab', { ...CONFIG, vocab_size: -3 }, /"vocab_size" must be an integer/],
    ['exit out of range', { ...CONFIG, offramp: { exits: [5] } }, /offramp\.exits.*\[0, 3\)/],
    ['unknown offramp key', { ...CONFIG, offramp: { exit: [1] } }, /unknown key "exit"/],
    ['training information of the wrong type', { ...CONFIG, offramp: { heldout_bpc: ['3.2'] } }, /heldout_bpc/],
    ['a recipe that is not a string', { ...CONFIG, offramp: { recipe: 3 } }, /offramp.recipe/],
    ['odd head dim', { ...CONFIG, head_dim: 7 }, /even/],
  ];
  it.each(bad)('config: %s', async (_l, cfg, re) => {
    const dir = path.join(root, `bad${n++}`);
    await mkdir(dir);
    await writeFile(path.join(dir, 'config.json'), JSON.stringify(cfg));
    await expect(loadDecoderDir(dir)).rejects.toThrow(re);
  });

  it('sizes over the caps are refused before the weights are read', async () => {
    const { dir } = await writeFolder(CONFIG);
    await expect(loadDecoderDir(dir, { limits: { hidden_size: [1, 16] } })).rejects.toThrow(
      /"hidden_size" must be an integer in \[1, 16\]/,
    );
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...CONFIG, intermediate_size: 4000 }));
    await expect(loadDecoderDir(dir)).rejects.toThrow(/implies .* weights/);
  });

  it('wrong shapes, missing and extra tensors are listed', async () => {
    const { dir } = await writeFolder(CONFIG, {
      edit: (w) => {
        w.set('model.layers.1.self_attn.k_proj.weight', { shape: [32, 32], data: new Float32Array(32 * 32) });
        w.delete('model.norm.weight');
        w.set('model.layers.0.self_attn.q_proj.bias', { shape: [32], data: new Float32Array(32) });
        w.set('offramp.exit_head.2.weight', { shape: [29, 32], data: new Float32Array(29 * 32) });
      },
    });
    const err = (await loadDecoderDir(dir).then(
      () => new Error('loaded'),
      (e: Error) => e,
    )) as Error;
    expect(err.message).toMatch(
      /'model\.layers\.1\.self_attn\.k_proj\.weight' has shape \[32, 32\], expected \[16, 32\]/,
    );
    expect(err.message).toMatch(/missing 'model\.norm\.weight'/);
    expect(err.message).toMatch(/unexpected tensor 'model\.layers\.0\.self_attn\.q_proj\.bias'/);
    expect(err.message).toMatch(/offramp\.exit_head\.2\.weight.*early exits \[0, 1\]/);
  });

  it('lm_head.weight with tied embeddings, and a missing lm_head when untied', async () => {
    const tied = await writeFolder(
      { ...CONFIG, tie_word_embeddings: true },
      {
        edit: (w) => w.set('lm_head.weight', { shape: [29, 32], data: new Float32Array(29 * 32) }),
      },
    );
    await expect(loadDecoderDir(tied.dir)).rejects.toThrow(/tie_word_embeddings is true/);
    const untied = await writeFolder(CONFIG, { edit: (w) => w.delete('lm_head.weight') });
    await expect(loadDecoderDir(untied.dir)).rejects.toThrow(/missing 'lm_head\.weight'/);
  });

  it('shard names may not leave the folder', async () => {
    const { dir } = await writeFolder(CONFIG, { shards: 2 });
    const idx = path.join(dir, 'model.safetensors.index.json');
    const outside = path.join(root, 'outside.safetensors');
    await writeFile(outside, writeSafetensors({ x: { shape: [1], data: [1] } }));
    await writeFile(idx, JSON.stringify({ weight_map: { 'model.norm.weight': '../outside.safetensors' } }));
    await expect(loadDecoderDir(dir)).rejects.toThrow(/shard file name in the same folder/);
    await symlink(outside, path.join(dir, 'link.safetensors'));
    await writeFile(idx, JSON.stringify({ weight_map: { 'model.norm.weight': 'link.safetensors' } }));
    await expect(loadDecoderDir(dir)).rejects.toThrow(/inside|outside/);
  });

  it('integer tensors are refused', async () => {
    const { dir } = await writeFolder(CONFIG);
    const cfg = parseDecoderConfig(CONFIG);
    const w = randomDecoderWeights(cfg, 1);
    const m = new Map(
      [...w].map(([k, t]) => [
        k,
        {
          dtype: (k === 'model.norm.weight' ? 'I32' : 'F32') as SafetensorsDType,
          shape: t.shape,
          data: k === 'model.norm.weight' ? new Int32Array(t.data.length) : t.data,
        },
      ]),
    );
    await writeFile(path.join(dir, 'model.safetensors'), writeSafetensors(m));
    await expect(loadDecoderDir(dir)).rejects.toThrow(
      /'model\.norm\.weight' is stored as I32; allowed: F32, F16, BF16/,
    );
  });
});
