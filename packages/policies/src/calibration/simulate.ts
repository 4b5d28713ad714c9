// Offline evaluation on a trace: `simulate` replays the engine's loop exactly (live rows per exit, decide
// on the batch of live rows, forced exit at the last), `sweep` runs a grid of options, `paretoFrontier`
// keeps the non-dominated cost/quality points, `oracleExits` gives the earliest exit agreeing with the end.
import { type ExitPolicy, type SweepGrid, sweepOptions, ValidationError } from '@offramp/core';
import { runLoop } from '../loop.js';
import { createPolicy } from '../registry.js';
import { checkTrace, type Trace } from './trace.js';

export interface SimulationSummary {
  /** Accuracy of the early-exit predictions on the labelled samples (null without labels). */
  accuracy: number | null;
  /** Accuracy of the full model (last exit) on the same samples. */
  fullAccuracy: number | null;
  /** fullAccuracy − accuracy. */
  accuracyDrop: number | null;
  /** Fraction of samples whose prediction equals the full model's. */
  agreement: number;
  /** 1 − agreement: the risk that risk-controlled calibration bounds. */
  disagreement: number;
  /** Mean FLOPs as a fraction of full depth. */
  meanCost: number;
  meanExitBlock: number;
  /** Samples leaving at each exit. */
  exitHistogram: number[];
}

export interface SimulationResult extends SimulationSummary {
  exits: Int32Array;
  predictions: Int32Array;
}

export interface SimulateOptions {
  /** Replays batches of this many samples, like a runner with this maxBatch (default: one batch). */
  maxBatch?: number;
}

export function simulate(policy: ExitPolicy<any>, trace: Trace, opts: SimulateOptions = {}): SimulationResult {
  checkTrace(trace);
  const n = trace.samples.length;
  const B = opts.maxBatch ?? n;
  const exits = new Int32Array(n);
  for (let a = 0; a < n; a += B) {
    const chunk = trace.samples.slice(a, Math.min(n, a + B));
    exits.set(runLoop(policy, trace, chunk, { record: false }).exits, a);
  }
  return summarize(trace, exits);
}

/** Metrics of given exits on a trace. */
export function summarize(trace: Trace, exits: Int32Array): SimulationResult {
  const n = trace.samples.length;
  const predictions = new Int32Array(n);
  const exitHistogram = new Array(trace.numExits).fill(0);
  let agree = 0;
  let cost = 0;
  let blocks = 0;
  let labelled = 0;
  let correct = 0;
  let correctFull = 0;
  trace.samples.forEach((s, i) => {
    const e = exits[i];
    const p = s.argmax[e];
    predictions[i] = p;
    exitHistogram[e]++;
    if (p === s.finalPrediction) agree++;
    cost += trace.costFractions[e];
    blocks += trace.exitBlocks[e];
    if (s.label !== undefined) {
      labelled++;
      if (p === s.label) correct++;
      if (s.finalPrediction === s.label) correctFull++;
    }
  });
  const accuracy = labelled ? correct / labelled : null;
  const fullAccuracy = labelled ? correctFull / labelled : null;
  return {
    accuracy,
    fullAccuracy,
    accuracyDrop: labelled ? (correctFull - correct) / labelled : null,
    agreement: agree / n,
    disagreement: 1 - agree / n,
    meanCost: cost / n,
    meanExitBlock: blocks / n,
    exitHistogram,
    exits,
    predictions,
  };
}

/** The oracle's exits: the earliest exit whose argmax equals the final prediction (evaluation only). */
export function oracleExits(trace: Trace): SimulationResult {
  checkTrace(trace);
  const exits = Int32Array.from(trace.samples, (s) => {
    for (let e = 0; e < trace.numExits; e++) if (s.argmax[e] === s.finalPrediction) return e;
    return trace.numExits - 1;
  });
  return summarize(trace, exits);
}

export interface SweepPoint extends SimulationSummary {
  options: Record<string, unknown>;
}

/** A sweep grid: option name → candidate values (a list, or `{ from, to, steps }`), or a list of option sets. */
export type Grid = SweepGrid | readonly Record<string, unknown>[];

/** Every combination of a grid: `{ threshold: [0.8, 0.9], ... }`, ranges expanded, or a list of option objects. */
export function expandGrid(grid: Grid): Record<string, unknown>[] {
  if (Array.isArray(grid)) return grid.map((g) => ({ ...g }));
  return sweepOptions(grid as SweepGrid);
}

/** A plugin's factory as `definePolicy` returns it (its `sweep` is the grid swept by default). */
export type SweepableFactory = ((options: any) => ExitPolicy<any>) & { sweep?: SweepGrid };

/**
 * Simulates a policy for each option set of `grid`: a built-in by name, or a plugin's factory, whose own
 * declared grid (`definePolicy({ ..., sweep })`) is used when no grid is given.
 */
export function sweep(
  policy: string | SweepableFactory,
  grid: Grid | undefined,
  trace: Trace,
  opts: SimulateOptions = {},
): SweepPoint[] {
  const make =
    typeof policy === 'string'
      ? (options: Record<string, unknown>) => createPolicy(policy, options)
      : (options: Record<string, unknown>) => policy(options);
  const g = grid ?? (typeof policy === 'function' ? policy.sweep : undefined);
  if (!g) {
    const name = typeof policy === 'string' ? policy : policy.name || 'the policy';
    throw new ValidationError(
      `sweep of '${name}': no grid given and the policy declares none (definePolicy({ ..., sweep: { option: [values] } }))`,
    );
  }
  return expandGrid(g).map((options) => {
    const { exits: _e, predictions: _p, ...summary } = simulate(make(options), trace, opts);
    return { options, ...summary };
  });
}

/**
 * The points no other point beats on both cost (lower) and quality (higher), sorted by cost. Defaults:
 * cost = meanCost, quality = accuracy (agreement when there are no labels).
 */
export function paretoFrontier<P extends Partial<SimulationSummary>>(
  points: readonly P[],
  opts: { cost?: (p: P) => number; quality?: (p: P) => number } = {},
): P[] {
  const cost = opts.cost ?? ((p: P) => p.meanCost as number);
  const quality = opts.quality ?? ((p: P) => (p.accuracy ?? p.agreement) as number);
  const sorted = [...points].sort((a, b) => cost(a) - cost(b) || quality(b) - quality(a));
  const out: P[] = [];
  let best = Number.NEGATIVE_INFINITY;
  for (const p of sorted) {
    if (quality(p) > best) {
      out.push(p);
      best = quality(p);
    }
  }
  return out;
}
