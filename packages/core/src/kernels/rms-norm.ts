// RMS normalisation over the last axis, one workgroup per row:
//   y[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) · weight      x, y: (rows, cols); weight: (cols)
// If the sum of squares overflows f32 the row is summed again after an exact power-of-two rescaling.

import { defineKernel, type KernelTestCase } from '../runtime/kernel.js';
import { mulberry32 } from '../util/random.js';
import { FLOAT_UTIL_WGSL, ROW_WG, rowReduceWgsl } from './layer-norm.js';

const wgsl = () => `${FLOAT_UTIL_WGSL}
${rowReduceWgsl('reduce_sq_max', 'vec2f', 'vec2f(a.x + b.x, max(a.y, b.y))')}
${rowReduceWgsl('reduce_sum', 'f32', 'a + b')}
@compute @workgroup_size(${ROW_WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = linear_wg(wg, nwg);
  if (row >= P.rows) { return; }
  let base = row * P.cols;
  let n = f32(P.cols);
  var acc = vec2f(0.0, 0.0);
  for (var j = li; j < P.cols; j += WG_X) {
    let v = x[base + j];
    acc = vec2f(acc.x + v * v, max(acc.y, abs(v)));
  }
  let first = reduce_sq_max(acc, li);
  var meanSq = first.x / n;
  var s = 1.0;
  if (first.x > F32_MAX && first.y <= F32_MAX) {
    // Finite values whose squares overflowed: the scaled mean square is mean(x²)·s².
    s = pow2_down(first.y);
    var sq = 0.0;
    for (var j = li; j < P.cols; j += WG_X) {
      let v = x[base + j] * s;
      sq += v * v;
    }
    meanSq = reduce_sum(sq, li) / n;
  }
  let rinv = s / sqrt(meanSq + P.eps * s * s);
  for (var j = li; j < P.cols; j += WG_X) {
    y[base + j] = x[base + j] * rinv * weight[j];
  }
}`;

/** All of x as uniform values in [-scale, scale), injected (conformance fills x, then injects). */
function xValues(rows: number, cols: number, scale: number, seed: number): KernelTestCase['inject'] {
  const rand = mulberry32(seed);
  return Array.from({ length: rows * cols }, (_, index) => ({ binding: 'x', index, value: (rand() * 2 - 1) * scale }));
}

const cases: KernelTestCase[] = [];
for (const cols of [1, 7, 64, 255, 256, 1000, 3072]) {
  for (const rows of [1, 33]) cases.push({ params: { rows, cols, eps: 1e-6 }, label: `${rows}×${cols}` });
}
cases.push(
  {
    params: { rows: 3, cols: 2049, eps: 1e-6 },
    inject: xValues(3, 2049, 1e19, 21),
    label: 'x ~ 1e19: squares overflow f32',
  },
  { params: { rows: 2, cols: 300, eps: 1e-5 }, inject: xValues(2, 300, 1e-20, 22), label: 'x ~ 1e-20' },
  { params: { rows: 2, cols: 300, eps: 1e-5 }, inject: xValues(2, 300, 1e-3, 23), label: 'x ~ 1e-3 (eps matters)' },
  { params: { rows: 5, cols: 33, eps: 1e-6 }, scale: 1e3, label: 'scale 1e3' },
  {
    params: { rows: 3, cols: 129, eps: 1e-6 },
    inject: [{ binding: 'x', index: 129 + 3, value: Number.NaN }],
    label: 'NaN makes its row NaN',
  },
  {
    params: { rows: 3, cols: 70, eps: 1e-6 },
    inject: [{ binding: 'x', index: 70 * 2 + 9, value: Number.POSITIVE_INFINITY }],
    label: 'Inf: its row is 0 except NaN at the Inf',
  },
);

export const rmsNorm = defineKernel({
  name: 'rmsNorm',
  bindings: {
    x: { access: 'read', type: 'f32' },
    weight: { access: 'read', type: 'f32' },
    y: { access: 'write', type: 'f32' },
  },
  params: { rows: 'u32', cols: 'u32', eps: 'f32' },
  workgroupSize: () => [ROW_WG, 1, 1],
  linear: true,
  dispatch: (p) => [p.cols > 0 ? p.rows : 0, 1, 1],
  sizes: (p) => ({ x: p.rows * p.cols, weight: p.cols, y: p.rows * p.cols }),
  wgsl,
  reference: ({ x, weight, y }, p) => {
    const eps = Math.fround(p.eps);
    for (let r = 0; r < p.rows; r++) {
      const o = r * p.cols;
      let sq = 0;
      for (let j = 0; j < p.cols; j++) sq += x[o + j] * x[o + j];
      const rms = Math.sqrt(sq / p.cols + eps);
      for (let j = 0; j < p.cols; j++) y[o + j] = (x[o + j] / rms) * weight[j];
    }
  },
  testCases: cases,
  tolerance: 'accumulate',
});
