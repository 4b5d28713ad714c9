// The ONNX Runtime CPU path (real onnxruntime-node) for all three model families: every exit's logits against
// the independent float64 forward, exits by plan and by threshold with the Runner's hook sequence, agreement
// with the WebGPU path, batch invariance, session caching, the whole-model graph, and a clear error (and a skip
// with a message) where onnxruntime-node cannot load.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlockContext, BlockOutput, RunHooks } from '../engine/hooks.js';
import type { ModelInput } from '../engine/model.js';
import { definePolicy, maxProbThreshold, neverExit } from '../engine/policy.js';
import { Runner } from '../engine/runner.js';
import type {
  CnnClassifierConfig,
  EncoderClassifierConfig,
  MlpClassifierConfig,
  ModelConfig,
} from '../models/config.js';
import { buildModel, randomWeights } from '../models/index.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { type RefExit, refCnn, refEncoder, refMlp, refSignals } from '../testing-internal/reference-models.js';
import { mulberry32, randomArray } from '../util/random.js';
import { createOrtCpu, loadOrt, OrtCpuDevice, OrtUnavailableError } from './ort-cpu.js';
import { captureGraph, translateWholeModel } from './translate.js';

const ortError = await loadOrt().then(
  () => null,
  (e: Error) => e,
);
if (ortError) console.warn(`skipping the ONNX Runtime path tests: ${ortError.message}`);
const describeOrt = ortError ? describe.skip : describe;

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
const mlpCfg: MlpClassifierConfig = {
  architecture: 'mlp_classifier',
  input_size: 49,
  hidden_size: 24,
  num_layers: 4,
  num_classes: 5,
  exits: { blocks: [1, 2, 3], head: 'linear' },
};
const cnnCfg: CnnClassifierConfig = {
  architecture: 'cnn_classifier',
  image_size: 12,
  in_channels: 1,
  stem_channels: 4,
  channels: [6, 8, 8],
  strides: [1, 2, 2],
  num_classes: 4,
  exits: { blocks: [0, 1, 2], head: 'linear' },
};
const cnnFlatCfg: CnnClassifierConfig = { ...cnnCfg, exit_pool: 'flatten', exits: { ...cnnCfg.exits, gate: true } };

function encoderBatch(n: number, seed: number): ModelInput {
  const rand = mulberry32(seed);
  return {
    ids: Array.from({ length: n }, () =>
      Array.from({ length: 3 + Math.floor(rand() * 20) }, () => Math.floor(rand() * 50)),
    ),
  };
}
function featureBatch(n: number, width: number, seed: number): ModelInput {
  const rand = mulberry32(seed);
  return { features: Array.from({ length: n }, () => randomArray(width, rand, 1).map(Math.abs)) };
}

const cases: {
  name: string;
  cfg: ModelConfig;
  batch: (n: number, seed: number) => ModelInput;
  ref: (w: any, input: ModelInput, i: number) => RefExit[];
}[] = [
  {
    name: 'encoder',
    cfg: encoderCfg,
    batch: encoderBatch,
    ref: (w, inp, i) => refEncoder(encoderCfg, w, (inp as { ids: number[][] }).ids[i]),
  },
  {
    name: 'mlp',
    cfg: mlpCfg,
    batch: (n, s) => featureBatch(n, 49, s),
    ref: (w, inp, i) => refMlp(mlpCfg, w, (inp as { features: Float32Array[] }).features[i]),
  },
  {
    name: 'cnn',
    cfg: cnnCfg,
    batch: (n, s) => featureBatch(n, 144, s),
    ref: (w, inp, i) => refCnn(cnnCfg, w, (inp as { features: Float32Array[] }).features[i]),
  },
  {
    name: 'cnn (flatten exits)',
    cfg: cnnFlatCfg,
    batch: (n, s) => featureBatch(n, 144, s),
    ref: (w, inp, i) => refCnn(cnnFlatCfg, w, (inp as { features: Float32Array[] }).features[i]),
  },
];

// the Runner's full-model tolerance on the GPU (2e-4): a chain of 'accumulate'-class kernels
const LOGIT_TOL = 2e-4;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const exitBySample = definePolicy((o: { plan: number[] }) => ({
  name: 'by-sample',
  init: () => null,
  decide: (ctx, s) => Array.from(s.sampleIds, (sid) => o.plan[sid] <= ctx.exitIndex),
}));

/** Records the hook calls (signal values rounded to 4 digits: the two paths agree to ~1e-6, not bit for bit). */
function hookLog(log: string[]): RunHooks {
  return {
    beforeBlock: (c: BlockContext) => log.push(`before ${c.block} live=${c.liveRows} mode=${c.mode}`),
    afterBlock: (c: BlockContext, o: BlockOutput) =>
      log.push(
        `after ${c.block} live=${o.liveRows} exit=${o.exit ? `${o.exit.index}:${Array.from(o.exit.exiting)}:${Array.from(o.exit.signals.sampleIds)}:${Array.from(o.exit.signals.maxProb, (v) => v.toFixed(4))}` : '-'}`,
      ),
    onExit: (sid, info) => log.push(`exit ${sid}@${info.exitIndex}/${info.block}`),
    onRunEnd: (s) => log.push(`end ${s.exitCounts} ${s.rowsPerBlock} ${s.flops} ${s.fullDepthFlops}`),
  };
}

let gpu: GpuDevice;
let ortDev: OrtCpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
  if (!ortError) ortDev = new OrtCpuDevice(await createOrtCpu({ threads: 2 }));
});
afterAll(() => gpu?.destroy());

describeOrt.each(cases)('ONNX Runtime path, $name model', ({ cfg, batch, ref }) => {
  const weights = randomWeights(cfg, 7);
  const n = 11;
  const input = batch(n, 3);
  const refs = Array.from({ length: n }, (_, i) => ref(weights, input, i));
  const E = cfg.exits.blocks.length;

  it('never-exit: every exit matches the float64 forward (logits and signals)', async () => {
    const model = buildModel(ortDev, cfg, weights);
    const runner = new Runner(ortDev, model, { maxBatch: 16 });
    expect(runner.backend).toBe('ort-cpu');
    // each exit's logits, by a plan that sends sample i out at exit i mod E
    const plan = Array.from({ length: n }, (_, i) => i % E);
    const byPlan = await runner.run(input, { policy: exitBySample({ plan }) });
    for (let i = 0; i < n; i++) {
      expect(byPlan.samples[i].exitIndex).toBe(plan[i]);
      expect(maxAbsDiff(byPlan.samples[i].logits, refs[i][plan[i]].logits)).toBeLessThan(LOGIT_TOL);
    }
    const res = await runner.run(input, { policy: neverExit(), trace: true });
    expect(res.summary.backend).toBe('ort-cpu');
    expect(res.summary.mode).toBe('host');
    for (let i = 0; i < n; i++) {
      const s = res.samples[i];
      expect(s.exitIndex).toBe(E - 1);
      expect(maxAbsDiff(s.logits, refs[i][E - 1].logits)).toBeLessThan(LOGIT_TOL);
      for (let j = 0; j < E; j++) {
        const want = refSignals(refs[i][j].logits);
        expect(s.trace!.maxProb[j]).toBeCloseTo(want.maxProb, 4);
        expect(s.trace!.entropy[j]).toBeCloseTo(want.entropy, 4);
        expect(s.trace!.argmax[j]).toBe(want.argmax);
        if (cfg.exits.gate) expect(s.trace!.gate[j]).toBeCloseTo(1 / (1 + Math.exp(-refs[i][j].gateLogit)), 4);
        else expect(s.trace!.gate[j]).toBeNaN();
        if (j === 0 || refs[i][j].pooled.length !== refs[i][j - 1].pooled.length)
          expect(s.trace!.similarity[j]).toBeNaN();
        else {
          const a = refs[i][j].pooled;
          const b = refs[i][j - 1].pooled;
          let dot = 0;
          let na = 0;
          let nb = 0;
          for (let k = 0; k < a.length; k++) {
            dot += a[k] * b[k];
            na += a[k] * a[k];
            nb += b[k] * b[k];
          }
          expect(s.trace!.similarity[j]).toBeCloseTo(dot / Math.sqrt(na * nb), 4);
        }
      }
    }
    runner.dispose();
  });

  it('exits, outputs, hooks and costs equal the WebGPU runner under a threshold policy', async () => {
    const om = buildModel(ortDev, cfg, weights);
    const gm = buildModel(gpu, cfg, weights);
    const ort = new Runner(ortDev, om, { maxBatch: 16 });
    const web = new Runner(gpu, gm, { maxBatch: 16 });
    // a threshold halfway between two neighbouring reference confidences: no sample sits on it
    const probs = refs.map((r) => refSignals(r[0].logits).maxProb).sort((a, b) => a - b);
    const k = Math.floor(n / 2);
    const policy = maxProbThreshold({ threshold: (probs[k] + probs[k + 1]) / 2 });
    const logs: Record<string, string[]> = { ort: [], web: [] };
    const o = await ort.run(input, { policy, hooks: [hookLog(logs.ort)] });
    const w = await web.run(input, { policy, mode: 'host', hooks: [hookLog(logs.web)] });
    expect(new Set(o.samples.map((s) => s.exitIndex)).size).toBeGreaterThan(1);
    expect(o.samples.map((s) => s.exitIndex)).toEqual(w.samples.map((s) => s.exitIndex));
    for (let i = 0; i < n; i++) expect(maxAbsDiff(o.samples[i].logits, w.samples[i].logits)).toBeLessThan(LOGIT_TOL);
    expect(logs.ort).toEqual(logs.web);
    expect(o.summary.exitCounts).toEqual(w.summary.exitCounts);
    expect(o.summary.flops).toBe(w.summary.flops);
    ort.dispose();
    web.dispose();
    gm.dispose();
  });

  it('is batch invariant and builds one session per segment and sequence bucket', async () => {
    const model = buildModel(ortDev, cfg, weights);
    const runner = new Runner(ortDev, model, { maxBatch: 16 });
    const probs = refs.map((r) => refSignals(r[1 % E].logits).maxProb).sort((a, b) => a - b);
    const k = Math.floor(n / 3);
    const policy = maxProbThreshold({ threshold: (probs[k] + probs[k + 1]) / 2 });
    const full = await runner.run(input, { policy });
    const rand = mulberry32(5);
    const order = Array.from({ length: n }, (_, i) => i).sort(() => rand() - 0.5);
    const pick = (idx: number[]): ModelInput =>
      'ids' in input
        ? { ids: idx.map((i) => input.ids[i]) }
        : { features: idx.map((i) => (input.features as Float32Array[])[i]) };
    const shuffled = await runner.run(pick(order), { policy });
    for (const i of [0, 4, n - 1]) {
      const alone = await runner.run(pick([i]), { policy });
      expect(alone.samples[0].exitIndex).toBe(full.samples[i].exitIndex);
      expect(Array.from(alone.samples[0].logits)).toEqual(Array.from(full.samples[i].logits));
    }
    order.forEach((src, pos) => {
      expect(shuffled.samples[pos].exitIndex).toBe(full.samples[src].exitIndex);
      expect(Array.from(shuffled.samples[pos].logits)).toEqual(Array.from(full.samples[src].logits));
    });
    // sessions: E per sequence bucket used, whatever the batch sizes were
    const buckets = new Set<number>([model.bucket(input), ...[0, 4, n - 1].map((i) => model.bucket(pick([i])))]);
    expect(runner.ort!.sessionCount).toBe(E * buckets.size);
    runner.dispose();
  });

  it('the whole-model graph gives the full-depth logits', async () => {
    const model = buildModel(ortDev, cfg, weights);
    const T = model.bucket(input);
    const enc = model.encode(input, T);
    const host = new Map([...model.weights].map(([k, t]) => [k, { shape: t.shape, data: t.handle as Float32Array }]));
    const whole = translateWholeModel(captureGraph(model, host, T));
    const session = await ortDev.ortCpu.createSession(whole.bytes);
    const feeds: Record<string, any> = {};
    for (const io of whole.inputs) {
      const d = enc.data[io.name];
      feeds[io.name] = new ortDev.ortCpu.ort.Tensor(
        io.elem === 'float32' ? 'float32' : 'int32',
        io.elem === 'float32' ? (d as Float32Array) : Int32Array.from(d as ArrayLike<number>),
        [n, io.perRow],
      );
    }
    const out = (await session.run(feeds))[whole.logits].data as Float32Array;
    const C = cfg.num_classes;
    for (let i = 0; i < n; i++)
      expect(maxAbsDiff(out.subarray(i * C, (i + 1) * C), refs[i][E - 1].logits)).toBeLessThan(LOGIT_TOL);
    await session.release();
  });
});

describe('ONNX Runtime path: errors', () => {
  it('device mode is refused with what to use instead', async () => {
    if (ortError) return expect(ortError).toBeInstanceOf(OrtUnavailableError);
    const model = buildModel(ortDev, mlpCfg, randomWeights(mlpCfg, 1));
    const runner = new Runner(ortDev, model);
    await expect(runner.run(featureBatch(2, 49, 1), { policy: neverExit(), mode: 'device' })).rejects.toThrow(
      /mode 'device' needs a GPU device.*use mode 'host'/,
    );
  });

  it('a failed load says what failed and what to do', () => {
    const e = new OrtUnavailableError('x');
    expect(e.name).toBe('OrtUnavailableError');
    if (ortError) expect(ortError.message).toMatch(/onnxruntime-node could not be loaded.*backend 'gpu' or 'cpu'/);
  });

  it('threads are validated', async () => {
    if (ortError) return;
    await expect(createOrtCpu({ threads: 0 })).rejects.toThrow(/threads must be an integer in \[1, 256\], got 0/);
  });
});
