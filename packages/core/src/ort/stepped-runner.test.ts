// The stepped runner (per-depth row stores, admit between steps) against OrtRunner.run of each admitted group
// alone: same exits, same predictions, logits and traced signals within the ONNX Runtime path's tolerance, same
// FLOPs, under random interleavings of admissions and steps with mixed policies (threshold, never-exit, PABEE
// patience and a budget policy from @offramp/policies, whose state is per group), on a random encoder, a random
// CNN and the shipped fashion-cnn and imdb-encoder checkpoints; plus the bookkeeping (deepest first, maxRows,
// groups never split, clear) and clear errors.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { EarlyExitModel, ModelInput } from '../engine/model.js';
import { type ExitPolicy, maxProbThreshold, neverExit } from '../engine/policy.js';
import { Runner, type SampleResult } from '../engine/runner.js';
import { ValidationError } from '../errors.js';
import type { CnnClassifierConfig, EncoderClassifierConfig } from '../models/config.js';
import { buildModel, type HostTensor, randomWeights } from '../models/index.js';
import { CHECKPOINTS, fashionTest, imdbHeldOut, REPO_ROOT } from '../testing-internal/checkpoint-data.js';
import { mulberry32, randomArray } from '../util/random.js';
import { loadModelDir } from '../weights/model-dir.js';
import { createOrtCpu, loadOrt, OrtCpuDevice } from './ort-cpu.js';
import { OrtRunner } from './ort-runner.js';
import { type FinishedRow, SteppedRunner } from './stepped-runner.js';

const ortError = await loadOrt().then(
  () => null,
  (e: Error) => e,
);
if (ortError) console.warn(`skipping the stepped runner tests: ${ortError.message}`);

const LOGIT_TOL = 2e-4;
/** A confidence this close to a threshold may fall on either side in two batchings (ORT's sums differ by batch). */
const TIE = 1e-4;

// the policies package's own policies (its sources, as core does not depend on it)
const pol = await import(/* @vite-ignore */ pathToFileURL(join(REPO_ROOT, 'packages/policies/src/index.ts')).href);

const encoderCfg: EncoderClassifierConfig = {
  architecture: 'encoder_classifier',
  vocab_size: 50,
  max_position: 64,
  hidden_size: 32,
  num_layers: 4,
  num_heads: 4,
  intermediate_size: 64,
  num_classes: 3,
  exits: { blocks: [0, 1, 2, 3], head: 'pooler', gate: true, gate_hidden: 8 },
};
const cnnCfg: CnnClassifierConfig = {
  architecture: 'cnn_classifier',
  image_size: 12,
  in_channels: 1,
  stem_channels: 4,
  channels: [6, 8, 8],
  strides: [1, 2, 2],
  num_classes: 4,
  exits: { blocks: [0, 1, 2], head: 'linear' },
};

/** Rows a..b of a batch. */
function rowsOf(input: ModelInput, a: number, b: number, width: number): ModelInput {
  if ('ids' in input) return { ids: input.ids.slice(a, b) };
  const f = input.features as Float32Array | Float32Array[];
  return { features: f instanceof Float32Array ? f.slice(a * width, b * width) : f.slice(a, b) };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

interface Plan {
  from: number;
  to: number;
  policy: ExitPolicy<any>;
}

/**
 * Admits the rows in random groups with random policies, interleaved with steps at random, then steps until
 * every row has left; returns the plan and each group's finished rows (in index order).
 */
async function runInterleaved(
  stepped: SteppedRunner<number>,
  input: ModelInput,
  n: number,
  width: number,
  policies: ExitPolicy<any>[],
  seed: number,
): Promise<{ plans: Plan[]; rows: Map<number, FinishedRow<number>[]>; maxLive: number[]; steps: number }> {
  const rand = mulberry32(seed);
  const plans: Plan[] = [];
  const rows = new Map<number, FinishedRow<number>[]>();
  const maxLive = new Array(stepped.model.exitBlocks.length).fill(0);
  let steps = 0;
  const collect = (finished: FinishedRow<number>[]) => {
    for (const f of finished) {
      const list = rows.get(f.tag!) ?? [];
      list.push(f);
      rows.set(f.tag!, list);
    }
  };
  const doStep = async () => {
    for (const [i, v] of stepped.liveAt().entries()) maxLive[i] = Math.max(maxLive[i], v);
    const r = await stepped.step();
    steps++;
    collect(r.finished);
  };
  let next = 0;
  while (next < n) {
    if (rand() < 0.6) {
      const size = Math.min(n - next, 1 + Math.floor(rand() * 4));
      const policy = policies[Math.floor(rand() * policies.length)];
      const tag = plans.length;
      plans.push({ from: next, to: next + size, policy });
      await stepped.admit(rowsOf(input, next, next + size, width), { policy, trace: true, tag });
      next += size;
    } else await doStep();
  }
  while (stepped.live > 0) await doStep();
  for (const list of rows.values()) list.sort((a, b) => a.index - b.index);
  return { plans, rows, maxLive, steps };
}

/**
 * Each group's rows equal OrtRunner.run of the group alone. Returns how many exits differed on a tie (a
 * confidence within TIE of `threshold` at the exit where the two parted); any other difference fails.
 */
async function expectEqualsAlone(
  ort: OrtRunner,
  input: ModelInput,
  width: number,
  plans: Plan[],
  rows: Map<number, FinishedRow<number>[]>,
  threshold: number | null,
): Promise<number> {
  let ties = 0;
  for (let g = 0; g < plans.length; g++) {
    const { from, to, policy } = plans[g];
    const got = rows.get(g) ?? [];
    expect(got.map((r) => r.index)).toEqual(Array.from({ length: to - from }, (_, i) => i));
    const alone = await ort.run(rowsOf(input, from, to, width), { policy, trace: true });
    alone.samples.forEach((want: SampleResult, i) => {
      const s = got[i].result;
      if (s.exitIndex !== want.exitIndex) {
        const at = Math.min(s.exitIndex, want.exitIndex);
        const p = want.trace!.maxProb[at];
        if (threshold === null || Math.abs(p - threshold) >= TIE)
          throw new Error(
            `group ${g} row ${i} (${policy.name}): exit ${s.exitIndex} stepped, ${want.exitIndex} alone (confidence ${p})`,
          );
        ties++;
        return;
      }
      expect(maxAbsDiff(s.logits, want.logits)).toBeLessThan(LOGIT_TOL);
      expect(s.prediction).toBe(want.prediction);
      expect(s.exitBlock).toBe(want.exitBlock);
      expect(s.flops).toBe(want.flops);
      expect(s.costFraction).toBe(want.costFraction);
      expect(maxAbsDiff(s.probs, want.probs)).toBeLessThan(LOGIT_TOL);
      for (const k of ['maxProb', 'entropy', 'margin', 'gate', 'similarity'] as const) {
        expect(s.trace![k].length).toBe(want.trace![k].length);
        s.trace![k].forEach((v, j) => {
          const w = want.trace![k][j];
          if (Number.isNaN(w)) expect(v).toBeNaN();
          else expect(Math.abs(v - w)).toBeLessThan(LOGIT_TOL);
        });
      }
      expect(s.trace!.argmax).toEqual(want.trace!.argmax);
    });
  }
  return ties;
}

let ortDev: OrtCpuDevice;
beforeAll(async () => {
  if (!ortError) ortDev = new OrtCpuDevice(await createOrtCpu({ threads: 2 }));
});

describe.skipIf(Boolean(ortError))('SteppedRunner on random models', () => {
  const cases = [
    {
      name: 'encoder',
      cfg: encoderCfg,
      width: 0,
      input: (n: number, rand: () => number): ModelInput => ({
        ids: Array.from({ length: n }, () =>
          Array.from({ length: 3 + Math.floor(rand() * 20) }, () => Math.floor(rand() * 50)),
        ),
      }),
    },
    {
      name: 'cnn',
      cfg: cnnCfg,
      width: 144,
      input: (n: number, rand: () => number): ModelInput => ({
        features: Array.from({ length: n }, () => randomArray(144, rand, 1).map(Math.abs)),
      }),
    },
  ];
  it.each(cases)(
    '$name: every group equals its run alone, under random interleavings',
    async ({ cfg, width, input }) => {
      const model = buildModel(ortDev, cfg, randomWeights(cfg, 5));
      const ort = new OrtRunner(ortDev.ortCpu, ortDev, model);
      const n = 40;
      const batch = input(n, mulberry32(9));
      // the threshold: the median first-exit confidence, so rows leave at different exits
      const probe = await ort.run(batch, { policy: neverExit(), trace: true });
      const p0 = probe.samples.map((s) => s.trace!.maxProb[0]).sort((a, b) => a - b);
      const threshold = (p0[n / 2] + p0[n / 2 + 1]) / 2;
      const policies: ExitPolicy<any>[] = [
        maxProbThreshold({ threshold }),
        neverExit(),
        pol.patience({ patience: 1 }),
        pol.budget({ target: 0.5, mode: 'batch' }),
      ];
      for (const seed of [1, 2, 3]) {
        const stepped = new SteppedRunner<number>(ort, { maxRows: 6, parallel: seed !== 3 });
        const { plans, rows, steps } = await runInterleaved(stepped, batch, n, width, policies, seed);
        expect(stepped.live).toBe(0);
        expect(stepped.liveAt().every((v) => v === 0)).toBe(true);
        expect(steps).toBeGreaterThan(3);
        const exits = new Set([...rows.values()].flat().map((r) => r.result.exitIndex));
        expect(exits.size).toBeGreaterThan(1);
        expect(await expectEqualsAlone(ort, batch, width, plans, rows, threshold)).toBeLessThanOrEqual(1);
      }
      await ort.dispose();
      model.dispose();
    },
  );

  it('a row advances one segment per step (batches listed deepest first), stores respect maxRows, groups are not split', async () => {
    const model = buildModel(ortDev, cnnCfg, randomWeights(cnnCfg, 5));
    const stepped = new SteppedRunner<string>(new Runner(ortDev, model), { maxRows: 4 });
    const rand = mulberry32(4);
    const img = () => randomArray(144, rand, 1).map(Math.abs);
    await stepped.admit({ features: [img(), img(), img()] }, { policy: neverExit(), tag: 'a' });
    await stepped.admit({ features: [img(), img()] }, { policy: neverExit(), tag: 'b' });
    expect(stepped.liveAt()).toEqual([5, 0, 0]);
    // step 1: group a (3 rows) fits in 4, group b (2) would not: it waits whole
    let r = await stepped.step();
    expect(r.batches).toEqual([{ exit: 0, bucket: 1, rows: 3, exited: 0 }]);
    expect(r.rowsPerBlock).toEqual([3, 0, 0]);
    expect(stepped.liveAt()).toEqual([2, 3, 0]);
    // step 2: segment 1 runs a, then segment 0 runs b; a is not run twice
    r = await stepped.step();
    expect(r.batches.map((b) => [b.exit, b.rows])).toEqual([
      [1, 3],
      [0, 2],
    ]);
    expect(stepped.liveAt()).toEqual([0, 2, 3]);
    r = await stepped.step();
    expect(r.finished.map((f) => [f.tag, f.index, f.steps, f.result.exitIndex])).toEqual([
      ['a', 0, 3, 2],
      ['a', 1, 3, 2],
      ['a', 2, 3, 2],
    ]);
    r = await stepped.step();
    expect(r.finished.map((f) => [f.tag, f.index, f.steps])).toEqual([
      ['b', 0, 4],
      ['b', 1, 4],
    ]);
    expect(stepped.live).toBe(0);
    // clear forgets rows
    await stepped.admit({ features: [img()] }, { policy: neverExit() });
    expect(stepped.clear()).toBe(1);
    expect((await stepped.step()).finished).toEqual([]);
    model.dispose();
  });

  it('refuses what it cannot run with a clear error', async () => {
    const model = buildModel(ortDev, cnnCfg, randomWeights(cnnCfg, 5));
    const stepped = new SteppedRunner(new OrtRunner(ortDev.ortCpu, ortDev, model), { maxRows: 2 });
    const rand = mulberry32(4);
    const imgs = Array.from({ length: 3 }, () => randomArray(144, rand, 1).map(Math.abs));
    await expect(stepped.admit({ features: imgs }, { policy: neverExit() })).rejects.toThrow(
      /group of 3 rows is larger than maxRows \(2\)/,
    );
    await expect(stepped.admit({ features: imgs.slice(0, 1) }, { policy: {} as any })).rejects.toThrow(
      /must be an exit policy/,
    );
    expect(() => new SteppedRunner(new OrtRunner(ortDev.ortCpu, ortDev, model), { maxRows: 0 })).toThrow(
      /maxRows must be a positive integer/,
    );
    // the same model on the CPU reference path (no ONNX Runtime)
    const plain = new Runner(ortDev, model, { ort: false });
    expect(() => new SteppedRunner(plain)).toThrow(ValidationError);
    expect(() => new SteppedRunner(plain)).toThrow(/ONNX Runtime CPU path only; this runner is on cpu-reference/);
    model.dispose();
  });
});

const checkpoints = [
  { name: 'fashion-cnn', threshold: 0.9, width: 784, data: () => fashionTest(48) },
  { name: 'imdb-encoder', threshold: 0.6289, width: 0, data: () => imdbHeldOut('imdb-encoder', 48) },
];

describe.skipIf(Boolean(ortError)).each(checkpoints)('SteppedRunner on $name', ({ name, threshold, width, data }) => {
  it('every group equals its run alone (threshold, patience, full depth), interleaved at random', async () => {
    const held = await data();
    if (typeof held === 'string') throw new Error(held);
    const loaded = await loadModelDir(`${CHECKPOINTS}/${name}`);
    const model: EarlyExitModel = buildModel(
      ortDev,
      loaded.config.model,
      loaded.tensors as unknown as Map<string, HostTensor>,
    );
    const ort = new OrtRunner(ortDev.ortCpu, ortDev, model);
    const policies = [maxProbThreshold({ threshold }), pol.patience({ patience: 1 }), neverExit()];
    const stepped = new SteppedRunner<number>(ort, { maxRows: 8 });
    const { plans, rows, maxLive } = await runInterleaved(stepped, held.input, held.n, width, policies, 11);
    // rows really were at several depths at once
    expect(maxLive.filter((v) => v > 0).length).toBe(model.exitBlocks.length);
    const ties = await expectEqualsAlone(ort, held.input, width, plans, rows, threshold);
    if (ties) console.warn(`${name}: ${ties} exit(s) differed on a tie (confidence within ${TIE} of ${threshold})`);
    expect(ties).toBeLessThanOrEqual(2);
    await ort.dispose();
    model.dispose();
  });
});
