// POST /v1/embeddings on a small random embedder folder: OpenAI's response shape, one vector per input equal
// to the engine's embed() at the requested exit (and to core's float64 reference), and OpenAI-shaped errors.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  createDevice,
  type Device,
  type EncoderEmbedderConfig,
  embedderTensorSpec,
  embedReference,
  executionPath,
  mulberry32,
  randn,
  writeSafetensors,
} from '@offramp/core';
import { buildTruncatedGpt2Tokenizer, type LoadedEmbedder, loadEmbedder } from '@offramp/train/embeddings';
import fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddingsPlugin } from './embeddings.js';
import { createServer } from './server.js';

let dir: string;
let device: Device;
let m: LoadedEmbedder;
let app: FastifyInstance;
let cfg: EncoderEmbedderConfig;
const weights = new Map<string, { shape: number[]; data: Float32Array }>();

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'offramp-embeddings-'));
  mkdirSync(dir, { recursive: true });
  const { vocabSize, padId } = buildTruncatedGpt2Tokenizer(path.join(dir, 'tokenizer.json'), 200);
  cfg = {
    architecture: 'encoder_embedder',
    vocab_size: vocabSize,
    max_position: 32,
    hidden_size: 16,
    num_layers: 2,
    num_heads: 2,
    intermediate_size: 32,
    pad_token_id: padId,
    exit_blocks: [0, 1],
    embedding_dim: 8,
    exit_embedding_dim: 4,
    pooling: 'mean',
  };
  const rand = mulberry32(5);
  for (const [name, shape] of embedderTensorSpec(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    weights.set(name, { shape, data: randn(n, rand, name.startsWith('embeddings') ? 0.5 : 1 / Math.sqrt(shape[0])) });
  }
  writeFileSync(path.join(dir, 'model.safetensors'), writeSafetensors(weights));
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  device = await createDevice({ backend: 'gpu' });
  m = await loadEmbedder(dir, device);
  app = fastify({ logger: false });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(embeddingsPlugin({ models: { tiny: m } }));
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  m?.dispose();
  device?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('POST /v1/embeddings', () => {
  it('answers in OpenAI shape with the embeddings of the requested exit', async () => {
    const input = ['def add(a, b): return a + b', 'sum two numbers'];
    for (const exit of [0, 1]) {
      const res = await app.inject({ method: 'POST', url: '/v1/embeddings', payload: { model: 'tiny', input, exit } });
      expect(res.statusCode).toBe(200);
      const b = res.json();
      expect(b.object).toBe('list');
      expect(b.data.map((d: { index: number }) => d.index)).toEqual([0, 1]);
      expect(b.offramp.exit).toBe(exit);
      const ids = m.tokenize(input);
      expect(b.usage.prompt_tokens).toBe(ids[0].length + ids[1].length);
      ids.forEach((row, i) => {
        const ref = embedReference(cfg, weights, row)[exit];
        const got = b.data[i].embedding as number[];
        expect(got).toHaveLength(8);
        got.forEach((v, k) => {
          expect(Math.abs(v - ref[k])).toBeLessThan(2e-5);
        });
      });
    }
    const single = await app.inject({
      method: 'POST',
      url: '/v1/embeddings',
      payload: { model: 'tiny', input: 'x = 1' },
    });
    expect(single.json().data).toHaveLength(1);
    expect(single.json().offramp.exit).toBe(1);
  });

  it('rejects a bad exit, dimensions, model or field in OpenAI error shape', async () => {
    const post = (payload: unknown) =>
      app.inject({ method: 'POST', url: '/v1/embeddings', payload: payload as object });
    let r = await post({ model: 'tiny', input: 'a', exit: 2 });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.message).toMatch(/exit must be an integer in \[0, 1\] for model 'tiny', got 2/);
    r = await post({ model: 'tiny', input: 'a', dimensions: 4 });
    expect(r.json().error.param).toBe('dimensions');
    r = await post({ model: 'nope', input: 'a' });
    expect(r.statusCode).toBe(404);
    expect(r.json().error.code).toBe('model_not_found');
    r = await post({ model: 'tiny', input: [] });
    expect(r.statusCode).toBe(400);
    r = await post({ model: 'tiny', input: 'a', temperature: 1 });
    expect(r.statusCode).toBe(400);
  });

  it('is served by createServer from a folder: listed in /v1/models, warmed up, the same vectors as the loaded embedder', async () => {
    const srv = await createServer({ models: { code: dir }, device, logger: false, warmup: true });
    try {
      const list = await srv.app.inject({ method: 'GET', url: '/v1/models' });
      expect(list.statusCode).toBe(200);
      const entry = list.json().data.find((d: { id: string }) => d.id === 'code');
      expect(entry).toMatchObject({
        kind: 'embedder',
        architecture: 'encoder_embedder',
        num_blocks: 2,
        exit_blocks: [0, 1],
        dimensions: 8,
        max_position: 32,
        routes: ['/v1/embeddings'],
      });
      const texts = ['def f(x): return x', 'identity function'];
      const res = await srv.app.inject({
        method: 'POST',
        url: '/v1/embeddings',
        payload: { model: 'code', input: texts, exit: 0 },
      });
      expect(res.statusCode, res.body).toBe(200);
      const want = await m.embedTexts(texts, { exit: 0 });
      const got = res.json().data.map((d: { embedding: number[] }) => d.embedding);
      expect(got).toEqual([0, 1].map((i) => Array.from(want.vectors[0].subarray(i * 8, (i + 1) * 8))));
      // an embedder takes no classifier limits
      await expect(
        createServer({ models: { code: { path: dir, defaultPolicy: 'never' } }, device, logger: false }),
      ).rejects.toThrow(/is an embedder: maxSeqLen and defaultPolicy do not apply/);
    } finally {
      await srv.close();
    }
  });

  it("on createServer's default device ('auto': ONNX Runtime on a software adapter) the same vectors as the reference", async () => {
    const srv = await createServer({ models: { code: dir }, device: 'auto', logger: false, warmup: true });
    try {
      // the embedder's runner takes the device's path: ONNX Runtime where 'auto' attached it
      expect(srv.context.embedders.get('code')!.runner.backend).toBe(
        executionPath(srv.context.device) === 'ort-cpu'
          ? 'ort-cpu'
          : srv.context.device.kind === 'gpu'
            ? 'webgpu'
            : 'cpu-reference',
      );
      const texts = ['def f(x): return x', 'identity function', 'sum two numbers'];
      for (const exit of [0, 1]) {
        const res = await srv.app.inject({
          method: 'POST',
          url: '/v1/embeddings',
          payload: { model: 'code', input: texts, exit },
        });
        expect(res.statusCode, res.body).toBe(200);
        m.tokenize(texts).forEach((row, i) => {
          const ref = embedReference(cfg, weights, row)[exit];
          const got = res.json().data[i].embedding as number[];
          got.forEach((v, k) => {
            expect(Math.abs(v - ref[k])).toBeLessThan(2e-5);
          });
        });
      }
    } finally {
      await srv.close();
    }
  });
});
