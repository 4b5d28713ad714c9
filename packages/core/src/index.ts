// @offramp/core: early-exit neural networks on WebGPU.
export * from './errors.js';
export * from './kernels/index.js';
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
export { mulberry32, randn, randomArray } from './util/random.js';
