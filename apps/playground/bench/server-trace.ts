// Measures the Pareto explorer's "record trace" of N Fashion-MNIST test images (N env, default 128) in the
// built playground (dist/; build it first) in headless Chromium, side by side in one run: in the page (WebGPU
// on SwiftShader, chunks of 32) and through an `offramp serve` in this process (createServer, max batch 32, so
// the requests are the page's chunks) on its WebGPU device (Dawn: lavapipe without a GPU) and on 'auto' (what
// `offramp serve` picks by default: ONNX Runtime's CPU path on a software adapter). One page for everything;
// per mode a first run (pipelines compiled in the page; the server is warmed up) and RUNS timed runs (default
// 3), whose median is printed with the ratio to the page's and written to bench/results/server-trace.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type OfframpServer } from '@offramp/server';
import type { Page } from 'playwright-core';
import { DIST, launch, REPO_ROOT, serveStatic } from '../test/browser.ts';

const RUNS = Number(process.env.RUNS ?? 3);
const N = Number(process.env.N ?? 128);
if (![32, 64, 128, 256].includes(N)) throw new Error(`N must be 32, 64, 128 or 256 (the view's choices), got ${N}`);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Clicks "record trace" and returns the time the view measured (click to trace in hand). */
async function record(page: Page): Promise<number> {
  await page.getByTestId('record').click();
  // the summary goes away while recording and comes back with the new trace's time
  await page.waitForFunction(
    () => {
      const el = document.querySelector('[data-testid=sweep-summary]');
      const button = document.querySelector('[data-testid=record]') as HTMLButtonElement | null;
      return el && button && !button.disabled && el.getAttribute('data-trace-ms');
    },
    undefined,
    { timeout: 300_000 },
  );
  const err = await page.locator('.error').count();
  if (err) throw new Error(`the page shows an error: ${await page.locator('.error').textContent()}`);
  return Number(await page.getByTestId('sweep-summary').getAttribute('data-trace-ms'));
}

const { url, server: site } = await serveStatic(DIST);
const { context, close } = await launch();
const page = await context.newPage();
await page.goto(`${url}#pareto`);
await page.getByTestId('trace-size').selectOption(String(N));

const results: Record<string, { firstMs: number; runsMs: number[]; medianMs: number }> = {};
const measure = async (label: string) => {
  const firstMs = await record(page);
  const runsMs: number[] = [];
  for (let r = 0; r < RUNS; r++) runsMs.push(await record(page));
  results[label] = { firstMs, runsMs, medianMs: median(runsMs) };
  console.log(
    `${label}: first ${firstMs.toFixed(0)} ms, then ${runsMs.map((x) => x.toFixed(0)).join(', ')} ms (median ${results[label].medianMs.toFixed(0)} ms)`,
  );
};

await measure('page (WebGPU, SwiftShader)');
for (const device of ['gpu', 'auto'] as const) {
  let srv: OfframpServer | undefined;
  try {
    srv = await createServer({
      models: { 'fashion-cnn': { path: join(REPO_ROOT, 'checkpoints/fashion-cnn'), maxBatch: 32 } },
      device,
      cors: true,
      warmup: true,
      logger: false,
    });
    const at = await srv.listen(0, '127.0.0.1');
    await page.getByTestId('server').fill(at);
    await measure(`server (device '${device}')`);
    await page.getByTestId('server').fill('');
  } finally {
    await srv?.close();
  }
}
await close();
site.close();

const base = results['page (WebGPU, SwiftShader)'].medianMs;
const out = {
  what: `Pareto explorer: record a full-depth trace of ${N} Fashion-MNIST test images (fashion-cnn), built playground in headless Chromium; in the page vs through offramp serve in the same process`,
  n: N,
  runs: RUNS,
  results,
  ratioToPage: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.medianMs / base])),
};
for (const [k, v] of Object.entries(out.ratioToPage)) console.log(`${k}: ${v.toFixed(2)} × the page's time`);
mkdirSync(new URL('./results', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/server-trace.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
