// The engine's host-mode loop replayed over recorded signals: at each exit the live rows (in batch order,
// compacted) go to `decide` together, leavers retire, every row left leaves at the last exit. Used by
// offline simulation and by the conformance kit; it mirrors packages/core/src/engine/runner.ts.
import { type ExitContext, type ExitPolicy, type ExitSignals, type PolicyInit, ValidationError } from '@offramp/core';

/** One sample's signals at each exit (at least as many exits as it can reach). */
export interface SampleSignals {
  maxProb: ArrayLike<number>;
  entropy: ArrayLike<number>;
  margin: ArrayLike<number>;
  argmax: ArrayLike<number>;
  gate: ArrayLike<number>;
  similarity: ArrayLike<number>;
  /** Per exit: the raw logits (for policies that need them). */
  logits?: readonly Float32Array[];
}

export interface ModelShape {
  numExits: number;
  numClasses: number;
  numBlocks: number;
  exitBlocks: readonly number[];
  costFractions: readonly number[];
}

export interface LoopStep {
  ctx: ExitContext;
  signals: ExitSignals;
  /** What the policy returned (before the forced exit at the last exit), 1 = leave. */
  decided: Uint8Array;
}

export interface LoopResult {
  /** Exit index of each sample. */
  exits: Int32Array;
  /** Each exit's context, signals and decisions (unless `record: false`). */
  steps: LoopStep[];
  state: unknown;
}

/** Packs the live rows' signals at exit `e` as the engine hands them to `decide`. */
export function gatherSignals(
  samples: readonly SampleSignals[],
  rows: readonly number[],
  sampleIds: readonly number[],
  e: number,
  numClasses: number,
  withLogits: boolean,
): ExitSignals {
  const n = rows.length;
  const s: ExitSignals = {
    count: n,
    sampleIds: new Int32Array(n),
    maxProb: new Float32Array(n),
    entropy: new Float32Array(n),
    margin: new Float32Array(n),
    argmax: new Int32Array(n),
    gate: new Float32Array(n),
    similarity: new Float32Array(n),
  };
  for (let r = 0; r < n; r++) {
    const i = rows[r];
    const x = samples[i];
    s.sampleIds[r] = sampleIds[i];
    s.maxProb[r] = x.maxProb[e];
    s.entropy[r] = x.entropy[e];
    s.margin[r] = x.margin[e];
    s.argmax[r] = x.argmax[e];
    s.gate[r] = x.gate[e];
    s.similarity[r] = x.similarity[e];
  }
  if (withLogits) {
    const logits = new Float32Array(n * numClasses);
    rows.forEach((i, r) => {
      const z = samples[i].logits?.[e];
      if (!z) throw new ValidationError(`sample ${i} has no logits at exit ${e}, which this policy needs`);
      logits.set(z.subarray(0, numClasses), r * numClasses);
    });
    s.logits = logits;
  }
  return s;
}

/**
 * Runs `policy` over one batch of samples. `sampleIds[i]` is sample i's id (default i); rows are handed to
 * the policy in the order of `samples`. A fresh state comes from `policy.init` (or is passed in).
 */
export function runLoop(
  policy: ExitPolicy<any>,
  shape: ModelShape,
  samples: readonly SampleSignals[],
  opts: { sampleIds?: readonly number[]; batchSize?: number; state?: unknown; record?: boolean } = {},
): LoopResult {
  const record = opts.record ?? true;
  const n = samples.length;
  const E = shape.numExits;
  const ids = opts.sampleIds ?? Array.from({ length: n }, (_, i) => i);
  let maxId = n - 1;
  for (const x of ids) if (x > maxId) maxId = x;
  const batchSize = opts.batchSize ?? maxId + 1;
  const info: PolicyInit = {
    batchSize,
    numExits: E,
    numClasses: shape.numClasses,
    exitBlocks: shape.exitBlocks,
    costFractions: shape.costFractions,
  };
  const state = opts.state !== undefined ? opts.state : policy.init(info);
  const withLogits = policy.needs?.includes('logits') ?? false;
  const exits = new Int32Array(n).fill(-1);
  const steps: LoopStep[] = [];
  let live = Array.from({ length: n }, (_, i) => i);
  for (let e = 0; e < E && live.length > 0; e++) {
    const isLast = e === E - 1;
    const ctx: ExitContext = {
      exitIndex: e,
      numExits: E,
      block: shape.exitBlocks[e],
      numBlocks: shape.numBlocks,
      isLast,
      costFraction: shape.costFractions[e],
      numClasses: shape.numClasses,
    };
    const signals = gatherSignals(samples, live, ids, e, shape.numClasses, withLogits);
    const d = policy.decide(ctx, signals, state);
    if (!d || d.length !== live.length) {
      throw new ValidationError(
        `policy '${policy.name}' returned ${d?.length ?? 'nothing'} decisions for ${live.length} rows at exit ${e}`,
      );
    }
    const decided = new Uint8Array(live.length);
    const stay: number[] = [];
    for (let r = 0; r < live.length; r++) {
      decided[r] = d[r] ? 1 : 0;
      if (isLast || decided[r]) exits[live[r]] = e;
      else stay.push(live[r]);
    }
    if (record) steps.push({ ctx, signals, decided });
    live = stay;
  }
  return { exits, steps, state };
}
