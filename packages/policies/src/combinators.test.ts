// Combinator size limits: the number of parts, the nesting depth and the total number of policies are
// capped with a clear error before any WGSL is built, and the largest allowed policies compile and decide
// on the device as on the host.
import { createGpuDevice, type ExitPolicy, type GpuDevice, mulberry32, runDevicePolicy } from '@offramp/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  allOf,
  anyOf,
  MAX_COMBINATOR_DEPTH,
  MAX_COMBINATOR_PARTS,
  MAX_COMBINATOR_POLICIES,
  minExit,
} from './combinators.js';
import { runLoop } from './loop.js';
import { policyFromJson } from './policy-file.js';
import { createPolicy } from './registry.js';
import { randomSample } from './testing/index.js';

let gpu: GpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

const conf = (k: number) => createPolicy('confidence', { threshold: 0.3 + (k % 60) / 100 });
const mixed = (k: number): ExitPolicy<any> =>
  [
    () => conf(k),
    () => createPolicy('entropy', { threshold: 0.1 + (k % 7) / 10 }),
    () => createPolicy('patience', { patience: 1 + (k % 3) }),
    () => createPolicy('ponder', { q: 0.2 + (k % 5) / 10 }),
  ][k % 4]();

describe('combinator limits', () => {
  it('refuses more parts than allowed, quickly, naming the limit', () => {
    const many = Array.from({ length: 100_000 }, (_, k) => conf(k));
    const t0 = performance.now();
    expect(() => anyOf(...many)).toThrow(
      `anyOf: got 100000 policies, at most ${MAX_COMBINATOR_PARTS} are allowed in one combinator (nest combinators to group more, up to ${MAX_COMBINATOR_POLICIES} policies in all)`,
    );
    expect(() => allOf(...many.slice(0, MAX_COMBINATOR_PARTS + 1))).toThrow(
      `allOf: got ${MAX_COMBINATOR_PARTS + 1} policies, at most ${MAX_COMBINATOR_PARTS} are allowed`,
    );
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('refuses nesting deeper than allowed and more policies in all than allowed', () => {
    let p: ExitPolicy<any> = conf(0);
    for (let d = 1; d <= MAX_COMBINATOR_DEPTH; d++) p = d % 2 ? anyOf(p, conf(d)) : minExit(p, 1);
    expect(() => allOf(p)).toThrow(
      `allOf: combinators nested ${MAX_COMBINATOR_DEPTH + 1} levels deep, at most ${MAX_COMBINATOR_DEPTH} levels are allowed`,
    );
    expect(() => minExit(p, 1)).toThrow(`minExit: combinators nested ${MAX_COMBINATOR_DEPTH + 1} levels deep`);
    const full = () => anyOf(...Array.from({ length: MAX_COMBINATOR_PARTS }, (_, k) => conf(k)));
    const groups = Array.from({ length: MAX_COMBINATOR_POLICIES / MAX_COMBINATOR_PARTS }, full);
    expect(() => anyOf(...groups, conf(1))).toThrow(
      `anyOf: the combined policy holds ${MAX_COMBINATOR_POLICIES + 1} policies over all its levels, at most ${MAX_COMBINATOR_POLICIES} are allowed`,
    );
    // policy files go through the same constructors
    const parts = Array.from({ length: MAX_COMBINATOR_PARTS + 1 }, () => ({ name: 'confidence', options: {} }));
    expect(() => policyFromJson({ offramp_policy: 1, name: 'anyOf', options: { policies: parts } })).toThrow(
      `at most ${MAX_COMBINATOR_PARTS} are allowed in one combinator`,
    );
  });

  it('compiles the largest allowed policies and decides on the device as on the host', async () => {
    const shape = {
      numExits: 4,
      numClasses: 4,
      numBlocks: 8,
      exitBlocks: [1, 3, 5, 7],
      costFractions: [0.25, 0.5, 0.75, 1],
    };
    const widest = anyOf(...Array.from({ length: MAX_COMBINATOR_PARTS }, (_, k) => mixed(k)));
    const most = allOf(
      ...Array.from({ length: MAX_COMBINATOR_POLICIES / MAX_COMBINATOR_PARTS }, (_, g) =>
        anyOf(...Array.from({ length: MAX_COMBINATOR_PARTS }, (_, k) => mixed(g * MAX_COMBINATOR_PARTS + k))),
      ),
    );
    let deepest: ExitPolicy<any> = mixed(1);
    for (let d = 1; d <= MAX_COMBINATOR_DEPTH; d++) deepest = d % 2 ? anyOf(deepest, mixed(d)) : minExit(deepest, 1);
    const n = 16;
    const rand = mulberry32(11);
    const batch = Array.from({ length: n }, () => randomSample(rand, shape));
    const info = { batchSize: n, ...shape };
    for (const p of [widest, most, deepest]) {
      expect(p.device).toBeDefined();
      const host = runLoop(p, shape, batch, { batchSize: n });
      const dev = await runDevicePolicy(
        gpu,
        p,
        info,
        host.steps.map(({ ctx, signals }) => ({ ctx, signals })),
      );
      host.steps.forEach((st, j) => {
        const want = Array.from({ length: st.signals.count }, (_, r) => (st.ctx.isLast || st.decided[r] ? 1 : 0));
        expect(Array.from(dev[j])).toEqual(want);
      });
    }
  }, 120_000);
});
