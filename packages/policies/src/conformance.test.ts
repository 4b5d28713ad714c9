// Every built-in policy and combinator through the conformance kit, host/device agreement on the GPU.
import { createGpuDevice, type ExitPolicy, type GpuDevice, mulberry32 } from '@offramp/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allOf, anyOf, maxBlock, maxExit, minBlock, minExit } from './combinators.js';
import { type BuiltinPolicyName, builtinPolicies, createPolicy } from './registry.js';
import {
  type CheckPolicyOptions,
  checkPolicy,
  expectPolicyConformance,
  findBoundaries,
  randomSample,
} from './testing/index.js';

let gpu: GpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

type Case = Omit<CheckPolicyOptions<any>, 'gpu'>;
const finals = Array.from({ length: 24 }, (_, i) => (i * 5) % 4);

/** Kit settings of each built-in: valid option sets (defaults, per-exit lists, modes) and refused ones. */
const cases: Record<BuiltinPolicyName, Case> = {
  confidence: {
    validOptions: [{}, { threshold: 0.6 }, { threshold: [0.9, 0.7, 0.5, 0.3] }],
    invalidOptions: [
      { options: { threshold: 1.5 }, message: 'threshold' },
      { threshold: [0.5, 0.5] },
      { treshold: 0.5 },
      { threshold: 'high' },
    ],
  },
  entropy: {
    validOptions: [{ threshold: 0.5 }, { threshold: [0.2, 0.4, 0.8, 1.2] }],
    invalidOptions: [
      { options: { threshold: -1 }, message: /threshold.*\(0, ln C\]/ },
      { options: { threshold: 2 }, message: 'C=4' },
      {},
    ],
  },
  margin: { validOptions: [{}, { threshold: 0.25 }], invalidOptions: [{ threshold: -0.1 }] },
  saturation: { validOptions: [{}, { threshold: 0.5 }], invalidOptions: [{ threshold: 2 }] },
  patience: {
    validOptions: [
      { patience: 1 },
      { patience: 2 },
      { mode: 'regression', delta: 0.2 },
      { mode: 'regression', delta: 0.05, signal: 'gate', patience: 1 },
    ],
    invalidOptions: [{ patience: 0 }, { patience: 1.5 }, { mode: 'median' }, { delta: 0 }],
  },
  ponder: {
    validOptions: [{}, { q: 0.3 }, { mode: 'sample', seed: 7 }, { mode: 'expectation' }],
    invalidOptions: [{ q: 1 }, { mode: 'mean' }, { seed: -1 }],
    usesSampleId: true,
  },
  gate: { validOptions: [{}, { threshold: 0.25 }], invalidOptions: [{ threshold: 1 }] },
  window: {
    validOptions: [
      { wLo: 0.4, wHi: 0.8 },
      { wLo: 0.1, wHi: 0.3, signal: 'margin' },
    ],
    invalidOptions: [{ wLo: 0.9, wHi: 0.1 }, { wLo: 0.1 }],
  },
  budget: {
    validOptions: [{ target: 0.5 }, { target: 0.7, base: 'margin', threshold: 0.4 }],
    invalidOptions: [{ target: 0 }, { target: 0.5, mode: 'pid' }, {}],
  },
  online: {
    validOptions: [{}, { thresholds: [0.3, 0.6, 0.9], seed: 3, signal: 'margin' }],
    invalidOptions: [{ thresholds: [0.5] }, { eta: 0 }],
  },
  schedule: {
    validOptions: [
      { hMin: 0, hMax: 3, T: 20 },
      { hMin: 1, hMax: 3, t0: 4, T: 10, positionOffset: 2 },
      {
        hMin: 1,
        hMax: 6,
        T: 8,
        unit: 'block',
        exitBlocks: [1, 3, 5, 7],
        positions: Array.from({ length: 24 }, (_, i) => (i * 3) % 11),
      },
      { hMin: 0, hMax: 7, T: 5, unit: 'block', position: 2 },
    ],
    invalidOptions: [
      { hMin: 3, hMax: 1, T: 4 },
      { hMin: 0, hMax: 2, t0: 5, T: 5 },
      { hMin: 0, hMax: 2, T: 5, unit: 'block', exitBlocks: [0, 1, 2, 3] },
    ],
    usesSampleId: true,
  },
  quality: { validOptions: [{}, { threshold: 0.3, signal: 'maxProb' }], invalidOptions: [{ signal: 'loss' }] },
  static: {
    validOptions: [{ exit: 0 }, { exit: 2 }],
    invalidOptions: [{ options: { exit: 4 }, message: '[0, 3]' }, { exit: -1 }, {}],
  },
  oracle: { validOptions: [{ finals }], invalidOptions: [{ finals: [] }, { finals: [9, 9] }], usesSampleId: true },
};

describe('built-in policies pass the conformance kit (host/device on the GPU)', () => {
  it('covers every built-in', () => {
    expect(Object.keys(cases).sort()).toEqual(Object.keys(builtinPolicies).sort());
  });
  for (const [name, c] of Object.entries(cases)) {
    it(name, async () => {
      const report = await expectPolicyConformance((o: any) => createPolicy(name, o), { ...c, gpu });
      const device = report.checks.find((k) => k.name === 'host/device agreement')!;
      // every built-in except the host-only forms has a device form, and it was checked
      if (name !== 'ponder' || c.validOptions.length > 1) expect(device.skipped).toBeFalsy();
    });
  }
  it('the kit finds the decision boundaries of the threshold built-ins itself (per exit, in f32)', () => {
    const shape = {
      numExits: 4,
      numClasses: 4,
      numBlocks: 8,
      exitBlocks: [1, 3, 5, 7],
      costFractions: [0.25, 0.5, 0.75, 1],
    };
    const bases = [randomSample(mulberry32(2), shape), randomSample(mulberry32(3), shape)];
    const per = [0.2, 0.4, 0.8];
    const b = findBoundaries(createPolicy('entropy', { threshold: [...per, 1.2] }), shape, bases);
    for (let e = 0; e < 3; e++) expect(b.entropy![e]).toContain(Math.fround(per[e]));
    const w = findBoundaries(createPolicy('window', { wLo: 0.3, wHi: 0.9 }), shape, bases);
    for (let e = 0; e < 3; e++)
      expect(w.maxProb![e]).toEqual(expect.arrayContaining([Math.fround(0.3), Math.fround(0.9)]));
  });
  it("budget's batch mode (host only, batch dependent by design)", async () => {
    const r = await expectPolicyConformance((o: any) => createPolicy('budget', o), {
      validOptions: [{ target: 0.5, mode: 'batch' }],
      batchDependent: true,
      gpu,
    });
    expect(r.checks.find((k) => k.name === 'batch invariance')!.skipped).toBe(true);
  });
});

describe('combinators pass the conformance kit', () => {
  const parts = (): ExitPolicy<any>[] => [
    createPolicy('confidence', { threshold: 0.7 }),
    createPolicy('patience', { patience: 1 }),
    createPolicy('ponder', { q: 0.6 }),
  ];
  const combos: [string, (o: { k: number }) => ExitPolicy<any>][] = [
    ['anyOf', () => anyOf(...parts())],
    ['allOf', () => allOf(...parts())],
    ['minBlock', () => minBlock(createPolicy('patience', { patience: 1 }), 3, { exitBlocks: [1, 3, 5, 7] })],
    ['maxBlock', () => maxBlock(createPolicy('ponder', { q: 0.8 }), 5, { exitBlocks: [1, 3, 5, 7] })],
    [
      'minExit',
      () => minExit(anyOf(createPolicy('margin', { threshold: 0.3 }), createPolicy('ponder', { q: 0.4 })), 1),
    ],
    [
      'maxExit nested',
      () =>
        maxExit(allOf(createPolicy('patience', { patience: 1 }), minExit(createPolicy('ponder', { q: 0.3 }), 1)), 2),
    ],
  ];
  for (const [name, make] of combos) {
    it(name, async () => {
      const r = await expectPolicyConformance(make, { validOptions: [{ k: 0 }], gpu });
      expect(r.checks.find((k) => k.name === 'host/device agreement')!.skipped).toBeFalsy();
    });
  }
  it('minBlock without exit blocks is host only', async () => {
    const r = await checkPolicy(() => minBlock(createPolicy('confidence', {}), 3), { validOptions: [{}], gpu });
    expect(r.ok).toBe(true);
    expect(r.checks.find((k) => k.name === 'host/device agreement')!.skipped).toBe(true);
  });
});
