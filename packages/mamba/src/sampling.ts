// Choosing the next token from logits: greedy (temperature 0), or sampling at a temperature after top-k
// and top-p (nucleus) filtering, from a seeded generator so a run is reproducible.
import { ValidationError } from '@offramp/core';

export interface SamplingOptions {
  /** 0 (default) = greedy argmax. */
  temperature?: number;
  /** Keep the k most likely tokens (0 or absent = all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 or absent = all). */
  topP?: number;
  /** Seed of the sampler (default 0). */
  seed?: number;
}

export function checkSampling(o: SamplingOptions): void {
  const t = o.temperature ?? 0;
  if (!(t >= 0) || !Number.isFinite(t))
    throw new ValidationError(`sampling: temperature must be a finite number ≥ 0, got ${o.temperature}`);
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 0)) {
    throw new ValidationError(`sampling: topK must be a non-negative integer (0 = off), got ${o.topK}`);
  }
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1))
    throw new ValidationError(`sampling: topP must be in (0, 1], got ${o.topP}`);
}

export function argmax(z: ArrayLike<number>, offset = 0, length = z.length - offset): number {
  let best = 0;
  for (let i = 1; i < length; i++) if (z[offset + i] > z[offset + best]) best = i;
  return best;
}

/** Picks a token from logits[offset, offset + V). `rand` returns uniform numbers in [0, 1). */
export function sampleToken(
  logits: ArrayLike<number>,
  offset: number,
  V: number,
  o: SamplingOptions,
  rand: () => number,
): number {
  const t = o.temperature ?? 0;
  if (t === 0) return argmax(logits, offset, V);
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[offset + b] - logits[offset + a] || a - b);
  const k = o.topK && o.topK > 0 ? Math.min(o.topK, V) : V;
  const top = order.slice(0, k);
  const mx = logits[offset + top[0]];
  const p = top.map((i) => Math.exp((logits[offset + i] - mx) / t));
  const total = p.reduce((a, b) => a + b, 0);
  let keep = top.length;
  if (o.topP !== undefined && o.topP < 1) {
    let cum = 0;
    for (let i = 0; i < top.length; i++) {
      cum += p[i] / total;
      if (cum >= o.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  const mass = p.slice(0, keep).reduce((a, b) => a + b, 0);
  let r = rand() * mass;
  for (let i = 0; i < keep; i++) {
    r -= p[i];
    if (r < 0) return top[i];
  }
  return top[keep - 1];
}
