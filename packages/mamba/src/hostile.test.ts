// The Mamba loader against hostile and mistaken folders: files that are devices, FIFOs, directories or
// symlinks out of the folder, configs with absurd sizes, weights that do not fit the config (with hints for
// a name prefix and PyTorch-only folders), tie_word_embeddings as HuggingFace reads it, NaN weights, and the
// prompt length cap of prefill. CPU device only: nothing here needs a GPU.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CpuDevice, FormatError, type TensorInput, ValidationError, writeSafetensors } from '@offramp/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MAMBA_CONFIG_LIMITS,
  type MambaConfig,
  mambaTensorSpec,
  mambaWeightCount,
  parseMambaConfig,
} from './config.js';
import { MAX_PROMPT_TOKENS, MambaLM } from './model.js';
import { loadMambaDir } from './node.js';
import { randomMambaWeights } from './random-weights.js';
import { normalizeMambaTensors } from './weights.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'mamba-hostile-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const hf = {
  model_type: 'mamba',
  hidden_size: 8,
  num_hidden_layers: 2,
  state_size: 4,
  time_step_rank: 1,
  conv_kernel: 4,
  expand: 2,
  intermediate_size: 16,
  vocab_size: 12,
  layer_norm_epsilon: 1e-5,
  use_bias: false,
  use_conv_bias: true,
  tie_word_embeddings: true,
};
const cfg: MambaConfig = parseMambaConfig(hf);

let n = 0;
async function folder(config: unknown = hf, tensors: Map<string, TensorInput> = randomMambaWeights(cfg, { seed: 1 })) {
  const dir = path.join(root, `m${n++}`);
  await mkdir(dir);
  await writeFile(path.join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  await writeFile(path.join(dir, 'model.safetensors'), writeSafetensors(tensors));
  return dir;
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('files that are not what they claim', () => {
  it('config.json and model.safetensors as /dev/zero, a directory, a FIFO or a link loop: clear errors, no hang', async () => {
    for (const file of ['config.json', 'model.safetensors']) {
      const dir = await folder();
      const p = path.join(dir, file);
      await rm(p);
      await symlink('/dev/zero', p);
      const e = await failure(loadMambaDir(dir));
      expect(e).toBeInstanceOf(FormatError);
      expect(e.message).toMatch(new RegExp(`^${esc(p)} is not a regular file \\(a device, FIFO or socket\\)`));
      await rm(p);
      await mkdir(p);
      expect((await failure(loadMambaDir(dir))).message).toMatch(new RegExp(`^${esc(p)} is a directory`));
      await rm(p, { recursive: true });
      execFileSync('mkfifo', [p]);
      const t0 = Date.now();
      expect((await failure(loadMambaDir(dir))).message).toMatch(new RegExp(`^${esc(p)} is not a regular file`));
      expect(Date.now() - t0).toBeLessThan(5000);
      await rm(p);
      await symlink(p, p);
      expect((await failure(loadMambaDir(dir))).message).toMatch(new RegExp(`^${esc(p)} is a symbolic link loop`));
    }
  });

  it('a deeply nested config.json and one with a byte-order mark', async () => {
    const deep = await folder(`{"model_type":"mamba","x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
    expect((await failure(loadMambaDir(deep))).message).toMatch(/config\.json nests arrays\/objects more than 256/);
    const bom = await folder(`\uFEFF${JSON.stringify(hf)}`);
    expect((await loadMambaDir(bom)).config).toEqual(cfg);
  });

  it('a shard that is a symbolic link out of the folder is refused before it is read', async () => {
    const dir = await folder();
    const outside = path.join(root, 'outside.safetensors');
    await writeFile(outside, writeSafetensors(randomMambaWeights(cfg, { seed: 1 })));
    await rm(path.join(dir, 'model.safetensors'));
    await symlink(outside, path.join(dir, 'shard.safetensors'));
    const weightMap = Object.fromEntries(
      [...randomMambaWeights(cfg, { seed: 1 }).keys()].map((k) => [k, 'shard.safetensors']),
    );
    await writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: weightMap }));
    expect((await failure(loadMambaDir(dir))).message).toMatch(
      /model\.safetensors\.index\.json names 'shard\.safetensors', which is outside the folder/,
    );
  });

  it('a folder with only pytorch_model.bin says how to convert it', async () => {
    const dir = await folder();
    await rm(path.join(dir, 'model.safetensors'));
    await writeFile(path.join(dir, 'pytorch_model.bin'), 'PK');
    expect((await failure(loadMambaDir(dir))).message).toMatch(
      /no weights in .*; found pytorch_model\.bin \(PyTorch format\), which Offramp does not read: convert it to safetensors first/,
    );
  });
});

describe('config sizes', () => {
  it('absurd sizes are refused at once, naming the key, the range and how to raise it', () => {
    const t0 = Date.now();
    const e = (() => {
      try {
        parseMambaConfig({ ...hf, num_hidden_layers: 1e9 }, '/m/config.json');
      } catch (err) {
        return err as Error;
      }
      throw new Error('expected an error');
    })();
    expect(Date.now() - t0).toBeLessThan(100);
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.message).toBe(
      "/m/config.json: 'num_hidden_layers' must be an integer in [1, 1024], got 1000000000 (the limit guards against corrupt configs; raise it with the limits option, MAMBA_CONFIG_LIMITS.num_hidden_layers)",
    );
    const older = { d_model: 8, n_layer: 2, vocab_size: 12, ssm_cfg: { d_state: 4 } };
    for (const [patch, msg] of [
      [{ vocab_size: 1e12 }, "'vocab_size' must be an integer in [1, 2000000]"],
      [{ d_model: 1e6 }, "'d_model' must be an integer in [1, 65536]"],
      [{ ssm_cfg: { d_state: 100_000 } }, "'d_state' must be an integer in [1, 256]"],
      [{ ssm_cfg: { d_conv: 1e9 } }, "'d_conv' must be an integer in [1, 64]"],
      [{ ssm_cfg: { expand: 1e6 } }, "'expand' must be a number in [0.0625, 64]"],
      [{ intermediate_size: 1e7 }, "'intermediate_size' must be an integer in [1, 262144]"],
      [{ ssm_cfg: { dt_rank: 1e8 } }, "'dt_rank' must be an integer in [1, 65536]"],
      [
        { vocab_size: 1_999_999, pad_vocab_size_multiple: 1024 },
        "'vocab_size' padded to a multiple of 1024 is 2000896",
      ],
    ] as const)
      expect(() => parseMambaConfig({ ...older, ...patch })).toThrow(msg);
    // a raised limit is honoured
    expect(
      parseMambaConfig({ ...hf, num_hidden_layers: 2000 }, 'c', { limits: { num_hidden_layers: [1, 4096] } }).numLayers,
    ).toBe(2000);
    expect(MAMBA_CONFIG_LIMITS.num_hidden_layers).toEqual([1, 1024]);
  });

  it('the weight count the config implies is checked against the file size before the weights are read', async () => {
    expect(mambaWeightCount(cfg)).toBe(
      [...mambaTensorSpec(cfg, false).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0),
    );
    const big = { ...hf, num_hidden_layers: 1000, hidden_size: 4096, intermediate_size: 8192, vocab_size: 50_000 };
    const dir = await folder(big);
    const e = await failure(loadMambaDir(dir));
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toMatch(
      new RegExp(
        `config\\.json implies ${mambaWeightCount(parseMambaConfig(big))} weights \\(at least \\d+ bytes at 2 bytes each\\), but .*model\\.safetensors is only \\d+ bytes`,
      ),
    );
  });
});

describe('weights that do not match', () => {
  it('a prefix on every name is pointed out, and unexpected names come before missing ones', async () => {
    const prefixed = new Map([...randomMambaWeights(cfg, { seed: 1 })].map(([k, v]) => [`model.${k}`, v]));
    const e = await failure(loadMambaDir(await folder(hf, prefixed)));
    expect(e.message).toContain(
      "every unexpected tensor name starts with 'model.' (e.g. 'model.backbone.embeddings.weight'); without it 22 of them are expected names",
    );
    expect(e.message.indexOf('unexpected tensor')).toBeLessThan(e.message.indexOf('missing'));
    expect(e.message).toMatch(/22 unexpected tensors 'model\.backbone\.embeddings\.weight', .*, … \(22 in all\)/);

    // a leading part cut off every name
    const cut = new Map(
      [...normalizeMambaTensors(cfg, randomMambaWeights(cfg, { seed: 1 })).tensors].map(([k, v]) => [
        k.replace(/^layers\./, ''),
        v,
      ]),
    );
    const e2 = await failure(loadMambaDir(await folder(hf, cut as Map<string, TensorInput>)));
    expect(e2.message).toMatch(
      /20 unexpected tensor names lack a leading 'layers\.' \(e\.g\. '0\.mixer\.A_log' for 'layers\.0\.mixer\.A_log'\)/,
    );
  });

  it('tie_word_embeddings as HuggingFace reads it', async () => {
    const withHead = randomMambaWeights(cfg, { seed: 1, lmHead: true });
    // tied (the default): the head is the embedding; a differing lm_head.weight is ignored with a warning
    const warnings: string[] = [];
    const tied = await loadMambaDir(await folder(hf, withHead), { onWarning: (m) => warnings.push(m) });
    expect(tied.tiedHead).toBe(true);
    expect(tied.tensors.has('lm_head.weight')).toBe(false);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("'lm_head.weight' differs from the embedding but tie_word_embeddings is true");
    // not tied: lm_head.weight is used, and required
    const untied = { ...hf, tie_word_embeddings: false };
    const sep = await loadMambaDir(await folder(untied, withHead));
    expect(sep.tiedHead).toBe(false);
    expect(sep.tensors.get('lm_head.weight')!.data).toEqual(withHead.get('lm_head.weight')!.data);
    const e = await failure(
      loadMambaDir(await folder(untied, randomMambaWeights(cfg, { seed: 1 })), { onWarning: () => {} }),
    );
    expect(e.message).toMatch(
      /1 missing 'lm_head\.weight' \[12, 8\] \(tie_word_embeddings is false, so the file must hold lm_head\.weight/,
    );
  });

  it('NaN and infinite weights load with a warning naming the tensor and the count', async () => {
    const w = randomMambaWeights(cfg, { seed: 1 });
    const t = w.get('backbone.layers.1.mixer.D')!;
    const data = Float32Array.from(t.data);
    data[3] = Number.NaN;
    data[4] = Number.POSITIVE_INFINITY;
    w.set('backbone.layers.1.mixer.D', { ...t, data });
    const warnings: string[] = [];
    const loaded = await loadMambaDir(await folder(hf, w), { onWarning: (m) => warnings.push(m) });
    expect(loaded.tensors.size).toBe(mambaTensorSpec(cfg, false).size);
    expect(warnings).toEqual([
      expect.stringMatching(
        /: tensor backbone\.layers\.1\.mixer\.D has 2 non-finite values of 16 \(1 NaN, 1 ±Infinity\)/,
      ),
    ]);
  });
});

describe('prompt length', () => {
  it('prefill refuses a prompt over the cap before allocating anything, naming the limit', async () => {
    const device = new CpuDevice();
    const { tensors } = normalizeMambaTensors(cfg, randomMambaWeights(cfg, { seed: 1 }));
    const lm = new MambaLM(device, cfg, tensors);
    expect(lm.maxPromptTokens).toBe(MAX_PROMPT_TOKENS);
    const long = new Array(MAX_PROMPT_TOKENS + 1).fill(1);
    await expect(lm.prefill([[1, 2], long])).rejects.toThrow(
      `prefill: prompt 1 has ${MAX_PROMPT_TOKENS + 1} tokens, more than the limit of ${MAX_PROMPT_TOKENS} tokens (MambaLMOptions.maxPromptTokens`,
    );
    await expect(lm.generate([long], { maxNewTokens: 1 })).rejects.toThrow(/more than the limit of 8192 tokens/);
    const small = new MambaLM(device, cfg, tensors, { maxPromptTokens: 3 });
    await expect(small.prefill([[1, 2, 3, 4]])).rejects.toThrow(
      'prompt 0 has 4 tokens, more than the limit of 3 tokens',
    );
    const ok = await small.prefill([[1, 2, 3]]);
    expect(ok.logits).toHaveLength(12);
    ok.cache.dispose();
    expect(() => new MambaLM(device, cfg, tensors, { maxPromptTokens: 0 })).toThrow(
      /maxPromptTokens must be a positive integer/,
    );
    lm.dispose();
    small.dispose();
  });
});

describe('MambaLM follows tieWordEmbeddings', () => {
  it('tied: the head is the embedding; untied: lm_head.weight is used and required', async () => {
    const device = new CpuDevice();
    const withHead = randomMambaWeights(cfg, { seed: 2, lmHead: true });
    const untiedCfg = { ...cfg, tieWordEmbeddings: false };
    const { tensors: separate } = normalizeMambaTensors(untiedCfg, withHead);
    const untied = new MambaLM(device, untiedCfg, separate);
    const { tensors: tiedTensors } = normalizeMambaTensors(cfg, withHead, 'w', { onWarning: () => {} });
    const tied = new MambaLM(device, cfg, tiedTensors);
    // the two heads differ, so the last-token logits do too; each equals its own head applied by hand
    const emb = separate.get('embeddings.weight')!.data;
    const head = separate.get('lm_head.weight')!.data;
    const hTied = tied.head.handle as Float32Array;
    const hSep = untied.head.handle as Float32Array;
    expect(Array.from(hTied)).toEqual(Array.from(emb));
    expect(Array.from(hSep)).toEqual(Array.from(head));
    expect(() => new MambaLM(device, untiedCfg, tiedTensors)).toThrow(
      /tieWordEmbeddings is false but the tensors have no 'lm_head\.weight'/,
    );
    expect(() => new MambaLM(device, cfg, separate)).toThrow(/hold 'lm_head\.weight' but tieWordEmbeddings is true/);
    tied.dispose();
    untied.dispose();
  });
});
