// "Did you mean ...?" for mistyped names: Levenshtein distance and the nearest candidates.
import { editDistance } from '@offramp/core';

/** Edit distance (insertions, deletions, substitutions of one character each): core's, under its old name. */
export const levenshtein: (a: string, b: string) => number = editDistance;

/**
 * The candidate nearest to `name` (case-insensitive), when it is close enough to be a likely typo: distance at
 * most max(1, ⌊len/3⌋), or `name` is a prefix of it.
 */
export function nearest(name: string, candidates: readonly string[]): string | undefined {
  const n = name.toLowerCase();
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = levenshtein(n, c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  if (best === undefined) return undefined;
  if (bestD <= Math.max(1, Math.floor(n.length / 3))) return best;
  const prefixed = candidates.filter((c) => n.length >= 3 && c.toLowerCase().startsWith(n));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** " (did you mean 'x'?)" or "". */
export function didYouMean(name: string, candidates: readonly string[]): string {
  const s = nearest(name, candidates);
  return s ? ` (did you mean '${s}'?)` : '';
}
