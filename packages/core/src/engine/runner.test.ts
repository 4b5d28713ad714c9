// The engine's invariants on the GPU (lavapipe in CI) and the CPU device, for all three model families:
// never-exit equals an independent full-depth forward; host and device modes give identical exits and
// outputs; batch invariance; GPU and CPU agree; FLOPs accounting matches what ran; hooks see the same loop.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  CnnClassifierConfig,
  EncoderClassifierConfig,
  MlpClassifierConfig,
  ModelConfig,
} from '../models/config.js';
import { buildModel, randomWeights } from '../models/index.js';
import { CpuDevice } from '../runtime/cpu-device.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { Device } from '../runtime/device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { type RefExit, refCnn, refEncoder, refMlp, refSignals } from '../testing-internal/reference-models.js';
import { mulberry32, randomArray } from '../util/random.js';
import type { BlockContext, BlockOutput, RunHooks } from './hooks.js';
import type { ModelInput } from './model.js';
import { definePolicy, type ExitPolicy, maxProbThreshold, neverExit } from './policy.js';
import { Runner, type RunOptions, type RunResult } from './runner.js';

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
// exit heads on the flattened maps, with gates (head inputs of 6·12·12, 8·6·6 and 8·3·3 features)
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

let gpu: GpuDevice;
const cpu: Device = new CpuDevice();
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Exits a row at a fixed exit chosen from its sample id: a policy whose exits are known in advance. */
const exitBySample = definePolicy((o: { plan: number[] }) => ({
  name: 'by-sample',
  init: () => null,
  decide: (ctx, s) => Array.from(s.sampleIds, (sid) => o.plan[sid] <= ctx.exitIndex),
}));

describe.each(cases)('$name model', ({ cfg, batch, ref }) => {
  const weights = randomWeights(cfg, 7);
  const n = 11;
  const input = batch(n, 3);
  const refs = Array.from({ length: n }, (_, i) => ref(weights, input, i));

  it('never-exit equals the independent full-depth forward, and the trace matches every exit', async () => {
    const model = buildModel(gpu, cfg, weights);
    const runner = new Runner(gpu, model, { maxBatch: 16 });
    const res = await runner.run(input, { policy: neverExit(), trace: true });
    const E = cfg.exits.blocks.length;
    for (let i = 0; i < n; i++) {
      const s = res.samples[i];
      expect(s.exitIndex).toBe(E - 1);
      expect(maxAbsDiff(s.logits, refs[i][E - 1].logits)).toBeLessThan(2e-4);
      for (let j = 0; j < E; j++) {
        const want = refSignals(refs[i][j].logits);
        expect(s.trace!.maxProb[j]).toBeCloseTo(want.maxProb, 4);
        expect(s.trace!.entropy[j]).toBeCloseTo(want.entropy, 4);
        expect(s.trace!.margin[j]).toBeCloseTo(want.margin, 4);
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
    model.dispose();
  });

  it('exits where the policy says, with the outputs of that exit, in host and device mode alike', async () => {
    const model = buildModel(gpu, cfg, weights);
    const runner = new Runner(gpu, model, { maxBatch: 16 });
    const E = cfg.exits.blocks.length;
    const plan = Array.from({ length: n }, (_, i) => (i * 7) % E);
    const host = await runner.run(input, { policy: exitBySample({ plan }), mode: 'host' });
    for (let i = 0; i < n; i++) {
      expect(host.samples[i].exitIndex).toBe(plan[i]);
      expect(maxAbsDiff(host.samples[i].logits, refs[i][plan[i]].logits)).toBeLessThan(2e-4);
    }
    // a threshold policy with mixed exits: device mode must match host mode exactly
    const probs = refs.map((r) => refSignals(r[0].logits).maxProb).sort((a, b) => a - b);
    const policy = maxProbThreshold({ threshold: probs[Math.floor(n / 2)] });
    const logs: Record<string, string[]> = { host: [], device: [] };
    const hookFor = (log: string[]): RunHooks => ({
      beforeBlock: (c: BlockContext) => log.push(`before ${c.block} live=${c.liveRows}`),
      afterBlock: (c: BlockContext, o: BlockOutput) =>
        log.push(
          `after ${c.block} live=${o.liveRows} exit=${o.exit ? `${o.exit.index}:${Array.from(o.exit.exiting)}:${Array.from(o.exit.signals.sampleIds)}:${Array.from(o.exit.signals.maxProb, (v) => v.toFixed(6))}` : '-'}`,
        ),
      onExit: (sid, info) => log.push(`exit ${sid}@${info.exitIndex}/${info.block}`),
      onRunEnd: (s) => log.push(`end ${s.exitCounts} ${s.rowsPerBlock} ${s.flops}`),
    });
    const h = await runner.run(input, { policy, mode: 'host', hooks: [hookFor(logs.host)] });
    const d = await runner.run(input, { policy, mode: 'device', hooks: [hookFor(logs.device)] });
    expect(new Set(h.samples.map((s) => s.exitIndex)).size).toBeGreaterThan(1);
    expect(d.samples.map((s) => s.exitIndex)).toEqual(h.samples.map((s) => s.exitIndex));
    for (let i = 0; i < n; i++) expect(Array.from(d.samples[i].logits)).toEqual(Array.from(h.samples[i].logits));
    expect(logs.device).toEqual(logs.host);
    expect(h.summary.readbacks).toBeGreaterThan(1);
    expect(d.summary.readbacks).toBe(1);
    runner.dispose();
    model.dispose();
  });

  it('is batch invariant: same output and exit alone, in any batch, at any position', async () => {
    const model = buildModel(gpu, cfg, weights);
    const runner = new Runner(gpu, model, { maxBatch: 16 });
    const probs = refs.map((r) => refSignals(r[1].logits).maxProb).sort((a, b) => a - b);
    const policy = maxProbThreshold({ threshold: probs[Math.floor(n / 3)] });
    const full = await runner.run(input, { policy, mode: 'device' });
    const rand = mulberry32(5);
    const order = Array.from({ length: n }, (_, i) => i).sort(() => rand() - 0.5);
    const pick = (idx: number[]): ModelInput =>
      'ids' in input
        ? { ids: idx.map((i) => input.ids[i]) }
        : { features: idx.map((i) => (input.features as Float32Array[])[i]) };
    const shuffled = await runner.run(pick(order), { policy, mode: 'host' });
    for (const mode of ['host', 'device'] as const) {
      for (const i of [0, 4, n - 1]) {
        const alone = await runner.run(pick([i]), { policy, mode });
        expect(alone.samples[0].exitIndex).toBe(full.samples[i].exitIndex);
        expect(Array.from(alone.samples[0].logits)).toEqual(Array.from(full.samples[i].logits));
      }
    }
    order.forEach((src, pos) => {
      expect(shuffled.samples[pos].exitIndex).toBe(full.samples[src].exitIndex);
      expect(Array.from(shuffled.samples[pos].logits)).toEqual(Array.from(full.samples[src].logits));
    });
    runner.dispose();
    model.dispose();
  });

  it('returns each overlapping run its own results (host and device mode, GPU and CPU, any concurrency)', async () => {
    // Many runs in flight at once on one runner, as a server does: each must equal the same run done alone.
    // Host-mode runs exit by a plan known in advance; device-mode runs by a max-prob threshold (mixed exits).
    const E = cfg.exits.blocks.length;
    const probs = refs.map((r) => refSignals(r[0].logits).maxProb).sort((a, b) => a - b);
    const threshold = probs[Math.floor(n / 2)];
    const jobs = Array.from({ length: 8 }, (_, j) => {
      const m = 2 + ((j * 5) % 9);
      return {
        input: batch(m, 100 + j),
        plan: Array.from({ length: m }, (_, i) => (i + j) % E),
        device: j % 2 === 1,
      };
    });
    for (const [dev, concurrency] of [
      [gpu, 1],
      [gpu, 3],
      [cpu, 2],
    ] as const) {
      const model = buildModel(dev, cfg, weights);
      const options = (j: (typeof jobs)[number]): RunOptions =>
        j.device && dev !== cpu
          ? { policy: maxProbThreshold({ threshold }), mode: 'device' }
          : { policy: exitBySample({ plan: j.plan }), mode: 'host' };
      const alone = new Runner(dev, model, { maxBatch: 16 });
      const want: RunResult[] = [];
      for (const j of jobs) want.push(await alone.run(j.input, options(j)));
      const runner = new Runner(dev, model, { maxBatch: 16, concurrency });
      const got = await Promise.all(jobs.map((j) => runner.run(j.input, options(j))));
      expect(runner.pending).toEqual({ running: 0, waiting: 0 });
      jobs.forEach((j, k) => {
        if (!j.device || dev === cpu) expect(got[k].samples.map((s) => s.exitIndex)).toEqual(j.plan);
        expect(got[k].summary.mode).toBe(want[k].summary.mode);
        expect(got[k].samples.map((s) => s.exitIndex)).toEqual(want[k].samples.map((s) => s.exitIndex));
        got[k].samples.forEach((s, i) => {
          expect(Array.from(s.logits)).toEqual(Array.from(want[k].samples[i].logits));
        });
      });
      alone.dispose();
      runner.dispose();
      model.dispose();
    }
  });

  it('agrees between the GPU and the CPU device on the whole model', async () => {
    const gm = buildModel(gpu, cfg, weights);
    const cm = buildModel(cpu, cfg, weights);
    const gr = new Runner(gpu, gm, { maxBatch: 16 });
    const cr = new Runner(cpu, cm, { maxBatch: 16 });
    const E = cfg.exits.blocks.length;
    const plan = Array.from({ length: n }, (_, i) => (i * 5) % E);
    const g = await gr.run(input, { policy: exitBySample({ plan }), trace: true });
    const c = await cr.run(input, { policy: exitBySample({ plan }), trace: true });
    for (let i = 0; i < n; i++) {
      expect(c.samples[i].exitIndex).toBe(g.samples[i].exitIndex);
      expect(maxAbsDiff(c.samples[i].logits, g.samples[i].logits)).toBeLessThan(1e-4);
      expect(maxAbsDiff(c.samples[i].trace!.maxProb, g.samples[i].trace!.maxProb)).toBeLessThan(1e-5);
    }
    expect(c.summary.flops).toBe(g.summary.flops);
    gr.dispose();
    gm.dispose();
  });

  it('counts FLOPs from what actually ran', async () => {
    const model = buildModel(gpu, cfg, weights);
    const runner = new Runner(gpu, model, { maxBatch: 16 });
    const E = cfg.exits.blocks.length;
    const plan = Array.from({ length: n }, (_, i) => (i * 3) % E);
    const T = model.bucket(input);
    const prog = runner.program(T);
    // observed work: rows entering each block and each exit head, from the hooks
    const blockRows = new Array(model.numBlocks).fill(0);
    const headRows = new Array(E).fill(0);
    const res = await runner.run(input, {
      policy: exitBySample({ plan }),
      hooks: [
        {
          beforeBlock: (c) => (blockRows[c.block] += c.liveRows),
          afterBlock: (c, o) => {
            if (o.exit) headRows[o.exit.index] += c.liveRows;
          },
        },
      ],
    });
    const observed =
      prog.flops.stem * n +
      blockRows.reduce((a, r, b) => a + r * prog.flops.blocks[b], 0) +
      headRows.reduce((a, r, j) => a + r * prog.flops.heads[j], 0);
    expect(res.summary.flops).toBe(observed);
    expect(res.samples.reduce((a, s) => a + s.flops, 0)).toBe(observed);
    expect(res.summary.rowsPerBlock).toEqual(blockRows);
    runner.dispose();
    model.dispose();
  });
});

it('counts encoder block FLOPs from the architecture formula', () => {
  const model = buildModel(cpu, encoderCfg, randomWeights(encoderCfg, 1));
  const runner = new Runner(cpu, model, { maxBatch: 4 });
  const T = 16;
  const { hidden_size: d, intermediate_size: ff, num_heads: H } = encoderCfg;
  const matmuls = 2 * T * (d * 3 * d + d * d + d * ff + ff * d);
  const attention = 4 * T * T * d + 5 * H * T * T;
  const biasAndElementwise = T * (3 * d + d + ff + d) + 2 * 8 * T * d + 2 * T * d;
  expect(runner.program(T).flops.blocks[0]).toBe(matmuls + attention + biasAndElementwise);
});

it('explains bad input', async () => {
  const model = buildModel(cpu, encoderCfg, randomWeights(encoderCfg, 1));
  const runner = new Runner(cpu, model, { maxBatch: 4 });
  await expect(runner.run({ ids: [[1, 2, 99]] }, { policy: neverExit() })).rejects.toThrow(
    /token id 99 is outside \[0, 50\)/,
  );
  await expect(runner.run({ ids: [Array(65).fill(1)] }, { policy: neverExit() })).rejects.toThrow(
    /at most max_position = 64/,
  );
  await expect(runner.run({ ids: [] }, { policy: neverExit() })).rejects.toThrow(/empty/);
  await expect(runner.run({ ids: [[1]] }, { policy: neverExit(), mode: 'device' })).rejects.toThrow(
    /needs a GPU device/,
  );
  const bad: ExitPolicy<null> = { name: 'bad', init: () => null, decide: () => [] };
  await expect(runner.run({ ids: [[1, 2]] }, { policy: bad })).rejects.toThrow(
    /policy 'bad' returned 0 decisions for 1 rows/,
  );
  expect(() => new Runner(cpu, model, { maxBatch: 0 })).toThrow(/maxBatch/);
});

it('runs batches larger than maxBatch in chunks with the same results', async () => {
  const model = buildModel(gpu, mlpCfg, randomWeights(mlpCfg, 2));
  const small = new Runner(gpu, model, { maxBatch: 4 });
  const big = new Runner(gpu, model, { maxBatch: 16 });
  const input = featureBatch(10, 49, 9);
  const a = await small.run(input, { policy: maxProbThreshold({ threshold: 0.3 }) });
  const b = await big.run(input, { policy: maxProbThreshold({ threshold: 0.3 }) });
  expect(a.samples.map((s) => s.exitIndex)).toEqual(b.samples.map((s) => s.exitIndex));
  expect(a.summary.batchSize).toBe(10);
  small.dispose();
  big.dispose();
  model.dispose();
});

it('splits a token table larger than the binding limit into row windows, with the same results', async () => {
  const cfg: EncoderClassifierConfig = { ...encoderCfg, vocab_size: 1000 };
  const model = buildModel(gpu, cfg, randomWeights(cfg, 3));
  const whole = new Runner(gpu, model, { maxBatch: 8 });
  const split = new Runner(gpu, model, { maxBatch: 8, bindingLimit: 16 * 1024 }); // 128 KB table → 8 windows
  const cpuModel = buildModel(cpu, cfg, randomWeights(cfg, 3));
  const cpuSplit = new Runner(cpu, cpuModel, { maxBatch: 8, bindingLimit: 16 * 1024 });
  const rand = mulberry32(4);
  const input = { ids: Array.from({ length: 6 }, () => Array.from({ length: 9 }, () => Math.floor(rand() * 1000))) };
  const T = model.bucket(input);
  expect(split.program(T).ops.filter((o) => o.label.startsWith('embeddings')).length).toBe(8);
  const a = await whole.run(input, { policy: neverExit() });
  const b = await split.run(input, { policy: neverExit() });
  const c = await cpuSplit.run(input, { policy: neverExit() });
  for (let i = 0; i < 6; i++) {
    expect(Array.from(b.samples[i].logits)).toEqual(Array.from(a.samples[i].logits));
    expect(maxAbsDiff(c.samples[i].logits, a.samples[i].logits)).toBeLessThan(1e-4);
  }
  expect(b.summary.flops).toBe(a.summary.flops);
  whole.dispose();
  split.dispose();
  model.dispose();
});
