// Static: every sample leaves at one fixed exit (a fixed-depth model: ModularStarEncoder-style depth chosen
// at deployment). Checked against the model's exit count at init.
import type { ExitPolicy } from '@offramp/core';
import * as z from 'zod';
import { int, optionError, parseOptions } from '../options.js';

export const staticSchema = z.strictObject({
  /** 0-based exit index to leave at. */
  exit: int(0, 1_000_000),
});
export type StaticOptions = z.input<typeof staticSchema>;

export function staticPolicy(options: StaticOptions): ExitPolicy<null> {
  const o = parseOptions('static', staticSchema, options);
  return {
    name: 'static',
    needs: [],
    options: o,
    init({ numExits }) {
      if (o.exit >= numExits)
        optionError(
          'static',
          'exit',
          `must be an exit index in [0, ${numExits - 1}] for this model's ${numExits} exits`,
          o.exit,
        );
      return null;
    },
    decide: (ctx, s) => new Uint8Array(s.count).fill(ctx.exitIndex >= o.exit ? 1 : 0),
    device: {
      stateSize: 0,
      code: `fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool { return exit_index >= ${o.exit}u; }`,
    },
  };
}
