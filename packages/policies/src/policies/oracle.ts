// Oracle (evaluation only): leave at the earliest exit whose argmax equals the sample's final prediction,
// given per sample (`finals[sampleId]`, from a never-exit run). It needs the answers in advance, so it is
// an upper bound for comparisons, not a deployable policy; `oracleExits(trace)` in the calibration module
// computes the same offline from a recorded trace.
import type { ExitPolicy } from '@offramp/core';
import * as z from 'zod';
import { optionError, parseOptions } from '../options.js';

export const oracleSchema = z.strictObject({
  /** The final exit's prediction of each sample, indexed by sampleId. */
  finals: z
    .array(z.int().min(0), { error: 'must be an array of class indices, one per sample' })
    .min(1, { error: 'must not be empty' }),
});
export type OracleOptions = z.input<typeof oracleSchema>;

export function oracle(options: OracleOptions): ExitPolicy<null> {
  const o = parseOptions('oracle', oracleSchema, options);
  const n = o.finals.length;
  return {
    name: 'oracle',
    needs: ['argmax'],
    options: o,
    init({ batchSize, numClasses }) {
      if (n < batchSize)
        optionError('oracle', 'finals', `needs one final prediction per sample (batch of ${batchSize})`, `${n} values`);
      const bad = o.finals.find((c) => c >= numClasses);
      if (bad !== undefined) optionError('oracle', 'finals', `must hold class indices in [0, ${numClasses - 1}]`, bad);
      return null;
    },
    decide(_ctx, s) {
      const out = new Uint8Array(s.count);
      for (let r = 0; r < s.count; r++) out[r] = s.argmax[r] === o.finals[s.sampleIds[r]] ? 1 : 0;
      return out;
    },
    device: {
      stateSize: 0,
      code: `var<private> FINALS: array<u32, ${n}> = array<u32, ${n}>(${o.finals.map((c) => `${c}u`).join(', ')});
fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool {
  return sid < ${n}u && s.argmax == FINALS[sid];
}`,
    },
  };
}
