// DYNAMAX on a random Llama-style decoder: teacher-forced features at every early exit against the float64
// DecoderReference (hidden state at the right block and position, labels and argmax from the reference's
// logits), trained classifiers on the device against their float64 reference, and the generation-time gate:
// the recurrent state carried through prefill and steps gives the teacher-forced classifier outputs for the
// same tokens, while the model's outputs stay the decoder's own.
import {
  createGpuDevice,
  DecoderLM,
  DecoderReference,
  type GpuDevice,
  parseDecoderConfig,
  randomDecoderWeights,
} from '@offramp/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  classifierDeviceLogits,
  type DecoderExitFeatures,
  decoderExitFeatures,
  dynamaxDecoderModel,
  dynamaxScore,
} from './decoder-dynamax.js';
import { type ExitClassifierConfig, ExitClassifiers } from './exit-classifier.js';
import { classifierLogits, classifiersToTensors, trainExitClassifiers } from './train/classifier-train.js';

const config = parseDecoderConfig({
  hidden_size: 32,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 48,
  vocab_size: 29,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  offramp: { exits: [0, 2] },
});
const weights = randomDecoderWeights(config, 23);
const ref = new DecoderReference(config, weights);
let device: GpuDevice;
let lm: DecoderLM;

function lcg(seed: number) {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x;
  };
}
const next = lcg(7);
const windows = Array.from({ length: 5 }, () => Array.from({ length: 12 }, () => next() % 29));
let feats: DecoderExitFeatures;

const configs: Record<'mamba' | 'ffn', ExitClassifierConfig> = {
  mamba: { kind: 'mamba', exits: [0, 2], hiddenSize: 32, inner: 16, stateSize: 4, rank: 2, convKernel: 4 },
  ffn: { kind: 'ffn', exits: [0, 2], hiddenSize: 32, hidden: 16 },
};
const trained: Partial<Record<'mamba' | 'ffn', ReturnType<typeof trainExitClassifiers>>> = {};

beforeAll(async () => {
  device = await createGpuDevice();
  lm = new DecoderLM(device, config, weights, { maxTokens: 40 }); // several feature groups per call
  feats = await decoderExitFeatures(lm, windows, 2);
  for (const kind of ['mamba', 'ffn'] as const)
    trained[kind] = trainExitClassifiers(configs[kind], feats, { steps: 15, batch: 2, seed: 3 });
});
afterAll(() => {
  lm?.dispose();
  device?.destroy();
});

const argmaxOf = (z: ArrayLike<number>) => {
  let b = 0;
  for (let v = 1; v < z.length; v++) if (z[v] > z[b]) b = v;
  return b;
};

describe('decoder DYNAMAX features', () => {
  it('hidden states, argmax, max probability and relaxed top-k labels match the float64 reference', () => {
    const { Bt, T, early, exits } = feats;
    expect([Bt, T, early, exits]).toEqual([5, 12, [0, 2], [0, 2, 3]]);
    expect(feats.hidden.map((h) => h.length)).toEqual([5 * 12 * 32, 5 * 12 * 32]);
    let checkedLabels = 0;
    windows.forEach((w, b) => {
      const logits = ref.forward(w); // [exit][t] (V)
      for (let t = 0; t < T; t++) {
        const m = b * T + t;
        const full = logits[2][t];
        const fullSorted = Array.from(full.keys()).sort((x, y) => full[y] - full[x]);
        for (let e = 0; e < exits.length; e++) {
          const z = logits[e][t];
          const sorted = Array.from(z).sort((x, y) => y - x);
          if (sorted[0] - sorted[1] > 1e-3) expect(feats.argmax[e][m]).toBe(argmaxOf(z));
          const mx = sorted[0];
          const p = 1 / z.reduce((a, v) => a + Math.exp(v - mx), 0);
          expect(Math.abs(feats.maxProb[e][m] - p)).toBeLessThan(1e-4);
          if (e === exits.length - 1) continue;
          // the hidden state read back is the one after block early[e] at (b, t): its exit logits are the reference's
          const h = feats.hidden[e].slice(m * 32, (m + 1) * 32);
          const zh = ref.exitLogits(early[e], h);
          for (let v = 0; v < 29; v++) expect(Math.abs(zh[v] - z[v])).toBeLessThan(1e-3 * (1 + Math.abs(z[v])));
          // label: exit's top-1 among the full model's top-2 (only where neither ranking is a near tie)
          const clear = sorted[0] - sorted[1] > 1e-3 && Math.abs(full[fullSorted[1]] - full[fullSorted[2]]) > 1e-3;
          if (clear) {
            expect(feats.labels[e][m]).toBe(fullSorted.slice(0, 2).includes(argmaxOf(z)) ? 1 : 0);
            checkedLabels++;
          }
        }
      }
    });
    expect(checkedLabels).toBeGreaterThan(100);
    // both classes occur, so the classifiers have something to learn
    const pos = feats.labels[0].reduce((a, v) => a + v, 0);
    expect(pos).toBeGreaterThan(0);
    expect(pos).toBeLessThan(feats.labels[0].length);
  });

  it('refuses windows of different lengths and a bad k', async () => {
    await expect(decoderExitFeatures(lm, [[1, 2], [3]], 1)).rejects.toThrow(/same length/);
    await expect(decoderExitFeatures(lm, [[1, 2]], 0)).rejects.toThrow(/k must be an integer in \[1, 29\]/);
  });
});

describe('decoder DYNAMAX classifiers', () => {
  for (const kind of ['mamba', 'ffn'] as const) {
    it(`${kind}: device inference over the features equals the float64 reference of the trained classifier`, async () => {
      const c = configs[kind];
      const { params, losses } = trained[kind]!;
      expect(losses.every(Number.isFinite)).toBe(true);
      const cls = new ExitClassifiers(device, c, classifiersToTensors(c, params));
      try {
        const got = await classifierDeviceLogits(cls, feats);
        const want = classifierLogits(c, params, feats);
        expect(got.map((g) => g.length)).toEqual([60, 60]);
        for (let j = 0; j < 2; j++)
          for (let i = 0; i < 60; i++)
            expect(Math.abs(got[j][i] - want[j][i]), `exit ${j} pos ${i}`).toBeLessThan(
              1e-4 * (1 + Math.abs(want[j][i])),
            );
      } finally {
        cls.dispose();
      }
    });

    it(`${kind}: generation carries the classifier state (prefill + steps give the teacher-forced gates)`, async () => {
      const c = configs[kind];
      const cls = new ExitClassifiers(device, c, classifiersToTensors(c, trained[kind]!.params));
      const model = dynamaxDecoderModel(lm, cls);
      const seqs = [windows[0].slice(0, 11), windows[1].slice(0, 9), windows[3].slice(0, 11)];
      const promptLen = [3, 1, 5];
      const cache = model.newCache(3, 16);
      try {
        const first = await model.prefill(
          seqs.map((q, b) => q.slice(0, promptLen[b])),
          cache,
        );
        // prefill logits: the reference's full-model logits at each prompt's last token
        seqs.forEach((q, b) => {
          const z = ref.forward(q.slice(0, promptLen[b]))[2][promptLen[b] - 1];
          for (let v = 0; v < 29; v++)
            expect(Math.abs(first[b * 29 + v] - z[v])).toBeLessThan(1e-3 * (1 + Math.abs(z[v])));
        });
        // teacher-forced float64 reference of the classifiers over each whole sequence's own features
        const want: number[][][] = []; // [row][exit j][t] σ
        for (const q of seqs) {
          const f = await decoderExitFeatures(lm, [q], 1);
          want.push(
            classifierLogits(c, trained[kind]!.params, f).map((z) => Array.from(z, (x) => 1 / (1 + Math.exp(-x)))),
          );
        }
        // steps: row b feeds seqs[b][t] for t ≥ its prompt length (rows that ran out feed token 0, ignored)
        const steps = Math.max(...seqs.map((q, b) => q.length - promptLen[b]));
        let compared = 0;
        for (let k = 0; k < steps; k++) {
          const tokens = seqs.map((q, b) => q[promptLen[b] + k] ?? 0);
          const r = await model.step(tokens, cache, {
            decide: (s, ctx) => {
              const j = [0, 2].indexOf(ctx.block);
              expect(ctx.rows).toEqual([0, 1, 2]);
              ctx.rows.forEach((row, i) => {
                const t = promptLen[row] + k;
                if (t >= seqs[row].length) return;
                expect(Math.abs(s.gate[i] - want[row][j][t]), `row ${row} exit ${ctx.block} t ${t}`).toBeLessThan(1e-4);
                compared++;
              });
              return new Uint8Array(ctx.rows.length);
            },
          });
          expect(Array.from(r.exitBlocks)).toEqual([3, 3, 3]);
          // full depth: the reference's last-exit logits at this position
          seqs.forEach((q, b) => {
            const t = promptLen[b] + k;
            if (t >= q.length) return;
            const z = ref.forward(q.slice(0, t + 1))[2][t];
            expect(argmaxOf(r.logits.subarray(b * 29, (b + 1) * 29))).toBe(argmaxOf(z));
          });
        }
        expect(compared).toBe(2 * seqs.reduce((a, q, b) => a + q.length - promptLen[b], 0));
        // the teacher-forced score's gates are the same classifier outputs
        const sc = await dynamaxScore(
          lm,
          cls,
          seqs.map((q) => [...q, 0]),
        );
        let o = 0;
        seqs.forEach((q, b) => {
          for (let t = 0; t < q.length; t++)
            for (let j = 0; j < 2; j++) expect(Math.abs(sc.signals[j].gate[o + t] - want[b][j][t])).toBeLessThan(1e-4);
          o += q.length;
        });
      } finally {
        cache.dispose();
        cls.dispose();
      }
    });
  }

  it('exits by the gate: a row that leaves at the first exit does not advance the second classifier', async () => {
    const c = configs.mamba;
    const cls = new ExitClassifiers(device, c, classifiersToTensors(c, trained.mamba!.params));
    const model = dynamaxDecoderModel(lm, cls);
    const q = windows[2];
    // row 0 leaves at block 0 on the 2nd step; row 1 never leaves; both feed the same tokens
    const cache = model.newCache(2, 16);
    const seen: number[][] = [[], []];
    try {
      await model.prefill([q.slice(0, 2), q.slice(0, 2)], cache);
      for (let k = 0; k < 4; k++) {
        const r = await model.step([q[2 + k], q[2 + k]], cache, {
          decide: (s, ctx) => {
            if (ctx.block === 2)
              ctx.rows.forEach((row, i) => {
                seen[row].push(s.gate[i]);
              });
            return ctx.rows.map((row) => ctx.block === 0 && row === 0 && k === 1);
          },
        });
        expect(r.exitBlocks[0]).toBe(k === 1 ? 0 : 3);
        expect(r.blocksRun).toBe(k === 1 ? 5 : 8);
      }
      // row 1 (never left) has all 4 gates at exit 2; row 0 only 3, and its first is row 1's first
      expect(seen[1].length).toBe(4);
      expect(seen[0].length).toBe(3);
      expect(Math.abs(seen[0][0] - seen[1][0])).toBeLessThan(1e-6);
    } finally {
      cache.dispose();
      cls.dispose();
    }
  });
});
