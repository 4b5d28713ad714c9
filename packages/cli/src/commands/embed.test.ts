// offramp embed / index / search on a small random embedder folder (a real tokenizer.json, random weights):
// embeddings against core's float64 reference, a document found by its own text at every exit and with the
// dynamic exit, and strict index validation (sizes, keys, norms).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type EncoderEmbedderConfig,
  embedderTensorSpec,
  embedReference,
  mulberry32,
  randn,
  writeSafetensors,
} from '@offramp/core';
import { buildTruncatedGpt2Tokenizer, encodeTexts, loadBpeTokenizer } from '@offramp/train/embeddings';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { modelKind } from '../model.js';
import { Logger } from '../util/log.js';
import { embedCommand, indexCommand, openIndex, parseExit, searchCommand } from './embed.js';

let dir: string;
let model: string;
let cfg: EncoderEmbedderConfig;
const weights = new Map<string, { shape: number[]; data: Float32Array }>();
const docs = [
  'def add(a, b):\n    return a + b',
  'def read_file(path):\n    with open(path) as f:\n        return f.read()',
  'def is_even(n):\n    return n % 2 == 0',
  'def greet(name):\n    print("hello", name)',
  'def mean(xs):\n    return sum(xs) / len(xs)',
  'def first(xs):\n    return xs[0] if xs else None',
];

function capture(): { log: Logger; results: unknown[] } {
  const log = new Logger({ json: true, quiet: true });
  const results: unknown[] = [];
  vi.spyOn(log, 'result').mockImplementation((v) => {
    results.push(v);
  });
  return { log, results };
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'offramp-embed-'));
  model = path.join(dir, 'model');
  mkdirSync(model, { recursive: true });
  const { vocabSize, padId } = buildTruncatedGpt2Tokenizer(path.join(model, 'tokenizer.json'), 300);
  cfg = {
    architecture: 'encoder_embedder',
    vocab_size: vocabSize,
    max_position: 64,
    hidden_size: 16,
    num_layers: 2,
    num_heads: 2,
    intermediate_size: 32,
    layer_norm_eps: 1e-5,
    pad_token_id: padId,
    exit_blocks: [0, 1],
    embedding_dim: 8,
    exit_embedding_dim: 4,
    pooling: 'mean',
  };
  const rand = mulberry32(21);
  for (const [name, shape] of embedderTensorSpec(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data =
      name.endsWith('ln.weight') || /ln\d\.weight$/.test(name)
        ? new Float32Array(n).fill(1)
        : randn(n, rand, name.startsWith('embeddings') ? 0.5 : 1 / Math.sqrt(shape[0]));
    weights.set(name, { shape, data });
  }
  writeFileSync(path.join(model, 'model.safetensors'), writeSafetensors(weights));
  writeFileSync(path.join(model, 'config.json'), JSON.stringify(cfg));
  writeFileSync(
    path.join(dir, 'docs.jsonl'),
    `${docs.map((text, i) => JSON.stringify({ id: `f${i}`, text })).join('\n')}\n`,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('offramp embed', () => {
  // 'auto' on this machine's software adapter: the embedder on the ONNX Runtime CPU path
  it.each(['gpu', 'auto'] as const)(
    'prints unit-length embeddings equal to the float64 reference at every exit (device %s)',
    async (device) => {
      const { log, results } = capture();
      await embedCommand([docs[1], 'read a text file'], { model, exit: 'all', device }, log);
      const r = results[0] as { dim: number; rows: { embeddings: { exit: number; vector: number[] }[] }[] };
      expect(r.dim).toBe(8);
      const tok = loadBpeTokenizer(path.join(model, 'tokenizer.json'));
      const ids = encodeTexts(tok, [docs[1], 'read a text file'], 64, cfg.pad_token_id!);
      ids.forEach((row, i) => {
        const ref = embedReference(cfg, weights, row);
        expect(r.rows[i].embeddings.map((e) => e.exit)).toEqual([0, 1]);
        r.rows[i].embeddings.forEach((e, j) => {
          e.vector.forEach((v, k) => {
            expect(Math.abs(v - ref[j][k])).toBeLessThan(2e-5);
          });
        });
      });
    },
  );

  it('rejects an exit the model does not have', async () => {
    expect(() => parseExit('2', 2, ['all'])).toThrow(
      /--exit must be an integer in \[0, 1\] or 'all' for this model \(2 exits\), got '2'/,
    );
    expect(() => parseExit('auto', 2, ['all'])).toThrow(/got 'auto'/);
    expect(parseExit(undefined, 3, [])).toBe(2);
    // the classifier commands point to these commands instead of misreading the folder
    expect(() => modelKind(model)).toThrow(
      /multi-exit embedder \(architecture encoder_embedder\): use `offramp embed`/,
    );
  });
});

describe('offramp index and search', () => {
  it('finds each document by its own text at every exit and with the dynamic exit', async () => {
    const out = path.join(dir, 'index');
    await indexCommand({ model, docs: path.join(dir, 'docs.jsonl'), out, device: 'gpu' }, capture().log);
    const idx = await openIndex(out);
    expect(idx.count).toBe(docs.length);
    for (const exit of ['0', '1', 'auto']) {
      for (let i = 0; i < docs.length; i++) {
        const { log, results } = capture();
        // queries on another path than the index's (WebGPU): the reference kernels, and ONNX Runtime ('auto')
        const device = i % 2 === 0 ? 'cpu' : 'auto';
        await searchCommand(docs[i], { index: out, exit, top: 3, margin: 0.01, device }, log);
        const r = results[0] as { exit: number; hits: { id: string; score: number }[] };
        expect(r.hits[0].id, `doc ${i} at exit ${exit}`).toBe(`f${i}`);
        expect(r.hits[0].score).toBeCloseTo(1, 4);
        expect(r.hits).toHaveLength(3);
        if (exit !== 'auto') expect(r.exit).toBe(Number(exit));
      }
    }
  });

  it('validates the index strictly', async () => {
    const out = path.join(dir, 'index-bad');
    await indexCommand({ model, docs: path.join(dir, 'docs.jsonl'), out, device: 'cpu' }, capture().log);
    const manifest = JSON.parse(readFileSync(path.join(out, 'index.json'), 'utf8'));
    writeFileSync(path.join(out, 'index.json'), JSON.stringify({ ...manifest, extra: 1 }));
    await expect(openIndex(out)).rejects.toThrow(/unknown key extra/);
    writeFileSync(path.join(out, 'index.json'), JSON.stringify({ ...manifest, count: 7 }));
    await expect(openIndex(out)).rejects.toThrow(/count is 7 but docs.jsonl holds 6/);
    writeFileSync(path.join(out, 'index.json'), JSON.stringify(manifest));
    truncateSync(path.join(out, 'exit-1.f32'), 10);
    const idx = await openIndex(out);
    await expect(idx.vectors(1)).rejects.toThrow(
      /exit-1\.f32 is 10 bytes; the manifest \(count 6 × dim 8 × 4\) needs 192/,
    );
    const v = new Float32Array(6 * 8).fill(0.5);
    writeFileSync(path.join(out, 'exit-0.f32'), Buffer.from(v.buffer));
    await expect(idx.vectors(0)).rejects.toThrow(/document 0 has norm 1\.4142; index vectors have unit length/);
  });
});
