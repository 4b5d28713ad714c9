// Overlapping generate() calls on one MambaLM (as a server makes them) each return what the same call
// returns alone: every call has its own cache and scratch tensors, nothing is shared between calls.
import { createGpuDevice, type GpuDevice } from '@offramp/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { MambaConfig } from './config.js';
import { type GenerateOptions, type GenerateResult, MambaLM } from './model.js';
import { randomMambaWeights } from './random-weights.js';
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

let gpu: GpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

it('overlapping generate calls each return their own tokens and exits', async () => {
  const { tensors } = normalizeMambaTensors(cfg, randomMambaWeights(cfg, { seed: 11, lmHead: false }));
  const model = new MambaLM(gpu, cfg, tensors, { exits: [0, 1, 2] });
  const jobs: { prompts: number[][]; o: GenerateOptions }[] = Array.from({ length: 4 }, (_, j) => ({
    prompts: Array.from({ length: 1 + (j % 3) }, (_, b) =>
      Array.from({ length: 2 + ((b * 3 + j) % 7) }, (_, t) => (t * 7 + j + b) % 37),
    ),
    o: {
      maxNewTokens: 4,
      sampling: j % 2 ? { temperature: 1.2, topK: 8, seed: j } : undefined,
      exit: j % 3 === 2 ? { rule: { kind: 'maxProb', threshold: 0.08 } } : undefined,
    },
  }));
  const alone: GenerateResult[] = [];
  for (const j of jobs) alone.push(await model.generate(j.prompts, j.o));
  const together = await Promise.all(jobs.map((j) => model.generate(j.prompts, j.o)));
  together.forEach((r, k) => {
    expect(r.tokens, `call ${k}`).toEqual(alone[k].tokens);
    expect(r.exitBlocks, `call ${k}`).toEqual(alone[k].exitBlocks);
  });
  expect(alone.some((r) => r.exitBlocks.flat().some((b) => b < cfg.numLayers - 1))).toBe(true);
  model.dispose();
});
