// The playground's server client (src/lib/server.ts) in Node against a real `createServer`: a trace recorded
// through the server in requests of its max batch is the trace `recordTrace` gives in Node on the same kind
// of device (Dawn), signal for signal; policy specs of swept points are taken by the server; errors name what
// was wrong.
import { join } from 'node:path';
import { buildModel, createGpuDevice, type GpuDevice, Runner } from '@offramp/core';
import { loadModelDir } from '@offramp/core/node';
import { recordTrace } from '@offramp/policies';
import { createServer, type OfframpServer } from '@offramp/server';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fashionBatch } from '../src/lib/samples.ts';
import { classifyAllOnServer, policySpec, recordTraceOnServer, serverModel } from '../src/lib/server.ts';
import { REPO_ROOT } from './browser.ts';

const MAX_BATCH = 16;
let srv: OfframpServer;
let url: string;
let gpu: GpuDevice;
let runner: Runner;

beforeAll(async () => {
  const dir = join(REPO_ROOT, 'checkpoints/fashion-cnn');
  srv = await createServer({ models: { 'fashion-cnn': { path: dir, maxBatch: MAX_BATCH } }, device: 'gpu' });
  url = await srv.listen(0, '127.0.0.1');
  gpu = await createGpuDevice();
  const loaded = await loadModelDir(dir);
  const tensors = new Map(
    [...loaded.tensors].map(([k, t]) => [
      k,
      { shape: [...t.shape], data: Float32Array.from(t.data as ArrayLike<number>) },
    ]),
  );
  // the server's runner takes batches of MAX_BATCH rows: so does this one
  runner = new Runner(gpu, buildModel(gpu, loaded.config.model, tensors), { maxBatch: MAX_BATCH });
});

afterAll(async () => {
  await srv?.close();
  gpu?.destroy();
});

it("a trace recorded through the server is Node's recordTrace of the same images, in requests of max_batch", async () => {
  const n = 40; // three requests: 16, 16, 8
  const { features, labels } = fashionBatch(n);
  const done: number[] = [];
  const got = await recordTraceOnServer(url, 'fashion-cnn', features, labels, { onProgress: (k) => done.push(k) });
  expect(done).toEqual([16, 32, 40]);
  const want = await recordTrace(runner, { features }, labels);
  expect([got.numExits, got.numBlocks, got.numClasses, got.exitBlocks]).toEqual([
    want.numExits,
    want.numBlocks,
    want.numClasses,
    want.exitBlocks,
  ]);
  got.costFractions.forEach((c, e) => {
    expect(c).toBeCloseTo(want.costFractions[e], 12);
  });
  expect(got.samples).toHaveLength(n);
  for (let i = 0; i < n; i++) {
    const [a, b] = [got.samples[i], want.samples[i]];
    for (const k of ['maxProb', 'entropy', 'margin', 'argmax'] as const) expect(a[k]).toEqual(b[k]);
    expect([a.finalPrediction, a.label]).toEqual([b.finalPrediction, b.label]);
  }
  // the samples leave at different exits under a confidence policy, so the trace is a real check of exits
  const exits = new Set(want.samples.map((s) => s.maxProb.findIndex((p) => p >= 0.9)));
  expect(exits.size).toBeGreaterThan(1);
});

it("a swept point's policy spec runs on the server as the same policy runs in Node", async () => {
  const { features } = fashionBatch(24);
  const m = await serverModel(url, 'fashion-cnn', 'classifier');
  expect(m.max_batch).toBe(MAX_BATCH);
  const spec = policySpec('margin', { threshold: 0.35 });
  expect(spec).toBe('margin:threshold=0.35');
  const got = await classifyAllOnServer(
    url,
    m,
    features.map((f) => ({ image: Array.from(f) })),
    spec,
    { parallel: true },
  );
  const { policyFromSpec } = await import('@offramp/policies');
  const want = await runner.run({ features }, { policy: policyFromSpec(spec) });
  expect(got.map((r) => [r.exit_block, r.prediction])).toEqual(want.samples.map((s) => [s.exitBlock, s.prediction]));
});

it('errors say what was wrong: a model not served, not a URL, no server there', async () => {
  await expect(serverModel(url, 'austen-mamba', 'language-model')).rejects.toThrow(
    /no language-model named 'austen-mamba' is served there \(served: fashion-cnn \(classifier\)\); start it with -m austen-mamba=checkpoints\/austen-mamba/,
  );
  await expect(serverModel('not a url', 'fashion-cnn', 'classifier')).rejects.toThrow(/'not a url' is not a URL/);
  await expect(serverModel('http://127.0.0.1:9', 'fashion-cnn', 'classifier')).rejects.toThrow(
    /no answer from http:\/\/127.0.0.1:9 .*--cors/,
  );
  await expect(
    classifyAllOnServer(url, { ...(await serverModel(url, 'fashion-cnn', 'classifier')) }, [{ text: 'x' }], 'nope'),
  ).rejects.toThrow(/server: HTTP 400: policy: /);
});
