// The Mamba LM through the common generation interface: generateTokens (any exit policy, per token) gives
// exactly MambaLM.generate's tokens and exit blocks for the model's own rules (maxProb, entropy, classifier),
// with the freeze and partial skip strategies and with sampling; the teacher-forced score's last exit
// equals MambaLM.score.
import { createGpuDevice, type GpuDevice, mulberry32 } from '@offramp/core';
import { createPolicy, generateTokens } from '@offramp/policies';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MambaConfig } from './config.js';
import { type ExitClassifierConfig, ExitClassifiers } from './exit-classifier.js';
import { mambaGenerationModel } from './generation.js';
import { MambaLM } from './model.js';
import { randomMambaWeights } from './random-weights.js';
import { classifiersToTensors, initClassifiers } from './train/classifier-train.js';
import { normalizeMambaTensors } from './weights.js';

const cfg: MambaConfig = {
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
};

let gpu: GpuDevice;
let lm: MambaLM;
beforeAll(async () => {
  gpu = await createGpuDevice();
  const { tensors } = normalizeMambaTensors(cfg, randomMambaWeights(cfg, { seed: 5 }));
  lm = new MambaLM(gpu, cfg, tensors, { exits: [0, 1, 2] });
});
afterAll(() => {
  lm?.dispose();
  gpu?.destroy();
});

const prompts = [[1, 2, 3], [4], [5, 6, 7, 8, 9]];

async function medianAt(signal: 'maxProb' | 'entropy', e: number): Promise<number> {
  const seqs = [
    [1, 3, 5, 7, 9, 11, 13, 15, 2, 4],
    [2, 2, 4, 8, 16, 9, 18, 13, 3, 6],
  ];
  const sc = await mambaGenerationModel(lm).score(seqs);
  const xs = Array.from(sc.signals[e][signal]).sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)];
}

describe('Mamba LM on the common generation interface', () => {
  it('generateTokens equals MambaLM.generate: full depth, maxProb and entropy rules, freeze and partial, sampling', async () => {
    const model = mambaGenerationModel(lm);
    const mp = Math.fround(await medianAt('maxProb', 1));
    const en = Math.fround(await medianAt('entropy', 1));
    const cases = [
      { rule: null, policy: null },
      { rule: { kind: 'maxProb' as const, threshold: mp }, policy: createPolicy('confidence', { threshold: mp }) },
      // the model's rule leaves at entropy ≤ S, the policy at entropy < S: equal unless a value sits exactly on S
      { rule: { kind: 'entropy' as const, threshold: en }, policy: createPolicy('entropy', { threshold: en }) },
    ];
    let early = 0;
    for (const skip of ['freeze', 'partial'] as const)
      for (const sampling of [{}, { temperature: 0.7, topP: 0.9, seed: 11 }])
        for (const c of cases) {
          const own = await lm.generate(prompts, {
            maxNewTokens: 8,
            sampling,
            exit: c.rule ? { rule: c.rule, skip } : undefined,
          });
          const ours = await generateTokens(model, prompts, {
            maxNewTokens: 8,
            sampling,
            skip,
            policy: c.policy ?? undefined,
          });
          const what = `${skip} ${JSON.stringify(sampling)} ${c.rule?.kind ?? 'full'}`;
          expect(ours.tokens, what).toEqual(own.tokens);
          expect(ours.exitBlocks, what).toEqual(own.exitBlocks);
          early += own.exitBlocks.flat().filter((b) => b < 3).length;
        }
    expect(early).toBeGreaterThan(0);
    await expect(generateTokens(model, prompts, { maxNewTokens: 2, skip: 'propagate' })).rejects.toThrow(
      /freeze, partial/,
    );
  });

  it.each(['mamba', 'ffn'] as const)(
    "%s exit classifiers: the gate policy on σ(classifier) equals the model's 'classifier' rule",
    async (kind) => {
      const c: ExitClassifierConfig = {
        kind,
        exits: [0, 1, 2],
        hiddenSize: cfg.hiddenSize,
        inner: 16,
        stateSize: 4,
        rank: 1,
        convKernel: 3,
        hidden: 10,
      };
      const p = initClassifiers(c, 4);
      const rand = mulberry32(9);
      const arrays =
        p.kind === 'mamba' ? p.blocks.flatMap((b) => Object.values(b)) : p.ffns.flatMap((f) => Object.values(f));
      for (const a of arrays) if (a) for (let i = 0; i < a.length; i++) a[i] += (rand() - 0.5) * 0.6;
      const cls = new ExitClassifiers(gpu, c, classifiersToTensors(c, p));
      try {
        const model = mambaGenerationModel(lm, { classifiers: cls });
        const sc = await model.score([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]);
        const gates = Array.from(sc.signals[1].gate).sort((a, b) => a - b);
        expect(gates.every((g) => g > 0 && g < 1)).toBe(true);
        const t = Math.fround(gates[Math.floor(gates.length / 2)]);
        const own = await lm.generate(prompts, {
          maxNewTokens: 8,
          classifiers: cls,
          exit: { rule: { kind: 'classifier', threshold: t } },
        });
        // gate policy leaves at σ > t, the rule at σ ≥ t: equal unless a value sits exactly on t
        const ours = await generateTokens(model, prompts, {
          maxNewTokens: 8,
          policy: createPolicy('gate', { threshold: t }),
        });
        expect(ours.tokens).toEqual(own.tokens);
        expect(ours.exitBlocks).toEqual(own.exitBlocks);
      } finally {
        cls.dispose();
      }
    },
  );

  it("teacher-forced score: the last exit's NLL equals MambaLM.score, the argmax that of its logits", async () => {
    const seqs = [
      [1, 5, 9, 2, 7, 3],
      [4, 4, 8, 1, 0, 2],
    ];
    const sc = await mambaGenerationModel(lm).score(seqs);
    const own = await lm.score(seqs);
    expect(sc.count).toBe(own.count);
    const E = lm.exits.length;
    for (let i = 0; i < sc.count; i++) {
      expect(sc.tokenNll[E - 1][i]).toBeCloseTo(own.tokenNll[i], 4);
      expect(sc.signals[E - 1].argmax[i]).toBe(own.argmax[i]);
    }
    // early exits: real signals (probabilities in (0, 1], similarity a cosine)
    for (let e = 0; e < E - 1; e++)
      for (let i = 0; i < sc.count; i++) {
        expect(sc.signals[e].maxProb[i]).toBeGreaterThan(0);
        expect(Math.abs(sc.signals[e].similarity[i])).toBeLessThanOrEqual(1 + 1e-5);
      }
  });
});
