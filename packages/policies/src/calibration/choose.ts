// Picks a threshold from a trace: the cheapest one whose accuracy drop (disagreement with the full model
// when unlabelled) stays ≤ maxDrop, or the best one whose mean cost stays ≤ budget. `perExit` refines one
// threshold per exit by coordinate descent from the best shared threshold (DeeBERT-style per-layer S).
import { ValidationError } from '@offramp/core';
import { createPolicy } from '../registry.js';
import { type SimulationSummary, simulate } from './simulate.js';
import { candidateThresholds, thresholdRule } from './thresholds.js';
import type { Trace } from './trace.js';

export type ThresholdTarget = { maxDrop: number } | { budget: number };

export interface ChooseOptions {
  /** One threshold per exit (coordinate descent), default false. */
  perExit?: boolean;
  /** Other options of the policy (e.g. quality's signal). */
  options?: Record<string, unknown>;
  /** Largest number of shared thresholds tried, by quantiles of the trace's values (default 1000). */
  maxCandidates?: number;
  /** Largest number of thresholds tried per exit in the per-exit refinement (default 100). */
  perExitCandidates?: number;
  /** Coordinate-descent passes over the exits (default 2). */
  passes?: number;
  maxBatch?: number;
}

export interface ChosenThreshold {
  policy: string;
  /** The threshold, or one per exit. */
  threshold: number | number[];
  /** Options to build the policy with (createPolicy(policy, options)). */
  options: Record<string, unknown>;
  /** Whether the target was met; if not, the closest option is returned. */
  feasible: boolean;
  metrics: SimulationSummary;
  evaluated: number;
}

export function chooseThreshold(
  trace: Trace,
  policyName: string,
  target: ThresholdTarget,
  opts: ChooseOptions = {},
): ChosenThreshold {
  const base = opts.options ?? {};
  const rule = thresholdRule(policyName, trace, base);
  const isDrop = 'maxDrop' in target;
  const limit = isDrop ? target.maxDrop : target.budget;
  if (!Number.isFinite(limit) || limit < 0)
    throw new ValidationError(`chooseThreshold: ${isDrop ? 'maxDrop' : 'budget'} must be a number ≥ 0, got ${limit}`);
  const labelled = trace.samples.every((s) => s.label !== undefined);
  const drop = (m: SimulationSummary) => (labelled ? (m.accuracyDrop as number) : m.disagreement);
  const feasible = (m: SimulationSummary) => (isDrop ? drop(m) <= limit : m.meanCost <= limit + 1e-12);
  // lexicographic: feasible first; then the objective; then the other measure
  const better = (a: SimulationSummary, b: SimulationSummary | null) => {
    if (!b) return true;
    if (feasible(a) !== feasible(b)) return feasible(a);
    const [pa, pb, qa, qb] =
      isDrop === feasible(a) ? [a.meanCost, b.meanCost, drop(a), drop(b)] : [drop(a), drop(b), a.meanCost, b.meanCost];
    return pa < pb - 1e-12 || (Math.abs(pa - pb) <= 1e-12 && qa < qb - 1e-12);
  };
  let evaluated = 0;
  const run = (threshold: number | number[]) => {
    evaluated++;
    const {
      exits: _e,
      predictions: _p,
      ...m
    } = simulate(createPolicy(policyName, { ...base, threshold }), trace, { maxBatch: opts.maxBatch });
    return m;
  };
  const max = opts.maxCandidates ?? 1000;
  let bestT: number | number[] = 0;
  let best: SimulationSummary | null = null;
  for (const t of candidateThresholds(trace, rule, max)) {
    const m = run(t);
    if (better(m, best)) [bestT, best] = [t, m];
  }
  if (opts.perExit && trace.numExits > 1) {
    const E = trace.numExits;
    const cur = new Array(E).fill(bestT as number);
    const perExitCands = Array.from({ length: E - 1 }, (_, e) =>
      candidateThresholds(trace, rule, opts.perExitCandidates ?? 100, [e]),
    );
    for (let pass = 0; pass < (opts.passes ?? 2); pass++) {
      let changed = false;
      for (let e = 0; e < E - 1; e++) {
        for (const t of perExitCands[e]) {
          if (t === cur[e]) continue;
          const trial = cur.slice();
          trial[e] = t;
          const m = run(trial);
          if (better(m, best)) {
            best = m;
            cur[e] = t;
            changed = true;
          }
        }
      }
      if (!changed) break;
    }
    bestT = cur;
  }
  return {
    policy: policyName,
    threshold: bestT,
    options: { ...base, threshold: bestT },
    feasible: feasible(best!),
    metrics: best!,
    evaluated,
  };
}
