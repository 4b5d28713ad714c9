// The README's examples, run as written (a custom policy through the kit, a run, the calibration flow).
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildModel,
  createGpuDevice,
  definePolicy,
  type GpuDevice,
  type MlpClassifierConfig,
  Runner,
  randomWeights,
  ValidationError,
  wgslFloat,
} from '@offramp/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  calibrateRisk,
  chooseThreshold,
  createPolicy,
  entropy,
  loadPolicyFile,
  paretoFrontier,
  parseTraceFile,
  policyFromSpec,
  readTraceFile,
  recordTrace,
  savePolicyFile,
  simulate,
  sweep,
  traceToJson,
} from './index.js';
import { expectPolicyConformance } from './testing/index.js';

let gpu: GpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

/** Leave once the max probability has risen by at least `rise` since the previous exit. */
const rising = definePolicy((o: { rise: number }) => {
  if (!(o.rise > 0 && o.rise < 1))
    throw new ValidationError(`policy 'rising': option 'rise' must be in (0, 1), got ${o.rise}`);
  const rise = Math.fround(o.rise);
  return {
    name: 'rising',
    needs: ['maxProb'],
    options: o,
    init: ({ batchSize }) => new Float32Array(batchSize),
    decide(ctx, s, prev) {
      const out = new Uint8Array(s.count);
      for (let r = 0; r < s.count; r++) {
        const sid = s.sampleIds[r];
        out[r] = ctx.exitIndex > 0 && Math.fround(s.maxProb[r] - prev[sid]) >= rise ? 1 : 0;
        prev[sid] = s.maxProb[r];
      }
      return out;
    },
    device: {
      stateSize: 1,
      code: `fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool {
  let prev = policy_state[sid * STATE_SIZE];
  policy_state[sid * STATE_SIZE] = s.max_prob;
  return exit_index > 0u && s.max_prob - prev >= f32(${wgslFloat(rise)});
}`,
    },
  };
});

it('the custom policy example passes the conformance kit', async () => {
  await expectPolicyConformance(rising, {
    validOptions: [{ rise: 0.1 }, { rise: 0.3 }],
    invalidOptions: [{ options: { rise: 0 }, message: 'rise' }],
    numClasses: 4,
    gpu,
  });
});

it('the runner and calibration examples work as written', async () => {
  const config: MlpClassifierConfig = {
    architecture: 'mlp_classifier',
    input_size: 49,
    hidden_size: 24,
    num_layers: 4,
    num_classes: 5,
    exits: { blocks: [0, 1, 2, 3], head: 'linear' },
  };
  const model = buildModel(gpu, config, randomWeights(config, 7));
  const runner = new Runner(gpu, model, { maxBatch: 32 });
  const input = { features: Array.from({ length: 8 }, (_, i) => new Float32Array(49).fill(0.1 * i)) };
  const a = entropy({ threshold: 1.2 });
  const b = createPolicy('entropy', { threshold: 1.2 });
  const c = policyFromSpec('entropy:threshold=1.2');
  const runs = await Promise.all(
    [a, b, c].map(async (policy) => (await runner.run(input, { policy })).samples.map((s) => s.exitIndex)),
  );
  expect(runs[1]).toEqual(runs[0]);
  expect(runs[2]).toEqual(runs[0]);

  const features = Array.from({ length: 64 }, (_, i) =>
    Float32Array.from({ length: 49 }, (_, k) => Math.abs(Math.sin(i * 49 + k))),
  );
  const labels = features.map((_, i) => i % 5);
  const trace = await recordTrace(runner, { features }, labels);
  const r = simulate(createPolicy('confidence', { threshold: 0.8 }), trace);
  expect(r.exitHistogram.reduce((x, y) => x + y, 0)).toBe(64);
  const frontier = paretoFrontier(sweep('confidence', { threshold: [0.5, 0.6, 0.7, 0.8, 0.9, 0.95] }, trace));
  expect(frontier.length).toBeGreaterThan(0);
  expect(chooseThreshold(trace, 'entropy', { budget: 0.5 }, { perExit: true }).metrics.meanCost).toBeLessThanOrEqual(
    0.5,
  );
  const cal = calibrateRisk(trace, 'entropy', { epsilon: 0.2, delta: 0.1, method: 'binomial' });
  expect(cal.threshold).not.toBeNull();
  const dir = await mkdtemp(join(tmpdir(), 'offramp-readme-'));
  const path = join(dir, 'entropy.policy.json');
  await savePolicyFile(
    path,
    { name: 'entropy', options: cal.options! },
    { method: 'learn-then-test', epsilon: cal.epsilon, delta: cal.delta, n: cal.n, meanCost: cal.meanCost },
  );
  const { policy, file } = await loadPolicyFile(path);
  expect(file.calibration).toMatchObject({ epsilon: 0.2 });
  expect(simulate(policy, trace).disagreement).toBeLessThanOrEqual(0.2);
  // trace files
  const tpath = join(dir, 'val.trace.json');
  writeFileSync(tpath, JSON.stringify(traceToJson(trace, { model: 'fashion-cnn', split: 'train' })));
  const { trace: again, meta } = parseTraceFile(readFileSync(tpath, 'utf8'), tpath);
  expect(meta).toEqual({ model: 'fashion-cnn', split: 'train' });
  const fromFile = await readTraceFile(tpath);
  expect(fromFile.version).toBe(2);
  expect(fromFile.trace.samples).toEqual(again.samples);
  expect(simulate(createPolicy('confidence', { threshold: 0.8 }), again)).toEqual(r);
  await rm(dir, { recursive: true, force: true });
  runner.dispose();
  model.dispose();
});
