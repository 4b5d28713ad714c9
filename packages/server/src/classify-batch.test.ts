// With `trace: true` each classify result carries `batch`: the engine batch it ran in (its size, mode, queue
// wait, run time, live rows per block and, in host mode, wall time per block), checked against the scheduler's
// own report of that batch (onBatch), the rows' exit blocks and the same Runner run directly; without the trace
// the field is absent.
import { join } from 'node:path';
import type { RunSummary } from '@offramp/core';
import { policyFromSpec } from '@offramp/policies';
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
      rows_per_block: ran.rowsPerBlock,
      // device mode (the GPU decides): one submission, no per-block times
      ...(ran.mode === 'host' ? { block_ms: expect.any(Array) } : {}),
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

/**
 * One request of 8 inputs fills the batch (maxBatch 8): its rows_per_block is the count from its rows' exit
 * blocks and the summary of the same rows run directly on the server's Runner; block_ms has one entry per block
 * that ran, each >= 0, summing to at most compute_ms.
 */
async function checkHostBatch(at: string, served: OfframpServer, policy: string, seen: BatchInfo[]) {
  seen.length = 0;
  const r = await fetch(`${at}/v1/classify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'fashion', inputs: images.map((image) => ({ image })), policy, trace: true }),
  });
  expect(r.status).toBe(200);
  const { results } = (await r.json()) as any;
  expect(seen).toHaveLength(1);
  const m = served.context.models.get('fashion')!;
  const direct = await m.runner.run(
    { features: images.map((x) => Float32Array.from(x)) },
    { policy: policyFromSpec(policy), mode: 'auto' },
  );
  const want: RunSummary = direct.summary;
  expect(want.mode).toBe('host');
  const counted = new Array(m.model.numBlocks).fill(0);
  for (const x of results) for (let k = 0; k <= x.exit_block; k++) counted[k]++;
  const ranBlocks = counted.filter((c) => c > 0).length;
  for (const x of results) {
    expect(x.batch.size).toBe(8);
    expect(x.batch.mode).toBe('host');
    expect(x.batch.rows_per_block).toEqual(counted);
    expect(x.batch.rows_per_block).toEqual(want.rowsPerBlock);
    expect(x.batch.block_ms).toHaveLength(ranBlocks);
    for (const ms of x.batch.block_ms) expect(ms).toBeGreaterThanOrEqual(0);
    const sum = x.batch.block_ms.reduce((a: number, b: number) => a + b, 0);
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThanOrEqual(x.batch.compute_ms);
    expect(x.batch.block_ms).toEqual(results[0].batch.block_ms);
  }
  return { results, blockMs: results[0].batch.block_ms as number[], computeMs: results[0].batch.compute_ms as number };
}

test('host mode on the GPU (a policy without a WGSL form): rows_per_block and block_ms per block', async () => {
  // budget in batch mode is host only, so the Runner runs the loop on the host and the hooks time each block
  const { blockMs, computeMs } = await checkHostBatch(url, srv, 'budget:target=0.5,mode=batch', batches);
  console.log(
    `GPU host mode, 8 rows: block_ms ${blockMs.map((x) => x.toFixed(2)).join(' ')}; compute ${computeMs.toFixed(2)} ms`,
  );
});

test('the ONNX Runtime CPU path: rows_per_block and block_ms per segment, on its exit block', async () => {
  const seen: BatchInfo[] = [];
  const cpu = await createServer({
    models: { fashion: join(ck, 'fashion-cnn') },
    device: 'cpu',
    maxBatch: 8,
    maxWaitMs: 300,
    warmup: false,
    onBatch: (b) => seen.push(b),
  });
  try {
    const at = await cpu.listen(0);
    const { results, blockMs, computeMs } = await checkHostBatch(at, cpu, 'confidence:threshold=0.9', seen);
    // a segment's blocks run as one call: only the exit blocks carry time
    const exitBlocks = cpu.context.models.get('fashion')!.model.exitBlocks;
    blockMs.forEach((ms, b) => {
      if (!exitBlocks.includes(b)) expect(ms).toBe(0);
    });
    const deepest = Math.max(...results.map((x: any) => x.exit_block));
    expect(blockMs[deepest]).toBeGreaterThan(0);
    console.log(
      `ONNX Runtime CPU, 8 rows: block_ms ${blockMs.map((x) => x.toFixed(2)).join(' ')}; compute ${computeMs.toFixed(2)} ms`,
    );
  } finally {
    await cpu.close();
  }
});
