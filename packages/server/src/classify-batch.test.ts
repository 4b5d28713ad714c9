// With `trace: true` each classify result carries `batch`: the engine batch it ran in (its size, mode, queue
// wait and run time), checked against the scheduler's own report of that batch (onBatch); without the trace
// the field is absent.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type BatchInfo, createServer, type OfframpServer } from './index.js';
import { testImages } from './testing-internal/images.js';

const ck = join(import.meta.dirname, '../../../checkpoints');
let srv: OfframpServer;
let url: string;
const batches: BatchInfo[] = [];
const images = testImages(8);

beforeAll(async () => {
  srv = await createServer({
    models: { fashion: join(ck, 'fashion-cnn') },
    device: 'gpu',
    maxBatch: 8,
    maxWaitMs: 300,
    concurrency: 1,
    warmup: false,
    onBatch: (b) => batches.push(b),
  });
  url = await srv.listen(0);
});
afterAll(async () => {
  await srv?.close();
});

const classify = async (body: unknown) => {
  const r = await fetch(`${url}/v1/classify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(r.status).toBe(200);
  return (await r.json()) as any;
};

test("trace: true reports each input's engine batch as the scheduler ran it; without the trace nothing", async () => {
  const policy = 'confidence:threshold=0.9';
  // two requests within maxWaitMs share one batch of 3 + 5 rows
  batches.length = 0;
  const [a, b] = await Promise.all([
    classify({ model: 'fashion', inputs: images.slice(0, 3).map((image) => ({ image })), policy, trace: true }),
    classify({ model: 'fashion', inputs: images.slice(3).map((image) => ({ image })), policy, trace: true }),
  ]);
  expect(batches).toHaveLength(1);
  const ran = batches[0];
  expect(ran.size).toBe(8);
  for (const r of [...a.results, ...b.results]) {
    expect(r.batch).toEqual({
      size: ran.size,
      mode: ran.mode,
      queue_ms: expect.any(Number),
      compute_ms: ran.computeMs,
    });
    expect(r.batch.queue_ms).toBeGreaterThanOrEqual(0);
  }
  // the batch's live rows per block are those of its rows' exit blocks
  const rows = new Array(ran.rowsPerBlock.length).fill(0);
  for (const r of [...a.results, ...b.results]) for (let k = 0; k <= r.exit_block; k++) rows[k]++;
  expect(rows).toEqual(ran.rowsPerBlock);
  // without the trace: no batch field
  const plain = await classify({ model: 'fashion', input: { image: images[0] }, policy });
  expect(plain.batch).toBeUndefined();
  expect(plain.trace).toBeUndefined();
});
