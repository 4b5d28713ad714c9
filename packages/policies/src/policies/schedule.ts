// Schedule (SkipDecode-style): the exit depends on the sample's sequence position t only, through a
// monotone non-increasing depth h(t) = max(h_min, h_max − ⌊(h_max − h_min)·(t − t0)/(T − t0)⌋) (t < t0
// counts as t0), so a later position never needs what an earlier one skipped. A sample leaves at the
// first exit whose index (unit 'exit', default) or block (unit 'block') is ≥ h(t). Classification runs
// have no positions: give `position` (one for all), `positions` (per sampleId), or neither, in which case
// t = sampleId + positionOffset (the row's index in the batch).
import type { ExitPolicy } from '@offramp/core';
import * as z from 'zod';
import { int, optionError, parseOptions } from '../options.js';
import { wgslPerExitU32 } from '../wgsl.js';

const count = int(0, 1_000_000);
export const scheduleSchema = z
  .strictObject({
    hMin: count,
    hMax: count,
    /** First position of the ramp (default 0). */
    t0: count.default(0),
    /** Position where the ramp reaches h_min (> t0). */
    T: int(1, 1_000_000_000),
    unit: z.enum(['exit', 'block'], { error: "must be 'exit' or 'block'" }).default('exit'),
    /** Unit 'block': the model's exit blocks, to build the device form (checked at init). */
    exitBlocks: z.array(count, { error: 'must be an array of block indices' }).optional(),
    position: count.optional(),
    positions: z.array(count, { error: 'must be an array of positions, one per sampleId' }).optional(),
    positionOffset: count.default(0),
  })
  .refine((o) => o.hMin <= o.hMax, { error: 'must be ≥ hMin', path: ['hMax'] })
  .refine((o) => o.T > o.t0, { error: 'must be > t0', path: ['T'] })
  .refine((o) => o.position === undefined || o.positions === undefined, {
    error: "cannot be given with 'position'",
    path: ['positions'],
  });
export type ScheduleOptions = z.input<typeof scheduleSchema>;

/** h(t) of the schedule. */
export function scheduleDepth(o: { hMin: number; hMax: number; t0: number; T: number }, t: number): number {
  const dt = Math.max(t - o.t0, 0);
  return Math.max(o.hMin, o.hMax - Math.floor(((o.hMax - o.hMin) * dt) / (o.T - o.t0)));
}

export function schedule(options: ScheduleOptions): ExitPolicy<null> {
  const o = parseOptions('schedule', scheduleSchema, options);
  const positionOf = (sid: number) => o.position ?? (o.positions ? o.positions[sid] : sid + o.positionOffset);
  const policy: ExitPolicy<null> = {
    name: 'schedule',
    needs: [],
    options: o,
    init({ batchSize, exitBlocks }) {
      if (o.positions && o.positions.length < batchSize)
        optionError(
          'schedule',
          'positions',
          `needs one position per sample (batch of ${batchSize})`,
          o.positions.length,
        );
      if (o.exitBlocks && o.exitBlocks.join() !== exitBlocks.join())
        optionError(
          'schedule',
          'exitBlocks',
          `must equal the model's exit blocks [${exitBlocks.join(', ')}]`,
          o.exitBlocks,
        );
      return null;
    },
    decide(ctx, s) {
      const out = new Uint8Array(s.count);
      const at = o.unit === 'exit' ? ctx.exitIndex : ctx.block;
      for (let r = 0; r < s.count; r++) out[r] = at >= scheduleDepth(o, positionOf(s.sampleIds[r])) ? 1 : 0;
      return out;
    },
  };
  if (o.unit === 'exit' || o.exitBlocks) {
    const pos =
      o.position !== undefined
        ? `${o.position}`
        : o.positions
          ? 'i32(POSITIONS[min(sid, POSITIONS_LEN - 1u)])'
          : `i32(sid) + ${o.positionOffset}`;
    const table = o.positions
      ? `const POSITIONS_LEN: u32 = ${o.positions.length}u;\nvar<private> POSITIONS: array<u32, ${o.positions.length}> = array<u32, ${o.positions.length}>(${o.positions.map((p) => `${p}u`).join(', ')});`
      : '';
    const blocks = o.unit === 'block' ? wgslPerExitU32('block_of', o.exitBlocks!) : '';
    policy.device = {
      stateSize: 0,
      code: `${table}
${blocks}
fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool {
  let dt = max(${pos} - ${o.t0}, 0);
  let h = max(${o.hMin}, ${o.hMax} - (${o.hMax - o.hMin} * dt) / ${o.T - o.t0});
  return i32(${o.unit === 'exit' ? 'exit_index' : 'block_of(exit_index)'}) >= h;
}`,
    };
  }
  return policy;
}
