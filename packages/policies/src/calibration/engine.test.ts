// Offline replay against the real engine: a trace recorded from a never-exit run on tiny random models,
// then `simulate` must give the exits, accuracy and cost of actual host- and device-mode runs.
import {
  buildModel,
  createGpuDevice,
  type EncoderClassifierConfig,
  type ExitPolicy,
  type GpuDevice,
  type MlpClassifierConfig,
  type ModelInput,
  mulberry32,
  Runner,
  randomArray,
  randomWeights,
} from '@offramp/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anyOf, minExit } from '../combinators.js';
import type { BudgetPolicy } from '../policies/budget.js';
import type { OnlinePolicy } from '../policies/online.js';
import { createPolicy } from '../registry.js';
import { chooseThreshold } from './choose.js';
import { simulate } from './simulate.js';
import { recordTrace, type Trace } from './trace.js';
import { parseTraceFile, traceToJson } from './trace-file.js';

const mlpCfg: MlpClassifierConfig = {
  architecture: 'mlp_classifier',
  input_size: 49,
  hidden_size: 24,
  num_layers: 4,
  num_classes: 5,
  exits: { blocks: [0, 1, 2, 3], head: 'linear' },
};
const encoderCfg: EncoderClassifierConfig = {
  architecture: 'encoder_classifier',
  vocab_size: 50,
  max_position: 64,
  hidden_size: 32,
  num_layers: 4,
  num_heads: 4,
  intermediate_size: 64,
  num_classes: 3,
  exits: { blocks: [0, 1, 2, 3], head: 'pooler', gate: true, gate_hidden: 8 },
};

let gpu: GpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function compare(
  runner: Runner,
  input: ModelInput,
  labels: number[],
  trace: Trace,
  policy: () => ExitPolicy<any>,
  modes: ('host' | 'device')[],
  maxBatch?: number,
) {
  const sim = simulate(policy(), trace, { maxBatch });
  for (const mode of modes) {
    const res = await runner.run(input, { policy: policy(), mode });
    const exits = res.samples.map((s) => s.exitIndex);
    expect(Array.from(sim.exits), `${policy().name} in ${mode} mode`).toEqual(exits);
    expect(Array.from(sim.predictions)).toEqual(res.samples.map((s) => s.prediction));
    const acc = res.samples.filter((s, i) => s.prediction === labels[i]).length / labels.length;
    expect(sim.accuracy).toBeCloseTo(acc, 12);
    expect(sim.meanCost).toBeCloseTo(res.samples.reduce((a, s) => a + s.costFraction, 0) / labels.length, 12);
    expect(sim.meanExitBlock).toBeCloseTo(res.summary.meanExitBlock, 12);
    expect(sim.exitHistogram).toEqual(res.summary.exitCounts);
  }
  return sim;
}

describe('simulate reproduces real runs', () => {
  it('MLP: threshold, patience and combined policies, host and device mode', async () => {
    const n = 40;
    const rand = mulberry32(3);
    const input: ModelInput = { features: Array.from({ length: n }, () => randomArray(49, rand, 1).map(Math.abs)) };
    const labels = Array.from({ length: n }, () => Math.floor(rand() * 5));
    const model = buildModel(gpu, mlpCfg, randomWeights(mlpCfg, 7));
    const runner = new Runner(gpu, model, { maxBatch: 64 });
    const trace = await recordTrace(runner, input, labels);
    expect(trace.samples).toHaveLength(n);
    expect(trace.costFractions[3]).toBe(1);
    expect(trace.samples.every((s) => s.finalPrediction === s.argmax[3])).toBe(true);
    const tau = median(trace.samples.map((s) => s.maxProb[1]));
    const S = median(trace.samples.map((s) => s.entropy[0]));
    const mixed = await compare(runner, input, labels, trace, () => createPolicy('confidence', { threshold: tau }), [
      'host',
      'device',
    ]);
    expect(mixed.exitHistogram.filter((c) => c > 0).length).toBeGreaterThan(1);
    await compare(
      runner,
      input,
      labels,
      trace,
      () => createPolicy('entropy', { threshold: [S, S, Math.min(S * 1.02, Math.log(5)), S] }),
      ['host', 'device'],
    );
    await compare(runner, input, labels, trace, () => createPolicy('patience', { patience: 1 }), ['host', 'device']);
    await compare(
      runner,
      input,
      labels,
      trace,
      () => minExit(anyOf(createPolicy('margin', { threshold: 0.2 }), createPolicy('patience', { patience: 2 })), 1),
      ['host', 'device'],
    );
    // policies that learn between requests: the device form follows each update
    const bud = createPolicy('budget', { target: 0.6, threshold: 0.99, gain: 2 }) as BudgetPolicy;
    const onl = createPolicy('online', { thresholds: [tau, 0.3, 0.9], seed: 2 }) as OnlinePolicy;
    const seen = new Set<number>();
    for (let round = 0; round < 4; round++) {
      for (const p of [bud, onl]) {
        const d = await runner.run(input, { policy: p, mode: 'device' });
        const h = await runner.run(input, { policy: p, mode: 'host' });
        expect(d.samples.map((x) => x.exitIndex)).toEqual(Array.from(simulate(p, trace).exits));
        expect(h.samples.map((x) => x.exitIndex)).toEqual(d.samples.map((x) => x.exitIndex));
      }
      seen.add(bud.threshold);
      bud.update(await runner.run(input, { policy: bud }));
      onl.update({ losses: [0.3, 0.2, 0.1] });
    }
    expect(seen.size).toBeGreaterThan(1);
    // a threshold chosen offline behaves online as predicted
    const chosen = chooseThreshold(trace, 'confidence', { budget: 0.7 });
    const sim = await compare(runner, input, labels, trace, () => createPolicy('confidence', chosen.options), [
      'host',
      'device',
    ]);
    expect(sim.meanCost).toBeLessThanOrEqual(0.7);
    runner.dispose();
    model.dispose();
  });

  it('MLP in chunks: a batch-dependent policy replays chunk by chunk', async () => {
    const n = 37;
    const rand = mulberry32(8);
    const input: ModelInput = { features: Array.from({ length: n }, () => randomArray(49, rand, 1).map(Math.abs)) };
    const labels = Array.from({ length: n }, () => Math.floor(rand() * 5));
    const model = buildModel(gpu, mlpCfg, randomWeights(mlpCfg, 9));
    const runner = new Runner(gpu, model, { maxBatch: 16 });
    const trace = await recordTrace(runner, input, labels);
    await compare(
      runner,
      input,
      labels,
      trace,
      () => createPolicy('budget', { target: 0.55, mode: 'batch', threshold: 0.5 }),
      ['host'],
      16,
    );
    runner.dispose();
    model.dispose();
  });

  it('encoder with gates: ponder (q-exit, sample) and gate policies', async () => {
    const n = 24;
    const rand = mulberry32(4);
    const input: ModelInput = {
      ids: Array.from({ length: n }, () =>
        Array.from({ length: 3 + Math.floor(rand() * 12) }, () => Math.floor(rand() * 50)),
      ),
    };
    const labels = Array.from({ length: n }, () => Math.floor(rand() * 3));
    const model = buildModel(gpu, encoderCfg, randomWeights(encoderCfg, 5));
    const runner = new Runner(gpu, model, { maxBatch: 32 });
    const trace = await recordTrace(runner, input, labels);
    const g = median(trace.samples.map((s) => s.gate[0]));
    await compare(runner, input, labels, trace, () => createPolicy('gate', { threshold: g }), ['host', 'device']);
    const q = 1 - median(trace.samples.map((s) => (1 - s.gate[0]) * (1 - s.gate[1])));
    await compare(
      runner,
      input,
      labels,
      trace,
      () => createPolicy('ponder', { q: Math.min(0.99, Math.max(0.01, q)) }),
      ['host', 'device'],
    );
    await compare(runner, input, labels, trace, () => createPolicy('ponder', { mode: 'sample', seed: 5 }), [
      'host',
      'device',
    ]);
    await compare(
      runner,
      input,
      labels,
      trace,
      () => createPolicy('saturation', { threshold: median(trace.samples.map((s) => s.similarity[2])) }),
      ['host', 'device'],
    );
    // expectation mode runs in host mode with the logits and returns one mixture per sample
    const p = createPolicy('ponder', { mode: 'expectation' }) as ReturnType<
      typeof import('../policies/ponder.js').ponder
    >;
    const res = await runner.run(input, { policy: p });
    expect(res.summary.mode).toBe('host');
    const mixtures = p.collectMixtures();
    expect(mixtures).toHaveLength(n);
    for (const m of mixtures) expect(m.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    runner.dispose();
    model.dispose();
  });

  it("records every exit's logits on request: same signals, logits that give them, and a file that keeps them", async () => {
    const n = 30;
    const rand = mulberry32(8);
    const input: ModelInput = { features: Array.from({ length: n }, () => randomArray(49, rand, 1).map(Math.abs)) };
    const labels = Array.from({ length: n }, () => Math.floor(rand() * 5));
    const model = buildModel(gpu, mlpCfg, randomWeights(mlpCfg, 11));
    const runner = new Runner(gpu, model, { maxBatch: 16 });
    const plain = await recordTrace(runner, input, labels);
    const withLogits = await recordTrace(runner, input, labels, { logits: true });
    expect(plain.samples[0].logits).toBeUndefined();
    withLogits.samples.forEach((s, i) => {
      const p = plain.samples[i];
      expect(s.argmax).toEqual(p.argmax);
      expect(s.maxProb).toEqual(p.maxProb);
      expect(s.finalPrediction).toBe(p.finalPrediction);
      expect(s.logits).toHaveLength(4);
      s.logits!.forEach((z, e) => {
        expect(z).toHaveLength(5);
        let top = 0;
        for (let c = 1; c < 5; c++) if (z[c] > z[top]) top = c;
        expect(top, `argmax of sample ${i} at exit ${e}`).toBe(s.argmax[e]);
        const m = Math.max(...z);
        const sum = Array.from(z).reduce((a, v) => a + Math.exp(v - m), 0);
        expect(1 / sum, `max prob of sample ${i} at exit ${e}`).toBeCloseTo(s.maxProb[e], 5);
      });
    });
    const back = parseTraceFile(JSON.stringify(traceToJson(withLogits)), 'logits.trace.json').trace;
    expect(Array.from(back.samples[7].logits![2])).toEqual(Array.from(withLogits.samples[7].logits![2]));
    await expect(recordTrace(runner, input, labels.slice(1), { logits: true })).rejects.toThrow(
      '29 labels for 30 inputs',
    );
    runner.dispose();
    model.dispose();
  });
});
