// Runs a policy's device (WGSL) form on the GPU over given exit signals, step by step, with the same
// decide kernel the engine uses. For checking that a policy's host and device forms decide alike.
import { ValidationError } from '../errors.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { decideKernel } from './engine-kernels.js';
import type { ExitContext, ExitPolicy, ExitSignals, PolicyInit } from './policy.js';

export interface PolicyStep {
  ctx: ExitContext;
  signals: ExitSignals;
}

/** Packs signals the way the exit-signal kernel lays them out: (rows, 8). */
export function packSignals(s: ExitSignals): Float32Array {
  const out = new Float32Array(Math.max(1, s.count) * 8);
  for (let r = 0; r < s.count; r++) {
    out.set([s.maxProb[r], s.entropy[r], s.margin[r], s.argmax[r], s.gate[r], s.similarity[r], 0, 0], r * 8);
  }
  return out;
}

/** Decisions of the device form for each step (1 = leave), forced to 1 at the last exit as in the engine. */
export async function runDevicePolicy(
  device: GpuDevice,
  policy: ExitPolicy<any>,
  info: PolicyInit,
  steps: PolicyStep[],
): Promise<Uint8Array[]> {
  if (!policy.device) throw new ValidationError(`policy '${policy.name}' has no device (WGSL) form`);
  const n = info.batchSize;
  const kernel = decideKernel({ name: policy.name, device: policy.device }, info.numExits, info.numClasses);
  const stateSize = Math.max(1, policy.device.stateSize);
  const init = new Float32Array(n * stateSize);
  const iv = policy.device.initState ?? [];
  for (let s = 0; s < n; s++) for (let k = 0; k < stateSize; k++) init[s * stateSize + k] = iv[k] ?? 0;
  const state = device.tensor('f32', [n * stateSize], init, `${policy.name}.state`);
  const count = device.tensor('u32', [1]);
  const ids = device.tensor('u32', [n]);
  const signals = device.tensor('f32', [n * 8]);
  const flags = device.tensor('u32', [n]);
  const out: Uint8Array[] = [];
  try {
    for (const { ctx, signals: s } of steps) {
      if (s.count > n)
        throw new ValidationError(`step at exit ${ctx.exitIndex} has ${s.count} rows, more than batchSize ${n}`);
      count.write([s.count]);
      ids.write(Uint32Array.from(s.sampleIds));
      signals.write(packSignals(s).subarray(0, Math.max(1, s.count) * 8));
      device.dispatch(
        kernel,
        { count, sampleIds: ids, signals, policy_state: state, flags },
        {
          maxRows: n,
          exitIndex: ctx.exitIndex,
          isLast: ctx.isLast ? 1 : 0,
          cost: ctx.costFraction,
          batch: n,
        },
      );
      const f = await flags.read();
      out.push(Uint8Array.from(f.subarray(0, s.count)));
    }
  } finally {
    for (const t of [state, count, ids, signals, flags]) t.dispose();
  }
  return out;
}
