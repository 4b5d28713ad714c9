// Backend choice for decoder training: the package's WebGPU-on-Dawn or CPU backend (training/backend.ts), or
// TensorFlow.js's WebAssembly backend (XNNPACK kernels, SIMD, no per-dispatch overhead), which measured
// fastest for this small decoder on a shared 2-core machine without a GPU.
import { createRequire } from 'node:module';
import path from 'node:path';
import { ValidationError } from '@offramp/core';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../training/backend.js';

export type DecoderBackend = 'wasm' | 'webgpu' | 'cpu';

export async function initDecoderBackend(
  prefer: DecoderBackend,
  log: (line: string) => void = console.log,
): Promise<DecoderBackend> {
  if (prefer === 'webgpu' || prefer === 'cpu') return initBackend(prefer, log);
  if (prefer !== 'wasm')
    throw new ValidationError(`backend is ${JSON.stringify(prefer)}; expected wasm, webgpu or cpu`);
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const dir = path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
  wasm.setWasmPaths(`${dir}${path.sep}`);
  if (!(await tf.setBackend('wasm'))) throw new Error('the TensorFlow.js WebAssembly backend did not initialise');
  await tf.ready();
  log('training backend: wasm (TensorFlow.js WebAssembly backend)');
  return 'wasm';
}
