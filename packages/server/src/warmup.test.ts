// warmup: createServer sends each model one request through its own route before it returns, so the
// pipelines are compiled before the first user request (and before /ready can be reached).
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { type BatchInfo, createServer } from './index.js';

const ck = join(import.meta.dirname, '../../../checkpoints');

test('warmup runs one batch per model before createServer returns; off by default', async () => {
  const models = { fashion: join(ck, 'fashion-cnn'), imdb: join(ck, 'imdb-encoder'), austen: join(ck, 'austen-mamba') };
  const seen: BatchInfo[] = [];
  const srv = await createServer({ models, warmup: true, apiKey: 'k', onBatch: (b) => seen.push(b) });
  try {
    // before any request of ours: one classify batch per classifier, and the LM's warm-up completion is counted
    expect(seen.map((b) => b.model).sort()).toEqual(['fashion', 'imdb']);
    const m = await srv.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer k' } });
    const line = (route: string) =>
      m.body.split('\n').find((l) => l.startsWith('offramp_http_requests_total{') && l.includes(`route="${route}"`));
    expect(line('/v1/classify')).toMatch(/status="200".* 2$/);
    expect(line('/v1/completions')).toMatch(/status="200".* 1$/);
  } finally {
    await srv.close();
  }
  const cold: BatchInfo[] = [];
  const plain = await createServer({ models: { fashion: models.fashion }, onBatch: (b) => cold.push(b) });
  await plain.close();
  expect(cold).toEqual([]);
});
