// Row softmax, max-subtracted, one workgroup per row:   x, y: (rows, cols)
//   y[r, j] = e(x[r, j]) / Σ_k e(x[r, k]),  e(v) = exp(v − m),  m = max of the row
// Non-finite inputs: an entry equal to m counts as e = 1 (exp(0)), so +Infinity entries share the row's
// mass equally (the limit of softmax) and a row that is entirely −Infinity is uniform; −Infinity entries
// below the max get 0. Any NaN in a row makes the whole row NaN.
import { defineKernel, type KernelTestCase } from '../runtime/kernel.js';
import { FLOAT_UTIL_WGSL, ROW_WG, rowReduceWgsl } from './layer-norm.js';

const wgsl = () => `${FLOAT_UTIL_WGSL}
${rowReduceWgsl('reduce_max_nan', 'vec2f', 'max(a, b)')}
${rowReduceWgsl('reduce_sum', 'f32', 'a + b')}
fn weight_of(v: f32, m: f32) -> f32 { if (v == m) { return 1.0; } return exp(v - m); }
@compute @workgroup_size(${ROW_WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = linear_wg(wg, nwg);
  if (row >= P.rows) { return; }
  let base = row * P.cols;
  // (max over non-NaN entries, 1 if any entry is NaN)
  var acc = vec2f(f32_inf(true), 0.0);
  for (var j = li; j < P.cols; j += WG_X) {
    let v = x[base + j];
    if (is_nan(v)) { acc.y = 1.0; } else { acc.x = max(acc.x, v); }
  }
  let first = reduce_max_nan(acc, li);
  let m = first.x;
  var s = 0.0;
  for (var j = li; j < P.cols; j += WG_X) { s += weight_of(x[base + j], m); }
  let total = reduce_sum(s, li);
  let hasNan = first.y != 0.0;
  for (var j = li; j < P.cols; j += WG_X) {
    y[base + j] = select(weight_of(x[base + j], m) / total, f32_nan(), hasNan);
  }
}`;

const cases: KernelTestCase[] = [];
for (const cols of [1, 7, 64, 255, 256, 1000, 3072]) {
  for (const rows of [1, 33]) cases.push({ params: { rows, cols }, label: `${rows}×${cols}` });
}
cases.push(
  { params: { rows: 9, cols: 1000 }, scale: 1e3, label: 'scale 1e3 (exp would overflow unshifted)' },
  { params: { rows: 4, cols: 10 }, scale: 30, label: 'scale 30' },
  {
    params: { rows: 4, cols: 257 },
    inject: [
      { binding: 'x', index: 3, value: 1e30 },
      { binding: 'x', index: 257 + 100, value: -1e30 },
      { binding: 'x', index: 2 * 257 + 1, value: 1e30 },
      { binding: 'x', index: 2 * 257 + 2, value: -1e30 },
      { binding: 'x', index: 3 * 257 + 256, value: 3.4e38 },
    ],
    label: '±1e30 and 3.4e38 entries',
  },
  {
    params: { rows: 5, cols: 300 },
    inject: [
      { binding: 'x', index: 17, value: Number.POSITIVE_INFINITY },
      { binding: 'x', index: 300 + 4, value: Number.POSITIVE_INFINITY },
      { binding: 'x', index: 300 + 299, value: Number.POSITIVE_INFINITY },
      { binding: 'x', index: 600 + 8, value: Number.NEGATIVE_INFINITY },
      ...Array.from({ length: 300 }, (_, j) => ({ binding: 'x', index: 900 + j, value: Number.NEGATIVE_INFINITY })),
    ],
    label: '+Infinity shares the mass; -Infinity gets 0; all -Infinity is uniform',
  },
  {
    params: { rows: 4, cols: 513 },
    inject: [
      { binding: 'x', index: 513 + 200, value: Number.NaN },
      { binding: 'x', index: 3 * 513, value: Number.NaN },
      { binding: 'x', index: 3 * 513 + 1, value: Number.POSITIVE_INFINITY },
    ],
    label: 'NaN makes its row NaN',
  },
);

export const softmax = defineKernel({
  name: 'softmax',
  bindings: { x: { access: 'read', type: 'f32' }, y: { access: 'write', type: 'f32' } },
  params: { rows: 'u32', cols: 'u32' },
  workgroupSize: () => [ROW_WG, 1, 1],
  linear: true,
  dispatch: (p) => [p.cols > 0 ? p.rows : 0, 1, 1],
  sizes: (p) => ({ x: p.rows * p.cols, y: p.rows * p.cols }),
  wgsl,
  reference: ({ x, y }, p) => {
    for (let r = 0; r < p.rows; r++) {
      const row = x.subarray(r * p.cols, (r + 1) * p.cols);
      const out = y.subarray(r * p.cols, (r + 1) * p.cols);
      if (row.some((v) => Number.isNaN(v))) {
        out.fill(Number.NaN);
        continue;
      }
      let m = Number.NEGATIVE_INFINITY;
      for (const v of row) m = Math.max(m, v);
      const w = Array.from(row, (v) => (v === m ? 1 : Math.exp(v - m)));
      const total = w.reduce((a, b) => a + b, 0);
      for (let j = 0; j < p.cols; j++) out[j] = w[j] / total;
    }
  },
  testCases: cases,
  tolerance: 'transcendental',
});
