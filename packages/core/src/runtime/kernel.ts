// Kernels as data: bindings, a uniform parameter struct, a dispatch size, a WGSL body and an independent
// TypeScript reference. The framework (not each kernel) writes the binding declarations, packs the
// uniform struct, folds oversized 1-D dispatches into 2-D grids and keys the pipeline cache.
import { ValidationError } from '../errors.js';
import type { AnyTypedArray, DType } from './dtype.js';

export type Access = 'read' | 'write' | 'read_write';
export interface BindingDesc {
  access: Access;
  type: DType;
  /** Accepts a tensor of any 4-byte dtype; the WGSL sees raw words of `type` (used to move rows of any tensor). */
  raw?: boolean;
}
export type ParamType = 'u32' | 'i32' | 'f32';
/** Compile-time specialisation: values baked into the WGSL (activation, transposes, tile sizes, ...). */
export type Spec = Record<string, string | number | boolean>;
export type Params = Record<string, number>;

/** Tolerance classes, defined once in `conformance.ts`. */
export type ToleranceClass = 'exact' | 'elementwise' | 'transcendental' | 'accumulate';

export interface KernelTestCase<S extends Spec = Spec> {
  params: Params;
  spec?: Partial<S>;
  label?: string;
  /** Multiplies the random inputs (uniform in [-1, 1]) to probe overflow and saturation. */
  scale?: number;
  /** Values placed at fixed positions after random filling (NaN, ±Infinity, extremes). */
  inject?: { binding: string; index: number; value: number }[];
}

export interface KernelDef<S extends Spec = Spec> {
  name: string;
  /** Storage buffers, in binding order (binding 0 is the uniform struct). */
  bindings: Record<string, BindingDesc>;
  /** Uniform parameters, in struct order. All fields are 4 bytes. */
  params: Record<string, ParamType>;
  /** Default specialisation. */
  spec?: S;
  workgroupSize: (spec: S) => [number, number, number];
  /** Number of workgroups. With `linear: true` only x is used and the framework folds it into 2-D. */
  dispatch: (p: Params, spec: S) => [number, number, number];
  linear?: boolean;
  /** Required length (elements) of each binding for these params. */
  sizes: (p: Params, spec: S) => Record<string, number>;
  /** The WGSL after the generated declarations; must define `@compute fn main`. */
  wgsl: (spec: S) => string;
  /** Independent plain-TypeScript reference: reads inputs, writes outputs in place. */
  reference: (bufs: Record<string, AnyTypedArray>, p: Params, spec: S) => void;
  /** Shapes the conformance suite runs (awkward sizes included). */
  testCases: KernelTestCase<S>[];
  tolerance: ToleranceClass;
  /** Custom input generation for bindings that need it (indices in range, lengths, ...). */
  testInputs?: (p: Params, spec: S, rand: () => number) => Partial<Record<string, AnyTypedArray>>;
}

export interface Kernel<S extends Spec = Spec> extends KernelDef<S> {
  readonly bindingNames: string[];
  /** Stable key for the pipeline cache: name + specialisation. */
  key(spec?: Partial<S>): string;
  resolveSpec(spec?: Partial<S>): S;
  /** Full WGSL module for a specialisation: generated header + body. */
  source(spec?: Partial<S>): string;
  /** Uniform bytes for params (16-byte aligned). */
  packParams(p: Params): ArrayBuffer;
  /** Validate params are complete and integral where needed. */
  checkParams(p: Params): void;
}

const WGSL_TYPE: Record<DType, string> = { f32: 'f32', u32: 'u32', i32: 'i32' };

export function defineKernel<S extends Spec = Spec>(def: KernelDef<S>): Kernel<S> {
  const bindingNames = Object.keys(def.bindings);
  const paramNames = Object.keys(def.params);
  const resolveSpec = (spec?: Partial<S>): S => ({ ...(def.spec ?? ({} as S)), ...(spec ?? {}) }) as S;
  const header = (spec: S): string => {
    const lines: string[] = [];
    if (def.linear) lines.push('// linear dispatch: workgroup index = wg.x + wg.y * nwg.x');
    lines.push(
      `struct Params { ${paramNames.length ? paramNames.map((n) => `${n}: ${def.params[n]}`).join(', ') : '_pad: u32'} }`,
    );
    lines.push('@group(0) @binding(0) var<uniform> P: Params;');
    bindingNames.forEach((n, i) => {
      const b = def.bindings[n];
      const access = b.access === 'read' ? 'read' : 'read_write';
      lines.push(`@group(0) @binding(${i + 1}) var<storage, ${access}> ${n}: array<${WGSL_TYPE[b.type]}>;`);
    });
    const [x, y, z] = def.workgroupSize(spec);
    lines.push(`const WG_X: u32 = ${x}u; const WG_Y: u32 = ${y}u; const WG_Z: u32 = ${z}u;`);
    lines.push('fn linear_wg(wg: vec3u, nwg: vec3u) -> u32 { return wg.x + wg.y * nwg.x; }');
    return lines.join('\n');
  };
  const kernel: Kernel<S> = {
    ...def,
    bindingNames,
    resolveSpec,
    key(spec) {
      const s = resolveSpec(spec);
      const keys = Object.keys(s).sort();
      return `${def.name}(${keys.map((k) => `${k}=${s[k]}`).join(',')})`;
    },
    source(spec) {
      const s = resolveSpec(spec);
      return `${header(s)}\n${def.wgsl(s)}`;
    },
    checkParams(p) {
      for (const n of paramNames) {
        const v = p[n];
        if (typeof v !== 'number' || Number.isNaN(v)) {
          throw new ValidationError(`kernel '${def.name}': parameter '${n}' is missing or not a number (got ${v})`);
        }
        if (def.params[n] !== 'f32' && !Number.isInteger(v)) {
          throw new ValidationError(`kernel '${def.name}': parameter '${n}' must be an integer, got ${v}`);
        }
        if (def.params[n] === 'u32' && (v < 0 || v > 0xffffffff)) {
          throw new ValidationError(`kernel '${def.name}': parameter '${n}' must be in [0, 2^32), got ${v}`);
        }
      }
    },
    packParams(p) {
      const bytes = Math.max(16, Math.ceil((paramNames.length * 4) / 16) * 16);
      const buf = new ArrayBuffer(bytes);
      const dv = new DataView(buf);
      paramNames.forEach((n, i) => {
        const t = def.params[n];
        const v = p[n] ?? 0;
        if (t === 'f32') dv.setFloat32(i * 4, v, true);
        else if (t === 'i32') dv.setInt32(i * 4, v, true);
        else dv.setUint32(i * 4, v, true);
      });
      return buf;
    },
  };
  return kernel;
}

/** Folds a linear workgroup count into a 2-D grid within the per-dimension limit. */
export function foldDispatch(x: number, limit: number): [number, number, number] {
  if (x <= limit) return [Math.max(0, x), 1, 1];
  const y = Math.ceil(x / limit);
  return [Math.ceil(x / y), y, 1];
}

export const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);
