// Mean of each row's first valid tokens (mean pooling of an encoder's states):
//   x (B, T, d), lengths (B) u32 → y (B, d), y[b, j] = (1/n) Σ_{t < n} x[b, t, j],  n = max(1, min(lengths[b], T))
// One invocation per (b, j), grid-stride; each term is scaled by 1/n before it is added (no overflow near the
// f32 maximum), four independent accumulators.
import { defineKernel } from '../runtime/kernel.js';
import { GRID_STRIDE_MAIN, gridStrideDispatch, gridStrideLoop } from './grid-stride.js';

const WG = 64;

export const maskedMean = defineKernel({
  name: 'maskedMean',
  bindings: {
    x: { access: 'read', type: 'f32' },
    lengths: { access: 'read', type: 'u32' },
    y: { access: 'write', type: 'f32' },
  },
  params: { B: 'u32', T: 'u32', d: 'u32' },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => gridStrideDispatch(p.B * p.d, WG),
  sizes: (p) => ({ x: p.B * p.T * p.d, lengths: p.B, y: p.B * p.d }),
  wgsl: () => `
${GRID_STRIDE_MAIN(WG)} {
  ${gridStrideLoop(WG, 'P.B * P.d')} {
    let b = idx / P.d;
    let j = idx - b * P.d;
    let n = max(1u, min(lengths[b], P.T));
    let inv = 1.0 / f32(n);
    let base = b * P.T * P.d + j;
    var s = vec4f(0.0);
    var t = 0u;
    for (; t + 4u <= n; t += 4u) {
      s += vec4f(x[base + t * P.d], x[base + (t + 1u) * P.d], x[base + (t + 2u) * P.d], x[base + (t + 3u) * P.d]) * inv;
    }
    for (; t < n; t++) { s.x += x[base + t * P.d] * inv; }
    y[idx] = (s.x + s.y) + (s.z + s.w);
  }
}`,
  reference: ({ x, lengths, y }, p) => {
    for (let b = 0; b < p.B; b++) {
      const n = Math.max(1, Math.min(lengths[b], p.T));
      for (let j = 0; j < p.d; j++) {
        let sum = 0;
        for (let t = 0; t < n; t++) sum += x[(b * p.T + t) * p.d + j];
        y[b * p.d + j] = sum / n;
      }
    }
  },
  testInputs: (p, _spec, rand) => {
    const lengths = new Uint32Array(Math.max(1, p.B));
    // 0 (treated as 1), T, beyond T (clamped), and random lengths in between
    for (let b = 0; b < p.B; b++)
      lengths[b] = b === 0 ? 0 : b === 1 ? p.T : b === 2 ? p.T + 5 : Math.floor(rand() * (p.T + 1));
    return { lengths };
  },
  testCases: [
    { params: { B: 1, T: 1, d: 1 } },
    { params: { B: 4, T: 7, d: 5 } },
    { params: { B: 5, T: 33, d: 64 } },
    { params: { B: 3, T: 128, d: 131 }, label: 'width not a multiple of the workgroup' },
    { params: { B: 70, T: 9, d: 200 }, label: 'more items than the grid' },
    { params: { B: 3, T: 10, d: 3 }, scale: 3e38, label: 'values near the f32 maximum: the mean stays finite' },
    {
      params: { B: 2, T: 6, d: 4 },
      inject: [{ binding: 'x', index: 6 * 4 + 1, value: Number.NaN }],
      label: 'NaN in a valid token propagates',
    },
  ],
  tolerance: 'accumulate',
});
