// Patience (PABEE): a per-sample counter goes +1 when this exit agrees with the previous exit and resets to
// 0 otherwise; leave when the counter reaches t. Classification agrees on the argmax; the regression
// variant agrees when a scalar signal (maxProb by default) moved by less than δ: |x_i − x_{i−1}| < δ.
// State per sample: [previous argmax or scalar, counter]. The first exit has no previous one: counter 0.
import type { ExitPolicy } from '@offramp/core';
import { wgslFloat } from '@offramp/core';
import * as z from 'zod';
import { int, num, parseOptions, scalarSignal, wgslField } from '../options.js';
import { WGSL_IS_NAN } from '../wgsl.js';

export const patienceSchema = z.strictObject({
  /** t: consecutive agreeing exits needed (PABEE's patience). */
  patience: int(1, 1_000_000).default(3),
  /** 'argmax' (classification, default) or 'regression' (|Δ scalar| < delta). */
  mode: z.enum(['argmax', 'regression'], { error: "must be 'argmax' or 'regression'" }).default('argmax'),
  /** δ of the regression variant (PABEE: 0.1). */
  delta: num(0, Number.MAX_VALUE, false, true).default(0.1),
  /** The scalar the regression variant watches (default maxProb). */
  signal: scalarSignal.default('maxProb'),
});
export type PatienceOptions = z.input<typeof patienceSchema>;

export interface PatienceState {
  prev: Float64Array;
  counter: Int32Array;
}

export function patience(options: PatienceOptions = {}): ExitPolicy<PatienceState> {
  const o = parseOptions('patience', patienceSchema, options);
  const t = o.patience;
  const delta = Math.fround(o.delta);
  const regression = o.mode === 'regression';
  const sig = o.signal;
  const agreeWgsl = regression
    ? `!is_nan_f32(s.${wgslField[sig]}) && !is_nan_f32(prev) && abs(s.${wgslField[sig]} - prev) < f32(${wgslFloat(delta)})`
    : 'u32(prev) == s.argmax';
  const current = regression ? `s.${wgslField[sig]}` : 'f32(s.argmax)';
  return {
    name: 'patience',
    needs: regression ? [sig] : ['argmax'],
    options: o,
    init: ({ batchSize }) => ({ prev: new Float64Array(batchSize), counter: new Int32Array(batchSize) }),
    decide(ctx, s, st) {
      const out = new Uint8Array(s.count);
      for (let r = 0; r < s.count; r++) {
        const sid = s.sampleIds[r];
        const x = regression ? s[sig][r] : s.argmax[r];
        let agree = false;
        if (ctx.exitIndex > 0) {
          const prev = st.prev[sid];
          agree = regression
            ? !Number.isNaN(x) && !Number.isNaN(prev) && Math.abs(Math.fround(x - prev)) < delta
            : x === prev;
        }
        st.counter[sid] = agree ? st.counter[sid] + 1 : 0;
        st.prev[sid] = x;
        out[r] = st.counter[sid] >= t ? 1 : 0;
      }
      return out;
    },
    device: {
      stateSize: 2,
      code: `${WGSL_IS_NAN}
fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool {
  let base = sid * STATE_SIZE;
  let prev = policy_state[base];
  var counter = 0.0;
  if (exit_index > 0u && ${agreeWgsl}) { counter = policy_state[base + 1u] + 1.0; }
  policy_state[base] = ${current};
  policy_state[base + 1u] = counter;
  return counter >= f32(${t});
}`,
    },
  };
}
