// Expected calibration error with equal-width confidence bins: bin b covers (b/B, (b+1)/B] (the first bin
// also takes confidence 0); ECE = Σ_b (n_b / n) · |accuracy_b − mean confidence_b|; MCE = max_b of the gap.
// Confidence is the probability the model gives its own prediction (max prob for a softmax).
import { ValidationError } from '@offramp/core';
import { checkCorrect, checkScores } from './scores.js';

export interface ReliabilityBin {
  lo: number;
  hi: number;
  count: number;
  /** Mean confidence in the bin (NaN when empty). */
  confidence: number;
  /** Accuracy in the bin (NaN when empty). */
  accuracy: number;
}

export interface Reliability {
  ece: number;
  mce: number;
  bins: ReliabilityBin[];
  n: number;
}

export function reliability(
  confidence: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  numBins = 15,
): Reliability {
  if (!Number.isInteger(numBins) || numBins < 1 || numBins > 1000)
    throw new ValidationError(`reliability: numBins must be an integer in [1, 1000], got ${numBins}`);
  const p = checkScores(confidence, 'reliability');
  const c = checkCorrect(correct, 'reliability', p.length);
  const n = p.length;
  if (n === 0) throw new ValidationError('reliability: no samples');
  const count = new Float64Array(numBins);
  const conf = new Float64Array(numBins);
  const acc = new Float64Array(numBins);
  for (let i = 0; i < n; i++) {
    if (p[i] < 0 || p[i] > 1)
      throw new ValidationError(`reliability: confidence ${i} is ${p[i]}; confidences are probabilities in [0, 1]`);
    // the bin whose (lo, hi] holds p, with the edges computed as b / numBins (no rounding drift at an edge)
    let b = Math.min(numBins - 1, Math.max(0, Math.ceil(p[i] * numBins) - 1));
    if (b > 0 && p[i] <= b / numBins) b--;
    else if (b < numBins - 1 && p[i] > (b + 1) / numBins) b++;
    count[b]++;
    conf[b] += p[i];
    acc[b] += c[i];
  }
  let ece = 0;
  let mce = 0;
  const bins: ReliabilityBin[] = [];
  for (let b = 0; b < numBins; b++) {
    const k = count[b];
    const bin = {
      lo: b / numBins,
      hi: (b + 1) / numBins,
      count: k,
      confidence: k ? conf[b] / k : Number.NaN,
      accuracy: k ? acc[b] / k : Number.NaN,
    };
    bins.push(bin);
    if (k) {
      const gap = Math.abs(bin.accuracy - bin.confidence);
      ece += (k / n) * gap;
      mce = Math.max(mce, gap);
    }
  }
  return { ece, mce, bins, n };
}

/** ECE alone (see `reliability`). */
export function ece(confidence: ArrayLike<number>, correct: ArrayLike<boolean | number>, numBins = 15): number {
  return reliability(confidence, correct, numBins).ece;
}
