// @offramp/core: early-exit neural networks on WebGPU.

export * from './embeddings/index.js';
export {
  Cascade,
  type CascadeOptions,
  type CascadeResult,
  type CascadeRunOptions,
  type CascadeSample,
  type CascadeStage,
  type CascadeSummary,
  gatherInputRows,
} from './engine/cascade.js';
export { cascadeCombine } from './engine/cascade-kernels.js';
export { type PolicyStep, packSignals, runDevicePolicy } from './engine/device-policy.js';
export { type CarriedDecl, GraphBuilder, type OpDecl, type TensorDecl, type TRef } from './engine/graph.js';
export * from './engine/hooks.js';
export type { EarlyExitModel, EncodedBatch, ExitHeadOut, ModelInput, ModelProgram } from './engine/model.js';
export * from './engine/policy.js';
export { type MemoryPlan, Program } from './engine/program.js';
export {
  Runner,
  type RunnerOptions,
  type RunOptions,
  type RunResult,
  type SampleResult,
  type SampleTrace,
  unpackSignals,
} from './engine/runner.js';
export * from './errors.js';
export * from './generation/decoder-model.js';
export {
  checkDecodeLoopOptions,
  DEFAULT_STEPS_PER_SUBMIT,
  dispatchSample,
  f32Threshold,
  generateHostLoop,
  generateOnDevice,
  type HostLoopStep,
  hostDecodeLoop,
  hostSampler,
  type LoopGenerateOptions,
  type LoopGenerateResult,
} from './generation/gpu-loop.js';
export * from './generation/index.js';
export * from './generation/interface.js';
export { GATE_SLOTS, LiveGate } from './generation/live-gate.js';
export { generateRecompute, type RecomputeResult } from './generation/recompute.js';
export * from './generation/signals.js';
export { generateSkipDecode, type SkipDecodeSchedule, skipDepth, skipPlan } from './generation/skipdecode.js';
export {
  GENERATION_STRATEGIES,
  type GenerationStrategy,
  generateWithStrategy,
  type StrategyOptions,
  type StrategyResult,
} from './generation/strategies.js';
export { type TokenSink, tokenStreamer } from './generation/stream.js';
export { EXIT_RULE_CODE, exitDecide, maskRows, stepEnd } from './kernels/decode-step.js';
export { dispatchGate } from './kernels/dispatch-gate.js';
export * from './kernels/index.js';
export { sampleTokens } from './kernels/sample.js';
export * from './models/config.js';
export * from './models/index.js';
export { IR_VERSION, OnnxGraphWriter, OPSET } from './ort/onnx-writer.js';
export {
  attachOrtCpu,
  createOrtCpu,
  executionPath,
  isSoftwareAdapter,
  loadOrt,
  OrtCpu,
  OrtCpuDevice,
  type OrtCpuOptions,
  type OrtModule,
  type OrtSession,
  OrtUnavailableError,
  ortCpuOf,
} from './ort/ort-cpu.js';
export { OrtDecoderCache, OrtDecoderLM, type OrtDecoderLMOptions } from './ort/ort-decoder.js';
export { OrtRunner } from './ort/ort-runner.js';
export { OrtSessionCache } from './ort/session-cache.js';
export {
  type AdmitOptions,
  type FinishedRow,
  type StepBatch,
  SteppedRunner,
  type SteppedRunnerOptions,
  type StepReport,
} from './ort/stepped-runner.js';
export {
  type CapturedGraph,
  captureGraph,
  type HostWeights,
  type TranslatedSegment,
  translateSegment,
  translateWholeModel,
} from './ort/translate.js';
export { BufferPool, type PoolStats, sizeClass } from './runtime/buffer-pool.js';
export { type ConformanceResult, checkKernel, TOLERANCES } from './runtime/conformance.js';
export { CpuDevice } from './runtime/cpu-device.js';
export { type Backend, type CreateDeviceOptions, createDevice, createGpuDevice } from './runtime/create-device.js';
export * from './runtime/device.js';
export * from './runtime/dtype.js';
export { GpuDevice, type GpuDeviceOptions } from './runtime/gpu-device.js';
export * from './runtime/kernel.js';
export { PipelineCache } from './runtime/pipeline-cache.js';
export * from './runtime/tensor.js';
export * from './util/json.js';
export { mulberry32, randn, randomArray } from './util/random.js';
export * from './weights/config.js';
export * from './weights/safetensors.js';
