// "Did you mean ...?" for mistyped names: Levenshtein distance and the nearest candidates.

/** Edit distance (insertions, deletions, substitutions of one character each). */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  if (!a.length) return b.length;
  if (!b.length) return a.length;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

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
