// Learned gate (JEI-DNN, BERxiT, CALM's classifier): leave when the exit's gate σ(g) > τ (default 0.5).
// Exits without a gate head report NaN: never leave there.
import type { ExitPolicy } from '@offramp/core';
import * as z from 'zod';
import { parseOptions, thresholdOrList } from '../options.js';
import { thresholdPolicy } from './threshold.js';

export const gateSchema = z.strictObject({
  /** τ in [0, 1): one for every exit, or one per exit. */
  threshold: thresholdOrList(0, 1, true, false).default(0.5),
});
export type GateOptions = z.input<typeof gateSchema>;

export function gate(options: GateOptions = {}): ExitPolicy<null> {
  const o = parseOptions('gate', gateSchema, options);
  return thresholdPolicy({ name: 'gate', signal: 'gate', op: '>', threshold: o.threshold, options: o });
}
