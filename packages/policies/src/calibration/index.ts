// Calibration: traces, offline simulation, sweeps, threshold choice and risk-controlled calibration.
export { type ChooseOptions, type ChosenThreshold, chooseThreshold, type ThresholdTarget } from './choose.js';
export {
  binomialCdf,
  binomialPValue,
  calibrateRisk,
  hoeffdingBentkusPValue,
  logChoose,
  logGamma,
  type RiskCalibration,
  type RiskOptions,
  type RiskTest,
} from './risk.js';
export {
  expandGrid,
  type Grid,
  oracleExits,
  paretoFrontier,
  type SimulateOptions,
  type SimulationResult,
  type SimulationSummary,
  type SweepableFactory,
  type SweepPoint,
  simulate,
  summarize,
  sweep,
} from './simulate.js';
export { candidateThresholds, fixedGrid, nextF32, prevF32, type ThresholdRule, thresholdRule } from './thresholds.js';
export {
  checkTrace,
  type RecordTraceOptions,
  recordTrace,
  subsetTrace,
  type Trace,
  type TraceSample,
} from './trace.js';
export {
  type ParsedTraceFile,
  parseTraceFile,
  readTraceFile,
  TRACE_FILE_VERSION,
  TRACE_MAX_DEPTH,
  type TraceFile,
  type TraceFingerprint,
  traceToJson,
} from './trace-file.js';
