// Budget: a confidence-type policy (score = maxProb or margin, leave when score ≥ τ) whose threshold is
// adapted to keep the mean compute (costFraction) at a target. Two modes:
//   'controller' (default): τ is fixed within a request and moved between requests by a proportional
//     controller on the observed mean cost, τ ← clamp(τ + gain·(target − meanCost), [minThreshold,
//     maxThreshold]), fed with `update(results)`. Host and device forms; the device form reads τ from
//     its initial state, so an update changes no WGSL and compiles nothing.
//   'batch': a hard per-request cap. At each exit, rows with score ≥ τ leave; of the others at most
//     m = ⌊(target·n − spent − live·c_e) / (1 − c_e)⌋ may go on (so even if all of them ran to full depth
//     the request's mean cost stays ≤ target), the most confident of the surplus leave now: the effective
//     threshold is a quantile of the live rows' scores. It depends on the other rows of the batch by
//     design, so it is host only and not batch invariant. The cap holds whenever target ≥ the first
//     exit's cost fraction.
import type { ExitPolicy } from '@offramp/core';
import * as z from 'zod';
import { num, parseOptions } from '../options.js';
import { WGSL_IS_NAN } from '../wgsl.js';

export const budgetSchema = z
  .strictObject({
    /** Target mean cost fraction in (0, 1]. */
    target: num(0, 1, false, true),
    base: z.enum(['confidence', 'margin'], { error: "must be 'confidence' or 'margin'" }).default('confidence'),
    mode: z.enum(['controller', 'batch'], { error: "must be 'controller' or 'batch'" }).default('controller'),
    /** Starting threshold τ in [0, 1]. */
    threshold: num(0, 1, true, true).default(0.9),
    /** Controller gain: τ moves by gain × (target − mean cost) per update. */
    gain: num(0, 100, false, true).default(0.5),
    minThreshold: num(0, 1, true, true).default(0),
    maxThreshold: num(0, 1, true, true).default(1),
  })
  .refine((o) => o.minThreshold <= o.maxThreshold, { error: 'must be ≥ minThreshold', path: ['maxThreshold'] });
export type BudgetOptions = z.input<typeof budgetSchema>;

export interface BudgetState {
  /** 'batch' mode: cost fractions spent by the rows that left so far, and the batch size. */
  spent: number;
  n: number;
  costs: readonly number[];
}

/** Feedback of one request: its samples' cost fractions (a RunResult works as is), or their mean. */
export type BudgetFeedback =
  | { samples: readonly { costFraction: number }[] }
  | readonly { costFraction: number }[]
  | { meanCost: number };

export interface BudgetPolicy extends ExitPolicy<BudgetState> {
  /** The current threshold τ. */
  readonly threshold: number;
  /** Moves τ after a request ('controller' mode). Returns the new τ. */
  update(feedback: BudgetFeedback): number;
}

export function budget(options: BudgetOptions): BudgetPolicy {
  const o = parseOptions('budget', budgetSchema, options);
  const sig = o.base === 'margin' ? 'margin' : 'maxProb';
  const field = o.base === 'margin' ? 'margin' : 'max_prob';
  let tau = Math.fround(o.threshold);
  const policy: BudgetPolicy = {
    name: 'budget',
    needs: [sig],
    options: o,
    get threshold() {
      return tau;
    },
    init: ({ batchSize, costFractions }) => ({ spent: 0, n: batchSize, costs: costFractions }),
    decide(ctx, s, st) {
      const xs = s[sig];
      const out = new Uint8Array(s.count);
      for (let r = 0; r < s.count; r++) out[r] = xs[r] >= tau ? 1 : 0;
      if (o.mode === 'batch' && !ctx.isLast) {
        const c = ctx.costFraction;
        const full = st.costs[st.costs.length - 1];
        const room = o.target * st.n - st.spent - s.count * c;
        const m = room <= 0 ? 0 : Math.min(s.count, Math.floor(room / Math.max(full - c, 1e-12) + 1e-9));
        const stay: number[] = [];
        for (let r = 0; r < s.count; r++) if (!out[r]) stay.push(r);
        if (stay.length > m) {
          // the most confident of those below τ leave first; ties by sampleId, NaN scores count as lowest
          const key = (r: number) => (Number.isNaN(xs[r]) ? Number.NEGATIVE_INFINITY : xs[r]);
          stay.sort((a, b) => key(b) - key(a) || s.sampleIds[a] - s.sampleIds[b]);
          for (let k = 0; k < stay.length - m; k++) out[stay[k]] = 1;
        }
      }
      for (let r = 0; r < s.count; r++) if (out[r] || ctx.isLast) st.spent += ctx.costFraction;
      return out;
    },
    update(feedback) {
      let mean: number;
      if ('meanCost' in feedback) mean = feedback.meanCost;
      else {
        const list = Array.isArray(feedback)
          ? feedback
          : (feedback as { samples: readonly { costFraction: number }[] }).samples;
        if (list.length === 0) return tau;
        mean = list.reduce((a: number, x: { costFraction: number }) => a + x.costFraction, 0) / list.length;
      }
      if (!Number.isFinite(mean)) return tau;
      tau = Math.fround(Math.min(o.maxThreshold, Math.max(o.minThreshold, tau + o.gain * (o.target - mean))));
      return tau;
    },
  };
  if (o.mode === 'controller') {
    // τ lives in the device state (initState), not in the code: updating it recompiles nothing
    const code = `${WGSL_IS_NAN}
fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool {
  return !is_nan_f32(s.${field}) && s.${field} >= policy_state[sid * STATE_SIZE];
}`;
    Object.defineProperty(policy, 'device', {
      enumerable: true,
      get: () => ({ stateSize: 1, initState: [tau], code }),
    });
  }
  return policy;
}
