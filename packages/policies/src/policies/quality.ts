// Quality (RBQE-style enhancement): leave at the first exit whose quality score ≥ T. The score is read
// from a signal, by default the gate slot, where an enhancement model's exit head writes its score.
import type { ExitPolicy } from '@offramp/core';
import * as z from 'zod';
import { parseOptions, scalarSignal, thresholdOrList } from '../options.js';
import { thresholdPolicy } from './threshold.js';

export const qualitySchema = z.strictObject({
  /** T: one for every exit, or one per exit (RBQE: 0.67 for JPEG, 0.84 for HEVC). */
  threshold: thresholdOrList(-1e30, 1e30, true, true).default(0.67),
  /** The signal holding the quality score (default 'gate'). */
  signal: scalarSignal.default('gate'),
});
export type QualityOptions = z.input<typeof qualitySchema>;

export function quality(options: QualityOptions = {}): ExitPolicy<null> {
  const o = parseOptions('quality', qualitySchema, options);
  return thresholdPolicy({ name: 'quality', signal: o.signal, op: '>=', threshold: o.threshold, options: o });
}
