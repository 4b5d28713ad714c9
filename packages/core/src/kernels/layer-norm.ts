// Layer normalisation over the last axis, one workgroup per row:
//   y[r, :] = (x[r, :] − mean) / sqrt(var + eps) · gamma + beta      x, y: (rows, cols); gamma, beta: (cols)
// Also holds the workgroup row reduction and the power-of-two rescaling shared by the other row kernels.

import { defineKernel, type KernelTestCase } from '../runtime/kernel.js';
import { mulberry32 } from '../util/random.js';

/**
 * Threads per workgroup of the row kernels (one workgroup per row); a perfect square for `rowReduceWgsl`.
 * 64 ran layerNorm on 512×768 about 3× faster than 256 on lavapipe and leaves real GPUs a workgroup per row.
 */
export const ROW_WG = 64;
const ROW_GROUP = 8; // √ROW_WG

/**
 * WGSL for `fn <name>(v: <type>, li: u32) -> <type>`: combines every thread's `v` with `combine` (an
 * expression of `a` and `b`, associative and commutative) and returns the total to all threads as a
 * uniform value, so callers may branch on it around further barriers. Two levels of √ROW_WG: three
 * barriers whatever the workgroup size (barriers are costly on CPU-emulated GPUs). Call once per
 * invocation per name, from uniform control flow.
 */
export function rowReduceWgsl(name: string, type: string, combine: string): string {
  const g = `${ROW_GROUP}u`;
  return `
var<workgroup> ${name}_part: array<${type}, ${ROW_WG}>;
var<workgroup> ${name}_total: ${type};
fn ${name}_op(a: ${type}, b: ${type}) -> ${type} { return ${combine}; }
fn ${name}(v: ${type}, li: u32) -> ${type} {
  ${name}_part[li] = v;
  workgroupBarrier();
  if (li < ${g}) {
    var acc = ${name}_part[li];
    for (var k = 1u; k < ${g}; k++) { acc = ${name}_op(acc, ${name}_part[li + k * ${g}]); }
    ${name}_part[li] = acc;
  }
  workgroupBarrier();
  if (li == 0u) {
    var acc = ${name}_part[0];
    for (var k = 1u; k < ${g}; k++) { acc = ${name}_op(acc, ${name}_part[k]); }
    ${name}_total = acc;
  }
  return workgroupUniformLoad(&${name}_total);
}`;
}

/**
 * WGSL helpers: `is_nan` (by bits, so no compiler can fold it away), `F32_MAX`, `f32_nan()`, `f32_inf(sign)`
 * and `pow2_down(m)`, an exact power of two s ≤ 1 with m·s < 2 (1 for m < 1, zero, Inf or NaN), used to
 * rescale values whose squares would overflow.
 */
export const FLOAT_UTIL_WGSL = /* wgsl */ `
const F32_MAX: f32 = 0x1.fffffep+127f;
fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
// NaN and Inf cannot be constants in WGSL: build them from runtime bits.
fn f32_nan() -> f32 { var bits = 0x7fc00000u; return bitcast<f32>(bits); }
fn f32_inf(negative: bool) -> f32 { var bits = select(0x7f800000u, 0xff800000u, negative); return bitcast<f32>(bits); }
fn pow2_down(m: f32) -> f32 {
  let biased = (bitcast<u32>(m) >> 23u) & 0xffu;
  if (biased < 128u || biased == 255u) { return 1.0; }
  let e = min(biased - 127u, 126u);
  return bitcast<f32>((127u - e) << 23u);
}
`;

const wgsl = () => `${FLOAT_UTIL_WGSL}
${rowReduceWgsl('reduce_sum_max', 'vec2f', 'vec2f(a.x + b.x, max(a.y, b.y))')}
${rowReduceWgsl('reduce_sum', 'f32', 'a + b')}
@compute @workgroup_size(${ROW_WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = linear_wg(wg, nwg);
  if (row >= P.rows) { return; }
  let base = row * P.cols;
  let n = f32(P.cols);
  // Shift by the row's first element so large common offsets cancel exactly before summing.
  let pivot = x[base];
  var acc = vec2f(0.0, 0.0);
  for (var j = li; j < P.cols; j += WG_X) {
    let d = x[base + j] - pivot;
    acc = vec2f(acc.x + d, max(acc.y, abs(d)));
  }
  let first = reduce_sum_max(acc, li);
  let meanShifted = first.x / n;
  // |x − mean| ≤ 2·max|x − pivot|, so with this scale the squares cannot overflow.
  let s = pow2_down(first.y);
  var sq = 0.0;
  for (var j = li; j < P.cols; j += WG_X) {
    let d = ((x[base + j] - pivot) - meanShifted) * s;
    sq += d * d;
  }
  let varScaled = reduce_sum(sq, li) / n;
  let rstd = s / sqrt(varScaled + P.eps * s * s);
  for (var j = li; j < P.cols; j += WG_X) {
    let d = (x[base + j] - pivot) - meanShifted;
    y[base + j] = d * rstd * gamma[j] + beta[j];
  }
}`;

/** All of x as `offset + scale · u`, u uniform in [-1, 1), injected (conformance fills x, then injects). */
function xValues(rows: number, cols: number, offset: number, scale: number, seed: number): KernelTestCase['inject'] {
  const rand = mulberry32(seed);
  return Array.from({ length: rows * cols }, (_, index) => ({
    binding: 'x',
    index,
    value: offset + (rand() * 2 - 1) * scale,
  }));
}

const cases: KernelTestCase[] = [];
for (const cols of [1, 7, 64, 255, 256, 1000, 3072]) {
  for (const rows of [1, 33]) cases.push({ params: { rows, cols, eps: 1e-5 }, label: `${rows}×${cols}` });
}
cases.push(
  { params: { rows: 3, cols: 1000, eps: 1e-5 }, inject: xValues(3, 1000, 1e4, 1, 7), label: 'offset 1e4 + noise' },
  { params: { rows: 2, cols: 257, eps: 1e-12 }, inject: xValues(2, 257, -3e5, 1, 8), label: 'offset -3e5 + noise' },
  {
    params: { rows: 5, cols: 3072, eps: 1e-5 },
    inject: xValues(5, 3072, 0, 1e19, 9),
    label: 'x ~ 1e19: squares overflow f32',
  },
  { params: { rows: 4, cols: 300, eps: 1e-5 }, inject: xValues(4, 300, 0, 1e-20, 10), label: 'x ~ 1e-20' },
  { params: { rows: 2, cols: 500, eps: 1e-5 }, inject: xValues(2, 500, 0, 1e-3, 11), label: 'x ~ 1e-3 (eps matters)' },
  { params: { rows: 4, cols: 1, eps: 0.5 }, label: 'single column gives beta' },
  {
    params: { rows: 3, cols: 129, eps: 1e-5 },
    inject: [{ binding: 'x', index: 129 + 50, value: Number.NaN }],
    label: 'NaN makes its row NaN',
  },
);

export const layerNorm = defineKernel({
  name: 'layerNorm',
  bindings: {
    x: { access: 'read', type: 'f32' },
    gamma: { access: 'read', type: 'f32' },
    beta: { access: 'read', type: 'f32' },
    y: { access: 'write', type: 'f32' },
  },
  params: { rows: 'u32', cols: 'u32', eps: 'f32' },
  workgroupSize: () => [ROW_WG, 1, 1],
  linear: true,
  dispatch: (p) => [p.cols > 0 ? p.rows : 0, 1, 1],
  sizes: (p) => ({ x: p.rows * p.cols, gamma: p.cols, beta: p.cols, y: p.rows * p.cols }),
  wgsl,
  reference: ({ x, gamma, beta, y }, p) => {
    const eps = Math.fround(p.eps);
    for (let r = 0; r < p.rows; r++) {
      const o = r * p.cols;
      let sum = 0;
      for (let j = 0; j < p.cols; j++) sum += x[o + j];
      const mean = sum / p.cols;
      let sq = 0;
      for (let j = 0; j < p.cols; j++) sq += (x[o + j] - mean) ** 2;
      const std = Math.sqrt(sq / p.cols + eps);
      for (let j = 0; j < p.cols; j++) y[o + j] = ((x[o + j] - mean) / std) * gamma[j] + beta[j];
    }
  },
  testCases: cases,
  tolerance: 'accumulate',
});
