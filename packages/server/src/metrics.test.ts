// /metrics of a real server under classify load: each metric is present, moves by what the answers say
// (exit blocks per model and policy, rows entering each block, FLOPs saved, batch sizes, queue depth) and
// the buffer-pool gauge equals the device's own count. References are computed from the responses.
import { join } from 'node:path';
import type { GpuDevice } from '@offramp/core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createServer, type OfframpServer } from './index.js';
import { testImages } from './testing-internal/images.js';

const ck = join(import.meta.dirname, '../../../checkpoints');
let srv: OfframpServer;
let url: string;

beforeAll(async () => {
  srv = await createServer({ models: { fashion: join(ck, 'fashion-cnn') }, device: 'gpu', maxBatch: 8, maxWaitMs: 20 });
  url = await srv.listen(0);
});
afterAll(async () => {
  await srv?.close();
});

const scrape = async () => {
  const text = await (await fetch(`${url}/metrics`)).text();
  return (name: string, labels = '') => {
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const m = new RegExp(`^${esc(name)}${labels ? esc(`{${labels}}`) : ''} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : Number.NaN;
  };
};
const classify = async (image: number[], policy: string) => {
  const r = await fetch(`${url}/v1/classify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'fashion', input: { image }, policy }),
  });
  expect(r.status).toBe(200);
  return (await r.json()) as { exit_block: number; flops: number; cost_fraction: number };
};

test('exit blocks per model and policy, live rows per block, FLOPs saved, batch size, queue depth, pool bytes', async () => {
  const images = testImages(40);
  const A = 'confidence:threshold=0.9';
  const B = 'static:exit=1';
  const m0 = await scrape();
  expect(m0('offramp_device_losses_total')).toBe(0);
  expect(m0('process_resident_memory_bytes')).toBeGreaterThan(0);
  // queue depth seen above 0 while requests wait for their batch (maxWaitMs 20), then back to 0
  let peakDepth = 0;
  let done = false;
  const watcher = (async () => {
    while (!done) {
      peakDepth = Math.max(peakDepth, (await scrape())('offramp_queue_depth'));
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  const answers = await Promise.all(images.map((img, i) => classify(img, i % 2 ? B : A)));
  done = true;
  await watcher;
  expect(peakDepth).toBeGreaterThan(0);
  const m1 = await scrape();
  expect(m1('offramp_queue_depth')).toBe(0);

  // exit-block histogram: one series per (model, policy), counts and sums from the answers
  for (const [p, rows] of [
    [A, answers.filter((_, i) => i % 2 === 0)],
    [B, answers.filter((_, i) => i % 2 === 1)],
  ] as const) {
    const l = `model="fashion",policy="${p}"`;
    expect(m1('offramp_exit_block_count', l)).toBe(rows.length);
    expect(m1('offramp_exit_block_sum', l)).toBe(rows.reduce((s, r) => s + r.exit_block, 0));
  }
  // rows entering each block: block b is entered by every request that left at block b or later
  const numBlocks = Math.max(...answers.map((a) => a.exit_block)) + 1;
  for (let b = 0; b < numBlocks; b++) {
    const l = `model="fashion",block="${b}"`;
    expect(m1('offramp_block_live_rows_sum', l)).toBe(answers.filter((a) => a.exit_block >= b).length);
  }
  expect(m1('offramp_block_live_rows_sum', 'model="fashion",block="0"')).toBe(images.length);
  // FLOPs saved: 1 − Σ spent / Σ full depth over the answers
  const spent = answers.reduce((s, a) => s + a.flops, 0);
  const full = answers.reduce((s, a) => s + a.flops / a.cost_fraction, 0);
  expect(m1('offramp_flops_saved_ratio', 'model="fashion"')).toBeCloseTo(1 - spent / full, 9);
  expect(m1('offramp_flops_saved_ratio', 'model="fashion"')).toBeGreaterThan(0);
  // batch sizes: every request in one batch, and batches formed (fewer batches than requests)
  expect(m1('offramp_batch_size_sum', 'model="fashion"')).toBe(images.length);
  const batches = m1('offramp_batch_size_count', 'model="fashion"');
  expect(batches).toBeLessThan(images.length);
  expect(m1('offramp_block_live_rows_count', 'model="fashion",block="0"')).toBe(batches);
  // the buffer pool gauge is the device's own count
  const pool = (srv.context.device as GpuDevice).memoryStats();
  expect(m1('offramp_buffer_pool_bytes')).toBe(pool.allocatedBytes);
  expect(m1('offramp_buffer_pool_in_use_bytes')).toBe(pool.inUseBytes);
  expect(m0('offramp_buffer_pool_bytes')).toBeGreaterThan(0); // the weights
  expect(pool.allocatedBytes).toBeGreaterThanOrEqual(m0('offramp_buffer_pool_bytes')); // + programs' buffers
  expect(pool.inUseBytes).toBeGreaterThan(0);
  expect(m1('offramp_device_recovering')).toBe(0);
}, 60_000);
