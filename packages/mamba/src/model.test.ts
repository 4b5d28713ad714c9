// MambaLM on the GPU (lavapipe in CI) and the CPU device against the independent float64 reference:
// batched prefill of different-length prompts (every position, final conv/SSM states), decode steps equal
// to the prefill, greedy generation, batch invariance, seeded sampling, the windowed embedding/LM head
// against the unsplit one, and token-level early exit (freeze and partial) row by row.
import { CpuDevice, createGpuDevice, type Device, type GpuDevice } from '@offramp/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MambaConfig } from './config.js';
import { MambaLM, tableWindows } from './model.js';
import { randomMambaWeights } from './random-weights.js';
import { MambaReference } from './reference.js';
import { normalizeMambaTensors } from './weights.js';

const cfg: MambaConfig = {
  vocabSize: 37,
  hiddenSize: 24,
  numLayers: 3,
  stateSize: 5,
  expand: 2,
  intermediateSize: 48,
  convKernel: 4,
  timeStepRank: 2,
  layerNormEpsilon: 1e-5,
  useBias: false,
  useConvBias: true,
  tieWordEmbeddings: true,
};
/** Biases on in/out projections, no conv bias, a separate LM head. */
const cfgBias: MambaConfig = {
  ...cfg,
  vocabSize: 41,
  hiddenSize: 16,
  intermediateSize: 40,
  expand: 2.5,
  stateSize: 3,
  convKernel: 3,
  useBias: true,
  useConvBias: false,
  tieWordEmbeddings: false,
};

let gpu: GpuDevice;
const cpu = new CpuDevice();
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

function build(device: Device, c: MambaConfig, seed: number, lmHead = false, maxBindingBytes?: number) {
  const { tensors } = normalizeMambaTensors(c, randomMambaWeights(c, { seed, lmHead }));
  return {
    model: new MambaLM(device, c, tensors, { maxBindingBytes, exits: [0, 1, 2] }),
    ref: new MambaReference(c, tensors),
  };
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
    if (!(e <= worst)) {
      worst = e;
      at = i;
    }
  }
  if (!(worst <= tol))
    expect.fail(`${what}: worst relative error ${worst} at ${at} (got ${got[at]}, want ${want[at]})`);
}

const prompts = [[1, 5, 9, 2, 33, 7, 7], [4], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [36, 12, 30, 2]];
const TOL = 2e-4;

describe.each([
  { name: 'GPU', dev: () => gpu as Device },
  { name: 'CPU', dev: () => cpu as Device },
])('MambaLM on the $name device', ({ dev }) => {
  it.each([
    { label: 'tied head, conv bias', c: cfg, lmHead: false },
    { label: 'projection biases, no conv bias, separate head', c: cfgBias, lmHead: true },
  ])(
    'prefill of different-length prompts equals the reference at every position, with its final states ($label)',
    async ({ c, lmHead }) => {
      const { model, ref } = build(dev(), c, 3, lmHead);
      const { logits, all, cache, T } = await model.prefill(prompts, { allLogits: true });
      const V = c.vocabSize;
      for (let b = 0; b < prompts.length; b++) {
        const r = ref.prefill(prompts[b]);
        const L = prompts[b].length;
        for (let t = 0; t < L; t++)
          expectClose(
            all!.subarray((b * T + t) * V, (b * T + t + 1) * V),
            r.logits[t],
            TOL,
            `prompt ${b} position ${t}`,
          );
        expectClose(logits.subarray(b * V, (b + 1) * V), r.logits[L - 1], TOL, `prompt ${b} last logits`);
        const st = await cache.readSequence(b);
        for (let l = 0; l < c.numLayers; l++) {
          expectClose(st.conv[l], r.state.conv[l], 1e-5, `prompt ${b} layer ${l} conv state`);
          expectClose(st.ssm[l], r.state.ssm[l], TOL, `prompt ${b} layer ${l} ssm state`);
        }
      }
      cache.dispose();
      model.dispose();
    },
  );

  it('T decode steps from an empty cache equal the prefill (logits and states)', async () => {
    const { model } = build(dev(), cfg, 5);
    const seqs = [prompts[0], prompts[2].slice(0, 7), prompts[3].concat([1, 2, 3])];
    const { all, cache: pc } = await model.prefill(seqs, { allLogits: true });
    const cache = model.newCache(seqs.length);
    const V = cfg.vocabSize;
    for (let t = 0; t < 7; t++) {
      const r = await model.step(
        seqs.map((q) => q[t]),
        cache,
      );
      for (let b = 0; b < seqs.length; b++)
        expectClose(
          r.logits.subarray(b * V, (b + 1) * V),
          all!.subarray((b * 7 + t) * V, (b * 7 + t + 1) * V),
          TOL,
          `step ${t} row ${b}`,
        );
      expect(Array.from(r.exitBlocks)).toEqual([2, 2, 2]);
    }
    for (let b = 0; b < seqs.length; b++) {
      const a = await cache.readSequence(b);
      const p = await pc.readSequence(b);
      for (let l = 0; l < cfg.numLayers; l++) {
        expectClose(a.conv[l], p.conv[l], 1e-6, `conv ${b}/${l}`);
        expectClose(a.ssm[l], p.ssm[l], TOL, `ssm ${b}/${l}`);
      }
    }
    // one sequence moved into a cache of its own continues exactly as in the batch
    const solo = model.newCache(1);
    solo.writeSequence(0, await cache.readSequence(2));
    const inBatch = await model.step([5, 6, 7], cache);
    const alone = await model.step([7], solo);
    expect(Array.from(alone.logits)).toEqual(Array.from(inBatch.logits.subarray(2 * V, 3 * V)));
    solo.dispose();
    cache.dispose();
    pc.dispose();
    model.dispose();
  });

  it('greedy generation equals the reference; each prompt alone gives the same tokens as in the batch', async () => {
    const { model, ref } = build(dev(), cfg, 7);
    const res = await model.generate(prompts, { maxNewTokens: 6 });
    for (let b = 0; b < prompts.length; b++) {
      const r = ref.prefill(prompts[b]);
      const want: number[] = [];
      let z = r.logits[prompts[b].length - 1];
      for (let k = 0; k < 6; k++) {
        let best = 0;
        for (let v = 1; v < z.length; v++) if (z[v] > z[best]) best = v;
        want.push(best);
        z = ref.step(best, r.state).logits;
      }
      expect(res.tokens[b], `prompt ${b}`).toEqual(want);
      const alone = await model.generate([prompts[b]], { maxNewTokens: 6 });
      expect(alone.tokens[0]).toEqual(res.tokens[b]);
    }
    expect(res.depthFraction).toBe(1);
    model.dispose();
  });

  it('samples reproducibly from a seed; top-k 1 and a tiny top-p are greedy; stop tokens end a sequence', async () => {
    const { model } = build(dev(), cfg, 9);
    const a = await model.generate(prompts, {
      maxNewTokens: 8,
      sampling: { temperature: 1.3, topK: 10, topP: 0.9, seed: 42 },
    });
    const b = await model.generate(prompts, {
      maxNewTokens: 8,
      sampling: { temperature: 1.3, topK: 10, topP: 0.9, seed: 42 },
    });
    expect(a.tokens).toEqual(b.tokens);
    const greedy = await model.generate(prompts, { maxNewTokens: 8 });
    const k1 = await model.generate(prompts, { maxNewTokens: 8, sampling: { temperature: 2, topK: 1, seed: 3 } });
    const p0 = await model.generate(prompts, { maxNewTokens: 8, sampling: { temperature: 2, topP: 1e-6, seed: 3 } });
    expect(k1.tokens).toEqual(greedy.tokens);
    expect(p0.tokens).toEqual(greedy.tokens);
    const hot = await model.generate(prompts, { maxNewTokens: 8, sampling: { temperature: 5, seed: 1 } });
    expect(hot.tokens).not.toEqual(greedy.tokens);
    const stopAt = greedy.tokens[0][2];
    const stopped = await model.generate(prompts, { maxNewTokens: 8, stop: [stopAt] });
    expect(stopped.tokens[0]).toEqual(greedy.tokens[0].slice(0, greedy.tokens[0].indexOf(stopAt) + 1));
    await expect(model.generate(prompts, { maxNewTokens: 2, sampling: { topP: 0 } })).rejects.toThrow(
      /topP must be in \(0, 1\]/,
    );
    await expect(model.prefill([[1, 37]])).rejects.toThrow(/token id 37 is outside \[0, 37\)/);
    model.dispose();
  });

  it.each(['freeze', 'partial'] as const)(
    'token-level early exit (%s) matches the reference row by row, with per-row exits in one batch',
    async (skip) => {
      const { model, ref } = build(dev(), cfg, 11);
      const seqs = [
        [3, 8, 1, 30, 2, 2, 9, 17, 5],
        [14, 0, 0, 36, 20, 1, 7, 7, 3],
        [5, 5, 5, 5, 6, 6, 6, 6, 6],
        [1, 2, 3, 4, 5, 6, 7, 8, 9],
        [22, 19, 4, 31, 8, 11, 2, 0, 35],
      ];
      const V = cfg.vocabSize;
      // a max-probability threshold that makes some rows leave early and others not
      const probe = await model.score(seqs, { rule: { kind: 'never' } });
      const cache = model.newCache(seqs.length);
      const refStates = seqs.map(() => ref.emptyState());
      const seen = new Set<number>();
      const probs: number[] = [];
      for (const q of seqs) {
        const st = ref.emptyState();
        for (let t = 0; t < 8; t++) probs.push(Math.max(...softmax(ref.head(ref.step(q[t], st).hidden[0]))));
      }
      probs.sort((x, y) => x - y);
      const threshold = probs[Math.floor(probs.length / 2)];
      for (let t = 0; t < 8; t++) {
        const r = await model.step(
          seqs.map((q) => q[t]),
          cache,
          { rule: { kind: 'maxProb', threshold }, skip },
        );
        for (let b = 0; b < seqs.length; b++) {
          const e = r.exitBlocks[b];
          seen.add(e);
          const want = ref.step(seqs[b][t], refStates[b], { exitAfter: e, skip });
          expectClose(r.logits.subarray(b * V, (b + 1) * V), want.logits, TOL, `step ${t} row ${b} (exit ${e})`);
          if (e < 2) {
            const p = Math.max(...softmax(want.logits));
            expect(p).toBeGreaterThanOrEqual(threshold - 1e-4);
          }
        }
      }
      expect(seen.size, `exits seen ${[...seen]}`).toBeGreaterThan(1);
      for (let b = 0; b < seqs.length; b++) {
        const st = await cache.readSequence(b);
        for (let l = 0; l < cfg.numLayers; l++) {
          expectClose(st.conv[l], refStates[b].conv[l], 1e-5, `row ${b} conv ${l}`);
          expectClose(st.ssm[l], refStates[b].ssm[l], TOL, `row ${b} ssm ${l}`);
        }
      }
      expect(probe.count).toBe(seqs.length * 8);
      cache.dispose();
      model.dispose();
    },
  );
});

function softmax(z: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(z));
  const e = Array.from(z, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

describe('embedding gather and LM head over row windows of the table', () => {
  const big: MambaConfig = { ...cfg, vocabSize: 150, hiddenSize: 16, intermediateSize: 32 };
  it.each([
    { name: 'GPU', dev: () => gpu as Device, limit: 64 * 16 * 4 },
    { name: 'CPU', dev: () => cpu as Device, limit: 11 * 16 * 4 },
  ])('equal the unsplit path ($name, windows of the binding limit)', async ({ dev, limit }) => {
    const whole = build(dev(), big, 13).model;
    const split = build(dev(), big, 13, false, limit).model;
    expect(whole.windows.length).toBe(1);
    expect(split.windows.length).toBeGreaterThan(2);
    const ps = [[149, 0, 64, 63, 128, 127], [100, 5], [149]];
    const a = await whole.prefill(ps, { allLogits: true });
    const b = await split.prefill(ps, { allLogits: true });
    expectClose(b.all!, a.all!, 1e-6, 'all logits');
    expectClose(b.logits, a.logits, 1e-6, 'last logits');
    const ga = await whole.generate(ps, { maxNewTokens: 5 });
    const gb = await split.generate(ps, { maxNewTokens: 5 });
    expect(gb.tokens).toEqual(ga.tokens);
    a.cache.dispose();
    b.cache.dispose();
    whole.dispose();
    split.dispose();
  });

  it('windows are aligned, cover the table, and a too-small limit is explained', () => {
    const w = tableWindows(gpu, 50280, 768, 128 * 1024 * 1024);
    expect(w.length).toBe(2);
    expect(w.every((x) => (x.start * 4) % 256 === 0 && x.count * 768 * 4 <= 128 * 1024 * 1024)).toBe(true);
    expect(w.reduce((a, x) => a + x.count, 0)).toBe(50280);
    expect(() => tableWindows(gpu, 1000, 768, 1000)).toThrow(/raise maxBindingBytes to at least 196608/);
  });
});
