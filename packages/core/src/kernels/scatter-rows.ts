// Strided row scatter (the inverse of gatherRows), one thread per input element:
//   y[idx[r]·dstStride + dstOffset + j] = x[r·width + j]      r < count, j < width
// idx: (count) u32, unique (with repeats the surviving row is unspecified); x: (count, width);
// y: read_write, any length covering the rows indexed; elements not addressed keep their values.
import { defineKernel } from '../runtime/kernel.js';
import { randomArray } from '../util/random.js';

const WG = 256;

export const scatterRows = defineKernel({
  name: 'scatterRows',
  bindings: {
    idx: { access: 'read', type: 'u32' },
    x: { access: 'read', type: 'f32' },
    y: { access: 'read_write', type: 'f32' },
  },
  params: { count: 'u32', width: 'u32', dstStride: 'u32', dstOffset: 'u32' },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => [Math.ceil((p.count * p.width) / WG), 1, 1],
  sizes: (p) => ({ idx: p.count, x: p.count * p.width, y: p.dstOffset + p.width }),
  wgsl: () => `
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = linear_wg(wg, nwg) * ${WG}u + li;
  if (i >= P.count * P.width) { return; }
  let r = i / P.width;
  let j = i - r * P.width;
  y[idx[r] * P.dstStride + P.dstOffset + j] = x[i];
}`,
  reference: ({ idx, x, y }, p) => {
    for (let r = 0; r < p.count; r++) {
      const dst = idx[r] * p.dstStride + p.dstOffset;
      for (let j = 0; j < p.width; j++) y[dst + j] = x[r * p.width + j];
    }
  },
  testInputs: (p, _s, rand) => {
    // A random choice of `count` distinct rows out of count + 4, in random order; y covers them all.
    const dstRows = p.count + 4;
    const perm = Array.from({ length: dstRows }, (_, i) => i);
    for (let i = dstRows - 1; i > 0; i--) {
      const k = Math.floor(rand() * (i + 1));
      [perm[i], perm[k]] = [perm[k], perm[i]];
    }
    const idx = Uint32Array.from(perm.slice(0, Math.max(1, p.count)));
    const y = randomArray(Math.max(1, (dstRows - 1) * p.dstStride + p.dstOffset + p.width), rand);
    return { idx, y };
  },
  testCases: [
    { params: { count: 1, width: 1, dstStride: 1, dstOffset: 0 }, label: '1 row of 1' },
    { params: { count: 7, width: 33, dstStride: 33, dstOffset: 0 }, label: 'dense 7×33' },
    { params: { count: 13, width: 257, dstStride: 300, dstOffset: 5 }, label: 'strided 13×257 at +5' },
    { params: { count: 64, width: 768, dstStride: 768 * 3, dstOffset: 768 }, label: '64×768 into token 1 of 3' },
    { params: { count: 1000, width: 3, dstStride: 3, dstOffset: 0 }, label: '1000 rows of 3' },
  ],
  tolerance: 'exact',
});
