// Tests of loading and saving model directories (single-file and sharded weights) on the real file system.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError, ValidationError } from '../errors.js';
import type { ConfigEnvelope, ModelConfig } from '../models/config.js';
import { loadModelDir, MAX_CONFIG_FILE_BYTES, saveModelDir } from '../node.js';
import { modelTensorSpec, TensorMismatchError } from './config.js';
import { type TensorInput, writeSafetensors } from './safetensors.js';

const mlp: ModelConfig = {
  architecture: 'mlp_classifier',
  input_size: 12,
  hidden_size: 6,
  num_layers: 3,
  num_classes: 4,
  exits: { blocks: [0, 2], head: 'linear', gate: true, gate_hidden: 3 },
};
const encoder: ModelConfig = {
  architecture: 'encoder_classifier',
  vocab_size: 20,
  max_position: 8,
  hidden_size: 8,
  num_layers: 2,
  num_heads: 2,
  intermediate_size: 16,
  num_classes: 3,
  exits: { blocks: [0, 1], head: 'pooler' },
};
const cnn: ModelConfig = {
  architecture: 'cnn_classifier',
  image_size: 8,
  in_channels: 1,
  channels: [4, 6],
  strides: [1, 2],
  stem_channels: 2,
  num_classes: 5,
  exits: { blocks: [1], head: 'linear' },
};
const envelope = (model: ModelConfig): ConfigEnvelope => ({ offramp_format: 1, model, meta: { seed: 7 } });

/** Deterministic weights for every tensor of a config: element k of tensor t is t + k / 1000. */
function weightsFor(model: ModelConfig): Map<string, TensorInput> {
  const out = new Map<string, TensorInput>();
  let t = 0;
  for (const [name, shape] of modelTensorSpec(model)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const base = t++;
    out.set(name, { shape, data: Float32Array.from({ length: n }, (_, k) => base + k / 1000) });
  }
  return out;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'offramp-model-dir-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('saveModelDir / loadModelDir', () => {
  it('round-trips all three architectures exactly', async () => {
    for (const model of [mlp, encoder, cnn]) {
      const dir = join(root, `rt-${model.architecture}`, 'nested');
      const weights = weightsFor(model);
      const saved = await saveModelDir(dir, envelope(model), weights, { metadata: { recipe: 'test' } });
      expect(saved.weightsPath).toBe(join(dir, 'model.safetensors'));
      expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors']);
      const loaded = await loadModelDir(dir);
      expect(loaded.config).toEqual(envelope(model));
      expect(loaded.metadata).toEqual({ recipe: 'test' });
      expect([...loaded.tensors.keys()].sort()).toEqual([...weights.keys()].sort());
      for (const [name, w] of weights) {
        const t = loaded.tensors.get(name)!;
        expect(t.shape).toEqual(w.shape);
        expect(t.data).toEqual(w.data);
      }
    }
  });

  it('is reachable through the @offramp/core/node export subpath', async () => {
    const mod = await import('@offramp/core/node');
    expect(mod.loadModelDir).toBe(loadModelDir);
    const main = await import('@offramp/core');
    expect('loadModelDir' in main).toBe(false);
    expect(typeof main.parseSafetensors).toBe('function');
  });

  it('refuses to save an invalid config or tensors that do not match it, writing nothing', async () => {
    const dir = join(root, 'refused');
    const bad = await rejection(saveModelDir(dir, envelope({ ...mlp, num_layers: 0 }), weightsFor(mlp)));
    expect(bad).toBeInstanceOf(FormatError);
    expect(bad.message).toContain('model.num_layers: must be an integer in [1, 1024], got 0');
    const weights = weightsFor(mlp);
    weights.delete('blocks.1.fc.bias');
    const mismatch = await rejection(saveModelDir(dir, envelope(mlp), weights));
    expect(mismatch).toBeInstanceOf(TensorMismatchError);
    expect(mismatch.message).toContain('1 missing tensors:\n  blocks.1.fc.bias (expected [6])');
    const ints = weightsFor(mlp);
    ints.set('blocks.0.fc.bias', { dtype: 'I32', shape: [6], data: [0, 0, 0, 0, 0, 0] });
    expect(await rejection(saveModelDir(dir, envelope(mlp), ints))).toBeInstanceOf(ValidationError);
    await expect(readdir(dir)).rejects.toThrow();
  });
});

describe('loadModelDir: missing and broken files', () => {
  it('says which path is missing and what it expected there', async () => {
    const nowhere = join(root, 'does-not-exist');
    const e1 = await rejection(loadModelDir(nowhere));
    expect(e1).toBeInstanceOf(FormatError);
    expect(e1.message).toBe(
      `model directory ${nowhere} does not exist; expected a folder holding config.json and model.safetensors (or model.safetensors.index.json with the shards it lists)`,
    );

    const file = join(root, 'a-file');
    await writeFile(file, 'x');
    expect((await rejection(loadModelDir(file))).message).toContain(`${file} is not a directory`);

    const empty = join(root, 'empty');
    await mkdir(empty);
    expect((await rejection(loadModelDir(empty))).message).toBe(
      `${join(empty, 'config.json')} does not exist; expected the model config (JSON with offramp_format, model and optional meta)`,
    );

    await writeFile(join(empty, 'config.json'), JSON.stringify(envelope(mlp)));
    expect((await rejection(loadModelDir(empty))).message).toBe(
      `no weights in ${empty}: expected model.safetensors or model.safetensors.index.json (sharded weights) beside config.json`,
    );
  });

  it('reports bad JSON, invalid configs and corrupt weights with their path', async () => {
    const dir = join(root, 'broken');
    await saveModelDir(dir, envelope(mlp), weightsFor(mlp));
    const configPath = join(dir, 'config.json');
    const good = await readFile(configPath, 'utf8');

    await writeFile(configPath, '{"offramp_format": 1,');
    expect((await rejection(loadModelDir(dir))).message).toMatch(new RegExp(`^${esc(configPath)} is not valid JSON: `));

    await writeFile(configPath, JSON.stringify({ ...envelope(mlp), model: { ...mlp, hidden_size: 5 } }));
    const mismatch = await rejection(loadModelDir(dir));
    expect(mismatch).toBeInstanceOf(TensorMismatchError);
    expect(mismatch.message).toContain(`${join(dir, 'model.safetensors')} do not match the model config:`);
    expect(mismatch.message).toContain('blocks.0.fc.weight: expected [12, 5], found [12, 6]');

    await writeFile(configPath, JSON.stringify({ ...envelope(mlp), model: { ...mlp, architecture: 'rnn' } }));
    expect((await rejection(loadModelDir(dir))).message).toContain(
      `${configPath}: invalid model config (1 problem):\n  model.architecture: unknown architecture "rnn"`,
    );

    await writeFile(configPath, good);
    const weightsPath = join(dir, 'model.safetensors');
    const bytes = await readFile(weightsPath);
    await writeFile(weightsPath, bytes.subarray(0, bytes.length - 3));
    const corrupt = await rejection(loadModelDir(dir));
    expect(corrupt).toBeInstanceOf(FormatError);
    expect(corrupt.message).toMatch(new RegExp(`^${esc(weightsPath)}: tensor ".*": data_offsets .* run past the end`));
  });

  it('rejects integer weights', async () => {
    const dir = join(root, 'ints');
    await saveModelDir(dir, envelope(mlp), weightsFor(mlp));
    const weights = weightsFor(mlp);
    weights.set('exits.0.gate.fc2.bias', { dtype: 'I32', shape: [1], data: [1] });
    await writeFile(join(dir, 'model.safetensors'), writeSafetensors(weights));
    expect((await rejection(loadModelDir(dir))).message).toContain(
      'model weights must be float (F32, F16, BF16 or F64); found exits.0.gate.fc2.bias (I32)',
    );
  });
});

describe('loadModelDir: sharded weights', () => {
  async function sharded(name: string, mutate?: (map: Record<string, string>) => void): Promise<string> {
    const dir = join(root, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify(envelope(encoder)));
    const weights = weightsFor(encoder);
    const shards: Record<string, Record<string, TensorInput>> = {
      'model-00001-of-00002.safetensors': {},
      'model-00002-of-00002.safetensors': {},
    };
    const map: Record<string, string> = {};
    for (const [n, t] of weights) {
      const shard =
        n.startsWith('blocks.1') || n.startsWith('exits')
          ? 'model-00002-of-00002.safetensors'
          : 'model-00001-of-00002.safetensors';
      shards[shard][n] = t;
      map[n] = shard;
    }
    for (const [file, t] of Object.entries(shards))
      await writeFile(join(dir, file), writeSafetensors(t, { shard: file }));
    mutate?.(map);
    await writeFile(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: 1 }, weight_map: map }),
    );
    return dir;
  }

  it('loads the same tensors as a single file', async () => {
    const dir = await sharded('shards-ok');
    const loaded = await loadModelDir(dir);
    const single = join(root, 'shards-single');
    await saveModelDir(single, envelope(encoder), weightsFor(encoder));
    const reference = await loadModelDir(single);
    expect(loaded.tensors.size).toBe(reference.tensors.size);
    for (const [n, t] of reference.tensors) expect(loaded.tensors.get(n)!.data).toEqual(t.data);
    expect(loaded.metadata).toEqual({ shard: 'model-00001-of-00002.safetensors' });
  });

  it('names a missing shard and the tensors the index places there', async () => {
    const dir = await sharded('shards-missing');
    await rm(join(dir, 'model-00002-of-00002.safetensors'));
    const e = await rejection(loadModelDir(dir));
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toMatch(
      /model-00002-of-00002\.safetensors does not exist; expected a shard holding \d+ tensors listed in model\.safetensors\.index\.json \(e\.g\. "blocks\.1\./,
    );
  });

  it('lists every disagreement between the shards and the weight_map', async () => {
    const dir = await sharded('shards-wrong', (map) => {
      map['blocks.0.ln1.weight'] = 'model-00002-of-00002.safetensors';
      delete map['exits.0.ln.bias'];
    });
    const e = await rejection(loadModelDir(dir));
    expect(e.message).toContain('shards disagree with the weight_map (3 problems):');
    expect(e.message).toContain(
      'model-00001-of-00002.safetensors holds blocks.0.ln1.weight, which the index places in model-00002-of-00002.safetensors',
    );
    expect(e.message).toContain(
      'model-00002-of-00002.safetensors lacks blocks.0.ln1.weight, which the index places there',
    );
    expect(e.message).toContain(
      'model-00002-of-00002.safetensors holds exits.0.ln.bias, which the index does not list',
    );
  });

  it('rejects shard names outside the folder and malformed indexes', async () => {
    const outside = await sharded('shards-escape', (map) => {
      map['blocks.0.ln1.weight'] = '../other/model.safetensors';
    });
    expect((await rejection(loadModelDir(outside))).message).toContain(
      'weight_map["blocks.0.ln1.weight"] must be a file name ending in .safetensors in the same folder (no path separators), got "../other/model.safetensors"',
    );
    // a shard name without separators that is a symbolic link leading out of the folder
    const linked = await sharded('shards-symlink');
    const secret = join(root, 'secret.safetensors');
    await writeFile(secret, writeSafetensors({ x: { shape: [1], data: [1] } }));
    await rm(join(linked, 'model-00002-of-00002.safetensors'));
    await symlink(secret, join(linked, 'model-00002-of-00002.safetensors'));
    expect((await rejection(loadModelDir(linked))).message).toBe(
      `${join(linked, 'model.safetensors.index.json')} names 'model-00002-of-00002.safetensors', which is outside the folder ${linked}; a path in ${join(linked, 'model.safetensors.index.json')} must be relative and stay inside its folder`,
    );
    const dir = await sharded('shards-bad-index');
    const indexPath = join(dir, 'model.safetensors.index.json');
    await writeFile(indexPath, JSON.stringify({ weights: {} }));
    expect((await rejection(loadModelDir(dir))).message).toBe(
      `${indexPath}: unknown key "weights"; allowed keys: metadata, weight_map`,
    );
    await writeFile(indexPath, JSON.stringify({ weight_map: {} }));
    expect((await rejection(loadModelDir(dir))).message).toContain('"weight_map" is empty');
    await writeFile(indexPath, '[]');
    expect((await rejection(loadModelDir(dir))).message).toContain(`${indexPath}: must be an object`);
  });
});

describe('loadModelDir: hostile files', () => {
  async function model(name: string): Promise<string> {
    const dir = join(root, name);
    await saveModelDir(dir, envelope(mlp), weightsFor(mlp));
    return dir;
  }

  it('refuses config.json and model.safetensors that are devices, directories or symlink loops, naming them', async () => {
    for (const file of ['config.json', 'model.safetensors']) {
      const dir = await model(`dev-zero-${file}`);
      const p = join(dir, file);
      await rm(p);
      await symlink('/dev/zero', p);
      const e = await rejection(loadModelDir(dir));
      expect(e).toBeInstanceOf(FormatError);
      expect(e.message).toMatch(
        new RegExp(`^${esc(p)} is not a regular file \\(a device, FIFO or socket\\); expected `),
      );

      await rm(p);
      await mkdir(p);
      expect((await rejection(loadModelDir(dir))).message).toMatch(new RegExp(`^${esc(p)} is a directory; expected `));

      await rm(p, { recursive: true });
      await symlink(p, p);
      expect((await rejection(loadModelDir(dir))).message).toMatch(
        new RegExp(`^${esc(p)} is a symbolic link loop; expected `),
      );
    }
  });

  it('does not hang on a FIFO', async () => {
    const dir = await model('fifo');
    const p = join(dir, 'config.json');
    await rm(p);
    execFileSync('mkfifo', [p]);
    const t0 = Date.now();
    expect((await rejection(loadModelDir(dir))).message).toMatch(new RegExp(`^${esc(p)} is not a regular file`));
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('refuses a config.json over the size cap before reading it', async () => {
    const dir = await model('huge-config');
    const p = join(dir, 'config.json');
    const good = JSON.parse(await readFile(p, 'utf8'));
    await writeFile(p, JSON.stringify({ ...good, meta: { pad: 'x'.repeat(MAX_CONFIG_FILE_BYTES) } }));
    expect((await rejection(loadModelDir(dir))).message).toMatch(
      new RegExp(`^${esc(p)} is 16\\.0 MiB, larger than the 16 MiB allowed for the model config`),
    );
  });

  it('refuses a deeply nested config.json with a message naming it (not a stack overflow)', async () => {
    const dir = await model('deep-config');
    const p = join(dir, 'config.json');
    await writeFile(p, `{"offramp_format":1,"model":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
    const e = await rejection(loadModelDir(dir));
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toMatch(new RegExp(`^${esc(p)} nests arrays/objects more than 256 levels deep`));
  });

  it('accepts a byte-order mark at the start of config.json', async () => {
    const dir = await model('bom');
    const p = join(dir, 'config.json');
    await writeFile(p, `\uFEFF${await readFile(p, 'utf8')}`);
    expect((await loadModelDir(dir)).config.model).toEqual(mlp);
  });

  it('warns (not fails) about NaN and infinite weights, naming the tensor and the count', async () => {
    const dir = join(root, 'nan');
    const w = weightsFor(mlp);
    const t = w.get('blocks.1.fc.weight')!;
    const data = Float32Array.from(t.data);
    data[0] = Number.NaN;
    data[5] = Number.NaN;
    data[7] = Number.NEGATIVE_INFINITY;
    w.set('blocks.1.fc.weight', { ...t, data });
    await saveModelDir(dir, envelope(mlp), w);
    const warnings: string[] = [];
    const loaded = await loadModelDir(dir, { onWarning: (m) => warnings.push(m) });
    expect(loaded.tensors.size).toBe(w.size);
    expect(warnings).toEqual([
      `${join(dir, 'model.safetensors')}: tensor blocks.1.fc.weight has 3 non-finite values of 36 (2 NaN, 1 ±Infinity); outputs that depend on it will not be finite`,
    ]);
    expect(await loadModelDir(await model('finite'), { onWarning: (m) => warnings.push(m) })).toBeDefined();
    expect(warnings).toHaveLength(1);
  });

  it('refuses weights smaller than the config implies before reading them', async () => {
    const dir = await model('too-small');
    const p = join(dir, 'config.json');
    const big = { ...mlp, input_size: 1_000_000, hidden_size: 4096 };
    await writeFile(p, JSON.stringify(envelope(big)));
    const count = [...modelTensorSpec(big).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    expect((await rejection(loadModelDir(dir))).message).toMatch(
      new RegExp(
        `^${esc(p)} implies ${count} weights \\(at least ${count * 2} bytes at 2 bytes each\\), but ${esc(join(dir, 'model.safetensors'))} is only \\d+ bytes; the config does not describe these weights$`,
      ),
    );
  });

  it('points at conversion when the folder holds only PyTorch weights', async () => {
    const dir = join(root, 'torch');
    await mkdir(dir);
    await writeFile(join(dir, 'config.json'), JSON.stringify(envelope(mlp)));
    await writeFile(join(dir, 'pytorch_model.bin'), 'PK');
    expect((await rejection(loadModelDir(dir))).message).toMatch(
      /^no weights in .*: expected model\.safetensors .*; found pytorch_model\.bin \(PyTorch format\), which Offramp does not read: convert it to safetensors first/,
    );
  });
});
