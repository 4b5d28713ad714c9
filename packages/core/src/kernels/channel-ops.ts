// Channel-wise operations on NCHW feature maps (HW = H·W):
//   concatChannels: a (B, Ca, HW), b (B, Cb, HW) → y (B, Ca + Cb, HW), y[n, c] = a[n, c] for c < Ca, else b[n, c − Ca].
//   channelScale:   x (B, C, HW), s (B, C) → y (B, C, HW), y[n, c, i] = x[n, c, i] · s[n, c] (channel attention).
import { ValidationError } from '../errors.js';
import { defineKernel } from '../runtime/kernel.js';
import { GRID_STRIDE_MAIN, gridStrideDispatch, gridStrideLoop } from './grid-stride.js';

const WG = 256;

export const concatChannels = defineKernel({
  name: 'concatChannels',
  bindings: {
    a: { access: 'read', type: 'f32' },
    b: { access: 'read', type: 'f32' },
    y: { access: 'write', type: 'f32' },
  },
  params: { B: 'u32', Ca: 'u32', Cb: 'u32', HW: 'u32' },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => gridStrideDispatch(p.B * (p.Ca + p.Cb) * p.HW, WG),
  sizes: (p) => {
    if (p.Ca < 1 || p.Cb < 1 || p.HW < 1) {
      throw new ValidationError(
        `kernel 'concatChannels': Ca, Cb and HW must be at least 1, got ${p.Ca}, ${p.Cb}, ${p.HW}`,
      );
    }
    return { a: p.B * p.Ca * p.HW, b: p.B * p.Cb * p.HW, y: p.B * (p.Ca + p.Cb) * p.HW };
  },
  wgsl: () => `
${GRID_STRIDE_MAIN(WG)} {
  let C = P.Ca + P.Cb;
  ${gridStrideLoop(WG, 'P.B * C * P.HW')} {
    let i = idx % P.HW;
    let c = (idx / P.HW) % C;
    let n = idx / (P.HW * C);
    if (c < P.Ca) { y[idx] = a[(n * P.Ca + c) * P.HW + i]; } else { y[idx] = b[(n * P.Cb + c - P.Ca) * P.HW + i]; }
  }
}`,
  reference: ({ a, b, y }, p) => {
    const C = p.Ca + p.Cb;
    for (let n = 0; n < p.B; n++) {
      for (let c = 0; c < C; c++) {
        const src = c < p.Ca ? a.subarray((n * p.Ca + c) * p.HW) : b.subarray((n * p.Cb + c - p.Ca) * p.HW);
        for (let i = 0; i < p.HW; i++) y[(n * C + c) * p.HW + i] = src[i];
      }
    }
  },
  testCases: [
    { params: { B: 1, Ca: 1, Cb: 1, HW: 1 } },
    { params: { B: 3, Ca: 5, Cb: 2, HW: 37 } },
    { params: { B: 2, Ca: 16, Cb: 16, HW: 48 * 40 }, label: 'more elements than the grid' },
  ],
  tolerance: 'exact',
});

export const channelScale = defineKernel({
  name: 'channelScale',
  bindings: {
    x: { access: 'read', type: 'f32' },
    s: { access: 'read', type: 'f32' },
    y: { access: 'write', type: 'f32' },
  },
  params: { B: 'u32', C: 'u32', HW: 'u32' },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => gridStrideDispatch(p.B * p.C * p.HW, WG),
  sizes: (p) => {
    if (p.C < 1 || p.HW < 1)
      throw new ValidationError(`kernel 'channelScale': C and HW must be at least 1, got ${p.C}, ${p.HW}`);
    return { x: p.B * p.C * p.HW, s: p.B * p.C, y: p.B * p.C * p.HW };
  },
  wgsl: () => `
${GRID_STRIDE_MAIN(WG)} {
  ${gridStrideLoop(WG, 'P.B * P.C * P.HW')} {
    y[idx] = x[idx] * s[idx / P.HW];
  }
}`,
  reference: ({ x, s, y }, p) => {
    for (let nc = 0; nc < p.B * p.C; nc++) for (let i = 0; i < p.HW; i++) y[nc * p.HW + i] = x[nc * p.HW + i] * s[nc];
  },
  testCases: [
    { params: { B: 1, C: 1, HW: 1 } },
    { params: { B: 3, C: 7, HW: 29 } },
    { params: { B: 2, C: 16, HW: 48 * 40 }, label: 'more elements than the grid' },
  ],
  tolerance: 'elementwise',
});
