// pnpm bench:leak — no leak after 10 000 classify requests. The server (fashion-cnn and imdb-encoder, two
// policies, texts of several lengths so that several sequence buckets run) runs in a child process; this
// process sends LEAK_REQUESTS requests (default 10 000, 16 at a time) and every 1 000 asks the child for its
// memory, taken after a full garbage collection there (so that the figures are not the GC's timing):
// resident set, V8 heap in use, GPU buffer-pool bytes. The first 1 000 requests are the warm-up (they
// compile every program and fill the pool). Bounded means:
//   buffer pool: every later sample holds exactly the bytes of the one after warm-up (buffers are reused;
//     a leaked tensor would grow it)
//   V8 heap after GC: the last sample at most 10 % or 8 MiB (whichever is larger) above the one after warm-up
//   resident set: the median of the last 3 samples at most 10 % or 32 MiB above the median of the first 3
//     after warm-up (medians, because on lavapipe the driver's own memory is in the process and moves by
//     tens of MiB from sample to sample)
// Also reported: the resident-set slope after warm-up (least squares, bytes per 1 000 requests).
// Writes bench/results/leak.json; exits 1 when a bound is broken.
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GpuDevice } from '@offramp/core';
import { createServer } from '../src/index.js';
import { testImages } from '../src/testing-internal/images.js';
import { type MemorySample, runLeakCheck } from '../src/testing-internal/leak.js';

const here = dirname(fileURLToPath(import.meta.url));
const ck = join(here, '../../../checkpoints');
const TOTAL = Number(process.env.LEAK_REQUESTS ?? 10_000);
const EVERY = 1000;
const MiB = 2 ** 20;

if (process.argv.includes('--serve')) {
  const srv = await createServer({
    models: { fashion: join(ck, 'fashion-cnn'), imdb: join(ck, 'imdb-encoder') },
    logger: false,
    maxBatch: 16,
    maxWaitMs: 2,
  });
  const url = await srv.listen(0);
  process.send?.({ url, device: srv.context.device.describe() });
  process.on('message', async (m: { type: 'sample'; requests: number } | { type: 'stop' }) => {
    if (m.type === 'sample') {
      (globalThis as { gc?: () => void }).gc?.();
      const mem = process.memoryUsage();
      const pool = (srv.context.device as GpuDevice).memoryStats();
      const s: MemorySample = {
        requests: m.requests,
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        poolBytes: pool.allocatedBytes,
        poolInUseBytes: pool.inUseBytes,
      };
      process.send?.(s);
      return;
    }
    await srv.close();
    process.exit(0);
  });
} else {
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], { execArgv: [...process.execArgv, '--expose-gc'] });
  const { url, device } = await new Promise<{ url: string; device: string }>((r) => child.once('message', r as any));
  const words = ['a', 'moving', 'film', 'dull', 'plot', 'great', 'acting', 'boring', 'story', 'loved'];
  const bodies: string[] = [];
  testImages(64).forEach((image, i) => {
    bodies.push(
      JSON.stringify({
        model: 'fashion',
        input: { image },
        policy: i % 2 ? 'entropy:threshold=0.5' : 'confidence:threshold=0.9',
      }),
    );
    if (i % 4 === 0) {
      const n = 4 + ((i * 37) % 200); // 4 … 203 words: several sequence buckets
      const text = Array.from({ length: n }, (_, k) => words[(k * 7 + i) % words.length]).join(' ');
      bodies.push(JSON.stringify({ model: 'imdb', input: { text } }));
    }
  });
  const t0 = performance.now();
  const samples = await runLeakCheck({
    url,
    bodies,
    total: TOTAL,
    every: EVERY,
    concurrency: 16,
    sample: (requests) =>
      new Promise<MemorySample>((resolve) => {
        child.once('message', (s) => resolve(s as MemorySample));
        child.send({ type: 'sample', requests });
      }),
    onSample: (s) =>
      console.log(
        `${String(s.requests).padStart(6)} requests: rss ${(s.rssBytes / MiB).toFixed(1)} MiB, heap ${(s.heapUsedBytes / MiB).toFixed(1)} MiB, pool ${(s.poolBytes / MiB).toFixed(2)} MiB (in use ${(s.poolInUseBytes / MiB).toFixed(2)})`,
      ),
  });
  const seconds = (performance.now() - t0) / 1000;
  child.send({ type: 'stop' });
  const warm = samples[1];
  const last = samples.at(-1)!;
  const after = samples.slice(1);
  const slope = (xs: MemorySample[]) => {
    const mx = xs.reduce((s, x) => s + x.requests, 0) / xs.length;
    const my = xs.reduce((s, x) => s + x.rssBytes, 0) / xs.length;
    const num = xs.reduce((s, x) => s + (x.requests - mx) * (x.rssBytes - my), 0);
    const den = xs.reduce((s, x) => s + (x.requests - mx) ** 2, 0);
    return den ? (num / den) * 1000 : 0;
  };
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const rssFirst = median(after.slice(0, 3).map((x) => x.rssBytes));
  const rssLast = median(after.slice(-3).map((x) => x.rssBytes));
  const checks = {
    pool_constant: after.every((x) => x.poolBytes === warm.poolBytes && x.poolInUseBytes === warm.poolInUseBytes),
    heap_bounded: last.heapUsedBytes <= warm.heapUsedBytes + Math.max(0.1 * warm.heapUsedBytes, 8 * MiB),
    rss_bounded: rssLast <= rssFirst + Math.max(0.1 * rssFirst, 32 * MiB),
  };
  const result = {
    date: new Date().toISOString(),
    machine: `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), device: ${device}`,
    requests: TOTAL,
    seconds: Math.round(seconds * 10) / 10,
    requests_per_s: Math.round((TOTAL / seconds) * 10) / 10,
    bounds: {
      pool: 'every sample after warm-up = the one after warm-up',
      heap_after_gc: 'last ≤ after warm-up + max(10 %, 8 MiB)',
      rss: 'median of last 3 ≤ median of first 3 after warm-up + max(10 %, 32 MiB)',
    },
    warm_up_requests: warm.requests,
    rss_mib: {
      after_warm_up: +(warm.rssBytes / MiB).toFixed(1),
      last: +(last.rssBytes / MiB).toFixed(1),
      median_first_3: +(rssFirst / MiB).toFixed(1),
      median_last_3: +(rssLast / MiB).toFixed(1),
    },
    rss_slope_kib_per_1000_requests: Math.round(slope(after) / 1024),
    pool_bytes: { after_warm_up: warm.poolBytes, last: last.poolBytes },
    heap_used_mib: {
      after_warm_up: +(warm.heapUsedBytes / MiB).toFixed(1),
      last: +(last.heapUsedBytes / MiB).toFixed(1),
    },
    checks,
    samples,
  };
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, 'results', 'leak.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    `${TOTAL} requests in ${result.seconds} s (${result.requests_per_s} req/s); rss median ${result.rss_mib.median_first_3} → ${result.rss_mib.median_last_3} MiB (slope ${result.rss_slope_kib_per_1000_requests} KiB per 1000), heap ${result.heap_used_mib.after_warm_up} → ${result.heap_used_mib.last} MiB, pool ${warm.poolBytes} → ${last.poolBytes} bytes: ${Object.entries(
      checks,
    )
      .map(([k, v]) => `${k} ${v ? 'ok' : 'FAILED'}`)
      .join(', ')}`,
  );
  if (!Object.values(checks).every(Boolean)) process.exit(1);
}
