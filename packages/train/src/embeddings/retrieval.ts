// Retrieval over unit-length embeddings and token ids: exact ranking by dot product, recall@k and MRR against
// a known relevant document per query, BM25 over the same tokens, and the per-query dynamic exit (stop at the
// first exit whose top-1 − top-2 similarity margin in that exit's index reaches a threshold).

/** Scores of one query against every document: q (p) · docs (N, p). */
export function dotScores(q: Float32Array, docs: Float32Array, p: number): Float64Array {
  const n = docs.length / p;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < p; k++) s += q[k] * docs[i * p + k];
    out[i] = s;
  }
  return out;
}

/** 1-based rank of document `target` among `scores` (ties count against it: pessimistic). */
export function rankOf(scores: ArrayLike<number>, target: number): number {
  const t = scores[target];
  let rank = 1;
  for (let i = 0; i < scores.length; i++) if (i !== target && scores[i] >= t) rank++;
  return rank;
}

/** The two largest scores. */
export function top2(scores: ArrayLike<number>): [number, number] {
  let a = -Infinity;
  let b = -Infinity;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i];
    if (s > a) {
      b = a;
      a = s;
    } else if (s > b) b = s;
  }
  return [a, b];
}

export interface RetrievalMetrics {
  recallAt1: number;
  recallAt10: number;
  mrr: number;
  queries: number;
}

export function metricsFromRanks(ranks: readonly number[]): RetrievalMetrics {
  const n = ranks.length;
  return {
    recallAt1: ranks.filter((r) => r <= 1).length / n,
    recallAt10: ranks.filter((r) => r <= 10).length / n,
    mrr: ranks.reduce((s, r) => s + 1 / r, 0) / n,
    queries: n,
  };
}

/** Okapi BM25 over token ids (k1, b as usual; idf = ln(1 + (N − df + 0.5)/(df + 0.5))). */
export class Bm25 {
  private readonly df = new Map<number, number>();
  private readonly tf: Map<number, number>[];
  private readonly len: number[];
  private readonly avg: number;

  constructor(
    docs: readonly (readonly number[])[],
    readonly k1 = 1.2,
    readonly b = 0.75,
  ) {
    this.tf = docs.map((d) => {
      const m = new Map<number, number>();
      for (const t of d) m.set(t, (m.get(t) ?? 0) + 1);
      for (const t of m.keys()) this.df.set(t, (this.df.get(t) ?? 0) + 1);
      return m;
    });
    this.len = docs.map((d) => d.length);
    this.avg = this.len.reduce((a, x) => a + x, 0) / Math.max(1, docs.length);
  }

  scores(query: readonly number[]): Float64Array {
    const N = this.tf.length;
    const out = new Float64Array(N);
    for (const t of new Set(query)) {
      const df = this.df.get(t);
      if (!df) continue;
      const idf = Math.log(1 + (N - df + 0.5) / (df + 0.5));
      for (let i = 0; i < N; i++) {
        const f = this.tf[i].get(t);
        if (!f) continue;
        out[i] += (idf * f * (this.k1 + 1)) / (f + this.k1 * (1 - this.b + (this.b * this.len[i]) / this.avg));
      }
    }
    return out;
  }
}

export interface DynamicExitPoint {
  threshold: number;
  metrics: RetrievalMetrics;
  /** Mean FLOPs per query (encoding up to the exit it stopped at, plus one index scan per exit visited). */
  flops: number;
  /** Share of queries stopping at each exit. */
  exitShare: number[];
}

/**
 * Per-query dynamic exit: at exits 0, 1, …, score the query's exit-j embedding against the exit-j index; stop
 * at the first exit whose top-1 − top-2 margin is ≥ `threshold` (the last exit always stops) and rank there.
 * `scores[j][q]` are the query's scores at exit j; `encodeFlops[j]` the query's encoding cost up to exit j
 * (mean), `scanFlops` the cost of one index scan.
 */
export function dynamicExit(
  scores: Float64Array[][],
  targets: readonly number[],
  threshold: number,
  encodeFlops: readonly number[],
  scanFlops: number,
): DynamicExitPoint {
  const E = scores.length;
  const ranks: number[] = [];
  const share = new Array(E).fill(0);
  let flops = 0;
  targets.forEach((target, q) => {
    let j = 0;
    for (; j < E - 1; j++) {
      const [a, b] = top2(scores[j][q]);
      if (a - b >= threshold) break;
    }
    ranks.push(rankOf(scores[j][q], target));
    share[j]++;
    flops += encodeFlops[j] + (j + 1) * scanFlops;
  });
  return {
    threshold,
    metrics: metricsFromRanks(ranks),
    flops: flops / targets.length,
    exitShare: share.map((s) => s / targets.length),
  };
}

/**
 * Paired bootstrap of the difference of two systems' MRR on the same queries: `a` and `b` are their ranks of
 * each query's document. Resamples the queries `rounds` times (seeded) and returns the observed difference
 * (MRR a − MRR b) with the 2.5 % and 97.5 % quantiles of the resampled differences: an interval that excludes
 * 0 says the difference is not query-sampling noise.
 */
export function pairedBootstrapMrr(
  a: readonly number[],
  b: readonly number[],
  rounds = 2000,
  seed = 1,
): { diff: number; lo: number; hi: number } {
  if (a.length !== b.length || a.length === 0)
    throw new Error(`pairedBootstrapMrr: ${a.length} and ${b.length} ranks; expected two equal, non-empty lists`);
  const n = a.length;
  const d = a.map((r, i) => 1 / r - 1 / b[i]);
  let s = seed >>> 0 || 1;
  const next = () => {
    // xorshift32: a fixed stream per seed
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  const means = new Float64Array(rounds);
  for (let r = 0; r < rounds; r++) {
    let t = 0;
    for (let i = 0; i < n; i++) t += d[Math.floor(next() * n)];
    means[r] = t / n;
  }
  means.sort();
  const q = (f: number) => means[Math.min(rounds - 1, Math.max(0, Math.round(f * (rounds - 1))))];
  return { diff: d.reduce((x, y) => x + y, 0) / n, lo: q(0.025), hi: q(0.975) };
}
