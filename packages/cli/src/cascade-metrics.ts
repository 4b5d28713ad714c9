// Uncertainty metrics of a run (a single model is a one-stage cascade): accuracy and compute, selective
// classification (coverage at 5% risk, AURC), misclassification AUROC, calibration (ECE) and, given a run on
// out-of-distribution data, OOD detection (AUROC, FPR at 95% TPR), each from the max probability or the
// entropy of the combined output.
import type { CascadeResult } from '@offramp/core';
import {
  aurc,
  coverageAtRisk,
  misclassificationAuroc,
  oodDetection,
  type Reliability,
  reliability,
  type ScoreKind,
  scoreOf,
} from '@offramp/policies';

export const METRIC_GROUPS = ['selective', 'ood', 'calibration'] as const;
export type MetricGroup = (typeof METRIC_GROUPS)[number];

export interface RunMetrics {
  n: number;
  accuracy: number;
  /** Mean FLOPs per sample (MACs ≈ FLOPs / 2). */
  flopsPerSample: number;
  /** Share of samples each stage ran. */
  stageShare: number[];
  score: ScoreKind;
  selective?: { coverageAt5: number; threshold5: number; aurc: number; misclassificationAuroc: number };
  calibration?: { ece: number; mce: number; reliability: Reliability };
  ood?: { n: number; auroc: number; fpr95: number; flopsPerSample: number };
}

export function runMetrics(
  res: CascadeResult,
  labels: ArrayLike<number>,
  options: { groups?: readonly MetricGroup[]; ood?: CascadeResult; score?: ScoreKind; bins?: number } = {},
): RunMetrics {
  const groups = options.groups ?? METRIC_GROUPS;
  const score = options.score ?? 'maxProb';
  const n = res.samples.length;
  if (labels.length !== n) throw new Error(`runMetrics: ${labels.length} labels for ${n} samples`);
  const correct = res.samples.map((s, i) => (s.prediction === labels[i] ? 1 : 0));
  const scores = res.samples.map((s) => scoreOf(s.probs, score));
  const out: RunMetrics = {
    n,
    accuracy: correct.reduce((a: number, b) => a + b, 0) / n,
    flopsPerSample: res.summary.flops / n,
    stageShare: res.summary.rowsPerStage.map((r) => r / n),
    score,
  };
  if (groups.includes('selective')) {
    const c5 = coverageAtRisk(scores, correct, 0.05);
    out.selective = {
      coverageAt5: c5.coverage,
      threshold5: c5.threshold,
      aurc: aurc(scores, correct),
      misclassificationAuroc: misclassificationAuroc(scores, correct),
    };
  }
  if (groups.includes('calibration')) {
    const conf = res.samples.map((s) => Math.min(1, Math.max(...s.probs)));
    const r = reliability(conf, correct, options.bins ?? 15);
    out.calibration = { ece: r.ece, mce: r.mce, reliability: r };
  }
  if (groups.includes('ood') && options.ood) {
    const o = options.ood;
    const d = oodDetection(
      scores,
      o.samples.map((s) => scoreOf(s.probs, score)),
    );
    out.ood = {
      n: o.samples.length,
      auroc: d.auroc,
      fpr95: d.fpr95,
      flopsPerSample: o.summary.flops / o.samples.length,
    };
  }
  return out;
}
