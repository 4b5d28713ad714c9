// End-to-end tests of the BUILT playground (dist/, `vite build` runs first through turbo's build task) in
// headless Chromium on WebGPU (SwiftShader), each compared with the same computation in Node on Dawn.
import { mkdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { buildModel, createGpuDevice, type GpuDevice, ImageEnhancer, Runner } from '@offramp/core';
import { loadDecoderLM, loadEnhancerDir, loadModelDir } from '@offramp/core/node';
import { loadMambaLM } from '@offramp/mamba/node';
import { confidence, parsePolicyFile, policyFromSpec, recordTrace, staticPolicy } from '@offramp/policies';
import { checkPolicy } from '@offramp/policies/testing';
import { createServer } from '@offramp/server';
import { CharTokenizer, jpegDegrade, WordTokenizer } from '@offramp/train';
import jpeg from 'jpeg-js';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pointLabel, policyFileText, sweepAll } from '../src/lib/pareto.ts';
import { compilePolicy, EXAMPLE_POLICY } from '../src/lib/policy-editor.ts';
import { fashionBatch, fashionImage, IMDB_REVIEWS } from '../src/lib/samples.ts';
import { completeOnServer } from '../src/lib/server.ts';
import { APP_DIR, DIST, launch, REPO_ROOT, serveStatic } from './browser.ts';

const SHOTS = join(APP_DIR, 'screenshots');
let server: Server;
let base: string;
let context: BrowserContext;
let closeBrowser: () => Promise<void>;
let gpu: GpuDevice;
let runner: Runner;
const pageErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  ({ url: base, server } = await serveStatic(DIST));
  ({ context, close: closeBrowser } = await launch());
  gpu = await createGpuDevice();
  const loaded = await loadModelDir(join(REPO_ROOT, 'checkpoints/fashion-cnn'));
  const tensors = new Map(
    [...loaded.tensors].map(([k, t]) => [
      k,
      { shape: [...t.shape], data: Float32Array.from(t.data as ArrayLike<number>) },
    ]),
  );
  runner = new Runner(gpu, buildModel(gpu, loaded.config.model, tensors), { maxBatch: 64 });
});

afterAll(async () => {
  await closeBrowser?.();
  server?.close();
  gpu?.destroy();
});

async function open(view: string): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`${base}#${view}`);
  return page;
}

/** Sets a range input the way a user's drag does (React listens to the input event). */
async function setRange(page: Page, testId: string, value: number): Promise<void> {
  await page.getByTestId(testId).evaluate((el, v) => {
    const input = el as HTMLInputElement;
    const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!;
    setter.call(input, String(v));
    input.dispatchEvent(new Event('input', { bubbles: true }));
  }, value);
}

/**
 * Waits until the classify result is that of a run at `threshold` (and of `tag`: 'drawn' or `image-<i>`, when
 * given) and no run is in flight; returns its exit and prediction.
 */
async function classifyResult(
  page: Page,
  threshold: number,
  tag?: string,
): Promise<{ exit: number; prediction: number }> {
  const result = page.getByTestId('result');
  await expect
    .poll(
      async () =>
        (await result.getAttribute('data-busy')) === '0' &&
        Number(await result.getAttribute('data-threshold')) === threshold &&
        (tag === undefined || (await result.getAttribute('data-tag')) === tag),
      { timeout: 30_000 },
    )
    .toBe(true);
  return {
    exit: Number(await result.getAttribute('data-exit')),
    prediction: Number(await result.getAttribute('data-prediction')),
  };
}

/** Records a Pareto trace of n samples in the page and checks its frontier against `want` (computed in Node). */
async function expectRecordedFrontier(
  page: Page,
  n: number,
  want: { policy: string; options: Record<string, unknown>; accuracy: number | null; meanCost: number }[],
  timeout: number,
): Promise<void> {
  await page.getByTestId('trace-size').selectOption(String(n));
  await page.getByTestId('record').click();
  const plot = page.getByTestId('pareto-plot');
  await plot.waitFor({ timeout });
  const got = JSON.parse((await plot.getAttribute('data-frontier'))!);
  expect(got.map((p: { policy: string; options: Record<string, unknown> }) => pointLabel(p))).toEqual(
    want.map((p) => pointLabel(p)),
  );
  for (let i = 0; i < want.length; i++) {
    expect(got[i].accuracy).toBe(want[i].accuracy);
    expect(got[i].meanCost).toBeCloseTo(want[i].meanCost, 12);
  }
}

async function nodeRun(image: number | Uint8Array, threshold: number) {
  const bytes = typeof image === 'number' ? fashionImage(image).bytes : image;
  const features = [Float32Array.from(bytes, (b) => b / 255)];
  const r = await runner.run({ features }, { policy: confidence({ threshold }), mode: 'device' });
  return { exit: r.samples[0].exitIndex, prediction: r.samples[0].prediction };
}

describe('playground (built site, headless Chromium on WebGPU)', () => {
  it('classifies a Fashion-MNIST test image as Node on Dawn does, and the exit follows the threshold', async () => {
    // an image whose exit differs between a low and a high threshold (found in Node)
    const low = 0.5;
    const high = 0.999;
    let image = -1;
    for (let i = 0; i < 32 && image < 0; i++) {
      const [a, b] = [await nodeRun(i, low), await nodeRun(i, high)];
      if (a.exit !== b.exit) image = i;
    }
    expect(image).toBeGreaterThanOrEqual(0);
    const page = await open('classify');
    await expect.poll(() => page.getByTestId('adapter').textContent(), { timeout: 30_000 }).toMatch(/gpu/i);
    await page.getByTestId(`thumb-${image}`).click();
    await setRange(page, 'threshold', low);
    const atLow = await classifyResult(page, low, `image-${image}`);
    expect(atLow).toEqual(await nodeRun(image, low));
    await page.getByTestId('exits').waitFor();
    await page.screenshot({ path: join(SHOTS, 'classify.png') });
    // every exit's prediction: the argmax at each exit of a full-depth trace in Node
    const features = [Float32Array.from(fashionImage(image).bytes, (b) => b / 255)];
    const nodeTrace = await recordTrace(runner, { features });
    const classes = (await page.getByTestId('exits').locator('th').allTextContents()).slice(3);
    for (let e = 0; e < nodeTrace.numExits; e++) {
      const cell = await page.getByTestId(`exit-row-${e}`).locator('td:nth-child(3)').textContent();
      expect(cell).toBe(classes[nodeTrace.samples[0].argmax[e]]);
    }
    await setRange(page, 'threshold', high);
    const atHigh = await classifyResult(page, high);
    expect(atHigh).toEqual(await nodeRun(image, high));
    expect(atHigh.exit).not.toBe(atLow.exit);
    // host mode (the policy in TypeScript, a readback per exit) decides the same
    await page.getByTestId('mode').selectOption('host');
    await expect.poll(() => page.getByTestId('result').getAttribute('data-mode'), { timeout: 30_000 }).toBe('host');
    expect(await classifyResult(page, high)).toEqual(atHigh);
    // a drawing on the pad is classified as Node classifies the same pixels
    const pad = page.getByTestId('drawpad');
    const box = (await pad.boundingBox())!;
    // a vertical bar with a cross-piece
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.15);
    await page.mouse.down();
    for (let t = 0.15; t <= 0.85; t += 0.05) await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * t);
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.3);
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.3);
    await page.mouse.up();
    const got = await classifyResult(page, high, 'drawn');
    const bytes = await page.getByTestId('shown-image').evaluate((c) => {
      const canvas = c as HTMLCanvasElement;
      const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      return Array.from({ length: d.length / 4 }, (_, i) => d[i * 4]);
    });
    expect(bytes.length).toBe(784);
    expect(bytes.filter((b) => b > 128).length).toBeGreaterThan(20);
    expect(got).toEqual(await nodeRun(Uint8Array.from(bytes), high));
    await page.screenshot({ path: join(SHOTS, 'draw.png'), fullPage: true });
    // the checkpoint files went through the Cache API
    const cached = await page.evaluate(async () => {
      const cache = await caches.open('offramp-checkpoints-v1');
      return (await cache.keys()).map((r) => new URL(r.url).pathname).sort();
    });
    expect(cached).toEqual(['/checkpoints/fashion-cnn/config.json', '/checkpoints/fashion-cnn/model.safetensors']);
    const first = Number(await page.getByTestId('first-inference').getAttribute('data-ms'));
    console.log(`first inference (fashion-cnn, 1 image, incl. pipeline compilation): ${first.toFixed(0)} ms`);
    await page.close();
    expect(pageErrors).toEqual([]);
  });

  it('classifies an IMDB review as Node on Dawn does, at two thresholds with different exits', async () => {
    const dir = join(REPO_ROOT, 'checkpoints/imdb-encoder');
    const loaded = await loadModelDir(dir);
    const tensors = new Map(
      [...loaded.tensors].map(([k, t]) => [
        k,
        { shape: [...t.shape], data: Float32Array.from(t.data as ArrayLike<number>) },
      ]),
    );
    const imdb = new Runner(gpu, buildModel(gpu, loaded.config.model, tensors), { maxBatch: 8 });
    // the page's tokenization: the checkpoint's word tokenizer, unpadded, at most max_position tokens
    const tokenizer = WordTokenizer.load(join(dir, 'word-tokenizer.json'));
    const maxTokens = (loaded.config.model as { max_position: number }).max_position;
    const nodeText = async (text: string, threshold: number) => {
      const ids = [tokenizer.encodeUnpadded(text, maxTokens)];
      const r = await imdb.run({ ids }, { policy: confidence({ threshold }), mode: 'device' });
      return { exit: r.samples[0].exitIndex, prediction: r.samples[0].prediction };
    };
    const [low, high] = [0.55, 0.999];
    let review = -1;
    for (let i = 0; i < IMDB_REVIEWS.length && review < 0; i++)
      if ((await nodeText(IMDB_REVIEWS[i].text, low)).exit !== (await nodeText(IMDB_REVIEWS[i].text, high)).exit)
        review = i;
    expect(review).toBeGreaterThanOrEqual(0);
    const text = IMDB_REVIEWS[review].text;
    const page = await open('classify');
    await page.getByTestId('ds-imdb').click();
    await page.getByTestId('review-pick').selectOption(String(review));
    await expect(page.getByTestId('review').inputValue()).resolves.toBe(text);
    await setRange(page, 'threshold', low);
    const atLow = await classifyResult(page, low, 'text');
    expect(atLow).toEqual(await nodeText(text, low));
    await setRange(page, 'threshold', high);
    const atHigh = await classifyResult(page, high, 'text');
    expect(atHigh).toEqual(await nodeText(text, high));
    expect(atHigh.exit).not.toBe(atLow.exit);
    await page.screenshot({ path: join(SHOTS, 'classify-imdb.png'), fullPage: true });
    await page.close();
    imdb.model.dispose?.();
  });

  it('batch view: the live rows per block are those of the same batch in Node', async () => {
    const { features } = fashionBatch(64);
    const want = await runner.run({ features }, { policy: confidence({ threshold: 0.9 }), mode: 'device' });
    const page = await open('batch');
    const view = page.getByTestId('batch');
    await page.getByTestId('live-0').waitFor({ timeout: 30_000 });
    await expect.poll(() => view.getAttribute('data-busy')).toBe('0');
    const live = [];
    for (let b = 0; b < want.summary.rowsPerBlock.length; b++)
      live.push(Number(await page.getByTestId(`live-${b}`).textContent()));
    expect(live).toEqual(want.summary.rowsPerBlock);
    expect(live[0]).toBe(64);
    expect(live.at(-1)).toBeLessThan(64);
    await page.screenshot({ path: join(SHOTS, 'batch.png'), fullPage: true });
    await page.close();
  });

  it('Pareto explorer: records a trace, its frontier is the one computed in Node, a clicked point runs as simulated and exports a policy file', async () => {
    const n = 64;
    const { features, labels } = fashionBatch(n);
    const nodeTrace = await recordTrace(runner, { features }, labels);
    const want = sweepAll(nodeTrace).frontier.map((p) => ({
      policy: p.policy,
      options: p.options,
      accuracy: p.accuracy,
      meanCost: p.meanCost,
    }));
    expect(want.length).toBeGreaterThan(1);
    const page = await open('pareto');
    await expectRecordedFrontier(page, n, want, 60_000);
    // click the cheapest frontier point that is not the first exit's: it runs on the device as simulated
    const { points } = sweepAll(nodeTrace);
    const target = points.find((p) => pointLabel(p) === pointLabel(want[Math.min(1, want.length - 1)]))!;
    await page.getByTestId(`point-${target.id}`).dispatchEvent('click');
    const measured = page.getByTestId('measured');
    await measured.waitFor({ timeout: 30_000 });
    expect(Number(await measured.getAttribute('data-accuracy'))).toBe(target.accuracy);
    expect(Number(await measured.getAttribute('data-cost'))).toBeCloseTo(target.meanCost, 6);
    const file = parsePolicyFile(await page.getByTestId('policy-file').textContent());
    expect({ name: file.name, options: file.options }).toEqual({ name: target.policy, options: target.options });
    await page.screenshot({ path: join(SHOTS, 'pareto.png'), fullPage: true });
    await page.close();
  });

  it('generate view: streams the Austen decoder token by token with the tokens and exits of Node', async () => {
    const prompt = 'It is a truth universally acknowledged, that';
    const n = 16;
    const threshold = 0.6;
    const { model: lm, loaded } = await loadDecoderLM(join(REPO_ROOT, 'checkpoints/austen-decoder'), gpu);
    const want = await lm.generate([loaded.tokenizer!.encode(prompt)], {
      maxNewTokens: n,
      exit: { rule: { kind: 'maxProb', threshold } },
    });
    lm.dispose();
    expect(new Set(want.exitBlocks[0]).size).toBeGreaterThan(1);
    const page = await open('generate');
    await page.getByTestId('prompt').fill(prompt);
    await page.getByTestId('max-tokens').fill(String(n));
    await setRange(page, 'gen-threshold', threshold);
    await page.getByTestId('generate').click();
    await expect.poll(() => page.getByTestId('gen-stats').getAttribute('data-done'), { timeout: 60_000 }).toBe('1');
    const tokens = page.getByTestId('tokens');
    expect(JSON.parse((await tokens.getAttribute('data-ids'))!)).toEqual(want.tokens[0]);
    expect(JSON.parse((await tokens.getAttribute('data-exits'))!)).toEqual(want.exitBlocks[0]);
    expect(await page.getByTestId('gen-stats').textContent()).toMatch(/tokens\/s after it/);
    console.log(`generate: ${await page.getByTestId('gen-stats').textContent()}`);
    await page.screenshot({ path: join(SHOTS, 'generate.png'), fullPage: true });
    await page.close();
  });

  it('generate view: streams the Austen Mamba token by token with the tokens and exits of Node', async () => {
    const prompt = 'It is a truth universally acknowledged, that';
    const n = 16;
    const threshold = 0.7;
    // Node as the CLI does it for a Mamba folder: loadMambaLM and the char tokenizer read from its file
    const dir = join(REPO_ROOT, 'checkpoints/austen-mamba');
    const tokenizer = CharTokenizer.load(join(dir, 'char-tokenizer.json'));
    const { model: lm } = await loadMambaLM(gpu, dir);
    const want = await lm.generate([Array.from(tokenizer.encode(prompt))], {
      maxNewTokens: n,
      exit: { rule: { kind: 'maxProb', threshold } },
    });
    lm.dispose();
    // the threshold makes tokens leave from more than one block, so the exits are a real check
    expect(new Set(want.exitBlocks[0]).size).toBeGreaterThan(1);
    const page = await open('generate');
    await page.getByTestId('gen-model').selectOption('mamba');
    await page.getByTestId('prompt').fill(prompt);
    await page.getByTestId('max-tokens').fill(String(n));
    await setRange(page, 'gen-threshold', threshold);
    await page.getByTestId('generate').click();
    // an error shown in the page ends the wait and is what the failure shows
    const doneOrError = async () =>
      (await page.locator('.error').count())
        ? await page.locator('.error').textContent()
        : await page.getByTestId('gen-stats').getAttribute('data-done');
    await expect.poll(doneOrError, { timeout: 60_000 }).toBe('1');
    const tokens = page.getByTestId('tokens');
    expect(await tokens.getAttribute('data-model')).toBe('mamba');
    expect(JSON.parse((await tokens.getAttribute('data-ids'))!)).toEqual(want.tokens[0]);
    expect(JSON.parse((await tokens.getAttribute('data-exits'))!)).toEqual(want.exitBlocks[0]);
    expect(await tokens.textContent()).toBe(prompt + tokenizer.decode(want.tokens[0]));
    expect(await page.getByTestId('gen-stats').textContent()).toMatch(/tokens\/s after it/);
    console.log(`generate (Mamba): ${await page.getByTestId('gen-stats').textContent()}`);
    await page.screenshot({ path: join(SHOTS, 'generate-mamba.png'), fullPage: true });
    await page.close();
  });

  it("enhance view: the JPEG bytes, quality scores and the quality policy's exit are those of Node on Dawn, and the exit follows the threshold", async () => {
    const samples = JSON.parse(readFileSync(join(APP_DIR, 'src/assets/enhance-samples.json'), 'utf8')) as {
      width: number;
      height: number;
      pictures: { name: string; pixels: string }[];
    };
    const PIC = 1;
    const Q = 10;
    const { width, height } = samples;
    const grey = new Uint8Array(Buffer.from(samples.pictures[PIC].pixels, 'base64'));
    const rgba = new Uint8Array(width * height * 4);
    for (let i = 0; i < grey.length; i++) rgba.set([grey[i], grey[i], grey[i], 255], 4 * i);
    const wantJpeg = Buffer.from(jpeg.encode({ data: rgba, width, height }, Q).data).toString('base64');
    // the degraded input as training makes it (jpeg-js round trip, luma), and the enhancer from its folder
    const input = jpegDegrade({ width, height, data: Float32Array.from(grey, (b) => b / 255) }, Q);
    const dir = loadEnhancerDir(join(REPO_ROOT, 'checkpoints/rbqe'));
    const enh = new ImageEnhancer(gpu, dir.config, dir.tensors, { maxBatch: 1 });
    try {
      const last = dir.config.levels - 1;
      const [full] = await enh.enhance([input], { policy: staticPolicy({ exit: last }), mode: 'device', trace: true });
      const scores = full.scores!;
      expect(scores).toHaveLength(dir.config.levels);
      const nodeExit = async (t: number) =>
        (await enh.enhance([input], { policy: policyFromSpec(`quality:threshold=${t}`), mode: 'device' }))[0].exitIndex;
      // thresholds on the slider's 0.01 grid just below and just above the first exit's score
      const lo = Math.floor(scores[0] * 100) / 100;
      const hi = Math.ceil(scores[0] * 100 + 1e-9) / 100;
      expect(lo).toBeGreaterThanOrEqual(0);
      expect(hi).toBeLessThanOrEqual(1);
      const want = { [lo]: await nodeExit(lo), [hi]: await nodeExit(hi) };
      expect(Math.min(scores[0] - lo, hi - scores[0])).toBeGreaterThan(1e-4);
      expect(want[lo]).toBe(0);
      expect(want[hi]).toBeGreaterThan(0);

      const page = await open('enhance');
      await page.getByTestId('enhance-picture').selectOption(String(PIC));
      await setRange(page, 'enhance-quality', Q);
      const result = page.getByTestId('enhance-result');
      for (const t of [lo, hi]) {
        await setRange(page, 'enhance-threshold', t);
        await expect
          .poll(
            async () =>
              (await result.getAttribute('data-busy')) === '0' &&
              (await result.getAttribute('data-tag')) === `${PIC}-${Q}-device-${t}` &&
              (await result.getAttribute('data-exits-tag')) === `${PIC}-${Q}-device`,
            { timeout: 60_000 },
          )
          .toBe(true);
        expect(await result.getAttribute('data-jpeg')).toBe(wantJpeg);
        // scores: float32 sums on two Vulkan implementations (SwiftShader's 4 × 4 conv blocks, lavapipe's 8 × 8)
        // differ in the last bits; the exit (a comparison with T, at least 1e-4 away) must be the same
        const got = JSON.parse((await result.getAttribute('data-scores'))!) as number[];
        expect(got).toHaveLength(scores.length);
        for (const [k, v] of got.entries()) expect(v).toBeCloseTo(scores[k], 5);
        expect(Number(await result.getAttribute('data-exit'))).toBe(want[t]);
      }
      expect(await page.getByTestId('enhance-exits').locator('tbody tr').count()).toBe(dir.config.levels);
      await page.screenshot({ path: join(SHOTS, 'enhance.png'), fullPage: true });
      await page.close();
    } finally {
      enh.dispose();
    }
  });

  it('policy editor: the example conforms, a syntax error and a policy that breaks the kit show their errors', async () => {
    const page = await open('policy');
    const report = page.getByTestId('policy-report');
    await page.getByTestId('policy-check').click();
    await report.waitFor({ timeout: 60_000 });
    expect(await report.getAttribute('data-ok')).toBe('1');
    expect(await page.getByTestId('check-failed').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'policy.png'), fullPage: true });

    // a syntax error: shown in place, no report
    await page.getByTestId('policy-text').fill(EXAMPLE_POLICY.replace('init: () => null,', 'init: () => null,,'));
    await page.getByTestId('policy-check').click();
    await expect(page.getByTestId('policy-error').textContent()).resolves.toMatch(
      /SyntaxError in the policy text: Unexpected token/,
    );
    expect(await report.count()).toBe(0);

    // decide returns one decision too few: the kit's failures are shown, the same checks fail as in Node
    const broken = EXAMPLE_POLICY.replace(
      'Array.from(s.maxProb, (p) => p >= Math.fround(o.threshold))',
      'Array.from(s.maxProb.subarray(1), (p) => p >= Math.fround(o.threshold))',
    );
    expect(broken).not.toBe(EXAMPLE_POLICY);
    const nodeReport = await checkPolicy(compilePolicy(broken), {
      validOptions: [{ threshold: 0.9 }, { threshold: 0.5 }],
      gpu,
    });
    const wantFailed = nodeReport.checks.filter((c) => !c.ok && !c.skipped).map((c) => c.name);
    expect(wantFailed.length).toBeGreaterThan(0);
    await page.getByTestId('policy-text').fill(broken);
    await page.getByTestId('policy-check').click();
    await report.waitFor({ timeout: 60_000 });
    expect(await report.getAttribute('data-ok')).toBe('0');
    const failed = await page.getByTestId('check-failed').locator('td:nth-child(2)').allTextContents();
    expect(failed).toEqual(wantFailed);
    await page.screenshot({ path: join(SHOTS, 'policy-error.png'), fullPage: true });
    await page.close();
  });

  it('without WebGPU the page says so and the policy editor still works', async () => {
    const page = await context.newPage();
    await page.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined });
    });
    await page.goto(`${base}#classify`);
    await expect(page.getByTestId('no-webgpu').textContent()).resolves.toMatch(
      /WebGPU is not available in this browser/,
    );
    expect(await page.getByTestId('adapter').textContent()).toBe('no WebGPU');
    await page.getByTestId('policy-check').click();
    await expect.poll(() => page.getByTestId('policy-report').getAttribute('data-ok'), { timeout: 30_000 }).toBe('1');
    await page.screenshot({ path: join(SHOTS, 'no-webgpu.png'), fullPage: true });
    await page.close();
  });

  it('server mode: the classify view asks offramp serve and shows its answer, the same as Node', async () => {
    const srv = await createServer({
      models: { 'fashion-cnn': join(REPO_ROOT, 'checkpoints/fashion-cnn') },
      device: 'gpu',
      cors: true,
    });
    try {
      const url = await srv.listen(0, '127.0.0.1');
      const page = await open('classify');
      await page.getByTestId('server').fill(url);
      await page.getByTestId('thumb-3').click();
      const result = page.getByTestId('server-result');
      await expect
        .poll(
          async () =>
            (await result.getAttribute('data-busy')) === '0' && (await result.getAttribute('data-exit')) !== '',
          {
            timeout: 30_000,
          },
        )
        .toBe(true);
      const got = {
        exit: Number(await result.getAttribute('data-exit')),
        prediction: Number(await result.getAttribute('data-prediction')),
      };
      expect(got).toEqual(await nodeRun(3, 0.9));
      expect(await result.textContent()).toMatch(/round trip/);
      await page.screenshot({ path: join(SHOTS, 'server.png'), fullPage: true });
      // a server that is not there: the error says so in place
      await page.getByTestId('server').fill('http://127.0.0.1:9');
      await expect(page.getByTestId('classify-error').textContent()).resolves.toMatch(
        /no answer from http:\/\/127.0.0.1:9/,
      );
      await page.close();
    } finally {
      await srv.close();
    }
  });
  it('server mode: the pareto, batch and generate views run on offramp serve, each as Node computes it', async () => {
    const n = 64;
    const { features, labels } = fashionBatch(n);
    const nodeTrace = await recordTrace(runner, { features }, labels);
    const { points, frontier } = sweepAll(nodeTrace);
    const want = frontier.map((p) => ({
      policy: p.policy,
      options: p.options,
      accuracy: p.accuracy,
      meanCost: p.meanCost,
    }));
    const srv = await createServer({
      models: {
        'fashion-cnn': { path: join(REPO_ROOT, 'checkpoints/fashion-cnn'), maxBatch: 64 },
        'austen-mamba': join(REPO_ROOT, 'checkpoints/austen-mamba'),
      },
      device: 'gpu',
      cors: true,
    });
    try {
      const url = await srv.listen(0, '127.0.0.1');
      const page = await open('pareto');
      await page.getByTestId('server').fill(url);
      // Pareto: the trace recorded through the server gives Node's frontier, and the same policy file
      await expectRecordedFrontier(page, n, want, 30_000);
      console.log(
        `pareto trace of ${n} images through the server: ${await page.getByTestId('sweep-summary').getAttribute('data-trace-ms')} ms`,
      );
      const target = points.find((p) => pointLabel(p) === pointLabel(want[Math.min(1, want.length - 1)]))!;
      await page.getByTestId(`point-${target.id}`).dispatchEvent('click');
      const measured = page.getByTestId('measured');
      await measured.waitFor({ timeout: 30_000 });
      expect(Number(await measured.getAttribute('data-accuracy'))).toBe(target.accuracy);
      expect(Number(await measured.getAttribute('data-cost'))).toBeCloseTo(target.meanCost, 6);
      // the file browser mode exports for this point of the same trace, byte for byte
      expect(await page.getByTestId('policy-file').textContent()).toBe(policyFileText(target, n));
      await page.screenshot({ path: join(SHOTS, 'server-pareto.png'), fullPage: true });

      // batch: 64 images on the server, each row's exit block and the live rows per block as in Node
      await page.getByTestId('tab-batch').click();
      const nodeBatch = await runner.run({ features }, { policy: confidence({ threshold: 0.9 }), mode: 'device' });
      const summary = page.getByTestId('batch-summary');
      await expect.poll(() => summary.getAttribute('data-mode'), { timeout: 30_000 }).toBe('server');
      await expect.poll(() => page.getByTestId('batch').getAttribute('data-busy')).toBe('0');
      const exits = JSON.parse((await page.getByTestId('batch-exits').getAttribute('data-exits'))!);
      expect(exits).toEqual(nodeBatch.samples.map((s) => s.exitBlock));
      const live = [];
      for (let b = 0; b < nodeBatch.summary.rowsPerBlock.length; b++)
        live.push(Number(await page.getByTestId(`live-${b}`).textContent()));
      expect(live).toEqual(nodeBatch.summary.rowsPerBlock);
      // the server ran the 64 rows as one engine batch and says so
      expect(await summary.textContent()).toMatch(/engine batch\(es\): 64 rows, (device|host) mode/);
      // the live rows shown are the server's rows_per_block; device mode reports no per-block times
      const table = page.getByTestId('batch-table');
      expect(await table.getAttribute('data-rows-source')).toBe('server');
      if ((await summary.textContent())!.includes('64 rows, device mode')) {
        expect(await table.getAttribute('data-block-ms')).toBe('[]');
        expect(await page.getByTestId('ms-0').textContent()).toBe('–');
      }
      await page.screenshot({ path: join(SHOTS, 'server-batch.png'), fullPage: true });

      // generate: the Mamba streamed from /v1/completions, the same tokens and exits as a non-streamed completion
      const prompt = 'It is a truth universally acknowledged, that';
      const tokens = 16;
      const threshold = 0.7;
      await page.getByTestId('tab-generate').click();
      await page.getByTestId('gen-model').selectOption('mamba');
      await page.getByTestId('prompt').fill(prompt);
      await page.getByTestId('max-tokens').fill(String(tokens));
      await setRange(page, 'gen-threshold', threshold);
      await page.getByTestId('generate').click();
      const doneOrError = async () =>
        (await page.locator('.error').count())
          ? await page.locator('.error').textContent()
          : await page.getByTestId('gen-stats').getAttribute('data-done');
      await expect.poll(doneOrError, { timeout: 30_000 }).toBe('1');
      const whole = await completeOnServer(url, {
        model: 'austen-mamba',
        prompt,
        maxTokens: tokens,
        policy: `confidence:threshold=${threshold}`,
      });
      const shown = page.getByTestId('tokens');
      expect(whole.exitBlocks).toHaveLength(tokens);
      expect(new Set(whole.exitBlocks).size).toBeGreaterThan(1);
      expect(JSON.parse((await shown.getAttribute('data-exits'))!)).toEqual(whole.exitBlocks);
      expect(await shown.getAttribute('data-text')).toBe(whole.text);
      expect(await page.getByTestId('gen-stats').textContent()).toMatch(/tokens\/s after it/);
      console.log(`generate (server): ${await page.getByTestId('gen-stats').textContent()}`);
      await page.screenshot({ path: join(SHOTS, 'server-generate.png'), fullPage: true });
      await page.close();

      // without WebGPU in the page, the batch view still runs on the server (the policy editor is not shown)
      const bare = await context.newPage();
      bare.on('pageerror', (e) => pageErrors.push(String(e)));
      await bare.addInitScript(() => {
        Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined });
      });
      await bare.goto(`${base}#batch`);
      await bare.getByTestId('no-webgpu').waitFor();
      await bare.getByTestId('server').fill(url);
      await expect
        .poll(() => bare.getByTestId('batch-summary').getAttribute('data-mode'), { timeout: 30_000 })
        .toBe('server');
      expect(JSON.parse((await bare.getByTestId('batch-exits').getAttribute('data-exits'))!)).toEqual(
        nodeBatch.samples.map((s) => s.exitBlock),
      );
      expect(await bare.getByTestId('policy-check').count()).toBe(0);
      // a server on the ONNX Runtime CPU path runs the batch in host mode: the view shows its live rows and
      // wall ms per block (a segment's time on its exit block), as the server reports them
      const tCpu = performance.now();
      const cpu = await createServer({
        models: { 'fashion-cnn': { path: join(REPO_ROOT, 'checkpoints/fashion-cnn'), maxBatch: 64 } },
        device: 'cpu',
        cors: true,
      });
      try {
        const cpuUrl = await cpu.listen(0, '127.0.0.1');
        await bare.getByTestId('server').fill(cpuUrl);
        const cpuSummary = bare.getByTestId('batch-summary');
        await expect
          .poll(async () => cpuSummary.textContent(), { timeout: 30_000 })
          .toMatch(new RegExp(`server ${cpuUrl} .*64 rows, host mode`));
        const cpuExits: number[] = JSON.parse((await bare.getByTestId('batch-exits').getAttribute('data-exits'))!);
        const cpuTable = bare.getByTestId('batch-table');
        expect(await cpuTable.getAttribute('data-rows-source')).toBe('server');
        const blocks = nodeBatch.summary.rowsPerBlock.length;
        const counted = new Array(blocks).fill(0);
        for (const e of cpuExits) for (let b = 0; b <= e; b++) counted[b]++;
        const shownLive = [];
        for (let b = 0; b < blocks; b++) shownLive.push(Number(await bare.getByTestId(`live-${b}`).textContent()));
        expect(shownLive).toEqual(counted);
        const blockMs: number[] = JSON.parse((await cpuTable.getAttribute('data-block-ms'))!);
        expect(blockMs).toHaveLength(counted.filter((c) => c > 0).length);
        for (let b = 0; b < blockMs.length; b++) {
          expect(blockMs[b]).toBeGreaterThanOrEqual(0);
          expect(await bare.getByTestId(`ms-${b}`).textContent()).toBe(blockMs[b].toFixed(1));
        }
        expect(blockMs.reduce((a, x) => a + x, 0)).toBeLessThanOrEqual(
          Number(await cpuTable.getAttribute('data-compute-ms')),
        );
        console.log(
          `batch (server, ONNX Runtime CPU): block ms ${blockMs.map((x) => x.toFixed(1)).join(' / ')}; this check took ${(performance.now() - tCpu).toFixed(0)} ms`,
        );
      } finally {
        await cpu.close();
      }
      await bare.close();
      expect(pageErrors).toEqual([]);
    } finally {
      await srv.close();
    }
  });
});
