// Spatial rearrangements in NCHW.
// pixelShuffle (depth to space, PyTorch semantics): x (B, C·r², H, W) → y (B, C, H·r, W·r),
//   y[b, c, h·r + i, w·r + j] = x[b, c·r² + i·r + j, h, w].
// upsample2x: x (B, C, H, W) → y (B, C, 2H, 2W), 'nearest' or 'bilinear' (align_corners = false, source
//   coordinates clamped at the edges, as PyTorch's interpolate).
import { ValidationError } from '../errors.js';
import { defineKernel } from '../runtime/kernel.js';
import { GRID_STRIDE_MAIN, gridStrideDispatch, gridStrideLoop } from './grid-stride.js';

const WG = 256;

export const pixelShuffle = defineKernel({
  name: 'pixelShuffle',
  bindings: { x: { access: 'read', type: 'f32' }, y: { access: 'write', type: 'f32' } },
  params: { B: 'u32', C: 'u32', H: 'u32', W: 'u32', r: 'u32' },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => gridStrideDispatch(p.B * p.C * p.H * p.W, WG),
  sizes: (p) => {
    if (p.r < 1) throw new ValidationError(`kernel 'pixelShuffle': upscale factor r must be at least 1, got ${p.r}`);
    const n = p.B * p.C * p.H * p.W * p.r * p.r;
    return { x: n, y: n };
  },
  // one invocation per (b, c, h, w): gathers the r² input channels of that pixel into its r×r output block
  wgsl: () => `
${GRID_STRIDE_MAIN(WG)} {
  let r = P.r;
  let hw = P.H * P.W;
  let wo = P.W * r;
  ${gridStrideLoop(WG, 'P.B * P.C * hw')} {
    let w = idx % P.W;
    let h = (idx / P.W) % P.H;
    let bc = idx / hw;
    let src = bc * r * r * hw + h * P.W + w;
    let dst = (bc * P.H * r + h * r) * wo + w * r;
    for (var i = 0u; i < r; i++) {
      for (var j = 0u; j < r; j++) {
        y[dst + i * wo + j] = x[src + (i * r + j) * hw];
      }
    }
  }
}`,
  reference: ({ x, y }, p) => {
    const { B, C, H, W, r } = p;
    for (let b = 0; b < B; b++)
      for (let c = 0; c < C; c++)
        for (let h = 0; h < H; h++)
          for (let w = 0; w < W; w++)
            for (let i = 0; i < r; i++)
              for (let j = 0; j < r; j++) {
                const src = ((b * C * r * r + c * r * r + i * r + j) * H + h) * W + w;
                y[((b * C + c) * H * r + h * r + i) * W * r + w * r + j] = x[src];
              }
  },
  testCases: [
    { params: { B: 1, C: 1, H: 1, W: 1, r: 1 } },
    { params: { B: 1, C: 1, H: 1, W: 1, r: 2 } },
    { params: { B: 2, C: 3, H: 5, W: 7, r: 2 } },
    { params: { B: 1, C: 5, H: 13, W: 11, r: 3 } },
    { params: { B: 3, C: 16, H: 14, W: 14, r: 2 } },
    { params: { B: 3, C: 16, H: 29, W: 31, r: 2 }, label: 'more pixels than the grid: invocations loop' },
  ],
  tolerance: 'exact',
});

export interface UpsampleSpec {
  [k: string]: string | number | boolean;
  mode: 'nearest' | 'bilinear';
}

/** PyTorch's source coordinate for align_corners = false at scale 1/2: index h0, its clamped neighbour h1 and the weight of h1. */
function sourceRef(dst: number, n: number): [number, number, number] {
  const src = Math.max((dst + 0.5) / 2 - 0.5, 0);
  const i0 = Math.floor(src);
  const i1 = i0 < n - 1 ? i0 + 1 : i0;
  return [i0, i1, src - i0];
}

export const upsample2x = defineKernel<UpsampleSpec>({
  name: 'upsample2x',
  bindings: { x: { access: 'read', type: 'f32' }, y: { access: 'write', type: 'f32' } },
  params: { B: 'u32', C: 'u32', H: 'u32', W: 'u32' },
  spec: { mode: 'nearest' },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => gridStrideDispatch(p.B * p.C * p.H * p.W, WG),
  sizes: (p) => ({ x: p.B * p.C * p.H * p.W, y: p.B * p.C * p.H * p.W * 4 }),
  // one invocation per input pixel (plane, h, w), writing output rows 2h, 2h + 1 and columns 2w, 2w + 1
  wgsl: ({ mode }) => `
// Source coordinate of output o in a dimension of size n (align_corners = false, scale 1/2): the two
// neighbours and the weight of the second in quarters. Even o = 2k sits at k − 0.25 (clamped to 0 at
// k = 0), odd o = 2k + 1 at k + 0.25; the second neighbour is clamped to n − 1.
fn src2(o: u32, n: u32) -> vec3u {
  let k = o / 2u;
  if ((o & 1u) == 1u) { return vec3u(k, min(k + 1u, n - 1u), 1u); }
  if (k == 0u) { return vec3u(0u, min(1u, n - 1u), 0u); }
  return vec3u(k - 1u, k, 3u);
}
${GRID_STRIDE_MAIN(WG)} {
  let wo = P.W * 2u;
  ${gridStrideLoop(WG, 'P.B * P.C * P.H * P.W')} {
    let w = idx % P.W;
    let h = (idx / P.W) % P.H;
    let plane = idx / (P.H * P.W);
    let dst = (plane * P.H * 2u + h * 2u) * wo + w * 2u;
${
  mode === 'nearest'
    ? `    let v = x[idx];
    y[dst] = v; y[dst + 1u] = v; y[dst + wo] = v; y[dst + wo + 1u] = v;`
    : `    let base = plane * P.H * P.W;
    for (var dy = 0u; dy < 2u; dy++) {
      let sy = src2(h * 2u + dy, P.H);
      let ly = f32(sy.z) * 0.25;
      let r0 = base + sy.x * P.W;
      let r1 = base + sy.y * P.W;
      for (var dx = 0u; dx < 2u; dx++) {
        let sx = src2(w * 2u + dx, P.W);
        let lx = f32(sx.z) * 0.25;
        let top = (1.0 - lx) * x[r0 + sx.x] + lx * x[r0 + sx.y];
        let bottom = (1.0 - lx) * x[r1 + sx.x] + lx * x[r1 + sx.y];
        y[dst + dy * wo + dx] = (1.0 - ly) * top + ly * bottom;
      }
    }`
}
  }
}`,
  reference: ({ x, y }, p, { mode }) => {
    const { B, C, H, W } = p;
    for (let bc = 0; bc < B * C; bc++) {
      const xb = bc * H * W;
      for (let i = 0; i < 2 * H; i++) {
        for (let j = 0; j < 2 * W; j++) {
          let v: number;
          if (mode === 'nearest') {
            v = x[xb + Math.floor(i / 2) * W + Math.floor(j / 2)];
          } else {
            const [h0, h1, lh] = sourceRef(i, H);
            const [w0, w1, lw] = sourceRef(j, W);
            v =
              (1 - lh) * ((1 - lw) * x[xb + h0 * W + w0] + lw * x[xb + h0 * W + w1]) +
              lh * ((1 - lw) * x[xb + h1 * W + w0] + lw * x[xb + h1 * W + w1]);
          }
          y[(bc * 2 * H + i) * 2 * W + j] = v;
        }
      }
    }
  },
  testCases: (['nearest', 'bilinear'] as const).flatMap((mode) => [
    { params: { B: 1, C: 1, H: 1, W: 1 }, spec: { mode } },
    { params: { B: 1, C: 2, H: 1, W: 5 }, spec: { mode } },
    { params: { B: 2, C: 3, H: 7, W: 5 }, spec: { mode } },
    { params: { B: 2, C: 16, H: 14, W: 14 }, spec: { mode } },
    { params: { B: 1, C: 5, H: 13, W: 31 }, spec: { mode } },
    { params: { B: 2, C: 17, H: 33, W: 31 }, spec: { mode }, label: `${mode}: more pixels than the grid` },
  ]),
  tolerance: 'elementwise',
});
