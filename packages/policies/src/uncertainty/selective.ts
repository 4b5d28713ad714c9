// Selective classification: accept the samples whose confidence score is at least a threshold, abstain on
// the rest. The risk–coverage curve has one point per distinct score (accept every sample scoring ≥ it);
// tied scores are accepted or refused together, so the curve does not depend on the order of ties.
//   AURC = Σ_points risk(point) · (share of samples whose score equals the point's threshold)
// which, without ties, is the usual (1/n) Σ_k risk(k most confident samples).
import { ValidationError } from '@offramp/core';
import { checkCorrect, checkScores } from './scores.js';

export interface RiskCoveragePoint {
  /** Accept samples with score ≥ threshold. */
  threshold: number;
  /** Fraction of samples accepted. */
  coverage: number;
  /** Error rate among the accepted samples. */
  risk: number;
  accepted: number;
  errors: number;
}

/** The risk–coverage curve, from the most confident threshold (smallest coverage) to full coverage. */
export function riskCoverage(scores: ArrayLike<number>, correct: ArrayLike<boolean | number>): RiskCoveragePoint[] {
  const s = checkScores(scores, 'riskCoverage');
  const c = checkCorrect(correct, 'riskCoverage', s.length);
  const n = s.length;
  if (n === 0) throw new ValidationError('riskCoverage: no samples');
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => s[b] - s[a]);
  const out: RiskCoveragePoint[] = [];
  let accepted = 0;
  let errors = 0;
  for (let k = 0; k < n; ) {
    const t = s[order[k]];
    while (k < n && s[order[k]] === t) {
      accepted++;
      errors += 1 - c[order[k]];
      k++;
    }
    out.push({ threshold: t, coverage: accepted / n, risk: errors / accepted, accepted, errors });
  }
  return out;
}

/** Area under the risk–coverage curve (lower is better); see the file header for ties. */
export function aurc(scores: ArrayLike<number>, correct: ArrayLike<boolean | number>): number {
  const curve = riskCoverage(scores, correct);
  let area = 0;
  let prev = 0;
  for (const p of curve) {
    area += p.risk * (p.coverage - prev);
    prev = p.coverage;
  }
  return area;
}

/**
 * The largest coverage whose selective risk is at most `maxRisk` (e.g. 0.05), with its threshold. When no
 * threshold reaches that risk, coverage is 0 and the threshold +Infinity (abstain on everything).
 */
export function coverageAtRisk(
  scores: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  maxRisk = 0.05,
): { coverage: number; threshold: number; risk: number } {
  if (!(maxRisk >= 0 && maxRisk <= 1))
    throw new ValidationError(`coverageAtRisk: maxRisk must be in [0, 1], got ${maxRisk}`);
  let best = { coverage: 0, threshold: Number.POSITIVE_INFINITY, risk: 0 };
  for (const p of riskCoverage(scores, correct)) {
    // errors / accepted ≤ maxRisk, compared without dividing
    if (p.errors <= maxRisk * p.accepted + 1e-9 && p.coverage > best.coverage)
      best = { coverage: p.coverage, threshold: p.threshold, risk: p.risk };
  }
  return best;
}
