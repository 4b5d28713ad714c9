// Measures the built playground (dist/, run `pnpm --filter @offramp/playground build` first) in headless
// Chromium on WebGPU: the bundle's size (raw and gzip), and per fresh browser profile (cold: nothing cached)
// the time from navigation to the Fashion CNN loaded (fetch + parse + upload), the first classification
// (pipelines compiled on first use included) and a later one (a threshold change). Several runs; medians
// printed and written to bench/results/first-inference.json.
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DIST, launch, serveStatic } from '../test/browser.ts';

const RUNS = Number(process.env.RUNS ?? 3);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const all = files(DIST);
const code = all.filter((f) => /\.(js|css|html)$/.test(f));
const sum = (fs: string[], f: (b: Buffer) => number) => fs.reduce((a, p) => a + f(readFileSync(p)), 0);
const bundle = {
  codeBytes: sum(code, (b) => b.length),
  codeGzipBytes: sum(code, (b) => gzipSync(b).length),
  checkpointBytes: sum(
    all.filter((f) => f.includes('/checkpoints/')),
    (b) => b.length,
  ),
  totalBytes: sum(all, (b) => b.length),
};

const { url, server } = await serveStatic(DIST);
const runs: { loadMs: number; firstMs: number; laterMs: number }[] = [];
for (let r = 0; r < RUNS; r++) {
  const { context, close } = await launch();
  const page = await context.newPage();
  const t0 = Date.now();
  await page.goto(`${url}#classify`);
  const result = page.getByTestId('first-inference');
  await result.waitFor({ timeout: 120_000 });
  const status = (await page.getByTestId('load-status').textContent()) ?? '';
  const loadMs = Number(/loaded in (\d+) ms/.exec(status)?.[1]);
  const firstMs = Number(await result.getAttribute('data-ms'));
  // a later run: move the threshold and read the run's own time
  await page.getByTestId('threshold').evaluate((el) => {
    const input = el as HTMLInputElement;
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!.call(input, '0.95');
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
  await page.waitForFunction(() => {
    const el = document.querySelector('[data-testid=result]');
    return el?.getAttribute('data-threshold') === '0.95' && el.getAttribute('data-busy') === '0';
  });
  const text = (await page.getByTestId('result').textContent()) ?? '';
  const laterMs = Number(/mode, ([\d.]+) ms/.exec(text)?.[1]);
  runs.push({ loadMs, firstMs, laterMs });
  console.log(
    `run ${r + 1}: model loaded ${loadMs} ms, first inference ${firstMs.toFixed(0)} ms, later ${laterMs} ms (page ${Date.now() - t0} ms)`,
  );
  await close();
}
server.close();

const out = {
  what: 'built playground in headless Chromium (WebGPU on SwiftShader), Fashion CNN, one image, device mode',
  runs,
  median: {
    loadMs: median(runs.map((r) => r.loadMs)),
    firstInferenceMs: median(runs.map((r) => r.firstMs)),
    laterInferenceMs: median(runs.map((r) => r.laterMs)),
  },
  bundle,
};
console.log(
  `bundle: code ${(bundle.codeBytes / 1024).toFixed(0)} KiB (${(bundle.codeGzipBytes / 1024).toFixed(0)} KiB gzip), checkpoints ${(bundle.checkpointBytes / 1024).toFixed(0)} KiB, site ${(bundle.totalBytes / 1024).toFixed(0)} KiB`,
);
console.log(
  `median of ${RUNS}: model load ${out.median.loadMs} ms, first inference ${out.median.firstInferenceMs.toFixed(0)} ms, later inference ${out.median.laterInferenceMs} ms`,
);
mkdirSync(new URL('./results', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/first-inference.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
