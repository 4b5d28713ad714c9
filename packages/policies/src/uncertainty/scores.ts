// Uncertainty scores from class probabilities: higher = more confident, for every metric in this folder.
//   probs: one row of C class probabilities per sample (or a flat n × C array with `numClasses`)
import { ValidationError } from '@offramp/core';

/** Which score ranks samples: the max class probability, or the negative entropy (nats) of the distribution. */
export type ScoreKind = 'maxProb' | 'entropy';
export const SCORE_KINDS: readonly ScoreKind[] = ['maxProb', 'entropy'];

/** Rows of probabilities: an array of rows, or a flat row-major array with the class count. */
export type ProbRows = readonly ArrayLike<number>[] | { data: ArrayLike<number>; numClasses: number };

/** The rows of `probs` as views (flat input is cut into rows of numClasses). */
export function probRows(probs: ProbRows): ArrayLike<number>[] {
  if (Array.isArray(probs)) return probs as ArrayLike<number>[];
  const { data, numClasses } = probs as { data: ArrayLike<number>; numClasses: number };
  if (!Number.isInteger(numClasses) || numClasses < 1)
    throw new ValidationError(`probabilities: numClasses must be an integer ≥ 1, got ${numClasses}`);
  if (data.length % numClasses !== 0)
    throw new ValidationError(
      `probabilities: ${data.length} values are not whole rows of numClasses=${numClasses} (a multiple of ${numClasses} is needed)`,
    );
  const out: ArrayLike<number>[] = [];
  for (let i = 0; i < data.length; i += numClasses)
    out.push(Array.prototype.slice.call(data, i, i + numClasses) as number[]);
  return out;
}

/** Confidence score of one probability row: max_c p_c, or −H(p) = Σ p_c ln p_c (0·ln 0 = 0). */
export function scoreOf(p: ArrayLike<number>, kind: ScoreKind = 'maxProb'): number {
  if (p.length === 0) throw new ValidationError('score: an empty probability row');
  if (kind === 'maxProb') {
    let m = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < p.length; i++) m = Math.max(m, p[i]);
    return m;
  }
  if (kind === 'entropy') {
    let s = 0;
    for (let i = 0; i < p.length; i++) if (p[i] > 0) s += p[i] * Math.log(p[i]);
    return s;
  }
  throw new ValidationError(`score: unknown kind '${String(kind)}'; allowed: ${SCORE_KINDS.join(', ')}`);
}

/** Scores of every row (higher = more confident). */
export function confidenceScores(probs: ProbRows, kind: ScoreKind = 'maxProb'): Float64Array {
  const rows = probRows(probs);
  return Float64Array.from(rows, (r) => scoreOf(r, kind));
}

/** Argmax of every row (first maximum on ties). */
export function predictions(probs: ProbRows): Int32Array {
  const rows = probRows(probs);
  return Int32Array.from(rows, (p) => {
    let b = 0;
    for (let i = 1; i < p.length; i++) if (p[i] > p[b]) b = i;
    return b;
  });
}

/** Checks scores are finite and (when given) as many as `n`; returns them as numbers. */
export function checkScores(scores: ArrayLike<number>, what: string, n?: number): Float64Array {
  if (n !== undefined && scores.length !== n)
    throw new ValidationError(`${what}: ${scores.length} scores for ${n} samples; one score per sample is needed`);
  const out = Float64Array.from(scores as ArrayLike<number>);
  for (let i = 0; i < out.length; i++)
    if (!Number.isFinite(out[i]))
      throw new ValidationError(`${what}: score ${i} is ${out[i]}; scores must be finite numbers`);
  return out;
}

/** Checks 0/1 (or boolean) correctness flags, as many as `n`. */
export function checkCorrect(correct: ArrayLike<boolean | number>, what: string, n: number): Uint8Array {
  if (correct.length !== n)
    throw new ValidationError(`${what}: ${correct.length} correctness flags for ${n} scores; one per sample is needed`);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = correct[i];
    if (c === true || c === 1) out[i] = 1;
    else if (c === false || c === 0) out[i] = 0;
    else throw new ValidationError(`${what}: correctness flag ${i} is ${String(c)}; allowed: true/false or 1/0`);
  }
  return out;
}
