// The Mamba sequence classifier in @offramp/core's Runner, checked like core's own models: never-exit equals
// an independent forward (the float64 reference backbone + a plain head) with every exit's signals in the
// trace; host and device modes agree exactly; batch invariance; GPU and CPU devices agree; and every
// built-in policy of @offramp/policies runs on it with host/device agreement.
import {
  CpuDevice,
  createGpuDevice,
  definePolicy,
  type GpuDevice,
  type HostTensor,
  type ModelInput,
  maxProbThreshold,
  mulberry32,
  neverExit,
  Runner,
} from '@offramp/core';
import { type BuiltinPolicyName, builtinPolicyNames, createPolicy } from '@offramp/policies';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  classifierBackbone,
  type MambaClassifierConfig,
  MambaSequenceClassifier,
  randomMambaClassifierWeights,
} from './classifier.js';
import { MambaReference } from './reference.js';

const cfg: MambaClassifierConfig = {
  architecture: 'mamba_classifier',
  vocab_size: 40,
  hidden_size: 24,
  num_layers: 4,
  state_size: 6,
  intermediate_size: 48,
  conv_kernel: 4,
  time_step_rank: 2,
  num_classes: 3,
  max_position: 64,
  exits: { blocks: [0, 1, 2, 3], head: 'pooler', gate: true, gate_hidden: 8 },
};

let gpu: GpuDevice;
const cpu = new CpuDevice();
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

const weights = randomMambaClassifierWeights(cfg, 5);
const rand = mulberry32(17);
const n = 11;
const input: ModelInput = {
  ids: Array.from({ length: n }, () =>
    Array.from({ length: 1 + Math.floor(rand() * 20) }, () => Math.floor(rand() * 40)),
  ),
};
const ids = (input as { ids: number[][] }).ids;

interface RefExit {
  logits: number[];
  gateLogit: number;
  pooled: number[];
}

/** Independent forward: reference backbone, last valid token, RMSNorm, pooler/classifier/gate in plain TS. */
function refClassify(w: Map<string, HostTensor>, seq: number[]): RefExit[] {
  const ref = new MambaReference(classifierBackbone(cfg), w);
  const { hidden } = ref.prefill(seq, { logits: false });
  const d = cfg.hidden_size;
  const g = (name: string) => w.get(name)!.data;
  const dense = (x: number[], name: string, act?: (v: number) => number) => {
    const W = g(`${name}.weight`);
    const bias = g(`${name}.bias`);
    return Array.from(bias, (b0, o) => {
      let s = b0;
      for (let i = 0; i < x.length; i++) s += x[i] * W[i * bias.length + o];
      return act ? act(s) : s;
    });
  };
  return cfg.exits.blocks.map((blk, j) => {
    const pooled = Array.from(hidden[blk].subarray((seq.length - 1) * d, seq.length * d));
    const nw = g(`exits.${j}.norm.weight`);
    const r = 1 / Math.sqrt(pooled.reduce((a, v) => a + v * v, 0) / d + 1e-5);
    const z = pooled.map((v, k) => v * r * nw[k]);
    const logits = dense(dense(z, `exits.${j}.pooler`, Math.tanh), `exits.${j}.classifier`);
    const gateLogit = dense(dense(z, `exits.${j}.gate.fc1`, Math.tanh), `exits.${j}.gate.fc2`)[0];
    return { logits, gateLogit, pooled };
  });
}

function signals(z: number[]) {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  const p = e.map((v) => v / s).sort((a, b) => b - a);
  return { maxProb: p[0], entropy: -p.reduce((a, v) => a + (v > 0 ? v * Math.log(v) : 0), 0), margin: p[0] - p[1] };
}

const refs = ids.map((seq) => refClassify(weights, seq));
const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

const exitBySample = definePolicy((o: { plan: number[] }) => ({
  name: 'by-sample',
  init: () => null,
  decide: (ctx, s) => Array.from(s.sampleIds, (sid) => o.plan[sid] <= ctx.exitIndex),
}));

describe('MambaSequenceClassifier in the Runner', () => {
  it('never-exit equals the independent forward, with every exit in the trace (GPU)', async () => {
    const model = new MambaSequenceClassifier(gpu, cfg, weights);
    const runner = new Runner(gpu, model, { maxBatch: 16 });
    const res = await runner.run(input, { policy: neverExit(), trace: true });
    for (let i = 0; i < n; i++) {
      const s = res.samples[i];
      expect(s.exitIndex).toBe(3);
      expect(maxAbs(s.logits, refs[i][3].logits)).toBeLessThan(2e-4);
      for (let j = 0; j < 4; j++) {
        const want = signals(refs[i][j].logits);
        expect(s.trace!.maxProb[j]).toBeCloseTo(want.maxProb, 4);
        expect(s.trace!.entropy[j]).toBeCloseTo(want.entropy, 4);
        expect(s.trace!.margin[j]).toBeCloseTo(want.margin, 4);
        expect(s.trace!.gate[j]).toBeCloseTo(1 / (1 + Math.exp(-refs[i][j].gateLogit)), 4);
        if (j > 0) {
          const a = refs[i][j].pooled;
          const b = refs[i][j - 1].pooled;
          const dot = a.reduce((x, v, k) => x + v * b[k], 0);
          const cos = dot / Math.sqrt(a.reduce((x, v) => x + v * v, 0) * b.reduce((x, v) => x + v * v, 0));
          expect(s.trace!.similarity[j]).toBeCloseTo(cos, 4);
        }
      }
    }
    runner.dispose();
    model.dispose();
  });

  it('exits where the policy says with that exit’s outputs; host and device modes agree exactly; batch invariance', async () => {
    const model = new MambaSequenceClassifier(gpu, cfg, weights);
    const runner = new Runner(gpu, model, { maxBatch: 16 });
    const plan = Array.from({ length: n }, (_, i) => (i * 7) % 4);
    const host = await runner.run(input, { policy: exitBySample({ plan }), mode: 'host' });
    for (let i = 0; i < n; i++) {
      expect(host.samples[i].exitIndex).toBe(plan[i]);
      expect(maxAbs(host.samples[i].logits, refs[i][plan[i]].logits)).toBeLessThan(2e-4);
    }
    const probs = refs.map((r) => signals(r[0].logits).maxProb).sort((a, b) => a - b);
    const policy = maxProbThreshold({ threshold: probs[Math.floor(n / 2)] });
    const h = await runner.run(input, { policy, mode: 'host' });
    const d = await runner.run(input, { policy, mode: 'device' });
    expect(new Set(h.samples.map((s) => s.exitIndex)).size).toBeGreaterThan(1);
    expect(d.samples.map((s) => s.exitIndex)).toEqual(h.samples.map((s) => s.exitIndex));
    for (let i = 0; i < n; i++) expect(Array.from(d.samples[i].logits)).toEqual(Array.from(h.samples[i].logits));
    expect(d.summary.readbacks).toBe(1);
    for (const i of [0, 5, n - 1]) {
      const alone = await runner.run({ ids: [ids[i]] }, { policy, mode: 'device' });
      expect(alone.samples[0].exitIndex).toBe(d.samples[i].exitIndex);
      expect(Array.from(alone.samples[0].logits)).toEqual(Array.from(d.samples[i].logits));
    }
    const order = [3, 1, 10, 0, 7];
    const sub = await runner.run({ ids: order.map((i) => ids[i]) }, { policy, mode: 'host' });
    order.forEach((src, pos) => {
      expect(sub.samples[pos].exitIndex).toBe(d.samples[src].exitIndex);
      expect(Array.from(sub.samples[pos].logits)).toEqual(Array.from(d.samples[src].logits));
    });
    runner.dispose();
    model.dispose();
  });

  it('agrees between the GPU and the CPU device, FLOPs included', async () => {
    const gm = new MambaSequenceClassifier(gpu, cfg, weights);
    const cm = new MambaSequenceClassifier(cpu, cfg, weights);
    const plan = Array.from({ length: n }, (_, i) => (i * 5) % 4);
    const g = await new Runner(gpu, gm, { maxBatch: 16 }).run(input, { policy: exitBySample({ plan }), trace: true });
    const c = await new Runner(cpu, cm, { maxBatch: 16 }).run(input, { policy: exitBySample({ plan }), trace: true });
    for (let i = 0; i < n; i++) {
      expect(c.samples[i].exitIndex).toBe(g.samples[i].exitIndex);
      expect(maxAbs(c.samples[i].logits, g.samples[i].logits)).toBeLessThan(1e-4);
      expect(maxAbs(c.samples[i].trace!.maxProb, g.samples[i].trace!.maxProb)).toBeLessThan(1e-5);
    }
    expect(c.summary.flops).toBe(g.summary.flops);
    expect(g.summary.flops).toBeGreaterThan(0);
    gm.dispose();
  });

  /** Options that make each built-in policy valid for 4 exits and 3 classes. */
  const policyOptions: Record<BuiltinPolicyName, Record<string, unknown>> = {
    confidence: { threshold: 0.5 },
    entropy: { threshold: 0.9 },
    margin: { threshold: 0.2 },
    saturation: { threshold: 0.9 },
    patience: { patience: 1 },
    ponder: { q: 0.5 },
    gate: { threshold: 0.5 },
    window: { wLo: 0.3, wHi: 0.6 },
    budget: { target: 0.6 },
    online: {},
    schedule: { hMin: 0, hMax: 3, T: 20 },
    quality: { threshold: 0.5, signal: 'maxProb' },
    static: { exit: 2 },
    oracle: { finals: refs.map((r) => r[3].logits.indexOf(Math.max(...r[3].logits))) },
  };

  it('runs every built-in policy of @offramp/policies, host and device modes agreeing', async () => {
    expect([...builtinPolicyNames].sort()).toEqual(Object.keys(policyOptions).sort());
    const model = new MambaSequenceClassifier(gpu, cfg, weights);
    const runner = new Runner(gpu, model, { maxBatch: 16 });
    for (const name of builtinPolicyNames) {
      const policy = createPolicy(name, policyOptions[name]);
      const h = await runner.run(input, { policy: createPolicy(name, policyOptions[name]), mode: 'host' });
      expect(h.samples.length, name).toBe(n);
      if (!policy.device || policy.needs?.includes('logits')) continue;
      const d = await runner.run(input, { policy, mode: 'device' });
      expect(
        d.samples.map((s) => s.exitIndex),
        name,
      ).toEqual(h.samples.map((s) => s.exitIndex));
    }
    runner.dispose();
    model.dispose();
  });

  it('explains bad input and bad weights', async () => {
    const model = new MambaSequenceClassifier(cpu, cfg, weights);
    const runner = new Runner(cpu, model, { maxBatch: 4 });
    await expect(runner.run({ ids: [[1, 40]] }, { policy: neverExit() })).rejects.toThrow(
      /token id 40 is outside \[0, 40\)/,
    );
    await expect(runner.run({ ids: [[]] }, { policy: neverExit() })).rejects.toThrow(/empty/);
    await expect(runner.run({ ids: [Array(65).fill(1)] }, { policy: neverExit() })).rejects.toThrow(
      /max_position = 64/,
    );
    const bad = new Map(weights);
    bad.delete('exits.2.norm.weight');
    expect(() => new MambaSequenceClassifier(cpu, cfg, bad)).toThrow(/missing 'exits\.2\.norm\.weight' \[24\]/);
    expect(
      () => new MambaSequenceClassifier(cpu, { ...cfg, exits: { ...cfg.exits, blocks: [0, 2] } }, weights),
    ).toThrow(/end with the last block \(3\)/);
  });
});
