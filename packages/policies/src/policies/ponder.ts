// Ponder (PALBERT Q-exit, PonderNet): λ_i = the exit's gate signal; halting distribution
// p_i = λ_i ∏_{j<i}(1−λ_j). The cumulative distribution cdf_i = Σ_{j≤i} p_j = 1 − S_i with the survival
// S_i = ∏_{j≤i}(1−λ_j), which is what the state keeps (one f32 product per exit: no sum of products that a
// GPU compiler could fuse into an FMA, so host and device round alike).
//   'q-exit' (default): leave at the first exit with cdf > q, i.e. S_i < 1 − q (q = 0.5: the median).
//   'sample': PonderNet's rule, leave with probability λ_i: u < λ_i with u from a hash of
//             (seed, sampleId, exitIndex), the same on host and device. The draw depends on the row's
//             sampleId (its index in the batch): reproducible, but not position invariant.
//   'expectation': PonderNet's mixture Σ_i p_i softmax(z_i) over the exits run, up to cdf > 1 − epsilon
//             (the leftover mass goes to the exit where the sample leaves). Needs the logits: host only.
//             The mixtures are kept in the request state (`state.mixed`, batch × classes) and collected
//             with `policy.collectMixtures()` after a run (one Float32Array per sample, in batch order).
// A missing λ (NaN: the exit has no gate head) counts as λ = 0; λ is clamped to [0, 1].
import type { ExitPolicy, ExitSignals } from '@offramp/core';
import { wgslFloat } from '@offramp/core';
import * as z from 'zod';
import { int, num, parseOptions } from '../options.js';
import { hash3, unitFromHash, WGSL_HASH3, WGSL_IS_NAN, WGSL_UNIT_FROM_HASH } from '../wgsl.js';

export const ponderSchema = z.strictObject({
  mode: z
    .enum(['q-exit', 'sample', 'expectation'], { error: "must be 'q-exit', 'sample' or 'expectation'" })
    .default('q-exit'),
  /** q of Q-exit in (0, 1): leave when the cumulative halting probability exceeds it. */
  q: num(0, 1, false, false).default(0.5),
  /** Seed of the 'sample' mode's per-sample draws (a u32). */
  seed: int(0, 0xffffffff).default(0),
  /** 'expectation' mode: stop once the cumulative halting probability exceeds 1 − epsilon. */
  epsilon: num(0, 1, false, false).default(0.05),
});
export type PonderOptions = z.input<typeof ponderSchema>;

export interface PonderState {
  /** S = ∏(1 − λ_j) over the exits passed, per sample (f32 values). */
  survival: Float32Array;
  /** 'expectation' mode: Σ p_i softmax(z_i) so far, (batch, classes); normalised when the sample leaves. */
  mixed?: Float32Array;
  numClasses: number;
}

export interface PonderPolicy extends ExitPolicy<PonderState> {
  /** 'expectation' mode: the mixtures of every sample of the requests since the last call, in order. */
  collectMixtures(): Float32Array[];
}

/** λ as both forms see it: NaN → 0, clamped to [0, 1]. */
export function ponderLambda(g: number): number {
  if (Number.isNaN(g)) return 0;
  return Math.min(Math.max(g, 0), 1);
}

/** The 'sample' mode's uniform draw for (seed, sampleId, exitIndex). */
export function ponderDraw(seed: number, sampleId: number, exitIndex: number): number {
  return unitFromHash(hash3(seed, sampleId, exitIndex));
}

export function ponder(options: PonderOptions = {}): PonderPolicy {
  const o = parseOptions('ponder', ponderSchema, options);
  const mode = o.mode;
  const stopBelow = Math.fround(1 - (mode === 'expectation' ? 1 - o.epsilon : o.q));
  const pending: PonderState[] = [];
  const lamWgsl = 'let lam = select(clamp(s.gate, 0.0, 1.0), 0.0, is_nan_f32(s.gate));';
  const code =
    mode === 'sample'
      ? `${WGSL_IS_NAN}
${WGSL_HASH3}
${WGSL_UNIT_FROM_HASH}
fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool {
  ${lamWgsl}
  return unit_from_hash(hash3_u32(${o.seed >>> 0}u, sid, exit_index)) < lam;
}`
      : `${WGSL_IS_NAN}
fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool {
  ${lamWgsl}
  let survival = policy_state[sid * STATE_SIZE] * (1.0 - lam);
  policy_state[sid * STATE_SIZE] = survival;
  return survival < f32(${wgslFloat(stopBelow)});
}`;
  const policy: PonderPolicy = {
    name: 'ponder',
    needs: mode === 'expectation' ? ['gate', 'logits'] : ['gate'],
    options: o,
    init({ batchSize, numClasses }) {
      const st: PonderState = { survival: new Float32Array(batchSize).fill(1), numClasses };
      if (mode === 'expectation') {
        st.mixed = new Float32Array(batchSize * numClasses);
        pending.push(st);
      }
      return st;
    },
    decide(ctx, s, st) {
      const out = new Uint8Array(s.count);
      for (let r = 0; r < s.count; r++) {
        const sid = s.sampleIds[r];
        const lam = Math.fround(ponderLambda(s.gate[r]));
        if (mode === 'sample') {
          out[r] = ponderDraw(o.seed, sid, ctx.exitIndex) < lam ? 1 : 0;
          continue;
        }
        const before = st.survival[sid];
        const survival = Math.fround(before * Math.fround(1 - lam));
        st.survival[sid] = survival;
        out[r] = survival < stopBelow ? 1 : 0;
        if (mode === 'expectation') mix(st, s, r, sid, ctx.isLast || out[r] === 1 ? before : before - survival);
      }
      return out;
    },
    collectMixtures() {
      const all: Float32Array[] = [];
      for (const st of pending.splice(0)) {
        const C = st.numClasses;
        for (let i = 0; i < st.survival.length; i++) all.push(st.mixed!.slice(i * C, (i + 1) * C));
      }
      return all;
    },
  };
  if (mode !== 'expectation')
    policy.device = { stateSize: mode === 'sample' ? 0 : 1, initState: mode === 'sample' ? [] : [1], code };
  return policy;
}

/** Adds weight·softmax(z_r) to the sample's mixture (on leaving, weight = the remaining mass, so the weights sum to 1). */
function mix(st: PonderState, s: ExitSignals, r: number, sid: number, weight: number): void {
  const C = st.numClasses;
  if (!s.logits)
    throw new Error("policy 'ponder': mode 'expectation' needs the logits (host mode lists 'logits' in needs)");
  const z = s.logits.subarray(r * C, (r + 1) * C);
  let m = Number.NEGATIVE_INFINITY;
  for (const v of z) m = Math.max(m, v);
  let sum = 0;
  for (const v of z) sum += Math.exp(v - m);
  const acc = st.mixed!.subarray(sid * C, (sid + 1) * C);
  for (let c = 0; c < C; c++) acc[c] += (weight * Math.exp(z[c] - m)) / sum;
}
