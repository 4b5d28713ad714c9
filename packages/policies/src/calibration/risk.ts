// Risk-controlled calibration (CALM's use of Learn-then-Test): pick the most aggressive threshold whose
// disagreement with the full model is ≤ ε with probability ≥ 1 − δ. Thresholds are tested in a fixed
// order from the most conservative down (fixed-sequence testing, so no multiplicity correction), each
// against H0: risk > ε with a p-value from the exact binomial tail or the Hoeffding–Bentkus bound; the
// sequence stops at the first p-value > δ, and the last rejected H0 gives the threshold.
import { ValidationError } from '@offramp/core';
import { createPolicy } from '../registry.js';
import { simulate } from './simulate.js';
import { fixedGrid, thresholdRule } from './thresholds.js';
import type { Trace } from './trace.js';

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7; relative error about 1e-15). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** ln C(n, k). */
export function logChoose(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/** P(X ≤ k) for X ~ Binomial(n, p), summed exactly term by term in log space. */
export function binomialCdf(k: number, n: number, p: number): number {
  if (!Number.isInteger(n) || n < 0) throw new ValidationError(`binomialCdf: n must be an integer ≥ 0, got ${n}`);
  if (!(p >= 0 && p <= 1)) throw new ValidationError(`binomialCdf: p must be in [0, 1], got ${p}`);
  const kk = Math.floor(k);
  if (kk < 0) return 0;
  if (kk >= n) return 1;
  if (p === 0) return 1;
  if (p === 1) return 0;
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  const terms: number[] = [];
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i <= kk; i++) {
    const t = logChoose(n, i) + i * lp + (n - i) * lq;
    terms.push(t);
    if (t > max) max = t;
  }
  let s = 0;
  for (const t of terms) s += Math.exp(t - max);
  return Math.min(1, Math.exp(max + Math.log(s)));
}

/** Exact binomial p-value of H0: risk > ε after `losses` disagreements in n samples: P(Bin(n, ε) ≤ losses). */
export function binomialPValue(losses: number, n: number, epsilon: number): number {
  return binomialCdf(losses, n, epsilon);
}

/** Bernoulli KL divergence h1(a, b) = a ln(a/b) + (1 − a) ln((1 − a)/(1 − b)). */
function h1(a: number, b: number): number {
  const x = a === 0 ? 0 : a * Math.log(a / b);
  const y = a === 1 ? 0 : (1 - a) * Math.log((1 - a) / (1 - b));
  return x + y;
}

/** Hoeffding–Bentkus p-value: min(exp(−n·h1(min(R̂, ε), ε)), e·P(Bin(n, ε) ≤ ⌈n R̂⌉)). */
export function hoeffdingBentkusPValue(losses: number, n: number, epsilon: number): number {
  const r = losses / n;
  const hoeffding = Math.exp(-n * h1(Math.min(r, epsilon), epsilon));
  const bentkus = Math.E * binomialCdf(Math.ceil(n * r - 1e-9), n, epsilon);
  return Math.min(1, hoeffding, bentkus);
}

export interface RiskOptions {
  /** Tolerated disagreement with the full model, ε in (0, 1). */
  epsilon: number;
  /** Allowed failure probability, δ in (0, 1). */
  delta: number;
  /** p-value: exact binomial tail (default) or Hoeffding–Bentkus. */
  method?: 'binomial' | 'hoeffding-bentkus';
  /** Thresholds to test, most conservative first; fixed before seeing the data (default: 101-point grid). */
  thresholds?: readonly number[];
  /** Other options of the policy. */
  options?: Record<string, unknown>;
  maxBatch?: number;
}

export interface RiskTest {
  threshold: number;
  /** Empirical disagreement on the calibration trace. */
  risk: number;
  pValue: number;
}

export interface RiskCalibration {
  policy: string;
  /** The chosen threshold, or null when even the most conservative one is not certified. */
  threshold: number | null;
  options: Record<string, unknown> | null;
  epsilon: number;
  delta: number;
  method: 'binomial' | 'hoeffding-bentkus';
  n: number;
  /** The tests run, in order (the last one failed unless every threshold passed). */
  tests: RiskTest[];
  /** Mean cost fraction at the chosen threshold on the calibration trace. */
  meanCost: number | null;
}

export function calibrateRisk(trace: Trace, policyName: string, o: RiskOptions): RiskCalibration {
  if (!(o.epsilon > 0 && o.epsilon < 1))
    throw new ValidationError(`calibrateRisk: epsilon must be in (0, 1), got ${o.epsilon}`);
  if (!(o.delta > 0 && o.delta < 1))
    throw new ValidationError(`calibrateRisk: delta must be in (0, 1), got ${o.delta}`);
  const method = o.method ?? 'binomial';
  if (method !== 'binomial' && method !== 'hoeffding-bentkus')
    throw new ValidationError(`calibrateRisk: method must be 'binomial' or 'hoeffding-bentkus', got '${method}'`);
  const base = o.options ?? {};
  const rule = thresholdRule(policyName, trace, base);
  const grid = o.thresholds ?? fixedGrid(trace, rule);
  const n = trace.samples.length;
  const pv = method === 'binomial' ? binomialPValue : hoeffdingBentkusPValue;
  const tests: RiskTest[] = [];
  let chosen: number | null = null;
  let meanCost: number | null = null;
  for (const threshold of grid) {
    const sim = simulate(createPolicy(policyName, { ...base, threshold }), trace, { maxBatch: o.maxBatch });
    const losses = Math.round(sim.disagreement * n);
    const pValue = pv(losses, n, o.epsilon);
    tests.push({ threshold, risk: losses / n, pValue });
    if (pValue > o.delta) break;
    chosen = threshold;
    meanCost = sim.meanCost;
  }
  return {
    policy: policyName,
    threshold: chosen,
    options: chosen === null ? null : { ...base, threshold: chosen },
    epsilon: o.epsilon,
    delta: o.delta,
    method,
    n,
    tests,
    meanCost,
  };
}
