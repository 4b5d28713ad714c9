// No leak, the short form of bench/leak.ts: 1 000 classify requests (two policies, short texts of several
// lengths) through a real server; after the first 200 (warm-up: every program compiled, the pool filled)
// the GPU buffer pool holds and hands out exactly the same bytes at every sample. The 10 000-request run
// with the resident set is `pnpm bench:leak`.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createServer, type OfframpServer } from './index.js';
import { testImages } from './testing-internal/images.js';
import { runLeakCheck } from './testing-internal/leak.js';

const ck = join(import.meta.dirname, '../../../checkpoints');
let srv: OfframpServer;
let url: string;

beforeAll(async () => {
  srv = await createServer({
    models: { fashion: join(ck, 'fashion-cnn'), imdb: join(ck, 'imdb-encoder') },
    device: 'gpu',
    maxBatch: 16,
    maxWaitMs: 2,
    // one program per sequence bucket: with 2, whether a bucket's second program gets built depends on two
    // of its batches overlapping, which may first happen after any warm-up (bounded, but not a fixed count)
    concurrency: 1,
  });
  url = await srv.listen(0);
});
afterAll(async () => {
  await srv?.close();
});

test('the buffer pool does not grow after warm-up over 1 000 requests', async () => {
  const words = ['a', 'moving', 'film', 'dull', 'plot', 'great', 'acting', 'boring'];
  const bodies: string[] = [];
  testImages(32).forEach((image, i) => {
    const policy = i % 2 ? 'entropy:threshold=0.5' : 'confidence:threshold=0.9';
    bodies.push(JSON.stringify({ model: 'fashion', input: { image }, policy }));
    if (i % 8 === 0) {
      const text = Array.from({ length: 4 + i * 2 }, (_, k) => words[(k * 3 + i) % words.length]).join(' ');
      bodies.push(JSON.stringify({ model: 'imdb', input: { text } }));
    }
  });
  const samples = await runLeakCheck({ url, bodies, total: 1000, every: 200, concurrency: 12 });
  expect(samples.map((s) => s.requests)).toEqual([0, 200, 400, 600, 800, 1000]);
  const warm = samples[1];
  expect(warm.poolBytes).toBeGreaterThan(samples[0].poolBytes); // programs were built during warm-up
  for (const s of samples.slice(2)) {
    expect([s.requests, s.poolBytes]).toEqual([s.requests, warm.poolBytes]);
    expect([s.requests, s.poolInUseBytes]).toEqual([s.requests, warm.poolInUseBytes]);
  }
}, 60_000);
