// The default device ('auto') on a machine whose only adapter is a software rasteriser runs classifiers on
// the ONNX Runtime CPU path (host-mode batches); its answers equal the WebGPU device's request for request.
import { join } from 'node:path';
import { executionPath, GpuDevice, isSoftwareAdapter } from '@offramp/core';
import { expect, test } from 'vitest';
import { type BatchInfo, createServer } from './index.js';
import { testImages } from './testing-internal/images.js';

const ck = join(import.meta.dirname, '../../../checkpoints');
const models = { fashion: join(ck, 'fashion-cnn'), imdb: join(ck, 'imdb-encoder') };

test("'auto' serves classifiers on the ORT CPU path on a software adapter, with the WebGPU path's answers", async () => {
  const images = testImages(12);
  const texts = ['A wonderful, moving film.', 'Dull and far too long; I left early.', 'It was fine.'];
  const answers = async (device: 'gpu' | 'auto') => {
    const batches: BatchInfo[] = [];
    const srv = await createServer({ models, device, maxWaitMs: 20, onBatch: (b) => batches.push(b) });
    try {
      const send = (body: unknown) =>
        srv.app.inject({ method: 'POST', url: '/v1/classify', payload: body as Record<string, unknown> });
      const out = await Promise.all([
        ...images.map((image) => send({ model: 'fashion', input: { image }, policy: 'confidence:threshold=0.9' })),
        ...texts.map((text) => send({ model: 'imdb', input: { text }, policy: 'confidence:threshold=0.6' })),
      ]);
      for (const r of out) expect(r.statusCode, r.body).toBe(200);
      return {
        device: srv.context.device,
        modes: new Set(batches.map((b) => b.mode)),
        results: out.map((r) => {
          const j = r.json();
          return { prediction: j.prediction, exit: j.exit_index, p: j.probabilities as number[] };
        }),
      };
    } finally {
      await srv.close();
    }
  };
  const gpu = await answers('gpu');
  const auto = await answers('auto');
  expect([...gpu.modes]).toEqual(['device']);
  // this machine's only adapter is lavapipe: 'auto' must have picked the ORT path
  if (gpu.device instanceof GpuDevice && isSoftwareAdapter(gpu.device.adapter)) {
    expect(executionPath(auto.device)).toBe('ort-cpu');
    expect([...auto.modes]).toEqual(['host']);
  }
  expect(auto.results.map((r) => [r.prediction, r.exit])).toEqual(gpu.results.map((r) => [r.prediction, r.exit]));
  auto.results.forEach((r, i) => {
    r.p.forEach((x, k) => {
      expect(Math.abs(x - gpu.results[i].p[k])).toBeLessThan(1e-4);
    });
  });
});
