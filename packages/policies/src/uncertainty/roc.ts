// Ranking metrics over a confidence score (higher = more confident = more likely "positive"):
//   AUROC = P(score of a random positive > score of a random negative) + ½ P(tie) (Mann–Whitney U / (n₊ n₋)),
//   computed by sorting and midranks; FPR at a TPR: the lowest false-positive rate of any threshold
//   "positive when score ≥ t" whose true-positive rate is at least the target.
// Misclassification detection: positives are the correctly classified samples. OOD detection: positives are
// the in-distribution samples, negatives the out-of-distribution ones.
import { ValidationError } from '@offramp/core';
import { checkCorrect, checkScores } from './scores.js';

/** AUROC of positives against negatives (ties count one half). */
export function auroc(positive: ArrayLike<number>, negative: ArrayLike<number>): number {
  const p = checkScores(positive, 'auroc (positives)');
  const q = checkScores(negative, 'auroc (negatives)');
  if (p.length === 0 || q.length === 0)
    throw new ValidationError(
      `auroc: needs at least one positive and one negative sample, got ${p.length} and ${q.length}`,
    );
  const all = [...Array.from(p, (v) => ({ v, pos: 1 })), ...Array.from(q, (v) => ({ v, pos: 0 }))].sort(
    (a, b) => a.v - b.v,
  );
  // sum of the positives' midranks (1-based)
  let rankSum = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    let pos = 0;
    while (j < all.length && all[j].v === all[i].v) pos += all[j++].pos;
    rankSum += pos * ((i + 1 + j) / 2);
    i = j;
  }
  const np = p.length;
  return (rankSum - (np * (np + 1)) / 2) / (np * q.length);
}

/**
 * The lowest FPR over thresholds whose TPR ≥ `tpr` (default 0.95), with that threshold (positive when
 * score ≥ threshold) and the TPR reached.
 */
export function fprAtTpr(
  positive: ArrayLike<number>,
  negative: ArrayLike<number>,
  tpr = 0.95,
): { fpr: number; tpr: number; threshold: number } {
  if (!(tpr > 0 && tpr <= 1)) throw new ValidationError(`fprAtTpr: tpr must be in (0, 1], got ${tpr}`);
  const p = checkScores(positive, 'fprAtTpr (positives)').sort();
  const q = checkScores(negative, 'fprAtTpr (negatives)').sort();
  if (p.length === 0 || q.length === 0)
    throw new ValidationError(
      `fprAtTpr: needs at least one positive and one negative sample, got ${p.length} and ${q.length}`,
    );
  // the highest threshold keeping at least ceil(tpr·n₊) positives is the k-th largest positive score
  const need = Math.ceil(tpr * p.length - 1e-9);
  const threshold = p[p.length - need];
  const tp = p.length - lowerBound(p, threshold);
  const fp = q.length - lowerBound(q, threshold);
  return { fpr: fp / q.length, tpr: tp / p.length, threshold };
}

/** First index with xs[i] ≥ v in a sorted array. */
function lowerBound(xs: Float64Array, v: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (xs[m] < v) lo = m + 1;
    else hi = m;
  }
  return lo;
}

/** Misclassification detection: AUROC of the score separating correct from wrong predictions. */
export function misclassificationAuroc(scores: ArrayLike<number>, correct: ArrayLike<boolean | number>): number {
  const s = checkScores(scores, 'misclassificationAuroc');
  const c = checkCorrect(correct, 'misclassificationAuroc', s.length);
  const right: number[] = [];
  const wrong: number[] = [];
  for (let i = 0; i < s.length; i++) (c[i] ? right : wrong).push(s[i]);
  return auroc(right, wrong);
}

export interface OodDetection {
  auroc: number;
  /** FPR (share of OOD samples kept as in-distribution) at 95% TPR on the in-distribution samples. */
  fpr95: number;
  threshold95: number;
}

/** OOD detection: in-distribution samples are the positives (they should score higher). */
export function oodDetection(idScores: ArrayLike<number>, oodScores: ArrayLike<number>): OodDetection {
  const f = fprAtTpr(idScores, oodScores, 0.95);
  return { auroc: auroc(idScores, oodScores), fpr95: f.fpr, threshold95: f.threshold };
}
