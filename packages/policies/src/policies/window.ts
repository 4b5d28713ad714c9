// Window (window-based early-exit cascades): leave when the score is outside the window, score > wHi
// (confident) or score < wLo (hopeless); only samples inside go on. `fitWindow` derives the window from
// validation scores: the quantiles at F(τ) ± halfWidth around the operating threshold τ, clamped to [0, 1].
import { type ExitPolicy, ValidationError, wgslFloat } from '@offramp/core';
import * as z from 'zod';
import { num, parseOptions, scalarSignal, wgslField } from '../options.js';
import { WGSL_IS_NAN } from '../wgsl.js';

export const windowSchema = z
  .strictObject({
    /** Lower edge: leave when score < wLo. */
    wLo: num(-1e30, 1e30, true, true),
    /** Upper edge: leave when score > wHi. */
    wHi: num(-1e30, 1e30, true, true),
    /** The score (default maxProb, the stage's confidence). */
    signal: scalarSignal.default('maxProb'),
  })
  .refine((o) => o.wLo <= o.wHi, { error: 'must have wLo ≤ wHi', path: ['wHi'] });
export type WindowOptions = z.input<typeof windowSchema>;

export function windowPolicy(options: WindowOptions): ExitPolicy<null> {
  const o = parseOptions('window', windowSchema, options);
  const lo = Math.fround(o.wLo);
  const hi = Math.fround(o.wHi);
  const sig = o.signal;
  return {
    name: 'window',
    needs: [sig],
    options: o,
    init: () => null,
    decide(_ctx, s) {
      const xs = s[sig];
      const out = new Uint8Array(s.count);
      for (let r = 0; r < s.count; r++) out[r] = xs[r] > hi || xs[r] < lo ? 1 : 0;
      return out;
    },
    device: {
      stateSize: 0,
      code: `${WGSL_IS_NAN}
fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool {
  let x = s.${wgslField[sig]};
  return !is_nan_f32(x) && (x > f32(${wgslFloat(hi)}) || x < f32(${wgslFloat(lo)}));
}`,
    },
  };
}

/** Empirical quantile at level p in [0, 1] (linear interpolation between order statistics). */
export function quantile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) throw new ValidationError('quantile of an empty list');
  const h = Math.min(Math.max(p, 0), 1) * (n - 1);
  const i = Math.floor(h);
  return i + 1 < n ? sorted[i] + (h - i) * (sorted[i + 1] - sorted[i]) : sorted[n - 1];
}

/**
 * The window around the operating threshold τ: with F the empirical CDF of the validation scores, the
 * quantiles at F(τ) − halfWidth and F(τ) + halfWidth (levels clamped to [0, 1]), so about 2·halfWidth of
 * the validation samples fall inside and go on.
 */
export function fitWindow(
  validationScores: ArrayLike<number>,
  tau: number,
  halfWidth = 0.1,
): { wLo: number; wHi: number } {
  const xs = Array.from(validationScores).filter((x) => !Number.isNaN(x));
  if (xs.length === 0) throw new ValidationError('fitWindow: no validation scores (all empty or NaN)');
  if (!(halfWidth >= 0 && halfWidth <= 0.5))
    throw new ValidationError(`fitWindow: halfWidth must be in [0, 0.5], got ${halfWidth}`);
  if (!Number.isFinite(tau)) throw new ValidationError(`fitWindow: tau must be a finite number, got ${tau}`);
  xs.sort((a, b) => a - b);
  const below = xs.filter((x) => x < tau).length;
  const level = below / xs.length;
  return { wLo: quantile(xs, Math.max(0, level - halfWidth)), wHi: quantile(xs, Math.min(1, level + halfWidth)) };
}
