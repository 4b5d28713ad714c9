// @offramp/policies: built-in exit policies (by name, with validated options), combinators, policy files and
// calibration (offline simulation, threshold choice, risk control). The conformance kit is in ./testing.

export * from './calibration/index.js';
export {
  allOf,
  anyOf,
  combinatorKind,
  type DepthLimitOptions,
  MAX_COMBINATOR_DEPTH,
  MAX_COMBINATOR_PARTS,
  MAX_COMBINATOR_POLICIES,
  maxBlock,
  maxExit,
  minBlock,
  minExit,
  partSpec,
  renameWgsl,
} from './combinators.js';
export type { LoopResult, LoopStep, ModelShape, SampleSignals } from './loop.js';
export { runLoop } from './loop.js';
export { optionError, parseOptions, type ScalarSignal, scalarSignals } from './options.js';
export {
  type BudgetFeedback,
  type BudgetOptions,
  type BudgetPolicy,
  type BudgetState,
  budget,
  budgetSchema,
} from './policies/budget.js';
export { type ConfidenceOptions, confidence, confidenceSchema } from './policies/confidence.js';
export { type EntropyOptions, entropy, entropySchema } from './policies/entropy.js';
export { type GateOptions, gate, gateSchema } from './policies/gate.js';
export { type MarginOptions, margin, marginSchema } from './policies/margin.js';
export {
  logBarrierDistribution,
  type OnlineFeedback,
  type OnlineOptions,
  type OnlinePolicy,
  online,
  onlineSchema,
} from './policies/online.js';
export { type OracleOptions, oracle, oracleSchema } from './policies/oracle.js';
export { type PatienceOptions, type PatienceState, patience, patienceSchema } from './policies/patience.js';
export {
  type PonderOptions,
  type PonderPolicy,
  type PonderState,
  ponder,
  ponderDraw,
  ponderLambda,
  ponderSchema,
} from './policies/ponder.js';
export { type QualityOptions, quality, qualitySchema } from './policies/quality.js';
export { type SaturationOptions, saturation, saturationSchema } from './policies/saturation.js';
export { type ScheduleOptions, schedule, scheduleDepth, scheduleSchema } from './policies/schedule.js';
export { type StaticOptions, staticPolicy, staticSchema } from './policies/static.js';
export { type Comparison, type ThresholdSpec, thresholdPolicy } from './policies/threshold.js';
export { fitWindow, quantile, type WindowOptions, windowPolicy, windowSchema } from './policies/window.js';
export {
  loadPolicyFile,
  POLICY_FILE_VERSION,
  type PolicyFile,
  parsePolicyFile,
  policyFromJson,
  policySpecOf,
  policyToJson,
  savePolicyFile,
} from './policy-file.js';
export {
  type BuiltinPolicyName,
  type BuiltinPolicyOptions,
  builtinPolicies,
  builtinPolicyNames,
  createPolicy,
  isBuiltinPolicy,
  type PolicyEntry,
  parsePolicySpec,
  policyFromSpec,
  validateOptions,
} from './registry.js';
export * from './token/index.js';
export * from './uncertainty/index.js';
