// Entropy (DeeBERT): leave when the entropy of the exit's softmax H(z) < S, with one S or one per exit;
// S must lie in (0, ln C] for C classes (checked at init, when C is known).
import type { ExitPolicy } from '@offramp/core';
import * as z from 'zod';
import { optionError, parseOptions, thresholdOrList } from '../options.js';
import { thresholdPolicy } from './threshold.js';

export const entropySchema = z.strictObject({
  /** S in (0, ln C], in nats: one for every exit, or one per exit. */
  threshold: thresholdOrList(0, Number.MAX_VALUE, false, true, '(0, ln C] (C = number of classes)'),
});
export type EntropyOptions = z.input<typeof entropySchema>;

export function entropy(options: EntropyOptions): ExitPolicy<null> {
  const o = parseOptions('entropy', entropySchema, options);
  return thresholdPolicy({
    name: 'entropy',
    signal: 'entropy',
    op: '<',
    threshold: o.threshold,
    options: o,
    check: ({ numClasses }) => {
      const max = Math.log(numClasses);
      const list = Array.isArray(o.threshold) ? o.threshold : [o.threshold];
      for (const t of list) {
        if (!(t > 0 && t <= max))
          optionError(
            'entropy',
            'threshold',
            `must be in (0, ln C] = (0, ${max.toPrecision(6)}] for C=${numClasses} classes`,
            o.threshold,
          );
      }
    },
  });
}
