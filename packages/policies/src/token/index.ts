// Token-level exit policies for generation: the per-token adapter of any ExitPolicy, CALM's decaying
// threshold, the host generation loop over GenerationModel, and risk-controlled calibration on tokens.
export {
  TokenExitRule,
  type TokenExitRuleOptions,
  type TokenModelShape,
  type TokenPolicyInit,
  tokenCostFractions,
  tokenExitRule,
} from './adapter.js';
export { calibrateTokenPolicy, tokenTrace, traceFromScore } from './calibrate.js';
export { type DecayingOptions, decaying, decayingThreshold } from './decaying.js';
export { type GenerateTokensOptions, type GenerateTokensResult, generateTokens, type TokenEvent } from './generate.js';
