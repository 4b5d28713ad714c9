// Saturation (CALM): leave when the cosine similarity of this exit's hidden state with the previous exit's
// is ≥ τ. The signal is NaN at the first exit (no previous state): never leave there.
import type { ExitPolicy } from '@offramp/core';
import * as z from 'zod';
import { parseOptions, thresholdOrList } from '../options.js';
import { thresholdPolicy } from './threshold.js';

export const saturationSchema = z.strictObject({
  /** τ in [-1, 1]: one for every exit, or one per exit. */
  threshold: thresholdOrList(-1, 1, true, true).default(0.95),
});
export type SaturationOptions = z.input<typeof saturationSchema>;

export function saturation(options: SaturationOptions = {}): ExitPolicy<null> {
  const o = parseOptions('saturation', saturationSchema, options);
  return thresholdPolicy({ name: 'saturation', signal: 'similarity', op: '>=', threshold: o.threshold, options: o });
}
