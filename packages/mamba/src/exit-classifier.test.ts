// Exit classifiers: the device forms (GPU and CPU device) equal the float64 training forms, prefill equals
// step by step (the Mamba classifier carries its own state), the file format round-trips, distillation
// training lowers the loss, and generation/scoring with the 'classifier' rule follows the reference.
import { CpuDevice, createGpuDevice, type Device, type GpuDevice, mulberry32 } from '@offramp/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scope } from './block.js';
import type { MambaConfig } from './config.js';
import {
  type ExitClassifierConfig,
  ExitClassifiers,
  exitClassifiersToSafetensors,
  readExitClassifiers,
} from './exit-classifier.js';
import { MambaLM } from './model.js';
import { MambaReference } from './reference.js';
import {
  classifierLogits,
  classifiersToTensors,
  exitTargets,
  initClassifiers,
  trainExitClassifiers,
} from './train/classifier-train.js';
import { lmFromHf, lmToHf } from './train/export.js';
import { initLm, type LmDims } from './train/lm-grad.js';
import { normalizeMambaTensors } from './weights.js';

let gpu: GpuDevice;
const cpu = new CpuDevice();
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

const kinds = ['mamba', 'ffn'] as const;
const config = (kind: 'mamba' | 'ffn', exits = [1, 2], hiddenSize = 12): ExitClassifierConfig => ({
  kind,
  exits,
  hiddenSize,
  inner: 16,
  stateSize: 4,
  rank: 1,
  convKernel: 3,
  hidden: 10,
});

function perturbed(c: ExitClassifierConfig, seed: number) {
  const p = initClassifiers(c, seed);
  const rand = mulberry32(seed + 100);
  const arrays =
    p.kind === 'mamba' ? p.blocks.flatMap((b) => Object.values(b)) : p.ffns.flatMap((f) => Object.values(f));
  for (const a of arrays) if (a) for (let i = 0; i < a.length; i++) a[i] += (rand() - 0.5) * 0.3;
  return p;
}

describe.each([
  { name: 'GPU', dev: () => gpu as Device },
  { name: 'CPU', dev: () => cpu as Device },
])('exit classifiers on the $name device', ({ dev }) => {
  it.each(kinds)(
    '%s: prefill and step by step equal the float64 training forward; the file round-trips',
    async (kind) => {
      const c = config(kind);
      const p = perturbed(c, 3);
      const bytes = exitClassifiersToSafetensors(c, classifiersToTensors(c, p));
      const read = readExitClassifiers(bytes);
      expect(read.config).toEqual(c);
      const cls = new ExitClassifiers(dev(), read.config, read.tensors);
      const B = 3;
      const T = 9;
      const rand = mulberry32(8);
      const hidden = c.exits.map(() => Float64Array.from({ length: B * T * c.hiddenSize }, () => rand() * 4 - 2));
      const want = classifierLogits(c, p, { Bt: B, T, hidden, labels: [] });
      for (let j = 0; j < c.exits.length; j++) {
        const s = new Scope(dev());
        const state = cls.newState(j, B);
        const got = await cls
          .prefill(s, j, s.f32([B * T, c.hiddenSize], Float32Array.from(hidden[j])), B, T, null, state)
          .read();
        for (let i = 0; i < B * T; i++)
          expect(Math.abs(got[i] - want[j][i]), `exit ${j} row ${i}`).toBeLessThan(1e-4 * (1 + Math.abs(want[j][i])));
        const st = cls.newState(j, B);
        for (let t = 0; t < T; t++) {
          const h = new Float32Array(B * c.hiddenSize);
          for (let b = 0; b < B; b++)
            h.set(
              Float32Array.from(hidden[j].subarray((b * T + t) * c.hiddenSize, (b * T + t + 1) * c.hiddenSize)),
              b * c.hiddenSize,
            );
          const z = await cls.step(s, j, s.f32([B, c.hiddenSize], h), B, null, st).read();
          for (let b = 0; b < B; b++)
            expect(Math.abs(z[b] - want[j][b * T + t])).toBeLessThan(1e-4 * (1 + Math.abs(want[j][b * T + t])));
        }
        if (state) {
          expect(Array.from(await st!.ssm.read()).map((v) => +v.toFixed(4))).toEqual(
            Array.from(await state.ssm.read()).map((v) => +v.toFixed(4)),
          );
          for (const x of [state, st!]) {
            x.conv.dispose();
            x.ssm.dispose();
          }
        }
        s.dispose();
      }
      cls.dispose();
    },
  );
});

it('rejects a classifier file without its config or with wrong tensors', () => {
  const c = config('ffn');
  const t = classifiersToTensors(c, initClassifiers(c, 1));
  t.delete('exit_classifiers.1.fc2.bias');
  expect(() => exitClassifiersToSafetensors(c, t)).toThrow(/missing 'exit_classifiers\.1\.fc2\.bias' \[1\]/);
});

const dm: LmDims = { vocab: 23, d: 12, layers: 4, D: 24, N: 4, R: 1, K: 4, eps: 1e-5 };
const lmConfig: MambaConfig = {
  vocabSize: 23,
  hiddenSize: 12,
  numLayers: 4,
  stateSize: 4,
  expand: 2,
  intermediateSize: 24,
  convKernel: 4,
  timeStepRank: 1,
  layerNormEpsilon: 1e-5,
  useBias: false,
  useConvBias: true,
  tieWordEmbeddings: true,
};

it.each(kinds)('distillation with the relaxed top-k target lowers the %s classifier loss', (kind) => {
  const p = initLm(dm, 4);
  const rand = mulberry32(2);
  const Bt = 12;
  const T = 16;
  const inputs = Int32Array.from({ length: Bt * T }, () => Math.floor(rand() * dm.vocab));
  const data = exitTargets(p, dm, inputs, Bt, T, [1, 2], 3);
  expect(data.labels[0].length).toBe(Bt * T);
  const c = config(kind, [1, 2], 12);
  const { losses } = trainExitClassifiers(c, data, { steps: 60, batch: 4, seed: 1 });
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  expect(mean(losses.slice(-10))).toBeLessThan(mean(losses.slice(0, 10)));
});

describe.each([
  { name: 'GPU', dev: () => gpu as Device },
  { name: 'CPU', dev: () => cpu as Device },
])("the 'classifier' exit rule ($name)", ({ dev }) => {
  it.each(['freeze', 'partial'] as const)(
    'scoring follows the reference row by row (%s), classifier state carried from token to token',
    async (skip) => {
      const lm = initLm(dm, 6);
      const rand = mulberry32(3);
      for (const l of lm.layers)
        for (const a of Object.values(l)) if (a) for (let i = 0; i < a.length; i++) a[i] += (rand() - 0.5) * 0.2;
      const { tensors } = normalizeMambaTensors(lmConfig, lmToHf(lm, dm));
      const model = new MambaLM(dev(), lmConfig, tensors, { exits: [1, 2, 3] });
      const ref = new MambaReference(lmConfig, tensors);
      const c = config('mamba', [1, 2], 12);
      const cp = perturbed(c, 9);
      const cls = new ExitClassifiers(dev(), c, classifiersToTensors(c, cp));
      const seqs = Array.from({ length: 4 }, () => Array.from({ length: 11 }, () => Math.floor(rand() * 23)));
      // a threshold at the median classifier probability of the first exit on full-depth hidden states
      const hid = seqs.map((q) => {
        const r = ref.prefill(q.slice(0, 10), { logits: false });
        return r.hidden[1];
      });
      const z0 = classifierLogits(c, cp, {
        Bt: 4,
        T: 10,
        hidden: [
          Float64Array.from(hid.flatMap((h) => Array.from(h))),
          Float64Array.from(hid.flatMap((h) => Array.from(h))),
        ],
        labels: [],
      })[0];
      const probs = Array.from(z0, (z) => 1 / (1 + Math.exp(-z))).sort((a, b) => a - b);
      const threshold = probs[Math.floor(probs.length / 2)];
      const res = await model.score(seqs, { rule: { kind: 'classifier', threshold }, skip }, cls);
      expect(new Set(res.exitBlocks).size).toBeGreaterThan(1);
      for (let b = 0; b < 4; b++) {
        const st = ref.emptyState();
        for (let t = 0; t < 10; t++) {
          const e = res.exitBlocks[b * 10 + t];
          const r = ref.step(seqs[b][t], st, { exitAfter: e, skip });
          const m = Math.max(...r.logits);
          const lse = m + Math.log(r.logits.reduce((a, v) => a + Math.exp(v - m), 0));
          expect(Math.abs(res.tokenNll[b * 10 + t] - (lse - r.logits[seqs[b][t + 1]]))).toBeLessThan(2e-4);
        }
      }
      // the first token of each row always sees full-depth hidden states, so its classifier decision is known
      for (let b = 0; b < 4; b++) {
        const p0 = 1 / (1 + Math.exp(-z0[b * 10]));
        if (Math.abs(p0 - threshold) > 1e-4) expect(res.exitBlocks[b * 10] === 1).toBe(p0 >= threshold);
      }
      const all = await model.score(seqs, { rule: { kind: 'classifier', threshold: 0 }, skip }, cls);
      expect(Array.from(all.exitBlocks).every((e) => e === 1)).toBe(true);
      await expect(model.score(seqs, { rule: { kind: 'classifier', threshold: 0.5 } })).rejects.toThrow(
        /needs a cache made with classifiers/,
      );
      const gen = await model.generate([seqs[0].slice(0, 3), seqs[1]], {
        maxNewTokens: 4,
        exit: { rule: { kind: 'classifier', threshold }, skip },
        classifiers: cls,
      });
      expect(gen.tokens.map((t) => t.length)).toEqual([4, 4]);
      expect(gen.depthFraction).toBeLessThanOrEqual(1);
      expect(lmFromHf(lmToHf(lm, dm), dm).layers.length).toBe(4);
      cls.dispose();
      model.dispose();
    },
  );
});

it('reads a classifier file from a Node Buffer (as fs.readFileSync returns it)', () => {
  const c = config('ffn');
  const p = perturbed(c, 5);
  const bytes = exitClassifiersToSafetensors(c, classifiersToTensors(c, p));
  // inside a larger pooled buffer at an offset, as small files read by Node often are
  const pool = Buffer.alloc(bytes.length + 24);
  pool.set(bytes, 8);
  const read = readExitClassifiers(pool.subarray(8, 8 + bytes.length));
  const want = classifiersToTensors(c, p);
  for (const [n, t] of want) expect(Array.from(read.tensors.get(n)!.data), n).toEqual(Array.from(t.data));
});
