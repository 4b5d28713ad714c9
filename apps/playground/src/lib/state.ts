// Settings shared by the views.
import type { ExitPolicy } from '@offramp/core';
import { confidence, entropy, margin } from '@offramp/policies';

export type Mode = 'host' | 'device';

export const SLIDER_POLICIES = {
  confidence: {
    label: 'confidence (max prob ≥ τ)',
    min: 0,
    max: 1,
    initial: 0.9,
    make: (t: number) => confidence({ threshold: t }),
  },
  margin: {
    label: 'margin (top-1 − top-2 ≥ τ)',
    min: 0,
    max: 1,
    initial: 0.5,
    make: (t: number) => margin({ threshold: t }),
  },
  entropy: {
    label: 'entropy (H < τ nats)',
    min: 0.01,
    max: 2.3,
    initial: 0.3,
    make: (t: number) => entropy({ threshold: t }),
  },
} satisfies Record<
  string,
  { label: string; min: number; max: number; initial: number; make: (t: number) => ExitPolicy<any> }
>;
export type SliderPolicy = keyof typeof SLIDER_POLICIES;

/** A message for an error of any kind. */
export function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
