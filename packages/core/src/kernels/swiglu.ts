// The SwiGLU gate of a Llama MLP: y = silu(gate) · up = gate / (1 + e^(−gate)) · up, elementwise over n.
import { defineKernel } from '../runtime/kernel.js';
import { GRID_STRIDE_MAIN, gridStrideDispatch, gridStrideLoop } from './grid-stride.js';

const WG = 256;

export const swiglu = defineKernel({
  name: 'swiglu',
  bindings: {
    gate: { access: 'read', type: 'f32' },
    up: { access: 'read', type: 'f32' },
    y: { access: 'write', type: 'f32' },
  },
  params: { n: 'u32' },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => gridStrideDispatch(p.n, WG),
  sizes: (p) => ({ gate: p.n, up: p.n, y: p.n }),
  wgsl: () => `
${GRID_STRIDE_MAIN(WG)} {
  ${gridStrideLoop(WG, 'P.n')} {
    let g = gate[idx];
    // e^(−g) overflows to +Inf for g < −88: g / Inf = −0, the limit
    y[idx] = g / (1.0 + exp(-g)) * up[idx];
  }
}`,
  reference: ({ gate, up, y }, p) => {
    for (let i = 0; i < p.n; i++) y[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
  },
  testCases: [
    { params: { n: 1 } },
    { params: { n: 1000 }, scale: 4 },
    { params: { n: 70001 }, label: 'more items than the grid' },
    {
      params: { n: 300 },
      scale: 100,
      inject: [
        { binding: 'gate', index: 3, value: -200 },
        { binding: 'gate', index: 4, value: 200 },
      ],
      label: 'saturated gates',
    },
  ],
  tolerance: 'transcendental',
});
