// Uncertainty metrics: selective classification (risk–coverage, AURC, coverage at a risk), misclassification
// and out-of-distribution detection (AUROC, FPR at 95% TPR), calibration (ECE, reliability bins and diagram).
export { ece, type Reliability, type ReliabilityBin, reliability } from './ece.js';
export { type ReliabilitySeries, reliabilitySpec } from './reliability.js';
export { auroc, fprAtTpr, misclassificationAuroc, type OodDetection, oodDetection } from './roc.js';
export {
  checkCorrect,
  checkScores,
  confidenceScores,
  type ProbRows,
  predictions,
  probRows,
  SCORE_KINDS,
  type ScoreKind,
  scoreOf,
} from './scores.js';
export { aurc, coverageAtRisk, type RiskCoveragePoint, riskCoverage } from './selective.js';
