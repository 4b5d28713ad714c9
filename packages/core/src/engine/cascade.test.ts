// Cascades across separate models on the GPU (lavapipe in CI) and the CPU device: the combined output and the
// deferrals equal an independent float64 reference (each model run alone by the reference forward, softmaxes
// averaged in the test); host and device modes give identical results; chunking changes nothing; FLOPs are the
// sum of what each stage ran; the combination kernel matches its reference.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EncoderClassifierConfig, MlpClassifierConfig } from '../models/config.js';
import { buildModel, randomWeights } from '../models/index.js';
import { checkKernel } from '../runtime/conformance.js';
import { CpuDevice } from '../runtime/cpu-device.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { Device } from '../runtime/device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { refEncoder, refMlp } from '../testing-internal/reference-models.js';
import { mulberry32, randomArray } from '../util/random.js';
import { Cascade, gatherInputRows } from './cascade.js';
import { cascadeCombine } from './cascade-kernels.js';
import { type ExitPolicy, maxProbThreshold, neverExit, wgslFloat } from './policy.js';
import { Runner } from './runner.js';

const base = { architecture: 'mlp_classifier', input_size: 20, num_classes: 4 } as const;
const cfgs: MlpClassifierConfig[] = [
  { ...base, hidden_size: 16, num_layers: 2, exits: { blocks: [0, 1], head: 'linear' } },
  { ...base, hidden_size: 24, num_layers: 3, exits: { blocks: [1, 2], head: 'linear' } },
  { ...base, hidden_size: 12, num_layers: 2, exits: { blocks: [1], head: 'linear' } },
];
const weights = cfgs.map((c, k) => randomWeights(c, 40 + k));
const n = 23;
const rand = mulberry32(5);
const features = Array.from({ length: n }, () => Float32Array.from(randomArray(20, rand), (v) => 3 * v));

/** The window rule written here (the built-in lives in @offramp/policies): leave outside [lo, hi]. */
function windowRule(lo: number, hi: number): ExitPolicy<null> {
  const l = Math.fround(lo);
  const h = Math.fround(hi);
  return {
    name: 'test-window',
    needs: ['maxProb'],
    init: () => null,
    decide: (_c, s) => Array.from(s.maxProb, (x) => x > h || x < l),
    device: {
      stateSize: 0,
      code: `fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool { return s.max_prob > f32(${wgslFloat(h)}) || s.max_prob < f32(${wgslFloat(l)}); }`,
    },
  };
}

// float64 reference: each model alone to its last exit, softmaxes averaged over the stages run so far
const softmax64 = (z: ArrayLike<number>) => {
  const m = Math.max(...Array.from(z));
  const e = Array.from(z, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
const stageProbs = cfgs.map((c, k) => features.map((x) => softmax64(refMlp(c, weights[k], x).at(-1)!.logits)));
function reference(lo: number, hi: number) {
  return features.map((_, i) => {
    const sum = [0, 0, 0, 0];
    for (let k = 0; k < cfgs.length; k++) {
      for (let j = 0; j < 4; j++) sum[j] += stageProbs[k][i][j];
      const mean = sum.map((v) => v / (k + 1));
      const maxProb = Math.max(...mean);
      const last = k === cfgs.length - 1;
      if (last || maxProb > hi || maxProb < lo)
        return {
          stage: k,
          logits: mean.map(Math.log),
          nearEdge: Math.min(Math.abs(maxProb - hi), Math.abs(maxProb - lo)),
        };
    }
    throw new Error('unreachable');
  });
}
// a window around the middle of the first stage's confidences, so that some samples leave at each stage
const firstConf = stageProbs[0].map((p) => Math.max(...p)).sort((a, b) => a - b);
const lo = (firstConf[5] + firstConf[6]) / 2;
const hi = (firstConf[17] + firstConf[18]) / 2;

let gpu: GpuDevice;
const cpu: Device = new CpuDevice();
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

function cascadeOn(dev: Device, maxBatch = 32, stagePolicies: (ExitPolicy<any> | undefined)[] = []) {
  const runners = cfgs.map((c, k) => new Runner(dev, buildModel(dev, c, weights[k]), { maxBatch }));
  return {
    runners,
    cascade: new Cascade(runners.map((runner, k) => ({ runner, policy: stagePolicies[k] }))),
  };
}

describe('Cascade', () => {
  it('matches the float64 reference (combined output, stage, FLOPs) in host and device mode', async () => {
    const ref = reference(lo, hi);
    expect(Math.min(...ref.map((r) => r.nearEdge))).toBeGreaterThan(1e-4); // no decision rides on rounding
    const stagesUsed = new Set(ref.map((r) => r.stage));
    expect(stagesUsed.size).toBe(3);
    const { cascade, runners } = cascadeOn(gpu);
    const full = runners.map((r) => r.costs(1).full);
    for (const mode of ['host', 'device'] as const) {
      const res = await cascade.run({ features }, { policy: windowRule(lo, hi), mode });
      expect(res.summary.mode).toBe(mode);
      res.samples.forEach((s, i) => {
        expect(s.stage).toBe(ref[i].stage);
        for (let j = 0; j < 4; j++) expect(Math.abs(s.logits[j] - ref[i].logits[j])).toBeLessThan(2e-5);
        const spent = full.slice(0, s.stage + 1).reduce((a, b) => a + b, 0);
        expect(s.flops).toBe(spent);
        expect(s.costFraction).toBeCloseTo(spent / full.reduce((a, b) => a + b, 0), 12);
        expect(s.stageExits).toEqual(Array.from({ length: s.stage + 1 }, (_, k) => cfgs[k].exits.blocks.length - 1));
        expect(s.prediction).toBe(ref[i].logits.indexOf(Math.max(...ref[i].logits)));
      });
      expect(res.summary.stageCounts).toEqual([0, 1, 2].map((k) => ref.filter((r) => r.stage === k).length));
      expect(res.summary.rowsPerStage).toEqual([0, 1, 2].map((k) => ref.filter((r) => r.stage >= k).length));
      expect(res.summary.flops).toBe(res.samples.reduce((a, s) => a + s.flops, 0));
    }
    cascade.dispose();
  });

  it('host and device mode are bit-identical, with exits inside the stages; chunks change nothing', async () => {
    const inner = [maxProbThreshold({ threshold: 0.4 }), undefined, maxProbThreshold({ threshold: 0.3 })];
    const a = cascadeOn(gpu, 32, inner).cascade;
    const b = cascadeOn(gpu, 8, inner).cascade; // 23 samples in chunks of 8
    const host = await a.run({ features }, { policy: windowRule(lo, hi), mode: 'host', members: true });
    const device = await a.run({ features }, { policy: windowRule(lo, hi), mode: 'device', members: true });
    const chunked = await b.run({ features }, { policy: windowRule(lo, hi), mode: 'device' });
    expect(host.samples.some((s) => s.stageExits[0] === 0)).toBe(true); // some left stage 0's model early
    for (let i = 0; i < n; i++) {
      expect(device.samples[i].stage).toBe(host.samples[i].stage);
      expect(device.samples[i].stageExits).toEqual(host.samples[i].stageExits);
      expect(Array.from(device.samples[i].logits)).toEqual(Array.from(host.samples[i].logits));
      expect(device.samples[i].flops).toBe(host.samples[i].flops);
      expect(chunked.samples[i].stage).toBe(host.samples[i].stage);
      for (let j = 0; j < 4; j++)
        expect(Math.abs(chunked.samples[i].logits[j] - host.samples[i].logits[j])).toBeLessThan(1e-6);
      // the combined output is the log-mean of the members' own softmaxes
      const ms = host.samples[i].members!;
      expect(ms).toHaveLength(host.samples[i].stage + 1);
      const mean = [0, 1, 2, 3].map((j) => ms.reduce((acc, z) => acc + softmax64(z)[j], 0) / ms.length);
      for (let j = 0; j < 4; j++) expect(Math.abs(host.samples[i].logits[j] - Math.log(mean[j]))).toBeLessThan(2e-5);
    }
    expect(device.summary.stageCounts).toEqual(host.summary.stageCounts);
  });

  it('overlapping runs give what each gives alone', async () => {
    const { cascade } = cascadeOn(gpu);
    const alone = await cascade.run({ features }, { policy: windowRule(lo, hi), mode: 'device' });
    const [a, b] = await Promise.all([
      cascade.run({ features }, { policy: windowRule(lo, hi), mode: 'device' }),
      cascade.run({ features: features.slice(0, 5) }, { policy: neverExit(), mode: 'host' }),
    ]);
    expect(a.samples.map((s) => s.stage)).toEqual(alone.samples.map((s) => s.stage));
    expect(a.samples.map((s) => Array.from(s.logits))).toEqual(alone.samples.map((s) => Array.from(s.logits)));
    expect(b.summary.stageCounts).toEqual([0, 0, 5]);
  });

  it('the CPU device agrees with the GPU', async () => {
    const g = await cascadeOn(gpu).cascade.run({ features }, { policy: windowRule(lo, hi), mode: 'host' });
    const c = await cascadeOn(cpu).cascade.run({ features }, { policy: windowRule(lo, hi) });
    expect(c.summary.mode).toBe('host');
    for (let i = 0; i < n; i++) {
      expect(c.samples[i].stage).toBe(g.samples[i].stage);
      for (let j = 0; j < 4; j++) expect(Math.abs(c.samples[i].logits[j] - g.samples[i].logits[j])).toBeLessThan(1e-4);
    }
  });

  it('a never-deferring rule stops everyone at stage 0; never-exit runs every stage', async () => {
    const { cascade } = cascadeOn(gpu);
    const leaveAll: ExitPolicy<null> = {
      ...neverExit(),
      name: 'all',
      decide: (_c, s) => new Uint8Array(s.count).fill(1),
    };
    const r0 = await cascade.run({ features }, { policy: leaveAll, mode: 'host' });
    expect(r0.summary.stageCounts).toEqual([n, 0, 0]);
    const rAll = await cascade.run({ features }, { policy: neverExit(), mode: 'device' });
    expect(rAll.summary.stageCounts).toEqual([0, 0, n]);
    expect(rAll.summary.flops).toBe(rAll.summary.fullFlops);
  });

  it('refuses what it cannot run, saying why', async () => {
    const { runners } = cascadeOn(gpu);
    const other = new Runner(
      gpu,
      buildModel(gpu, { ...cfgs[0], num_classes: 3 }, randomWeights({ ...cfgs[0], num_classes: 3 }, 1)),
    );
    expect(() => new Cascade([runners[0], other])).toThrow(/has 3 classes, stage 0 has 4/);
    expect(() => new Cascade([])).toThrow(/needs 1 to 16 stages/);
    const onCpu = new Runner(cpu, buildModel(cpu, cfgs[0], weights[0]));
    expect(() => new Cascade([runners[0], onCpu])).toThrow(/another device/);
    await expect(new Cascade([onCpu]).run({ features }, { policy: neverExit(), mode: 'device' })).rejects.toThrow(
      /needs a GPU device/,
    );
    const hostOnly: ExitPolicy<null> = {
      name: 'host-only',
      init: () => null,
      decide: (_c, s) => new Uint8Array(s.count),
    };
    await expect(new Cascade(runners).run({ features }, { policy: hostOnly, mode: 'device' })).rejects.toThrow(
      /no device \(WGSL\) form/,
    );
  });

  it('gatherInputRows compacts every input form', () => {
    const flat = Float32Array.from({ length: 12 }, (_, i) => i);
    expect(Array.from((gatherInputRows({ features: flat }, 4, [2, 0]) as { features: Float32Array }).features)).toEqual(
      [6, 7, 8, 0, 1, 2],
    );
    expect(gatherInputRows({ ids: [[1], [2, 3], [4]], lengths: [1, 2, 1] }, 3, [1])).toEqual({
      ids: [[2, 3]],
      lengths: [2],
    });
  });
});

describe('Cascade of encoders (token inputs of different lengths)', () => {
  const enc = (hidden: number, layers: number): EncoderClassifierConfig => ({
    architecture: 'encoder_classifier',
    vocab_size: 40,
    max_position: 32,
    hidden_size: hidden,
    num_layers: layers,
    num_heads: 2,
    intermediate_size: 2 * hidden,
    num_classes: 3,
    exits: { blocks: Array.from({ length: layers }, (_, i) => i), head: 'pooler' },
  });
  const ecfgs = [enc(16, 1), enc(24, 2)];
  const ew = ecfgs.map((c, k) => randomWeights(c, 70 + k));
  const r = mulberry32(12);
  const ids = Array.from({ length: 13 }, () =>
    Array.from({ length: 2 + Math.floor(r() * 6) }, () => 1 + Math.floor(r() * 39)),
  );
  it('matches the float64 reference; host and device agree bit for bit', async () => {
    const probs = ecfgs.map((c, k) => ids.map((x) => softmax64(refEncoder(c, ew[k], x).at(-1)!.logits)));
    const conf0 = probs[0].map((p) => Math.max(...p));
    const sortedConf = [...conf0].sort((a, b) => a - b);
    const wlo = (sortedConf[3] + sortedConf[4]) / 2;
    const whi = (sortedConf[9] + sortedConf[10]) / 2;
    const cascade = new Cascade(ecfgs.map((c, k) => new Runner(gpu, buildModel(gpu, c, ew[k]), { maxBatch: 8 })));
    const host = await cascade.run({ ids }, { policy: windowRule(wlo, whi), mode: 'host' });
    const device = await cascade.run({ ids }, { policy: windowRule(wlo, whi), mode: 'device' });
    ids.forEach((_, i) => {
      const inside = !(conf0[i] > whi || conf0[i] < wlo);
      const want = inside
        ? [0, 1, 2].map((j) => Math.log((probs[0][i][j] + probs[1][i][j]) / 2))
        : probs[0][i].map(Math.log);
      expect(host.samples[i].stage).toBe(inside ? 1 : 0);
      for (let j = 0; j < 3; j++) expect(Math.abs(host.samples[i].logits[j] - want[j])).toBeLessThan(5e-5);
      expect(device.samples[i].stage).toBe(host.samples[i].stage);
      expect(Array.from(device.samples[i].logits)).toEqual(Array.from(host.samples[i].logits));
      expect(device.samples[i].flops).toBe(host.samples[i].flops);
    });
    const deferred = conf0.filter((c) => !(c > whi || c < wlo)).length;
    expect(deferred).toBe(6);
    expect(host.summary.stageCounts).toEqual([13 - deferred, deferred]);
  });
});

describe('cascadeCombine kernel', () => {
  for (const tc of cascadeCombine.testCases)
    it(`matches its reference on the GPU and the CPU device (${JSON.stringify(tc.params)})`, async () => {
      for (const dev of [gpu, cpu]) {
        const r = await checkKernel(dev, cascadeCombine, tc, 3);
        expect(r.mismatches).toEqual([]);
        expect(r.ok).toBe(true);
      }
    });
});
