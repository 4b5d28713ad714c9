// pnpm bench:server — classify throughput and latency of the HTTP server on loopback (autocannon), at a few
// concurrency levels, for an early-exit policy and for full depth (static:exit=<last>) under the same load.
// The server runs in a child process so that the load generator does not share its event loop.
// Also reported: the mean rows per batch that entered each block (offramp_block_live_rows), 0/1/2.
// Writes bench/results/server.json and prints a table.
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { createServer } from '../src/index.js';
import { testImages } from '../src/testing-internal/images.js';

const here = dirname(fileURLToPath(import.meta.url));
const fashion = join(here, '../../../checkpoints/fashion-cnn');
const DURATION_S = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = [1, 8, 32];
const POLICIES = [
  { name: 'early exit', spec: 'confidence:threshold=0.9' },
  { name: 'full depth', spec: 'static:exit=2' },
];

if (process.argv.includes('--serve')) {
  const srv = await createServer({ models: { 'fashion-cnn': fashion }, logger: false, maxBatch: 32, maxWaitMs: 2 });
  const url = await srv.listen(0);
  process.send?.({ url, device: srv.context.device.describe() });
  process.on('message', async () => {
    await srv.close();
    process.exit(0);
  });
} else {
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], { execArgv: process.execArgv });
  const { url, device } = await new Promise<{ url: string; device: string }>((r) => child.once('message', r as any));
  const images = testImages(256);
  const metric = async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
    return {
      batchSum: num(/^offramp_batch_size_sum\{model="fashion-cnn"\} (\S+)/m),
      batchCount: num(/^offramp_batch_size_count\{model="fashion-cnn"\} (\S+)/m),
      spent: num(/^offramp_flops_spent_total\{model="fashion-cnn"\} (\S+)/m),
      full: num(/^offramp_flops_full_depth_total\{model="fashion-cnn"\} (\S+)/m),
      // rows that entered each block (sum) over batches (count), blocks 0-2 of fashion-cnn
      blockRows: [0, 1, 2].map((k) =>
        num(new RegExp(`^offramp_block_live_rows_sum\\{model="fashion-cnn",block="${k}"\\} (\\S+)`, 'm')),
      ),
      blockBatches: [0, 1, 2].map((k) =>
        num(new RegExp(`^offramp_block_live_rows_count\\{model="fashion-cnn",block="${k}"\\} (\\S+)`, 'm')),
      ),
    };
  };
  const rows: Record<string, unknown>[] = [];
  const bodiesOf = (spec: string) =>
    images.map((image) => JSON.stringify({ model: 'fashion-cnn', input: { image }, policy: spec }));
  const load = (bodies: string[], connections: number, duration: number) => {
    let i = 0;
    return autocannon({
      url: `${url}/v1/classify`,
      connections,
      duration,
      requests: [
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          setupRequest: (req) => ({ ...req, body: bodies[i++ % bodies.length] }),
        },
      ],
    });
  };
  // warm-up: compile every program and decide kernel the measured runs use
  for (const p of POLICIES) await load(bodiesOf(p.spec), 32, 3);
  // the policies alternate at each load level, so that drift on a shared machine hits both alike
  for (const connections of CONNECTIONS) {
    for (const p of POLICIES) {
      const before = await metric();
      const r = await load(bodiesOf(p.spec), connections, DURATION_S);
      await new Promise((res) => setTimeout(res, 500)); // requests autocannon left in flight finish first
      const after = await metric();
      rows.push({
        policy: p.name,
        spec: p.spec,
        connections,
        requests_per_s: Math.round(r.requests.average * 10) / 10,
        p50_ms: r.latency.p50,
        p99_ms: r.latency.p99,
        non_2xx: r.non2xx + r.errors,
        mean_batch:
          Math.round(((after.batchSum - before.batchSum) / Math.max(1, after.batchCount - before.batchCount)) * 10) /
          10,
        cost_fraction: Math.round(((after.spent - before.spent) / Math.max(1, after.full - before.full)) * 1000) / 1000,
        live_rows_per_block: after.blockRows
          .map(
            (r, k) =>
              Math.round(
                ((r - before.blockRows[k]) / Math.max(1, after.blockBatches[k] - before.blockBatches[k])) * 10,
              ) / 10,
          )
          .join('/'),
      });
    }
  }
  child.send('stop');
  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), device: ${device}`;
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(
    join(here, 'results', 'server.json'),
    `${JSON.stringify({ date: new Date().toISOString(), machine, durationS: DURATION_S, images: images.length, rows }, null, 2)}\n`,
  );
  const cols = [
    'policy',
    'connections',
    'requests_per_s',
    'p50_ms',
    'p99_ms',
    'mean_batch',
    'cost_fraction',
    'live_rows_per_block',
    'non_2xx',
  ];
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, k) => v.padStart(w[k])).join('  ');
  console.log(`machine: ${machine}; ${DURATION_S} s per row, fashion-cnn, loopback`);
  console.log(line(cols));
  for (const r of rows) console.log(line(cols.map((c) => String(r[c]))));
}
