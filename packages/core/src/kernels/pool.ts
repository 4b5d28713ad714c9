// Global average pooling over the spatial plane: x (B, C, H, W) → y (B, C), y[b, c] = mean of x[b, c, :, :]
// (HW = H·W). One invocation per (b, c) plane, four independent accumulators; each term is scaled by
// 1/HW before it is added, so the mean of values near the f32 maximum does not overflow.
import { ValidationError } from '../errors.js';
import { defineKernel } from '../runtime/kernel.js';
import { GRID_STRIDE_MAIN, gridStrideDispatch, gridStrideLoop } from './grid-stride.js';

const WG = 64;

export const globalAvgPool = defineKernel({
  name: 'globalAvgPool',
  bindings: { x: { access: 'read', type: 'f32' }, y: { access: 'write', type: 'f32' } },
  params: { B: 'u32', C: 'u32', HW: 'u32' },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => gridStrideDispatch(p.B * p.C, WG),
  sizes: (p) => {
    if (p.HW < 1) throw new ValidationError(`kernel 'globalAvgPool': HW (H·W) must be at least 1, got ${p.HW}`);
    return { x: p.B * p.C * p.HW, y: p.B * p.C };
  },
  wgsl: () => `
${GRID_STRIDE_MAIN(WG)} {
  let inv = 1.0 / f32(P.HW);
  ${gridStrideLoop(WG, 'P.B * P.C')} {
    let base = idx * P.HW;
    var s = vec4f(0.0);
    var k = 0u;
    for (; k + 4u <= P.HW; k += 4u) {
      s += vec4f(x[base + k], x[base + k + 1u], x[base + k + 2u], x[base + k + 3u]) * inv;
    }
    for (; k < P.HW; k++) { s.x += x[base + k] * inv; }
    y[idx] = (s.x + s.y) + (s.z + s.w);
  }
}`,
  reference: ({ x, y }, p) => {
    for (let i = 0; i < p.B * p.C; i++) {
      let sum = 0;
      for (let k = 0; k < p.HW; k++) sum += x[i * p.HW + k];
      y[i] = sum / p.HW;
    }
  },
  testCases: [
    { params: { B: 1, C: 1, HW: 1 } },
    { params: { B: 2, C: 5, HW: 7 } },
    { params: { B: 3, C: 67, HW: 49 } },
    { params: { B: 2, C: 64, HW: 784 } },
    { params: { B: 1, C: 131, HW: 13 * 13 } },
    { params: { B: 3, C: 2749, HW: 5 }, label: 'more planes than the grid' },
    { params: { B: 2, C: 3, HW: 10 }, scale: 3e38, label: 'values near the f32 maximum: the mean stays finite' },
    {
      params: { B: 1, C: 4, HW: 9 },
      inject: [{ binding: 'x', index: 13, value: Number.NaN }],
      label: 'NaN propagates',
    },
  ],
  tolerance: 'accumulate',
});
