// Next-token choice from logits on the host: greedy (temperature 0) or, after top-k and top-p (nucleus)
// filtering, a draw at a temperature from a seeded generator (reproducible runs).
import { ValidationError } from '../errors.js';

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
  if (!Number.isFinite(t) || t < 0)
    throw new ValidationError(`sampling: temperature must be a finite number ≥ 0, got ${o.temperature}`);
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 0))
    throw new ValidationError(`sampling: topK must be a non-negative integer (0 = off), got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1))
    throw new ValidationError(`sampling: topP must be in (0, 1], got ${o.topP}`);
}

/** Index of the largest of z[offset, offset + length) (the lowest on ties). */
export function argmaxOf(z: ArrayLike<number>, offset = 0, length = z.length - offset): number {
  let best = 0;
  for (let i = 1; i < length; i++) if (z[offset + i] > z[offset + best]) best = i;
  return best;
}

/** A token from logits[offset, offset + V); `rand` gives uniform numbers in [0, 1). */
export function sampleToken(
  logits: ArrayLike<number>,
  offset: number,
  V: number,
  o: SamplingOptions,
  rand: () => number,
): number {
  const t = o.temperature ?? 0;
  if (t === 0) return argmaxOf(logits, offset, V);
  const ids = Array.from({ length: V }, (_, i) => i);
  ids.sort((a, b) => logits[offset + b] - logits[offset + a] || a - b);
  const k = o.topK ? Math.min(o.topK, V) : V;
  const top = ids.slice(0, k);
  const m = logits[offset + top[0]];
  const w = top.map((i) => Math.exp((logits[offset + i] - m) / t));
  const total = w.reduce((a, b) => a + b, 0);
  let keep = k;
  if (o.topP !== undefined && o.topP < 1) {
    let acc = 0;
    keep = top.findIndex((_, i) => {
      acc += w[i] / total;
      return acc >= o.topP!;
    });
    keep = keep < 0 ? k : keep + 1;
  }
  let mass = 0;
  for (let i = 0; i < keep; i++) mass += w[i];
  let r = rand() * mass;
  for (let i = 0; i < keep; i++) {
    r -= w[i];
    if (r < 0) return top[i];
  }
  return top[keep - 1];
}
