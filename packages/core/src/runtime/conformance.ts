// Checks a kernel on a device against its TypeScript reference: seeded random inputs, outputs poisoned
// with NaN (integers with 0xDEADBEEF) beforehand so an element the kernel forgot to write fails.
// Tolerances per class are stated here, in one place.
import { mulberry32, randomArray } from '../util/random.js';
import type { Device } from './device.js';
import { type AnyTypedArray, allocTyped } from './dtype.js';
import type { Kernel, KernelTestCase, Spec, ToleranceClass } from './kernel.js';

/** |gpu − ref| ≤ atol + rtol·|ref|. `accumulate` covers sums over up to a few thousand terms. */
export const TOLERANCES: Record<ToleranceClass, { atol: number; rtol: number }> = {
  exact: { atol: 0, rtol: 0 },
  elementwise: { atol: 1e-6, rtol: 1e-6 },
  transcendental: { atol: 2e-5, rtol: 2e-5 },
  accumulate: { atol: 1e-4, rtol: 1e-4 },
};

export const POISON_U32 = 0xdeadbeef;

export interface ConformanceResult {
  kernel: string;
  label: string;
  ok: boolean;
  maxAbsErr: number;
  mismatches: { binding: string; index: number; got: number; want: number }[];
}

export async function checkKernel<S extends Spec>(
  device: Device,
  kernel: Kernel<S>,
  tc: KernelTestCase<S>,
  seed = 1,
): Promise<ConformanceResult> {
  const spec = kernel.resolveSpec(tc.spec);
  const sizes = kernel.sizes(tc.params, spec);
  const rand = mulberry32(seed);
  const custom = kernel.testInputs?.(tc.params, spec, rand) ?? {};
  const host: Record<string, AnyTypedArray> = {};
  for (const name of kernel.bindingNames) {
    const { access, type } = kernel.bindings[name];
    const n = Math.max(1, sizes[name] ?? 1);
    const given = custom[name];
    if (given) {
      host[name] = given.slice();
    } else if (access === 'write') {
      const a = allocTyped(type, n);
      a.fill(type === 'f32' ? Number.NaN : POISON_U32);
      host[name] = a;
    } else if (type === 'f32') {
      host[name] = randomArray(n, rand, tc.scale ?? 1);
    } else {
      const a = allocTyped(type, n);
      for (let i = 0; i < n; i++) a[i] = Math.floor(rand() * 16);
      host[name] = a;
    }
  }
  for (const inj of tc.inject ?? []) host[inj.binding][inj.index] = inj.value;
  const tensors = Object.fromEntries(
    kernel.bindingNames.map((n) => [
      n,
      device.tensor(kernel.bindings[n].type, [host[n].length], host[n], `${kernel.name}.${n}`),
    ]),
  );
  const ref = Object.fromEntries(Object.entries(host).map(([k, v]) => [k, v.slice()]));
  kernel.reference(ref, tc.params, spec);
  device.dispatch(kernel, tensors, tc.params, spec);
  const tol = TOLERANCES[kernel.tolerance];
  const result: ConformanceResult = {
    kernel: kernel.name,
    label: tc.label ?? kernel.key(spec),
    ok: true,
    maxAbsErr: 0,
    mismatches: [],
  };
  for (const name of kernel.bindingNames) {
    if (kernel.bindings[name].access === 'read') continue;
    const got = await tensors[name].read();
    const want = ref[name];
    const exact = kernel.bindings[name].type !== 'f32';
    for (let i = 0; i < want.length; i++) {
      const g = got[i];
      const w = want[i];
      let bad: boolean;
      if (Number.isNaN(w) || Number.isNaN(g)) bad = Number.isNaN(w) !== Number.isNaN(g);
      else if (!Number.isFinite(w) || !Number.isFinite(g)) bad = g !== w;
      else {
        const err = Math.abs(g - w);
        result.maxAbsErr = Math.max(result.maxAbsErr, err);
        bad = exact ? g !== w : err > tol.atol + tol.rtol * Math.abs(w);
      }
      if (bad) {
        result.ok = false;
        if (result.mismatches.length < 5) result.mismatches.push({ binding: name, index: i, got: g, want: w });
      }
    }
  }
  for (const t of Object.values(tensors)) t.dispose();
  return result;
}
