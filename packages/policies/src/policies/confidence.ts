// Confidence: leave when the exit's max softmax probability max_c softmax(z)_c ≥ τ (one τ, or one per exit).
import type { ExitPolicy } from '@offramp/core';
import * as z from 'zod';
import { parseOptions, thresholdOrList } from '../options.js';
import { thresholdPolicy } from './threshold.js';

export const confidenceSchema = z.strictObject({
  /** τ in [0, 1]: one for every exit, or one per exit. */
  threshold: thresholdOrList(0, 1, true, true).default(0.9),
});
export type ConfidenceOptions = z.input<typeof confidenceSchema>;

export function confidence(options: ConfidenceOptions = {}): ExitPolicy<null> {
  const o = parseOptions('confidence', confidenceSchema, options);
  return thresholdPolicy({ name: 'confidence', signal: 'maxProb', op: '>=', threshold: o.threshold, options: o });
}
