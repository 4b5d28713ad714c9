// Which built-in policies are single-threshold rules over one signal, and the candidate thresholds a
// trace offers them (values where a decision flips, in f32, ordered from the most conservative).
import { ValidationError } from '@offramp/core';
import type { ScalarSignal } from '../options.js';
import type { Comparison } from '../policies/threshold.js';
import type { Trace } from './trace.js';

export interface ThresholdRule {
  signal: ScalarSignal;
  op: Comparison;
  /** Allowed threshold range [lo, hi] (entropy: (0, ln C]). */
  lo: number;
  hi: number;
}

const SMALLEST = 1.1754943508222875e-38;

/** The threshold rule of a built-in policy, or an error naming the supported ones. */
export function thresholdRule(policyName: string, trace: Trace, options: Record<string, unknown> = {}): ThresholdRule {
  switch (policyName) {
    case 'confidence':
      return { signal: 'maxProb', op: '>=', lo: 0, hi: 1 };
    case 'margin':
      return { signal: 'margin', op: '>=', lo: 0, hi: 1 };
    case 'saturation':
      return { signal: 'similarity', op: '>=', lo: -1, hi: 1 };
    case 'gate':
      return { signal: 'gate', op: '>', lo: 0, hi: prevF32(1) };
    case 'quality':
      return { signal: (options.signal as ScalarSignal) ?? 'gate', op: '>=', lo: -1e30, hi: 1e30 };
    case 'entropy':
      return { signal: 'entropy', op: '<', lo: SMALLEST, hi: Math.log(trace.numClasses) };
    default:
      throw new ValidationError(
        `policy '${policyName}' has no single threshold to calibrate: use confidence, entropy, margin, saturation, gate or quality (or sweep other options)`,
      );
  }
}

const buf = new DataView(new ArrayBuffer(4));
/** The next f32 above x (x an f32). */
export function nextF32(x: number): number {
  if (x === 0) return 1.401298464324817e-45;
  buf.setFloat32(0, x);
  const b = buf.getInt32(0);
  buf.setInt32(0, x > 0 ? b + 1 : b - 1);
  return buf.getFloat32(0);
}
/** The next f32 below x (x an f32). */
export function prevF32(x: number): number {
  return -nextF32(-x);
}

/** true when leaving is more likely as the threshold grows. */
export function aggressiveIsLow(rule: ThresholdRule): boolean {
  return rule.op !== '<' && rule.op !== '<=';
}

/**
 * Candidate thresholds for `rule` from the signal values at the given exits (default all but the last),
 * each placed so that the value itself leaves, plus the most conservative end of the range; ordered from
 * the most conservative (fewest exits) to the most aggressive, at most `max` of them (by quantiles).
 */
export function candidateThresholds(trace: Trace, rule: ThresholdRule, max = 200, exits?: readonly number[]): number[] {
  const which = exits ?? Array.from({ length: Math.max(1, trace.numExits - 1) }, (_, e) => e);
  const vals = new Set<number>();
  for (const s of trace.samples) {
    for (const e of which) {
      const v = s[rule.signal][e];
      if (Number.isNaN(v)) continue;
      const f = Math.fround(v);
      const t = rule.op === '>=' || rule.op === '<=' ? f : rule.op === '>' ? prevF32(f) : nextF32(f);
      vals.add(Math.min(rule.hi, Math.max(rule.lo, t)));
    }
  }
  const low = aggressiveIsLow(rule);
  vals.add(low ? rule.hi : rule.lo);
  let list = [...vals].sort((a, b) => (low ? b - a : a - b));
  if (list.length > max) {
    const picked: number[] = [];
    for (let k = 0; k < max; k++) picked.push(list[Math.round((k * (list.length - 1)) / (max - 1))]);
    list = [...new Set(picked)];
  }
  return list;
}

/** A fixed grid of `steps + 1` thresholds over the rule's natural range, most conservative first. */
export function fixedGrid(trace: Trace, rule: ThresholdRule, steps = 100): number[] {
  const [lo, hi] =
    rule.signal === 'entropy'
      ? [Math.log(trace.numClasses) / steps, Math.log(trace.numClasses)]
      : [Math.max(rule.lo, rule.signal === 'similarity' ? -1 : 0), Math.min(rule.hi, 1)];
  // lo + (hi − lo)·k/steps can round one ulp past hi (ln 2 + 1 ulp for 2 classes, which entropy then
  // refuses): the ends are exact and every point is kept inside [lo, hi] and the rule's own range
  const grid = Array.from({ length: steps + 1 }, (_, k) => {
    const t = k === 0 ? lo : k === steps ? hi : lo + ((hi - lo) * k) / steps;
    return Math.min(hi, rule.hi, Math.max(lo, rule.lo, t));
  });
  return aggressiveIsLow(rule) ? grid.reverse() : grid;
}
