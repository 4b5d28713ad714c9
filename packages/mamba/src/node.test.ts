// The HuggingFace folder loader on randomly initialised models written by the test in each accepted format
// (current and older config keys; embeddings/embedding; with and without `backbone.`; a single file or
// shards; tied or separate head), run on the GPU and compared with the reference; and its error messages.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createGpuDevice, type GpuDevice, type TensorInput, writeSafetensors } from '@offramp/core';
import { CharTokenizer } from '@offramp/train';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MambaConfig, parseMambaConfig } from './config.js';
import { loadMambaDir, loadMambaLM } from './node.js';
import { randomMambaWeights } from './random-weights.js';
import { MambaReference } from './reference.js';
import { lmFromHf } from './train/export.js';
import { lmStep } from './train/lm-grad.js';
import { normalizeMambaTensors } from './weights.js';

let gpu: GpuDevice;
let root: string;
beforeAll(async () => {
  gpu = await createGpuDevice();
  root = await mkdtemp(path.join(tmpdir(), 'mamba-loader-'));
});
afterAll(async () => {
  gpu?.destroy();
  await rm(root, { recursive: true, force: true });
});

const cfg: MambaConfig = {
  vocabSize: 48,
  hiddenSize: 20,
  numLayers: 2,
  stateSize: 4,
  expand: 2,
  intermediateSize: 40,
  convKernel: 4,
  timeStepRank: 2,
  layerNormEpsilon: 1e-5,
  useBias: false,
  useConvBias: true,
  tieWordEmbeddings: true,
};

const currentKeys = {
  architectures: ['MambaForCausalLM'],
  model_type: 'mamba',
  hidden_size: 20,
  num_hidden_layers: 2,
  state_size: 4,
  time_step_rank: 2,
  conv_kernel: 4,
  expand: 2,
  intermediate_size: 40,
  vocab_size: 48,
  layer_norm_epsilon: 1e-5,
  use_bias: false,
  use_conv_bias: true,
  tie_word_embeddings: true,
  residual_in_fp32: true,
};
/** The original checkpoints' style: vocabulary padded to a multiple of 8 (45 → 48), dt_rank 'auto' = ⌈20/16⌉ = 2. */
const olderKeys = {
  d_model: 20,
  n_layer: 2,
  vocab_size: 45,
  pad_vocab_size_multiple: 8,
  ssm_cfg: { d_state: 4, d_conv: 4, expand: 2 },
  rms_norm: true,
  residual_in_fp32: true,
  fused_add_norm: true,
};

let n = 0;
async function writeModel(config: unknown, tensors: Map<string, TensorInput>, shards = 0): Promise<string> {
  const dir = path.join(root, `m${n++}`);
  await import('node:fs/promises').then((fs) => fs.mkdir(dir));
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
  if (!shards) {
    await writeFile(path.join(dir, 'model.safetensors'), writeSafetensors(tensors));
    return dir;
  }
  const names = [...tensors.keys()];
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-0000${s + 1}-of-0000${shards}.safetensors`;
    const part = new Map(names.filter((_, i) => i % shards === s).map((k) => [k, tensors.get(k)!]));
    for (const k of part.keys()) weightMap[k] = file;
    await writeFile(path.join(dir, file), writeSafetensors(part));
  }
  await writeFile(
    path.join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
  );
  return dir;
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
  return m;
}

describe('loads a HuggingFace Mamba folder and runs it like the reference', () => {
  it.each([
    { label: 'current keys, backbone.embeddings, one file, tied head', config: currentKeys, opts: {}, shards: 0 },
    {
      label: 'older keys, backbone.embedding, two shards',
      config: olderKeys,
      opts: { embeddingName: 'embedding' as const },
      shards: 2,
    },
    {
      label: 'older keys, no backbone. prefix, embedding, separate lm_head',
      config: { ...olderKeys, tie_embeddings: false },
      opts: { prefix: '', embeddingName: 'embedding' as const, lmHead: true },
      shards: 0,
    },
    {
      label: 'current keys, three shards, separate lm_head',
      config: { ...currentKeys, tie_word_embeddings: false },
      opts: { lmHead: true },
      shards: 3,
    },
  ])('$label', async ({ config, opts, shards }) => {
    const raw = randomMambaWeights(cfg, { seed: 21, ...opts });
    const dir = await writeModel(config, raw, shards);
    const { model, loaded } = await loadMambaLM(gpu, dir);
    expect(loaded.config.vocabSize).toBe(48);
    expect(loaded.config.timeStepRank).toBe(2);
    expect(loaded.tiedHead).toBe(!opts.lmHead);
    const c = { ...cfg, tieWordEmbeddings: !opts.lmHead };
    const ref = new MambaReference(c, normalizeMambaTensors(c, raw).tensors);
    const prompts = [
      [1, 2, 3, 47, 0],
      [9, 9],
    ];
    const { all, cache, T } = await model.prefill(prompts, { allLogits: true });
    for (let b = 0; b < 2; b++) {
      const r = ref.prefill(prompts[b]);
      for (let t = 0; t < prompts[b].length; t++)
        expect(maxRel(all!.subarray((b * T + t) * 48, (b * T + t + 1) * 48), r.logits[t])).toBeLessThan(2e-4);
    }
    cache.dispose();
    model.dispose();
  });
});

describe('explains what is wrong', () => {
  it('with the tensors', async () => {
    const good = randomMambaWeights(cfg, { seed: 1 });
    const missing = new Map(good);
    missing.delete('backbone.layers.1.mixer.A_log');
    await expect(loadMambaDir(await writeModel(currentKeys, missing))).rejects.toThrow(
      /missing 'layers\.1\.mixer\.A_log' \[40, 4\]/,
    );
    const shape = new Map(good);
    shape.set('backbone.layers.0.mixer.x_proj.weight', { shape: [9, 40], data: new Float32Array(360) });
    await expect(loadMambaDir(await writeModel(currentKeys, shape))).rejects.toThrow(
      /state_size 4.*'backbone\.layers\.0\.mixer\.x_proj\.weight' has shape \[9, 40\], expected \[10, 40\]/s,
    );
    const extra = new Map(good);
    extra.set('backbone.layers.2.norm.weight', { shape: [20], data: new Float32Array(20) });
    await expect(loadMambaDir(await writeModel(currentKeys, extra))).rejects.toThrow(
      /1 unexpected tensor 'backbone\.layers\.2\.norm\.weight'/,
    );
    const dup = new Map(good);
    dup.set('embeddings.weight', good.get('backbone.embeddings.weight')!);
    await expect(loadMambaDir(await writeModel(currentKeys, dup))).rejects.toThrow(/both name 'embeddings\.weight'/);
    const ints = new Map<string, TensorInput>(good);
    ints.set('backbone.norm_f.weight', { shape: [20], data: new Int32Array(20), dtype: 'I32' });
    await expect(loadMambaDir(await writeModel(currentKeys, ints))).rejects.toThrow(
      /Int32Array data; Mamba weights must be float/,
    );
  });

  it('with the folder, the shards and the config', async () => {
    await expect(loadMambaDir(path.join(root, 'nope'))).rejects.toThrow(/is not a folder/);
    const dir = await writeModel(currentKeys, randomMambaWeights(cfg, { seed: 1 }), 2);
    const idx = path.join(dir, 'model.safetensors.index.json');
    const map = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(idx, 'utf8')));
    map.weight_map['backbone.norm_f.weight'] = 'model-00002-of-00002.safetensors';
    map.weight_map['backbone.layers.0.norm.weight'] = '../x.safetensors';
    await writeFile(idx, JSON.stringify(map));
    await expect(loadMambaDir(dir)).rejects.toThrow(/must be a shard file name in the same folder/);
    expect(() => parseMambaConfig({ n_layer: 2, vocab_size: 5 })).toThrow(/missing 'hidden_size' \(or 'd_model'\)/);
    expect(() => parseMambaConfig({ ...currentKeys, model_type: 'mamba2' })).toThrow(/only|Mamba-1/);
    expect(() => parseMambaConfig({ ...olderKeys, rms_norm: false })).toThrow(/LayerNorm/);
    expect(() => parseMambaConfig({ ...currentKeys, state_size: 2.5 })).toThrow(
      /'state_size' must be a positive integer, got 2.5/,
    );
    expect(() => parseMambaConfig({ ...currentKeys, offramp: { exits: [1, 0] } })).toThrow(/increasing block indices/);
    expect(parseMambaConfig({ ...currentKeys, time_step_rank: 'auto', offramp: { exits: [0] } })).toMatchObject({
      timeStepRank: 2,
      exits: [0, 1],
    });
  });
});

describe('the shipped Austen checkpoint', () => {
  const dir = path.resolve(import.meta.dirname, '../../../checkpoints/austen-mamba');
  it('loads through the HuggingFace loader and the engine reproduces the float64 training forward at every exit', async () => {
    const { model, loaded } = await loadMambaLM(gpu, dir);
    expect(loaded.tiedHead).toBe(true);
    expect(model.exits).toEqual([3, 4, 5]);
    const tok = CharTokenizer.load(path.join(dir, 'char-tokenizer.json'));
    const text =
      'It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.';
    const ids = Array.from(tok.encode(text));
    const c = loaded.config;
    const dm = {
      vocab: c.vocabSize,
      d: c.hiddenSize,
      layers: c.numLayers,
      D: c.intermediateSize,
      N: c.stateSize,
      R: c.timeStepRank,
      K: c.convKernel,
      eps: c.layerNormEpsilon,
    };
    const lm = lmFromHf(loaded.tensors, dm);
    const T = ids.length - 1;
    const { losses } = lmStep(
      lm,
      dm,
      Int32Array.from(ids.slice(0, T)),
      Int32Array.from(ids.slice(1)),
      1,
      T,
      [3, 4, 5],
      [1, 1, 1],
    );
    for (const [j, block] of [3, 4, 5].entries()) {
      const r = await model.score([ids], { rule: { kind: 'fixed', block } });
      expect(Math.abs(r.nll / r.count - losses[j]), `exit after block ${block}`).toBeLessThan(1e-4);
    }
    // a trained model: far below the uniform 6.4 bits per character on this sentence
    expect(losses[2] / Math.LN2).toBeLessThan(3.5);
    model.dispose();
  });
});
