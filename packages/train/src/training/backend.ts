// TensorFlow.js backend selection for training: the WebGPU backend on Dawn (the `webgpu` package) when an
// adapter works, else the CPU backend. The WebGPU backend registers itself only if navigator.gpu exists when
// its module is first imported, so the Dawn instance is installed first and the backend imported after.
import * as tf from '@tensorflow/tfjs';

export type TrainBackend = 'webgpu' | 'cpu';

// Dawn instances must stay reachable for as long as any device made from them is in use: never released.
const dawnInstances: unknown[] = [];
let chosen: TrainBackend | undefined;

async function installDawn(): Promise<boolean> {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator?.gpu) return true;
  let mod: { create: (flags: string[]) => unknown; globals: Record<string, unknown> };
  try {
    mod = (await import('webgpu')) as typeof mod;
  } catch {
    return false;
  }
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  const gpu = mod.create([]);
  dawnInstances.push(gpu);
  if (!g.navigator)
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  else Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  return true;
}

/**
 * Selects the training backend: 'webgpu' (default) falls back to 'cpu' when no WebGPU adapter works; 'cpu'
 * forces the CPU backend. Returns the backend in use and logs it through `log` (a reason when falling back).
 */
export async function initBackend(
  prefer: TrainBackend = 'webgpu',
  log: (line: string) => void = console.log,
): Promise<TrainBackend> {
  if (chosen) {
    if (prefer === 'cpu' && chosen !== 'cpu') {
      await tf.setBackend('cpu');
      chosen = 'cpu';
    }
    return chosen;
  }
  if (prefer !== 'webgpu' && prefer !== 'cpu') {
    throw new Error(`unknown training backend '${prefer as string}': use 'webgpu' or 'cpu'`);
  }
  let reason = 'requested';
  if (prefer === 'webgpu') {
    try {
      if (!(await installDawn())) reason = "the 'webgpu' package could not be loaded";
      else {
        await import('@tensorflow/tfjs-backend-webgpu');
        if (!tf.findBackendFactory('webgpu')) reason = 'the WebGPU backend did not register';
        else if (await tf.setBackend('webgpu')) {
          await tf.ready();
          chosen = 'webgpu';
          log('training backend: webgpu (tfjs WebGPU backend on Dawn)');
          return chosen;
        } else reason = 'no WebGPU adapter could be initialised';
      }
    } catch (e) {
      reason = (e as Error).message;
    }
  }
  await tf.setBackend('cpu');
  await tf.ready();
  chosen = 'cpu';
  log(
    prefer === 'webgpu'
      ? `training backend: cpu (fallback: ${reason}; expect training to be about 25× slower)`
      : 'training backend: cpu',
  );
  return chosen;
}

export { tf };
