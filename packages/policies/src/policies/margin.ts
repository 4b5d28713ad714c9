// Margin (CALM): leave when the top-1 minus top-2 softmax probability ≥ τ (one τ, or one per exit).
import type { ExitPolicy } from '@offramp/core';
import * as z from 'zod';
import { parseOptions, thresholdOrList } from '../options.js';
import { thresholdPolicy } from './threshold.js';

export const marginSchema = z.strictObject({
  /** τ in [0, 1]: one for every exit, or one per exit. */
  threshold: thresholdOrList(0, 1, true, true).default(0.5),
});
export type MarginOptions = z.input<typeof marginSchema>;

export function margin(options: MarginOptions = {}): ExitPolicy<null> {
  const o = parseOptions('margin', marginSchema, options);
  return thresholdPolicy({ name: 'margin', signal: 'margin', op: '>=', threshold: o.threshold, options: o });
}
