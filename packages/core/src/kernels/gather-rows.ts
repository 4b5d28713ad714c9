// Strided row gather (batch compaction, CLS pooling), one thread per output element:
//   y[r·width + j] = x[idx[r]·srcStride + srcOffset + j]      r < count, j < width
// idx: (count) u32; x: any length covering the rows indexed; y: (count, width).
// gatherRowsIndirect: the same with the row count read from GPU memory, count[0] (clamped to maxCount);
// dispatch is sized for maxCount and rows ≥ count[0] are left untouched.
// Indices must address rows inside x (WebGPU's bounds checks keep a bad index from faulting, but its
// values are unspecified).
import type { AnyTypedArray } from '../runtime/dtype.js';
import { defineKernel } from '../runtime/kernel.js';
import { randomArray } from '../util/random.js';

const WG = 256;

/**
 * Test inputs: `rows` indices into `rows + 3` source rows mixing reversed order, repeats and random
 * picks, and an x just long enough for them.
 */
export function gatherTestInputs(
  rows: number,
  width: number,
  stride: number,
  offset: number,
  rand: () => number,
): { idx: Uint32Array; x: Float32Array } {
  const srcRows = rows + 3;
  const idx = new Uint32Array(Math.max(1, rows));
  for (let r = 0; r < rows; r++) {
    const kind = r % 3;
    idx[r] = kind === 0 ? srcRows - 1 - r : kind === 1 ? idx[r - 1] : Math.floor(rand() * srcRows);
  }
  const x = randomArray(Math.max(1, (srcRows - 1) * stride + offset + width), rand);
  return { idx, x };
}

function gatherRef(idx: AnyTypedArray, x: AnyTypedArray, y: AnyTypedArray, rows: number, p: Record<string, number>) {
  for (let r = 0; r < rows; r++) {
    const src = idx[r] * p.srcStride + p.srcOffset;
    for (let j = 0; j < p.width; j++) y[r * p.width + j] = x[src + j];
  }
}

const wgsl = (countExpr: string) => `
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = linear_wg(wg, nwg) * ${WG}u + li;
  let r = i / P.width;
  if (P.width == 0u || r >= ${countExpr}) { return; }
  let j = i - r * P.width;
  y[i] = x[idx[r] * P.srcStride + P.srcOffset + j];
}`;

export const gatherRows = defineKernel({
  name: 'gatherRows',
  bindings: {
    idx: { access: 'read', type: 'u32' },
    x: { access: 'read', type: 'f32' },
    y: { access: 'write', type: 'f32' },
  },
  params: { count: 'u32', width: 'u32', srcStride: 'u32', srcOffset: 'u32' },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => [Math.ceil((p.count * p.width) / WG), 1, 1],
  sizes: (p) => ({ idx: p.count, x: p.srcOffset + p.width, y: p.count * p.width }),
  wgsl: () => wgsl('P.count'),
  reference: ({ idx, x, y }, p) => gatherRef(idx, x, y, p.count, p),
  testInputs: (p, _s, rand) => gatherTestInputs(p.count, p.width, p.srcStride, p.srcOffset, rand),
  testCases: [
    { params: { count: 1, width: 1, srcStride: 1, srcOffset: 0 }, label: '1 row of 1' },
    { params: { count: 7, width: 33, srcStride: 33, srcOffset: 0 }, label: 'compaction 7×33' },
    { params: { count: 13, width: 257, srcStride: 300, srcOffset: 5 }, label: 'strided 13×257 at +5' },
    { params: { count: 64, width: 768, srcStride: 768 * 5, srcOffset: 0 }, label: 'CLS pooling 64×768 of 5 tokens' },
    { params: { count: 1000, width: 3, srcStride: 3, srcOffset: 0 }, label: '1000 rows of 3' },
    { params: { count: 3, width: 256, srcStride: 100, srcOffset: 0 }, label: 'overlapping rows (stride < width)' },
  ],
  tolerance: 'exact',
});

export const gatherRowsIndirect = defineKernel({
  name: 'gatherRowsIndirect',
  bindings: {
    count: { access: 'read', type: 'u32' },
    idx: { access: 'read', type: 'u32' },
    x: { access: 'read', type: 'f32' },
    y: { access: 'write', type: 'f32' },
  },
  params: { maxCount: 'u32', width: 'u32', srcStride: 'u32', srcOffset: 'u32' },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => [Math.ceil((p.maxCount * p.width) / WG), 1, 1],
  sizes: (p) => ({ count: 1, idx: p.maxCount, x: p.srcOffset + p.width, y: p.maxCount * p.width }),
  wgsl: () => wgsl('min(count[0], P.maxCount)'),
  reference: ({ count, idx, x, y }, p) => gatherRef(idx, x, y, Math.min(count[0], p.maxCount), p),
  testInputs: (p, _s, rand) => ({
    count: new Uint32Array([Math.ceil((p.maxCount * 2) / 3)]),
    ...gatherTestInputs(p.maxCount, p.width, p.srcStride, p.srcOffset, rand),
  }),
  testCases: [
    { params: { maxCount: 1, width: 1, srcStride: 1, srcOffset: 0 }, label: '1 row of 1' },
    { params: { maxCount: 7, width: 33, srcStride: 33, srcOffset: 0 }, label: '5 of 7 rows × 33' },
    {
      params: { maxCount: 13, width: 257, srcStride: 300, srcOffset: 5 },
      inject: [{ binding: 'count', index: 0, value: 13 }],
      label: 'all 13 rows × 257, strided',
    },
    {
      params: { maxCount: 64, width: 768, srcStride: 768 * 5, srcOffset: 0 },
      inject: [{ binding: 'count', index: 0, value: 0 }],
      label: 'count 0 writes nothing',
    },
    {
      params: { maxCount: 29, width: 100, srcStride: 100, srcOffset: 0 },
      inject: [{ binding: 'count', index: 0, value: 1000 }],
      label: 'count > maxCount clamps',
    },
    { params: { maxCount: 1000, width: 3, srcStride: 3, srcOffset: 0 }, label: '667 of 1000 rows × 3' },
  ],
  tolerance: 'exact',
});
