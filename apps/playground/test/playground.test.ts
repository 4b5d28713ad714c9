// End-to-end tests of the BUILT playground (dist/, `vite build` runs first through turbo's build task) in
// headless Chromium on WebGPU (SwiftShader), each compared with the same computation in Node on Dawn.
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { buildModel, createGpuDevice, type GpuDevice, Runner } from '@offramp/core';
import { loadModelDir } from '@offramp/core/node';
import { confidence } from '@offramp/policies';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fashionImage } from '../src/lib/samples.ts';
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

/** Waits until the classify result is for `threshold` and no run is in flight; returns exit and prediction. */
async function classifyResult(page: Page, threshold: number): Promise<{ exit: number; prediction: number }> {
  const result = page.getByTestId('result');
  await expect
    .poll(
      async () =>
        (await result.getAttribute('data-busy')) === '0' &&
        (await result.getAttribute('data-exit')) !== '' &&
        Number(await result.getAttribute('data-threshold')) === threshold,
      { timeout: 30_000 },
    )
    .toBe(true);
  return {
    exit: Number(await result.getAttribute('data-exit')),
    prediction: Number(await result.getAttribute('data-prediction')),
  };
}

async function nodeRun(image: number, threshold: number) {
  const features = [Float32Array.from(fashionImage(image).bytes, (b) => b / 255)];
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
    const atLow = await classifyResult(page, low);
    expect(atLow).toEqual(await nodeRun(image, low));
    await page.getByTestId('exits').waitFor();
    await page.screenshot({ path: join(SHOTS, 'classify.png') });
    await setRange(page, 'threshold', high);
    const atHigh = await classifyResult(page, high);
    expect(atHigh).toEqual(await nodeRun(image, high));
    expect(atHigh.exit).not.toBe(atLow.exit);
    const first = Number(await page.getByTestId('first-inference').getAttribute('data-ms'));
    console.log(`first inference (fashion-cnn, 1 image, incl. pipeline compilation): ${first.toFixed(0)} ms`);
    await page.close();
    expect(pageErrors).toEqual([]);
  });
});
