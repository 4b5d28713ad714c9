// The kit catches what it claims to: each broken policy below fails exactly the check aimed at it.
import {
  createGpuDevice,
  definePolicy,
  type ExitPolicy,
  type GpuDevice,
  mulberry32,
  ValidationError,
  wgslFloat,
} from '@offramp/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextF32, prevF32 } from '../calibration/thresholds.js';
import { checkPolicy, expectPolicyConformance, findBoundaries, randomSample } from './index.js';

let gpu: GpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
});
afterAll(() => gpu?.destroy());

const failed = async (factory: (o: any) => ExitPolicy<any>, extra: Record<string, unknown> = {}) => {
  const r = await checkPolicy(factory, { validOptions: [{ threshold: 0.5 }], gpu, ...extra });
  return r.checks.filter((c) => !c.ok).map((c) => c.name);
};

/** A correct policy written against @offramp/core alone, as a plugin author would. */
const goodPolicy = definePolicy((o: { threshold: number }) => {
  if (!(o.threshold > 0 && o.threshold < 1))
    throw new ValidationError(`policy 'good': option 'threshold' must be in (0, 1), got ${o.threshold}`);
  const t = Math.fround(o.threshold);
  return {
    name: 'good',
    needs: ['maxProb'] as const,
    options: o,
    init: () => null,
    decide: (_ctx, s) => Array.from(s.maxProb, (x) => x >= t),
    device: {
      stateSize: 0,
      code: `fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool { return s.max_prob >= f32(${wgslFloat(t)}); }`,
    },
  };
});

describe('conformance kit', () => {
  it('passes a correct policy and reports every check', async () => {
    const r = await expectPolicyConformance(goodPolicy, {
      validOptions: [{ threshold: 0.5 }, { threshold: 0.8 }],
      invalidOptions: [{ threshold: 2 }],
      gpu,
    });
    expect(r.checks.map((c) => c.name)).toEqual([
      'shape',
      'determinism',
      'batch invariance',
      'state isolation',
      'forced last exit',
      'option validation',
      'host/device agreement',
    ]);
    expect(r.checks.every((c) => c.ok && !c.skipped)).toBe(true);
  });

  it('catches a device form that differs only on values exactly at the threshold', async () => {
    const off = (o: { threshold: number }) => ({
      ...goodPolicy(o),
      device: {
        stateSize: 0,
        code: `fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool { return s.max_prob > f32(${wgslFloat(o.threshold)}); }`,
      },
    });
    expect(await failed(off)).toEqual(['host/device agreement']);
  });

  it('finds thresholds derived from options itself: catches t0 − j·step computed in f32 on the device only', async () => {
    // the threshold at exit j is t0 − j·step: the host computes it in f64 and rounds once to f32, the device
    // computes it in f32 arithmetic; for t0 = 0.9, step = 0.1 they differ by an ulp at exit 1 (0.8)
    const descending = definePolicy({
      name: 'descending',
      defaults: { t0: 0.9, step: 0.1 },
      create: (o) => ({
        name: 'descending',
        needs: ['maxProb'] as const,
        init: () => null,
        decide: (ctx, s) => {
          const t = Math.fround(o.t0 - ctx.exitIndex * o.step);
          return Array.from(s.maxProb, (x) => x >= t);
        },
        device: {
          stateSize: 0,
          code: `fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool {
  return s.max_prob >= f32(${wgslFloat(o.t0)}) - f32(exit_index) * f32(${wgslFloat(o.step)});
}`,
        },
      }),
    });
    const host1 = Math.fround(0.9 - 0.1);
    const device1 = Math.fround(Math.fround(0.9) - Math.fround(0.1));
    expect(host1).not.toBe(device1); // the premise: the two forms' thresholds at exit 1 differ
    // no specialValues: 0.8 appears nowhere in the options, the kit must find the boundary at exit 1 itself
    const r = await checkPolicy(descending, { validOptions: [{ t0: 0.9, step: 0.1 }], gpu });
    expect(r.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['host/device agreement']);
    expect(r.checks.find((c) => c.name === 'host/device agreement')!.message).toMatch(
      /at exit [1-3], sampleId \d+: host says (stay|leave), device says (leave|stay)/,
    );
    // the fix the guide gives: compute each exit's threshold once on the host and bake it into the WGSL
    const baked = definePolicy({
      name: 'descending-baked',
      defaults: { t0: 0.9, step: 0.1 },
      create: (o) => {
        const t = (j: number) => Math.fround(o.t0 - j * o.step);
        return {
          name: 'descending-baked',
          needs: ['maxProb'] as const,
          init: () => null,
          decide: (ctx, s) => Array.from(s.maxProb, (x) => x >= t(ctx.exitIndex)),
          device: {
            stateSize: 0,
            code: `fn threshold_at(e: u32) -> f32 { switch e { ${[0, 1, 2].map((j) => `case ${j}u: { return f32(${wgslFloat(t(j))}); }`).join(' ')} default: { return f32(${wgslFloat(t(3))}); } } }
fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool { return s.max_prob >= threshold_at(exit_index); }`,
          },
        };
      },
    });
    const ok = await checkPolicy(baked, {
      validOptions: [
        { t0: 0.9, step: 0.1 },
        { t0: 0.7, step: 0.15 },
      ],
      gpu,
    });
    expect(ok.checks.filter((c) => !c.ok)).toEqual([]);
  });

  it('finds the exact f32 pair where the host decision flips, per exit', () => {
    const shape = {
      numExits: 4,
      numClasses: 4,
      numBlocks: 8,
      exitBlocks: [1, 3, 5, 7],
      costFractions: [0.25, 0.5, 0.75, 1],
    };
    const t = [0.9, 0.8, 0.7].map(Math.fround);
    const p: ExitPolicy<null> = {
      name: 'steps',
      needs: ['maxProb'],
      init: () => null,
      decide: (ctx, s) => Array.from(s.maxProb, (x) => x >= t[Math.min(ctx.exitIndex, 2)]),
    };
    const b = findBoundaries(p, shape, [randomSample(mulberry32(1), shape)]);
    expect(Object.keys(b)).toEqual(['maxProb']);
    for (let e = 0; e < 3; e++) {
      // below, just below, the threshold itself, just above
      expect(b.maxProb![e].sort((x, y) => x - y)).toEqual([prevF32(prevF32(t[e])), prevF32(t[e]), t[e], nextF32(t[e])]);
    }
    expect(b.maxProb![3]).toEqual([]); // the last exit is forced: nothing to find
  });

  it('catches a host form that compares in f64 instead of f32', async () => {
    const f64 = (o: { threshold: number }) =>
      ({
        ...goodPolicy(o),
        decide: (_c: unknown, s: { maxProb: Float32Array }) => Array.from(s.maxProb, (x) => x >= o.threshold),
      }) as ExitPolicy<null>;
    // 0.7 is not an f32 and fround(0.7) < 0.7: a signal of exactly fround(0.7) leaves in f32, stays in f64
    const r = await checkPolicy(f64, { validOptions: [{ threshold: 0.7 }], gpu });
    expect(r.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['host/device agreement']);
  });

  it('catches state kept outside init', async () => {
    const leaky = definePolicy((_o: unknown) => {
      const seen = new Map<number, number>();
      return {
        name: 'leaky',
        init: () => null,
        decide: (_ctx, s) =>
          Array.from(s.sampleIds, (sid) => {
            const c = (seen.get(sid) ?? 0) + 1;
            seen.set(sid, c);
            return c >= 2;
          }),
      };
    });
    expect(await failed(leaky)).toContain('state isolation');
    expect(await failed(leaky)).toContain('determinism');
  });

  it('catches decisions that depend on the other rows', async () => {
    const relative = definePolicy((_o: unknown) => ({
      name: 'relative',
      init: () => null,
      decide: (_ctx, s) => {
        const mean = s.maxProb.reduce((a, b) => a + b, 0) / s.count;
        return Array.from(s.maxProb, (x) => x > mean);
      },
    }));
    expect(await failed(relative)).toEqual(['batch invariance']);
    expect(await failed(relative, { batchDependent: true })).toEqual([]);
  });

  it('catches decisions that depend on the sampleId unless declared', async () => {
    const byId = definePolicy((_o: unknown) => ({
      name: 'by-id',
      init: () => null,
      decide: (ctx, s) => Array.from(s.sampleIds, (sid) => sid % 4 === ctx.exitIndex),
    }));
    expect(await failed(byId)).toEqual(['batch invariance']);
    expect(await failed(byId, { usesSampleId: true })).toEqual([]);
  });

  it('catches non-determinism', async () => {
    let calls = 0;
    const flaky = definePolicy((_o: unknown) => ({
      name: 'flaky',
      init: () => null,
      decide: (_c, s) => new Array(s.count).fill(calls++ % 2 === 0),
    }));
    expect(await failed(flaky)).toContain('determinism');
  });

  it('catches option errors that are not ValidationErrors naming the policy', async () => {
    const plain = (o: { threshold: number }) => {
      if (o.threshold > 1) throw new Error('bad threshold');
      return goodPolicy(o);
    };
    const r = await checkPolicy(plain, { validOptions: [{ threshold: 0.5 }], invalidOptions: [{ threshold: 2 }], gpu });
    expect(r.checks.find((c) => c.name === 'option validation')).toMatchObject({ ok: false });
    const accepted = await checkPolicy(goodPolicy, {
      validOptions: [{ threshold: 0.5 }],
      invalidOptions: [{ threshold: 0.7 }],
      gpu,
    });
    expect(accepted.checks.find((c) => c.name === 'option validation')!.message).toMatch(/was accepted/);
  });

  it('catches decisions that are not booleans or 0/1', async () => {
    const two = definePolicy((_o: unknown) => ({
      name: 'two',
      init: () => null,
      decide: (_c, s) => new Array(s.count).fill(2),
    }));
    expect(await failed(two)).toEqual(['forced last exit']);
  });

  it('catches WGSL that does not compile, and reports a missing GPU as skipped', async () => {
    const broken = (o: { threshold: number }) => ({
      ...goodPolicy(o),
      device: {
        stateSize: 0,
        code: 'fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool { return s.nope; }',
      },
    });
    expect(await failed(broken)).toEqual(['host/device agreement']);
    const r = await checkPolicy(goodPolicy, { validOptions: [{ threshold: 0.5 }] });
    expect(r.ok).toBe(true);
    expect(r.checks.find((c) => c.name === 'host/device agreement')!.skipped).toBe(true);
    await expect(expectPolicyConformance(broken, { validOptions: [{ threshold: 0.5 }], gpu })).rejects.toThrow(
      /fails the conformance kit:\n {2}✗ host\/device agreement/,
    );
  });
});
