// @offramp/mamba: Mamba-1 selective state-space models on Offramp's devices: kernels (selective scan and
// state update), the language model with a per-sequence state cache, generation and token-level early
// exit (DYNAMAX, with learned exit classifiers), a sequence classifier for the early-exit Runner, the
// HuggingFace weight layout, and the float64 training code (hand-written backward) used for exits.

export {
  type BlockDims,
  type BlockState,
  type BlockWeights,
  blockPrefill,
  blockStep,
  linearOp,
  Scope,
  uploadBlock,
} from './block.js';
export * from './classifier.js';
export * from './config.js';
export {
  gateLogitThreshold,
  MAMBA_STEPS_PER_SUBMIT,
  type MambaLoopOptions,
  type MambaLoopResult,
  mambaGenerateHostLoop,
  mambaGenerateOnDevice,
} from './device-loop.js';
export * from './exit-classifier.js';
export { type MambaGenerationOptions, mambaGenerationModel, mambaScore } from './generation.js';
export * from './kernels/index.js';
export * from './model.js';
export { OrtMambaCache, OrtMambaLM } from './ort-mamba.js';
export { type RandomWeightsOptions, randomMambaWeights } from './random-weights.js';
export { MambaReference, type RefState } from './reference.js';
export * from './sampling.js';
export * as training from './train/index.js';
export * from './weights.js';
