// TensorFlow.js on its WebGPU backend, on the Dawn instance that ./dawn-globals.js put on navigator.gpu,
// plus a sync that waits for the GPU without reading anything back (the counterpart of device.sync()).
import './dawn-globals.js';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';

export { tf };

interface WebgpuBackendInternals {
  adapterInfo?: { vendor?: string; architecture?: string; description?: string };
  queue: GPUQueue;
  endComputePassEncoder(): void;
  ensureCommandEncoderReady(): void;
  submitQueue(): void;
}

function backend(): WebgpuBackendInternals {
  return tf.backend() as unknown as WebgpuBackendInternals;
}

/** Selects the WebGPU backend; fails if it did not register. Returns the adapter's vendor and architecture. */
export async function startTfjsWebgpu(): Promise<{ vendor: string; architecture: string; description: string }> {
  const ok = await tf.setBackend('webgpu');
  await tf.ready();
  if (!ok || tf.getBackend() !== 'webgpu') {
    throw new Error(
      `the TensorFlow.js WebGPU backend did not start (backend is '${tf.getBackend()}'): ./dawn-globals.js must be imported before @tensorflow/tfjs-backend-webgpu`,
    );
  }
  const info = backend().adapterInfo ?? {};
  return { vendor: info.vendor ?? '', architecture: info.architecture ?? '', description: info.description ?? '' };
}

/** Submits every recorded tfjs dispatch and waits until the GPU queue has finished it. */
export async function tfjsSync(): Promise<void> {
  const b = backend();
  b.endComputePassEncoder();
  b.ensureCommandEncoderReady();
  b.submitQueue();
  await b.queue.onSubmittedWorkDone();
}
