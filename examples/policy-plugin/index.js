// descending-confidence: an Offramp exit policy plugin. A sample leaves at exit j when the exit is confident
// enough, max softmax probability ≥ τ_j with τ_j = max(floor, t0 − j·step) (later exits need less), and,
// with `agree`, its argmax equals the previous exit's. Host form (JavaScript) and device form (WGSL) decide
// alike: every τ_j is computed once here and rounded to f32, then baked into the WGSL as constants.
import { definePolicy, ValidationError, wgslFloat } from '@offramp/core';

export const NAME = 'descending-confidence';

/** The WGSL form bakes a threshold for exits 0 … MAX_TABLE − 1; later exits use the last one, in both forms. */
export const MAX_TABLE = 64;

/**
 * The threshold at exit `j`: max(floor, t0 − j·step) computed in f64 and rounded to f32 once. The host
 * compares signals (f32 values) against exactly this number, and the WGSL gets it as a literal.
 * @param {{ t0: number, step: number, floor: number }} o
 * @param {number} j
 */
export function thresholdAt(o, j) {
  const e = Math.min(j, MAX_TABLE - 1);
  return Math.fround(Math.max(o.floor, o.t0 - e * o.step));
}

/**
 * @param {string} option
 * @param {string} allowed
 * @param {unknown} got
 * @returns {never}
 */
function bad(option, allowed, got) {
  throw new ValidationError(`policy '${NAME}': option '${option}' ${allowed}, got ${JSON.stringify(got)}`);
}

/**
 * @typedef {object} DescendingOptions
 * @property {number} t0    threshold at the first exit, in (0, 1]
 * @property {number} step  how much lower each later exit's threshold is, in [0, 1]
 * @property {number} floor the lowest threshold, in [0, t0]
 * @property {boolean} agree also require the argmax to equal the previous exit's
 */

/** @type {DescendingOptions} */
const defaults = { t0: 0.95, step: 0.05, floor: 0.6, agree: true };

export const descendingConfidence = definePolicy({
  name: NAME,
  defaults,
  // what `offramp eval -p module:...` sweeps when no options are given: 3 × 3 = 9 settings
  sweep: { t0: [0.85, 0.9, 0.95], step: { from: 0, to: 0.1, steps: 3 } },
  /** @param {DescendingOptions} o */
  create(o) {
    if (typeof o.t0 !== 'number' || !(o.t0 > 0 && o.t0 <= 1)) bad('t0', 'must be a number in (0, 1]', o.t0);
    if (typeof o.step !== 'number' || !(o.step >= 0 && o.step <= 1)) bad('step', 'must be a number in [0, 1]', o.step);
    if (typeof o.floor !== 'number' || !(o.floor >= 0 && o.floor <= o.t0))
      bad('floor', `must be a number in [0, t0] = [0, ${o.t0}]`, o.floor);
    if (typeof o.agree !== 'boolean') bad('agree', 'must be true or false', o.agree);
    const table = Array.from({ length: MAX_TABLE }, (_, j) => thresholdAt(o, j));
    const cases = table
      .slice(0, -1)
      .map((t, j) => `case ${j}u: { return f32(${wgslFloat(t)}); }`)
      .join(' ');
    /** @type {import('@offramp/core').ExitPolicy<Int32Array>} */
    const policy = {
      name: NAME,
      needs: ['maxProb', 'argmax'],
      // host state: the previous exit's argmax of each sample, by sampleId (-1: none yet)
      init: ({ batchSize }) => new Int32Array(batchSize).fill(-1),
      decide(ctx, s, prev) {
        const t = table[Math.min(ctx.exitIndex, MAX_TABLE - 1)];
        const out = new Uint8Array(s.count);
        for (let r = 0; r < s.count; r++) {
          const sid = s.sampleIds[r];
          const sure = s.maxProb[r] >= t; // f32 signal against an f32 threshold; NaN compares false
          const agreed = !o.agree || s.argmax[r] === prev[sid];
          prev[sid] = s.argmax[r];
          out[r] = sure && agreed ? 1 : 0;
        }
        return out;
      },
      device: {
        // one f32 per sample: the previous argmax, -1 before the first exit. WGSL may assume no NaNs, so
        // NaN is tested on the bits (the host's >= is false on NaN by itself)
        stateSize: 1,
        initState: [-1],
        code: `fn is_nan_f32(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn threshold_at(e: u32) -> f32 { switch e { ${cases} default: { return f32(${wgslFloat(table[MAX_TABLE - 1])}); } } }
fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool {
  let i = sid * STATE_SIZE;
  let prev = policy_state[i];
  policy_state[i] = f32(s.argmax);
  let sure = !is_nan_f32(s.max_prob) && s.max_prob >= threshold_at(exit_index);
  let agreed = ${o.agree ? 'prev == f32(s.argmax)' : 'true'};
  return sure && agreed;
}`,
      },
    };
    return policy;
  },
});

export default descendingConfidence;
