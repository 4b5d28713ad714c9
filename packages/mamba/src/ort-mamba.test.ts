// The Mamba LM on ONNX Runtime (real onnxruntime-node) against the float64 MambaReference on random weights
// (with and without biases, tied and untied): prefill of ragged prompts, steps with per-row exits under
// 'freeze' and 'partial' (logits and every block's conv/SSM state), teacher-forced scoring; and against
// MambaLM on WebGPU through generateTokens on checkpoints/austen-mamba. Skipped with a message only where
// onnxruntime-node cannot load.
import { join } from 'node:path';
import { createGpuDevice, createOrtCpu, loadOrt } from '@offramp/core';
import { createPolicy, generateTokens } from '@offramp/policies';
import { describe, expect, it } from 'vitest';
import type { MambaConfig } from './config.js';
import { mambaGenerationModel } from './generation.js';
import { MambaLM } from './model.js';
import { loadMambaDir } from './node.js';
import { OrtMambaLM } from './ort-mamba.js';
import { randomMambaWeights } from './random-weights.js';
import { MambaReference, type RefState } from './reference.js';
import { normalizeMambaTensors } from './weights.js';

const ortError = await loadOrt().then(
  () => null,
  (e: Error) => e,
);
if (ortError) console.warn(`skipping the ONNX Runtime Mamba tests: ${ortError.message}`);
const describeOrt = ortError ? describe.skip : describe;

const TOL = 2e-4;

const base: MambaConfig = {
  vocabSize: 23,
  hiddenSize: 12,
  numLayers: 4,
  intermediateSize: 24,
  expand: 2,
  stateSize: 4,
  convKernel: 4,
  timeStepRank: 2,
  layerNormEpsilon: 1e-5,
  useBias: false,
  useConvBias: true,
  tieWordEmbeddings: true,
  exits: [0, 2, 3],
};
const CONFIGS: Record<string, MambaConfig> = {
  'tied, conv bias': base,
  'untied, all biases': { ...base, useBias: true, tieWordEmbeddings: false, exits: [1, 3] },
};

/** max |a − b| over max |b|. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let err = 0;
  let mx = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    mx = Math.max(mx, Math.abs(b[i]));
  }
  return err / mx;
}

async function setup(cfg: MambaConfig, seed: number) {
  const { tensors } = normalizeMambaTensors(
    cfg,
    randomMambaWeights(cfg, { seed, lmHead: !cfg.tieWordEmbeddings }) as never,
  );
  const model = new OrtMambaLM(await createOrtCpu({ threads: 1 }), cfg, tensors);
  return { model, ref: new MambaReference(cfg, tensors as never) };
}

function expectStates(got: { conv: Float32Array[]; ssm: Float32Array[] }, want: RefState, what: string) {
  want.conv.forEach((c, l) => {
    expect(relErr(got.conv[l], c), `${what} conv block ${l}`).toBeLessThan(TOL);
    expect(relErr(got.ssm[l], want.ssm[l]), `${what} ssm block ${l}`).toBeLessThan(TOL);
  });
}

describeOrt('OrtMambaLM against the float64 reference', () => {
  describe.each(Object.keys(CONFIGS))('%s', (name) => {
    const cfg = CONFIGS[name];
    it('prefill of ragged prompts, then steps with per-row exits (freeze and partial): logits and states', async () => {
      const { model, ref } = await setup(cfg, 3);
      const V = cfg.vocabSize;
      const L = cfg.numLayers;
      const early = model.exits.slice(0, -1);
      const prompts = [[1, 2, 3], [4], [5, 6, 7, 8, 9, 10]];
      const cache = model.newCache(3);
      const z = await model.prefill(prompts, cache);
      const states = prompts.map((p, b) => {
        const r = ref.prefill(p);
        expect(relErr(z.subarray(b * V, (b + 1) * V), r.logits.at(-1)!), `prefill row ${b}`).toBeLessThan(TOL);
        expectStates(cache.readSequence(b), r.state, `prefill row ${b}`);
        return r.state;
      });
      const plan = [
        [L - 1, early[0], early.at(-1)!],
        [early[0], early[0], L - 1],
        [L - 1, L - 1, L - 1],
        [early.at(-1)!, L - 1, early[0]],
      ];
      for (const skip of ['freeze', 'partial'] as const) {
        for (const [k, want] of plan.entries()) {
          const toks = [(k * 3 + 1) % V, (k * 5 + 2) % V, (k * 7 + 3) % V];
          const r = await model.step(toks, cache, {
            skip,
            decide: (s, { block, rows }) => {
              expect(s.maxProb.length).toBe(rows.length);
              return rows.map((row) => want[row] === block);
            },
          });
          expect([...r.exitBlocks], `${skip} step ${k}`).toEqual(want);
          expect(r.blocksRun).toBe(want.reduce((a, e) => a + e + 1, 0));
          toks.forEach((id, b) => {
            const o = ref.step(id, states[b], { exitAfter: want[b], skip });
            expect(relErr(r.logits.subarray(b * V, (b + 1) * V), o.logits), `${skip} step ${k} row ${b}`).toBeLessThan(
              TOL,
            );
          });
        }
        for (let b = 0; b < 3; b++) expectStates(cache.readSequence(b), states[b], `${skip} row ${b}`);
      }
      await model.dispose();
    });
  });

  it('score: −log p at every exit and the signals of the rows', async () => {
    const { model, ref } = await setup(base, 7);
    const seqs = [
      [1, 3, 5, 7, 9],
      [2, 4, 6],
    ];
    const s = await model.score(seqs);
    expect(s.count).toBe(6);
    let i = 0;
    for (const q of seqs) {
      const st = ref.emptyState();
      for (let t = 0; t + 1 < q.length; t++, i++) {
        const { hidden } = ref.step(q[t], st);
        model.exits.forEach((blk, e) => {
          const z = ref.head(hidden[blk]);
          const m = Math.max(...z);
          const lse = m + Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0));
          expect(s.tokenNll[e][i]).toBeCloseTo(lse - z[q[t + 1]], 3);
          expect(s.signals[e].maxProb[i]).toBeCloseTo(Math.exp(Math.max(...z) - lse), 4);
        });
      }
    }
    await model.dispose();
  });

  it('bad input gets a clear error', async () => {
    const { model } = await setup(base, 1);
    const cache = model.newCache(2);
    await expect(model.prefill([[1], []], cache)).rejects.toThrow(/prompt 1 is empty/);
    await expect(model.prefill([[1, 99]], model.newCache(1))).rejects.toThrow(/not a token id/);
    await expect(model.step([1, 2], cache, { decide: () => [], skip: 'propagate' })).rejects.toThrow(/freeze, partial/);
    await expect(model.step([1, 2], cache, { decide: () => [true] })).rejects.toThrow(/1 decisions for 2 rows/);
    await model.dispose();
  });
});

describeOrt('greedy generation with token exits: ONNX Runtime = WebGPU on checkpoints/austen-mamba', () => {
  it.each(['freeze', 'partial'])('skip %s: the same tokens and exit blocks', async (skip) => {
    const { config, tensors } = await loadMambaDir(join(import.meta.dirname, '../../../checkpoints/austen-mamba'));
    const device = await createGpuDevice();
    const gpu = new MambaLM(device, config, tensors);
    const ort = new OrtMambaLM(await createOrtCpu({ threads: 1 }), config, tensors, { exits: [...gpu.exits] });
    try {
      const prompts = [
        [5, 12, 3, 9, 17],
        [20, 1],
        [7, 7, 30, 2, 11, 4],
      ].map((p) => p.map((t) => t % config.vocabSize));
      const o = { maxNewTokens: 16, policy: createPolicy('confidence', { threshold: 0.5 }), skip };
      const a = await generateTokens(mambaGenerationModel(gpu), prompts, o);
      const b = await generateTokens(ort, prompts, o);
      expect(b.tokens).toEqual(a.tokens);
      expect(b.exitBlocks).toEqual(a.exitBlocks);
      expect(b.exitBlocks.flat().some((e) => e < config.numLayers - 1)).toBe(true);
    } finally {
      gpu.dispose();
      await ort.dispose();
      device.destroy();
    }
  });
});
