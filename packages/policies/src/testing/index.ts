// Conformance kit for policy authors (`@offramp/policies/testing`): `checkPolicy(factory, options)` runs the
// standard checks on seeded random signals and returns a report; `expectPolicyConformance` throws on any
// failure, for use inside a test. Checks: shape, determinism, batch invariance, state isolation, option
// validation errors, the forced last exit, and host/device agreement on a GPU through the engine's own
// decide kernel. For that check the kit finds each policy's decision boundaries itself: per option set, exit
// and scalar signal it bisects the host form down to the two adjacent f32 values where the decision flips,
// and plants those and their f32 neighbours in the signals, so a device form that rounds a derived
// threshold differently (t0 − j·step computed in f32) fails without hand-given special values.
import { type ExitPolicy, type GpuDevice, mulberry32, type PolicyInit, runDevicePolicy } from '@offramp/core';
import { gatherSignals as gatherRows, type LoopResult, type ModelShape, runLoop, type SampleSignals } from '../loop.js';

export type { ModelShape, SampleSignals } from '../loop.js';

export interface InvalidOptionCase {
  options: unknown;
  /** What the error message must also contain (besides the policy name). */
  message?: RegExp | string;
}

export interface CheckPolicyOptions<O> {
  /** Option sets that must build a working policy (at least one). */
  validOptions: readonly O[];
  /** Option sets that must be refused, at creation or at init, with a ValidationError naming the policy. */
  invalidOptions?: readonly (InvalidOptionCase | O)[];
  numClasses?: number;
  numExits?: number;
  /** Block of each exit (default: exit e after block 2e+1). */
  exitBlocks?: readonly number[];
  numBlocks?: number;
  costFractions?: readonly number[];
  /** Rows per random batch (default 24). */
  batchSize?: number;
  /** Random batches per option set (default 3). */
  trials?: number;
  seed?: number;
  /** Runs the host/device agreement check on this GPU device (skipped without one). */
  gpu?: GpuDevice;
  /** Decisions depend on the row's sampleId by design (positions, seeded draws): ids are kept with rows. */
  usesSampleId?: boolean;
  /** Decisions depend on the other rows of the batch by design: the batch invariance check is skipped. */
  batchDependent?: boolean;
  /**
   * Extra values to plant in the signals. Numbers found in the options, and the decision boundaries the kit
   * finds on the host form, are planted anyway.
   */
  specialValues?: readonly number[];
  /** Custom signal generator for one sample. */
  makeSample?: (rand: () => number, shape: ModelShape) => SampleSignals;
}

export interface PolicyCheck {
  name: string;
  ok: boolean;
  skipped?: boolean;
  message?: string;
}

export interface PolicyReport {
  policy: string;
  ok: boolean;
  checks: PolicyCheck[];
}

/** Collects every finite number in a value (options), as f32, with its f32 neighbours. */
function numbersIn(v: unknown, out: Set<number>): void {
  if (typeof v === 'number' && Number.isFinite(v)) {
    const f = Math.fround(v);
    out.add(f);
    const dv = new DataView(new ArrayBuffer(4));
    dv.setFloat32(0, f);
    const b = dv.getInt32(0);
    for (const d of [-1, 1]) {
      dv.setInt32(0, b + d);
      const g = dv.getFloat32(0);
      if (Number.isFinite(g)) out.add(g);
    }
  } else if (Array.isArray(v)) for (const x of v) numbersIn(x, out);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) numbersIn(x, out);
}

/** The scalar signals whose decision boundaries the kit looks for, with the range each one takes. */
const SCALARS = ['maxProb', 'entropy', 'margin', 'gate', 'similarity'] as const;
type Scalar = (typeof SCALARS)[number];

/** Values to plant per signal and exit: `boundaries.maxProb[e]` are planted in maxProb at exit e. */
export type BoundaryValues = Partial<Record<Scalar, number[][]>>;

const f32view = new DataView(new ArrayBuffer(4));
/** f32 → an integer that orders like the f32 (adjacent f32 values are adjacent integers). */
function f32Key(x: number): number {
  f32view.setFloat32(0, x);
  const b = f32view.getInt32(0);
  return b < 0 ? -(b & 0x7fffffff) : b;
}
function fromF32Key(k: number): number {
  f32view.setInt32(0, k < 0 ? -k | 0x80000000 : k);
  return f32view.getFloat32(0);
}

/** Where a signal's values lie: [lo, hi] (entropy up to ln C). */
function signalRange(sig: Scalar, numClasses: number): [number, number] {
  if (sig === 'entropy') return [0, Math.fround(Math.log(numClasses)) * 1.0001];
  if (sig === 'similarity') return [-1, 1];
  return [0, 1];
}

/**
 * The host form's decision boundaries: for each exit but the last and each scalar signal the policy reads,
 * the adjacent f32 pairs (a, b) where the decision flips as that signal moves with the others held at a base
 * sample (the exits before replayed first, so state-carrying policies are probed in context). Returns a, b
 * and their outer f32 neighbours, at most `maxPerExit` values per signal and exit.
 */
export function findBoundaries(
  policy: ExitPolicy<any>,
  shape: ModelShape,
  bases: readonly SampleSignals[],
  maxPerExit = 24,
): BoundaryValues {
  const withLogits = policy.needs?.includes('logits') ?? false;
  // the scalar signals it says it reads (all of them when it does not say)
  const sigs = (policy.needs ?? SCALARS).filter((n): n is Scalar => (SCALARS as readonly string[]).includes(n));
  const info: PolicyInit = {
    batchSize: 1,
    numExits: shape.numExits,
    numClasses: shape.numClasses,
    exitBlocks: shape.exitBlocks,
    costFractions: shape.costFractions,
  };
  const out: BoundaryValues = {};
  for (const sig of sigs) {
    const perExit: Set<number>[] = Array.from({ length: shape.numExits }, () => new Set<number>());
    for (const base of bases) {
      for (let e = 0; e < shape.numExits - 1; e++) {
        const decideWith = (x: number): number | null => {
          try {
            const st = policy.init(info);
            let d: ArrayLike<boolean | number> = [];
            for (let j = 0; j <= e; j++) {
              const sample = j === e ? withSignal(base, sig, e, x) : base;
              const s = gatherRows([sample], [0], [0], j, shape.numClasses, withLogits);
              d = policy.decide(ctxAt(shape, j), s, st);
            }
            return d[0] ? 1 : 0;
          } catch {
            return null;
          }
        };
        const [lo, hi] = signalRange(sig, shape.numClasses);
        const steps = 48;
        let prevX = Math.fround(lo);
        let prevD = decideWith(prevX);
        for (let k = 1; k <= steps && perExit[e].size < maxPerExit; k++) {
          const x = Math.fround(lo + ((hi - lo) * k) / steps);
          const d = decideWith(x);
          if (d !== null && prevD !== null && d !== prevD) {
            // bisect on the f32 order down to adjacent values
            let a = f32Key(prevX);
            let b = f32Key(x);
            while (b - a > 1) {
              const m = Math.floor((a + b) / 2);
              const dm = decideWith(fromF32Key(m));
              if (dm === prevD) a = m;
              else b = m;
            }
            for (const key of [a - 1, a, b, b + 1]) {
              const v = fromF32Key(key);
              if (Number.isFinite(v)) perExit[e].add(v);
            }
          }
          prevX = x;
          prevD = d;
        }
      }
    }
    if (perExit.some((v) => v.size)) out[sig] = perExit.map((v) => [...v]);
  }
  return out;
}

function withSignal(base: SampleSignals, sig: Scalar, e: number, x: number): SampleSignals {
  const values = Float32Array.from(base[sig]);
  values[e] = x;
  return { ...base, [sig]: values };
}

function ctxAt(shape: ModelShape, e: number) {
  return {
    exitIndex: e,
    numExits: shape.numExits,
    block: shape.exitBlocks[e],
    numBlocks: shape.numBlocks,
    isLast: e === shape.numExits - 1,
    costFraction: shape.costFractions[e],
    numClasses: shape.numClasses,
  };
}

/** Replaces, with probability `p` each, a sample's scalar signals by boundary values of that signal and exit. */
export function plantBoundaries(
  sample: SampleSignals,
  rand: () => number,
  boundaries: BoundaryValues,
  p = 0.3,
): SampleSignals {
  const out: SampleSignals = { ...sample };
  for (const sig of SCALARS) {
    const per = boundaries[sig];
    if (!per) continue;
    const values = Float32Array.from(sample[sig]);
    for (let e = 0; e < values.length; e++) {
      const list = per[e];
      if (list?.length && rand() < p) values[e] = list[Math.floor(rand() * list.length)];
    }
    out[sig] = values;
  }
  return out;
}

/** Random but realistic signals: logits drifting over the exits, signals computed from them in f32. */
export function randomSample(rand: () => number, shape: ModelShape, special: readonly number[] = []): SampleSignals {
  const { numExits: E, numClasses: C } = shape;
  const s = {
    maxProb: new Float32Array(E),
    entropy: new Float32Array(E),
    margin: new Float32Array(E),
    argmax: new Int32Array(E),
    gate: new Float32Array(E),
    similarity: new Float32Array(E),
    logits: [] as Float32Array[],
  };
  const base = Float32Array.from({ length: C }, () => (rand() - 0.5) * 4);
  const noGate = rand() < 0.1;
  const plant = (x: number) => (special.length && rand() < 0.2 ? special[Math.floor(rand() * special.length)] : x);
  for (let e = 0; e < E; e++) {
    const sharp = 0.5 + e * (0.5 + rand());
    const z = Float32Array.from(base, (b) => b * sharp + (rand() - 0.5) * 2);
    s.logits.push(z);
    let m = Number.NEGATIVE_INFINITY;
    let am = 0;
    for (let c = 0; c < C; c++) if (z[c] > m) [m, am] = [z[c], c];
    let sum = 0;
    for (const v of z) sum += Math.exp(v - m);
    const p = Array.from(z, (v) => Math.exp(v - m) / sum).sort((a, b) => b - a);
    s.maxProb[e] = plant(p[0]);
    s.margin[e] = plant(p[0] - (p[1] ?? 0));
    s.entropy[e] = plant(-p.reduce((a, q) => a + (q > 0 ? q * Math.log(q) : 0), 0));
    s.argmax[e] = am;
    s.gate[e] = noGate ? Number.NaN : plant(rand() < 0.05 ? (rand() < 0.5 ? 0 : 1) : rand());
    s.similarity[e] = e === 0 ? Number.NaN : plant(1 - rand() * rand() * 2);
  }
  return s;
}

function defaultShape<O>(o: CheckPolicyOptions<O>): ModelShape {
  const E = o.numExits ?? 4;
  const exitBlocks = o.exitBlocks ?? Array.from({ length: E }, (_, e) => 2 * e + 1);
  const numBlocks = o.numBlocks ?? exitBlocks[exitBlocks.length - 1] + 1;
  const costFractions = o.costFractions ?? exitBlocks.map((b) => (b + 1) / numBlocks);
  return { numExits: E, numClasses: o.numClasses ?? 4, numBlocks, exitBlocks, costFractions };
}

function isValidationError(e: unknown): e is Error {
  return e instanceof Error && (e.name === 'ValidationError' || e.constructor?.name === 'ValidationError');
}

function sameExits(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  return a.length === b.length && Array.from(a).every((x, i) => x === b[i]);
}

/** Wraps a policy so that decide's return values are checked: one boolean or 0/1 per row. */
function strictDecisions(p: ExitPolicy<any>, problems: string[]): ExitPolicy<any> {
  return {
    ...p,
    name: p.name,
    needs: p.needs,
    init: (info) => p.init(info),
    decide(ctx, s, st) {
      const d = p.decide(ctx, s, st);
      if (d && d.length === s.count) {
        for (let r = 0; r < s.count; r++) {
          const v = d[r];
          if (!(v === true || v === false || v === 0 || v === 1)) {
            problems.push(`decide returned ${String(v)} for row ${r} at exit ${ctx.exitIndex}: use booleans or 0/1`);
            break;
          }
        }
      }
      return d;
    },
  };
}

export async function checkPolicy<O>(
  factory: (options: O) => ExitPolicy<any>,
  o: CheckPolicyOptions<O>,
): Promise<PolicyReport> {
  const checks: PolicyCheck[] = [];
  const shape = defaultShape(o);
  const n = o.batchSize ?? 24;
  const trials = o.trials ?? 3;
  const seed = o.seed ?? 1;
  let policyName = '?';
  const run = async (name: string, fn: () => undefined | string | Promise<undefined | string>, skip?: string) => {
    if (skip) {
      checks.push({ name, ok: true, skipped: true, message: skip });
      return;
    }
    try {
      const r = await fn();
      checks.push(r ? { name, ok: false, message: r } : { name, ok: true });
    } catch (e) {
      checks.push({ name, ok: false, message: `threw ${(e as Error)?.stack ?? String(e)}` });
    }
  };
  if (!o.validOptions.length) {
    return {
      policy: policyName,
      ok: false,
      checks: [{ name: 'options', ok: false, message: 'validOptions is empty: give at least one option set' }],
    };
  }
  // batches: per option set and trial, seeded
  const batchesFor = (k: number, p: ExitPolicy<any>) => {
    const special = new Set<number>(o.specialValues ?? []);
    numbersIn(p.options ?? {}, special);
    numbersIn(o.validOptions[k], special);
    const sp = [...special];
    const boundaries = boundariesFor(k);
    return Array.from({ length: trials }, (_, t) => {
      const rand = mulberry32(seed * 7919 + k * 104729 + t * 31);
      return Array.from({ length: n }, () =>
        plantBoundaries(o.makeSample ? o.makeSample(rand, shape) : randomSample(rand, shape, sp), rand, boundaries),
      );
    });
  };
  // the host form's decision boundaries per option set, found once on a few seeded base samples
  const boundaryCache = new Map<number, BoundaryValues>();
  const boundariesFor = (k: number): BoundaryValues => {
    let b = boundaryCache.get(k);
    if (!b) {
      const rand = mulberry32(seed * 15485863 + k);
      const bases = Array.from({ length: 3 }, () =>
        o.makeSample ? o.makeSample(rand, shape) : randomSample(rand, shape),
      );
      // a fresh instance: probing must not touch the state of the one under test
      let fresh: ExitPolicy<any> | null = null;
      try {
        fresh = factory(o.validOptions[k]);
      } catch {}
      b = fresh ? findBoundaries(fresh, shape, bases) : {};
      boundaryCache.set(k, b);
    }
    return b;
  };
  const problems: string[] = [];
  const make = (k: number) => strictDecisions(factory(o.validOptions[k]), problems);

  await run('shape', () => {
    for (let k = 0; k < o.validOptions.length; k++) {
      const p = factory(o.validOptions[k]);
      policyName = p.name;
      if (typeof p.name !== 'string' || !p.name) return `option set ${k}: the policy has no name`;
      if (typeof p.init !== 'function' || typeof p.decide !== 'function')
        return `option set ${k}: init and decide must be functions`;
      const d = p.device;
      if (d) {
        if (!Number.isInteger(d.stateSize) || d.stateSize < 0)
          return `option set ${k}: device.stateSize must be an integer ≥ 0, got ${d.stateSize}`;
        if ((d.initState?.length ?? 0) > Math.max(d.stateSize, 0))
          return `option set ${k}: device.initState has ${d.initState!.length} values for stateSize ${d.stateSize}`;
        if (!/fn\s+policy_decide\s*\(/.test(d.code))
          return `option set ${k}: device.code must define fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool`;
      }
    }
  });

  await run('determinism', () => {
    for (let k = 0; k < o.validOptions.length; k++) {
      const p = make(k);
      for (const batch of batchesFor(k, p)) {
        const a = runLoop(p, shape, batch);
        const b = runLoop(p, shape, batch);
        const c = runLoop(make(k), shape, batch);
        if (!sameExits(a.exits, b.exits))
          return `option set ${k}: the same batch run twice gave exits [${a.exits}] then [${b.exits}]`;
        if (!sameExits(a.exits, c.exits))
          return `option set ${k}: two instances gave exits [${a.exits}] and [${c.exits}]`;
        for (let j = 0; j < a.steps.length; j++) {
          if (!sameExits(a.steps[j].decided, c.steps[j].decided))
            return `option set ${k}: decisions at exit ${j} differ between runs`;
        }
      }
    }
  });

  await run(
    'batch invariance',
    () => {
      for (let k = 0; k < o.validOptions.length; k++) {
        const p = make(k);
        const batches = batchesFor(k, p);
        for (let t = 0; t < batches.length; t++) {
          const batch = batches[t];
          const full = runLoop(p, shape, batch).exits;
          const ids = batch.map((_, i) => i);
          // reversed order, ids kept with their rows
          const rev = [...ids].reverse();
          const r1 = runLoop(
            p,
            shape,
            rev.map((i) => batch[i]),
            { sampleIds: rev, batchSize: n },
          ).exits;
          for (let j = 0; j < n; j++)
            if (r1[j] !== full[rev[j]])
              return `option set ${k}: sample ${rev[j]} leaves at exit ${full[rev[j]]} in order but ${r1[j]} in reversed order`;
          // random subsets (ids kept, or relabelled 0..m−1 in shuffled order when ids must not matter)
          const rand = mulberry32(seed + 17 * t + k);
          for (let rep = 0; rep < 3; rep++) {
            const subset = ids.filter(() => rand() < 0.4);
            if (rep === 0) subset.splice(0, subset.length, Math.floor(rand() * n));
            if (!subset.length) continue;
            subset.sort(() => rand() - 0.5);
            const sub = subset.map((i) => batch[i]);
            const sid = o.usesSampleId ? subset : subset.map((_, j) => (j + 1) % subset.length);
            const r2 = runLoop(p, shape, sub, { sampleIds: sid, batchSize: o.usesSampleId ? n : subset.length }).exits;
            for (let j = 0; j < subset.length; j++) {
              if (r2[j] !== full[subset[j]]) {
                return `option set ${k}: sample ${subset[j]} leaves at exit ${full[subset[j]]} in the full batch but at ${r2[j]} in a batch of ${subset.length}${o.usesSampleId ? '' : ` as sampleId ${sid[j]}`} (decisions must not depend on other rows${o.usesSampleId ? '' : ' or the row position; set usesSampleId if that is by design'})`;
              }
            }
          }
        }
      }
    },
    o.batchDependent ? 'the policy is batch dependent by design (batchDependent)' : undefined,
  );

  await run('state isolation', () => {
    for (let k = 0; k < o.validOptions.length; k++) {
      const p = make(k);
      const [a, b] = batchesFor(k, p);
      if (!b) return;
      const info: PolicyInit = {
        batchSize: n,
        numExits: shape.numExits,
        numClasses: shape.numClasses,
        exitBlocks: shape.exitBlocks,
        costFractions: shape.costFractions,
      };
      const sa = p.init(info);
      const sb = p.init(info);
      if (sa !== null && typeof sa === 'object' && sa === sb)
        return `option set ${k}: init returned the same state object twice: each request needs a fresh state`;
      const alone = [runLoop(p, shape, a).exits, runLoop(p, shape, b).exits];
      // a request after another one, on the same instance, decides as on a fresh instance
      const after = runLoop(p, shape, b).exits;
      if (!sameExits(after, alone[1]))
        return `option set ${k}: a request decides differently after another request (state kept outside init?)`;
      // two requests interleaved exit by exit
      const inter = interleave(p, shape, [a, b], [sa, sb]);
      for (let r = 0; r < 2; r++) {
        if (!sameExits(inter[r], alone[r]))
          return `option set ${k}: request ${r} interleaved with another gave exits [${inter[r]}], alone [${alone[r]}]`;
      }
    }
  });

  await run('forced last exit', () => {
    for (let k = 0; k < o.validOptions.length; k++) {
      const p = make(k);
      for (const batch of batchesFor(k, p)) {
        const res = runLoop(p, shape, batch);
        const bad = Array.from(res.exits).findIndex((e) => e < 0 || e >= shape.numExits);
        if (bad >= 0)
          return `option set ${k}: sample ${bad} got exit ${res.exits[bad]}, outside [0, ${shape.numExits - 1}]`;
        const last = res.steps[res.steps.length - 1];
        if (res.steps.length !== shape.numExits && res.exits.some((e) => e === shape.numExits - 1))
          return `option set ${k}: not every exit was visited`;
        if (last?.ctx.isLast) {
          const leaving = Array.from(res.exits).filter((e) => e === shape.numExits - 1).length;
          if (leaving !== last.signals.count)
            return `option set ${k}: ${last.signals.count} rows reached the last exit but ${leaving} left there`;
        }
      }
      if (problems.length) return problems[0];
    }
  });

  await run(
    'option validation',
    () => {
      const info: PolicyInit = {
        batchSize: n,
        numExits: shape.numExits,
        numClasses: shape.numClasses,
        exitBlocks: shape.exitBlocks,
        costFractions: shape.costFractions,
      };
      for (let k = 0; k < o.validOptions.length; k++) factory(o.validOptions[k]).init(info);
      for (const [i, c] of (o.invalidOptions ?? []).entries()) {
        const isCase =
          c !== null &&
          typeof c === 'object' &&
          'options' in (c as object) &&
          Object.keys(c as object).every((x) => x === 'options' || x === 'message');
        const opts = isCase ? (c as InvalidOptionCase).options : c;
        const want = isCase ? (c as InvalidOptionCase).message : undefined;
        let err: unknown = null;
        try {
          factory(opts as O).init(info);
        } catch (e) {
          err = e;
        }
        if (!err) return `invalid option set ${i} (${JSON.stringify(opts)}) was accepted`;
        if (!isValidationError(err))
          return `invalid option set ${i} threw ${(err as Error)?.name ?? typeof err}, expected a ValidationError: ${(err as Error)?.message}`;
        if (!err.message.includes(`'${policyName}'`))
          return `invalid option set ${i}: the error does not name the policy '${policyName}': ${err.message}`;
        if (want && !(typeof want === 'string' ? err.message.includes(want) : want.test(err.message)))
          return `invalid option set ${i}: the error does not mention ${String(want)}: ${err.message}`;
      }
    },
    o.invalidOptions?.length ? undefined : 'no invalidOptions given',
  );

  const hasDevice = o.validOptions.some((v) => factory(v).device);
  await run(
    'host/device agreement',
    async () => {
      for (let k = 0; k < o.validOptions.length; k++) {
        const p = factory(o.validOptions[k]);
        if (!p.device) continue;
        for (const batch of batchesFor(k, p)) {
          const host: LoopResult = runLoop(p, shape, batch, { batchSize: n });
          const info: PolicyInit = {
            batchSize: n,
            numExits: shape.numExits,
            numClasses: shape.numClasses,
            exitBlocks: shape.exitBlocks,
            costFractions: shape.costFractions,
          };
          const dev = await runDevicePolicy(
            o.gpu!,
            p,
            info,
            host.steps.map(({ ctx, signals }) => ({ ctx, signals })),
          );
          for (let j = 0; j < host.steps.length; j++) {
            const st = host.steps[j];
            for (let r = 0; r < st.signals.count; r++) {
              const want = st.ctx.isLast || st.decided[r] ? 1 : 0;
              if (dev[j][r] !== want) {
                const s = st.signals;
                return `option set ${k}: at exit ${j}, sampleId ${s.sampleIds[r]}: host says ${want ? 'leave' : 'stay'}, device says ${dev[j][r] ? 'leave' : 'stay'} (maxProb=${s.maxProb[r]}, entropy=${s.entropy[r]}, margin=${s.margin[r]}, argmax=${s.argmax[r]}, gate=${s.gate[r]}, similarity=${s.similarity[r]})`;
              }
            }
          }
        }
      }
    },
    !hasDevice
      ? 'no device (WGSL) form'
      : !o.gpu
        ? 'no GPU device given (pass gpu: await createGpuDevice())'
        : undefined,
  );

  return { policy: policyName, ok: checks.every((c) => c.ok), checks };
}

/** Runs requests side by side, one exit at a time each, with their own states. */
function interleave(
  p: ExitPolicy<any>,
  shape: ModelShape,
  batches: SampleSignals[][],
  states: unknown[],
): Int32Array[] {
  // each request's loop only depends on its own state and signals, so running them exit by exit in
  // alternation must give what they give alone
  const E = shape.numExits;
  const res = batches.map((b) => new Int32Array(b.length).fill(-1));
  const live = batches.map((b) => b.map((_, i) => i));
  for (let e = 0; e < E; e++) {
    for (let r = 0; r < batches.length; r++) {
      if (!live[r].length) continue;
      const rows = live[r];
      const sub = rows.map((i) => batches[r][i]);
      const step = runLoopStep(p, shape, sub, rows, e, states[r]);
      const stay: number[] = [];
      rows.forEach((i, j) => {
        if (step[j] || e === E - 1) res[r][i] = e;
        else stay.push(i);
      });
      live[r] = stay;
    }
  }
  return res;
}

function runLoopStep(
  p: ExitPolicy<any>,
  shape: ModelShape,
  sub: SampleSignals[],
  ids: number[],
  e: number,
  state: unknown,
): Uint8Array {
  const withLogits = p.needs?.includes('logits') ?? false;
  const ctx = {
    exitIndex: e,
    numExits: shape.numExits,
    block: shape.exitBlocks[e],
    numBlocks: shape.numBlocks,
    isLast: e === shape.numExits - 1,
    costFraction: shape.costFractions[e],
    numClasses: shape.numClasses,
  };
  const rows = sub.map((_, i) => i);
  const s = gatherRows(sub, rows, ids, e, shape.numClasses, withLogits);
  const d = p.decide(ctx, s, state);
  return Uint8Array.from({ length: sub.length }, (_, r) => (d[r] ? 1 : 0));
}

/** Throws (with every failed check listed) unless the policy passes the kit. */
export async function expectPolicyConformance<O>(
  factory: (options: O) => ExitPolicy<any>,
  o: CheckPolicyOptions<O>,
): Promise<PolicyReport> {
  const report = await checkPolicy(factory, o);
  if (!report.ok) {
    const failed = report.checks.filter((c) => !c.ok).map((c) => `  ✗ ${c.name}: ${c.message}`);
    throw new Error(`policy '${report.policy}' fails the conformance kit:\n${failed.join('\n')}`);
  }
  return report;
}
