// Puts one Dawn instance on `globalThis.navigator.gpu` and Dawn's WebGPU globals on `globalThis`, so that
// the TensorFlow.js WebGPU backend (which checks for them when it is imported) and Offramp share an adapter.
// Import this module before anything that imports @tensorflow/tfjs-backend-webgpu.
import { create, globals } from 'webgpu';

const g = globalThis as Record<string, unknown> & { navigator?: { gpu?: unknown } };
for (const [k, v] of Object.entries(globals)) {
  if (!(k in g)) g[k] = v;
}

/** The Dawn instance; kept reachable for the life of the process (collecting it crashes Dawn). */
export const dawn: GPU = create([]);

if (!g.navigator) {
  Object.defineProperty(g, 'navigator', { value: { gpu: dawn }, configurable: true, writable: true });
} else if (!g.navigator.gpu) {
  Object.defineProperty(g.navigator, 'gpu', { value: dawn, configurable: true });
}
(g as Record<string, unknown>).__offrampDawnInstance = dawn;
