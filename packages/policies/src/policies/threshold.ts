// The shared shape of single-signal threshold policies (confidence, entropy, margin, saturation, gate,
// quality): leave when `signal OP threshold(exit)`, never on NaN. Host and device compare in f32.
import type { ExitContext, ExitPolicy, ExitSignals, PolicyInit } from '@offramp/core';
import { checkPerExit, type ScalarSignal, thresholdAt, wgslField } from '../options.js';
import { WGSL_IS_NAN, wgslPerExitF32 } from '../wgsl.js';

export type Comparison = '>=' | '>' | '<' | '<=';

export interface ThresholdSpec {
  name: string;
  signal: ScalarSignal;
  op: Comparison;
  threshold: number | number[];
  options: Record<string, unknown>;
  /** Extra init-time validation (class count, exit count). */
  check?: (info: PolicyInit) => void;
}

export function compare(x: number, op: Comparison, t: number): boolean {
  if (Number.isNaN(x)) return false;
  switch (op) {
    case '>=':
      return x >= t;
    case '>':
      return x > t;
    case '<':
      return x < t;
    case '<=':
      return x <= t;
  }
}

/** Builds a threshold policy with host and device forms that decide alike. */
export function thresholdPolicy(spec: ThresholdSpec): ExitPolicy<null> {
  const { name, signal, op, threshold } = spec;
  const field = wgslField[signal];
  return {
    name,
    needs: [signal],
    options: spec.options,
    init(info) {
      checkPerExit(name, 'threshold', threshold, info.numExits);
      spec.check?.(info);
      return null;
    },
    decide(ctx: ExitContext, s: ExitSignals) {
      const t = thresholdAt(threshold, ctx.exitIndex);
      const xs = s[signal];
      const out = new Uint8Array(s.count);
      for (let r = 0; r < s.count; r++) out[r] = compare(xs[r], op, t) ? 1 : 0;
      return out;
    },
    device: {
      stateSize: 0,
      code: `${WGSL_IS_NAN}
${wgslPerExitF32('threshold_at', threshold)}
fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool {
  let x = s.${field};
  return !is_nan_f32(x) && x ${op} threshold_at(exit_index);
}`,
    },
  };
}
