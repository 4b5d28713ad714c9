// Online threshold learning: FTRL with a log-barrier over a grid of thresholds (the arms). Each request
// plays one arm a (leave when score ≥ τ_a); afterwards `update(feedback)` charges it loss = error + λ·cost.
// Bandit feedback is importance weighted, L̂_a += loss / π(a); full-information feedback (the loss of every
// arm, e.g. replayed from a trace) is added as is. The next distribution is π(a) = 1 / (η·(L̂_a + μ)), with
// μ > −min L̂ found by bisection so that Σ π = 1, and the next arm is drawn from π with a seeded generator.
// `discount` < 1 scales L̂ down before each update, so the learner forgets and follows a drifting stream.
// Within a request the threshold is fixed: host and device forms (the device form reads the played τ
// from its initial state, so switching arms compiles nothing).
import type { ExitPolicy } from '@offramp/core';
import { mulberry32, ValidationError } from '@offramp/core';
import * as z from 'zod';
import { int, num, parseOptions, show } from '../options.js';
import { WGSL_IS_NAN } from '../wgsl.js';

export const onlineSchema = z.strictObject({
  /** The arms: candidate thresholds in [0, 1]. */
  thresholds: z
    .array(num(0, 1, true, true), { error: 'must be an array of thresholds in [0, 1]' })
    .min(2, { error: 'must hold at least 2 thresholds' })
    .default([0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]),
  signal: z.enum(['maxProb', 'margin'], { error: "must be 'maxProb' or 'margin'" }).default('maxProb'),
  /** Learning rate η > 0. */
  eta: num(0, 1e6, false, true).default(1),
  /** λ: weight of the cost fraction in the loss. */
  lambda: num(0, 1e6, true, true).default(0.5),
  /** Factor in (0, 1] applied to the loss estimates before each update (1: no forgetting). */
  discount: num(0, 1, false, true).default(1),
  seed: int(0, 0xffffffff).default(0),
});
export type OnlineOptions = z.input<typeof onlineSchema>;

/** Feedback of one request: for the played arm ({ loss } or { error, cost }), or for every arm ({ losses }). */
export type OnlineFeedback = { loss: number } | { error: number; cost: number } | { losses: readonly number[] };

export interface OnlinePolicy extends ExitPolicy<null> {
  /** Index of the arm played by the next request. */
  readonly arm: number;
  /** Its threshold. */
  readonly threshold: number;
  /** The current distribution over arms. */
  readonly probabilities: Float64Array;
  /** Cumulative (importance-weighted) loss estimates. */
  readonly lossEstimates: Float64Array;
  /** Learns from one request's feedback and draws the arm of the next request. */
  update(feedback: OnlineFeedback): void;
}

/** π(a) = 1 / (η (L_a + μ)) with μ found by bisection so that Σ π = 1. */
export function logBarrierDistribution(losses: ArrayLike<number>, eta: number): Float64Array {
  const K = losses.length;
  let min = Number.POSITIVE_INFINITY;
  for (let a = 0; a < K; a++) min = Math.min(min, losses[a]);
  const total = (mu: number) => {
    let s = 0;
    for (let a = 0; a < K; a++) s += 1 / (eta * (losses[a] + mu));
    return s;
  };
  // Σπ decreases in μ: +∞ as μ → −min, ≤ 1 at μ = −min + K/η
  let lo = -min;
  let hi = -min + K / eta;
  for (let it = 0; it < 200; it++) {
    const mid = (lo + hi) / 2;
    if (mid === lo || mid === hi) break;
    if (total(mid) > 1) lo = mid;
    else hi = mid;
  }
  const p = new Float64Array(K);
  for (let a = 0; a < K; a++) p[a] = 1 / (eta * (losses[a] + hi));
  const s = p.reduce((x, y) => x + y, 0);
  for (let a = 0; a < K; a++) p[a] /= s;
  return p;
}

export function online(options: OnlineOptions = {}): OnlinePolicy {
  const o = parseOptions('online', onlineSchema, options);
  const K = o.thresholds.length;
  const rand = mulberry32(o.seed);
  const L = new Float64Array(K);
  let pi = logBarrierDistribution(L, o.eta);
  const draw = () => {
    const u = rand();
    let acc = 0;
    for (let a = 0; a < K; a++) {
      acc += pi[a];
      if (u < acc) return a;
    }
    return K - 1;
  };
  let arm = draw();
  const field = o.signal === 'margin' ? 'margin' : 'max_prob';
  const code = `${WGSL_IS_NAN}
fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool {
  return !is_nan_f32(s.${field}) && s.${field} >= policy_state[sid * STATE_SIZE];
}`;
  const policy = {
    name: 'online',
    needs: [o.signal],
    options: o,
    get arm() {
      return arm;
    },
    get threshold() {
      return Math.fround(o.thresholds[arm]);
    },
    get probabilities() {
      return pi.slice();
    },
    get lossEstimates() {
      return L.slice();
    },
    get device() {
      // the played threshold is the initial state, not a constant: switching arms compiles nothing
      return { stateSize: 1, initState: [Math.fround(o.thresholds[arm])], code };
    },
    init: () => null,
    decide(_ctx, s) {
      const t = Math.fround(o.thresholds[arm]);
      const xs = s[o.signal];
      const out = new Uint8Array(s.count);
      for (let r = 0; r < s.count; r++) out[r] = xs[r] >= t ? 1 : 0;
      return out;
    },
    update(feedback: OnlineFeedback) {
      if (o.discount < 1) for (let a = 0; a < K; a++) L[a] *= o.discount;
      if ('losses' in feedback) {
        if (feedback.losses.length !== K)
          throw new ValidationError(
            `policy 'online': update needs ${K} losses (one per threshold), got ${feedback.losses.length}`,
          );
        feedback.losses.forEach((l, a) => {
          if (!Number.isFinite(l))
            throw new ValidationError(`policy 'online': loss of arm ${a} must be finite, got ${show(l)}`);
          L[a] += l;
        });
      } else {
        const loss = 'loss' in feedback ? feedback.loss : feedback.error + o.lambda * feedback.cost;
        if (!Number.isFinite(loss))
          throw new ValidationError(`policy 'online': feedback loss must be finite, got ${show(loss)}`);
        L[arm] += loss / pi[arm];
      }
      pi = logBarrierDistribution(L, o.eta);
      arm = draw();
    },
  } satisfies OnlinePolicy & ThisType<unknown>;
  return policy as OnlinePolicy;
}
