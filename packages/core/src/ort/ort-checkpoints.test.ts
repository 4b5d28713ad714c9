// The ONNX Runtime CPU path on the shipped checkpoints with held-out data: every exit's logits against the
// independent float64 forward, and under the confidence policy at the thresholds docs/results.md chooses, the
// same exits and predictions as the WebGPU runner over a few hundred inputs (a difference is allowed only on a
// tie: a confidence within 1e-4 of the threshold at the exit where the paths part; ties are counted and printed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxProbThreshold, neverExit } from '../engine/policy.js';
import { Runner } from '../engine/runner.js';
import type { CnnClassifierConfig, EncoderClassifierConfig } from '../models/config.js';
import type { HostTensor } from '../models/index.js';
import { buildModel } from '../models/index.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { CHECKPOINTS, fashionTest, type HeldOut, imdbHeldOut } from '../testing-internal/checkpoint-data.js';
import { refCnn, refEncoder } from '../testing-internal/reference-models.js';
import { loadModelDir } from '../weights/model-dir.js';
import { createOrtCpu, loadOrt, OrtCpuDevice } from './ort-cpu.js';

const ortError = await loadOrt().then(
  () => null,
  (e: Error) => e,
);
if (ortError) console.warn(`skipping the ONNX Runtime checkpoint tests: ${ortError.message}`);

const N = 300;
const REF_ROWS = 12;
const TIE = 1e-4;
const LOGIT_TOL = 2e-4;

const checkpoints = [
  // 0.2411 (the docs' choice) sends every image to exit 0; 0.9 gives mixed exits
  { name: 'fashion-cnn', threshold: 0.2411, data: () => fashionTest(N) },
  { name: 'fashion-cnn', threshold: 0.9, data: () => fashionTest(N) },
  { name: 'imdb-encoder', threshold: 0.6289, data: () => imdbHeldOut('imdb-encoder', N) },
  { name: 'imdb-gates', threshold: 0.6375, data: () => imdbHeldOut('imdb-gates', N) },
];

let gpu: GpuDevice;
let ortDev: OrtCpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
  if (!ortError) ortDev = new OrtCpuDevice(await createOrtCpu({ threads: 2 }));
});
afterAll(() => gpu?.destroy());

describe.skipIf(Boolean(ortError)).each(checkpoints)('ONNX Runtime path on $name', ({ name, threshold, data }) => {
  let held: HeldOut | string;
  let loaded: Awaited<ReturnType<typeof loadModelDir>>;
  beforeAll(async () => {
    held = await data();
    if (typeof held === 'string') console.warn(`${name}: ${held}`);
    loaded = await loadModelDir(`${CHECKPOINTS}/${name}`);
  });
  const tensors = () => loaded.tensors as unknown as Map<string, HostTensor>;

  it('every exit matches the float64 forward', async () => {
    if (typeof held === 'string') throw new Error(held);
    const cfg = loaded.config.model;
    const model = buildModel(ortDev, cfg, tensors());
    const runner = new Runner(ortDev, model, { maxBatch: 64 });
    const E = cfg.exits.blocks.length;
    const sub =
      'ids' in held.input
        ? { ids: held.input.ids.slice(0, REF_ROWS) }
        : { features: (held.input.features as Float32Array).slice(0, REF_ROWS * 784) };
    const res = await runner.run(sub, { policy: neverExit(), trace: true });
    // each exit's logits: exits equal the argmax of the reference at every exit
    let worst = 0;
    for (let i = 0; i < REF_ROWS; i++) {
      const ref =
        cfg.architecture === 'cnn_classifier'
          ? refCnn(cfg as CnnClassifierConfig, tensors() as any, (sub as any).features.subarray(i * 784, (i + 1) * 784))
          : refEncoder(cfg as EncoderClassifierConfig, tensors() as any, (sub as any).ids[i]);
      for (let d = 0; d < cfg.num_classes; d++)
        worst = Math.max(worst, Math.abs(res.samples[i].logits[d] - ref[E - 1].logits[d]));
      for (let j = 0; j < E; j++) {
        let m = 0;
        for (let d = 1; d < cfg.num_classes; d++) if (ref[j].logits[d] > ref[j].logits[m]) m = d;
        expect(res.samples[i].trace!.argmax[j]).toBe(m);
      }
    }
    expect(worst).toBeLessThan(LOGIT_TOL);
    // intermediate exits' logits: route every row out at exit j and compare
    for (let j = 0; j < E - 1; j++) {
      const at = await runner.run(sub, {
        policy: { name: `at${j}`, init: () => null, decide: (c, s) => new Array(s.count).fill(c.exitIndex >= j) },
      });
      for (let i = 0; i < REF_ROWS; i++) {
        const ref =
          cfg.architecture === 'cnn_classifier'
            ? refCnn(
                cfg as CnnClassifierConfig,
                tensors() as any,
                (sub as any).features.subarray(i * 784, (i + 1) * 784),
              )
            : refEncoder(cfg as EncoderClassifierConfig, tensors() as any, (sub as any).ids[i]);
        expect(at.samples[i].exitIndex).toBe(j);
        for (let d = 0; d < cfg.num_classes; d++)
          expect(Math.abs(at.samples[i].logits[d] - ref[j].logits[d])).toBeLessThan(LOGIT_TOL);
      }
    }
    runner.dispose();
  });

  it(`exits and predictions equal the WebGPU path's under the confidence policy (threshold ${threshold})`, async () => {
    if (typeof held === 'string') throw new Error(held);
    const cfg = loaded.config.model;
    const om = buildModel(ortDev, cfg, tensors());
    const gm = buildModel(gpu, cfg, tensors());
    const ort = new Runner(ortDev, om, { maxBatch: 64 });
    const web = new Runner(gpu, gm, { maxBatch: 64 });
    const policy = maxProbThreshold({ threshold });
    const o = await ort.run(held.input, { policy, trace: true });
    const w = await web.run(held.input, { policy, trace: true });
    let ties = 0;
    let exitsDiffer = 0;
    let predsDiffer = 0;
    for (let i = 0; i < held.n; i++) {
      const a = o.samples[i];
      const b = w.samples[i];
      if (a.exitIndex === b.exitIndex && a.prediction === b.prediction) continue;
      if (a.exitIndex !== b.exitIndex) exitsDiffer++;
      if (a.prediction !== b.prediction) predsDiffer++;
      // where the paths part, the confidence must sit on the threshold (within the kernels' tolerance)
      const j = Math.min(a.exitIndex, b.exitIndex);
      const onTie = Math.abs(a.trace!.maxProb[j] - threshold) < TIE || Math.abs(b.trace!.maxProb[j] - threshold) < TIE;
      const argTie = a.exitIndex === b.exitIndex && Math.abs(a.trace!.margin[j]) < TIE;
      expect(
        onTie || argTie,
        `sample ${i}: ort exit ${a.exitIndex}/pred ${a.prediction}, webgpu ${b.exitIndex}/${b.prediction}`,
      ).toBe(true);
      ties++;
    }
    const agree = (held.n - ties) / held.n;
    console.log(
      `${name}: ${held.n} held-out inputs, threshold ${threshold}: exits ${o.summary.exitCounts.join('/')} (ORT) vs ${w.summary.exitCounts.join('/')} (WebGPU); ${ties} ties (${exitsDiffer} exits, ${predsDiffer} predictions differ), agreement ${(agree * 100).toFixed(2)}%`,
    );
    if (threshold !== 0.2411) expect(new Set(o.samples.map((s) => s.exitIndex)).size).toBeGreaterThan(1);
    ort.dispose();
    web.dispose();
    gm.dispose();
  });
});
