// NCHW 2-D convolution with bias and activation epilogue:
//   x (B, Cin, H, W), weight (Cout, Cin, KH, KW), bias (Cout) → y (B, Cout, Ho, Wo),
//   y[b, o, i, j] = act( Σ_{c, kh, kw} weight[o, c, kh, kw] · x[b, c, i·stride − pad + kh, j·stride − pad + kw] + bias[o] )
//   with zero padding and Ho = floor((H + 2·pad − KH) / stride) + 1 (Wo likewise).
// Each invocation keeps a block of tc output channels × tp output pixels (consecutive in the flattened
// Ho·Wo plane; 8 × 8 by default) in registers and loops over blocks (grid-stride); no workgroup memory
// (barriers are expensive on lavapipe). SwiftShader (Chromium's fallback adapter) does not finish compiling
// the 8 × 8 body (over a minute), so selectConv2dSpec gives it 4 × 4 blocks, which compile in under a second;
// every output sums its terms in the same order whatever the block.
import { ValidationError } from '../errors.js';
import type { Device } from '../runtime/device.js';
import { defineKernel, type Params } from '../runtime/kernel.js';
import { ACTIVATIONS_WGSL, activationRef } from './elementwise.js';
import { GRID_STRIDE_MAIN, gridStrideDispatch, gridStrideLoop } from './grid-stride.js';

export type Conv2dActivation = 'identity' | 'relu' | 'gelu' | 'silu' | 'tanh' | 'sigmoid';
export interface Conv2dSpec {
  [k: string]: string | number | boolean;
  bias: boolean;
  act: Conv2dActivation;
  /** Output channels per invocation (4 or 8; default 8). */
  tc: number;
  /** Output pixels per invocation (4 or 8; default 8). */
  tp: number;
}

const WG = 64;
const BLOCKS = [4, 8];

function checkBlock(s: Conv2dSpec): void {
  if (!BLOCKS.includes(s.tc) || !BLOCKS.includes(s.tp)) {
    throw new ValidationError(
      `kernel 'conv2d': block tc × tp = ${s.tc} × ${s.tp}; tc and tp must each be one of ${BLOCKS.join(', ')}`,
    );
  }
}

/** The conv2d block for this device: 4 × 4 on SwiftShader (see the file comment), the default elsewhere. */
export function selectConv2dSpec(device: Device): Partial<Conv2dSpec> {
  const a = device.adapter;
  return /swiftshader/i.test(`${a.vendor} ${a.architecture} ${a.description}`) ? { tc: 4, tp: 4 } : {};
}

/** Output size of one spatial dimension. */
export const convOutSize = (n: number, k: number, stride: number, pad: number): number =>
  Math.floor((n + 2 * pad - k) / stride) + 1;

function checkConv2d(p: Params): void {
  if (p.stride < 1) throw new ValidationError(`kernel 'conv2d': stride must be at least 1, got ${p.stride}`);
  if (p.KH < 1 || p.KW < 1) {
    throw new ValidationError(`kernel 'conv2d': kernel size KH×KW must be at least 1×1, got ${p.KH}×${p.KW}`);
  }
  const ho = convOutSize(p.H, p.KH, p.stride, p.pad);
  const wo = convOutSize(p.W, p.KW, p.stride, p.pad);
  if (p.Ho !== ho || p.Wo !== wo) {
    throw new ValidationError(
      `kernel 'conv2d': output size Ho×Wo = ${p.Ho}×${p.Wo} does not match floor((H + 2·pad − K) / stride) + 1 = ${ho}×${wo} for H×W = ${p.H}×${p.W}, K = ${p.KH}×${p.KW}, stride ${p.stride}, pad ${p.pad}`,
    );
  }
}

/**
 * The kernel body for a block of TC output channels × TP output pixels per invocation (multiples of 4),
 * fully unrolled so the accumulators stay in registers. Exported for benchmarks of other blockings.
 */
export function conv2dWgsl(s: Conv2dSpec, tc: number, tp: number): string {
  if (tc % 4 !== 0 || tp % 4 !== 0 || tc < 4 || tp < 4) {
    throw new ValidationError(`conv2d blocking: channels ${tc} and pixels ${tp} per invocation must be multiples of 4`);
  }
  const CG = tc / 4;
  const PG = tp / 4;
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const lines = (n: number, f: (i: number) => string) => range(n).map(f).join('\n');
  const comps = ['x', 'y', 'z', 'w'];
  const fma = range(PG)
    .flatMap((pg) =>
      comps.flatMap((cp, k) => range(CG).map((cg) => `a${pg * 4 + k}_${cg} += xv${pg}.${cp} * wv${cg};`)),
    )
    .join(' ');
  const stores = range(tp)
    .flatMap((pp) =>
      range(tc).map((cc) => {
        const cg = Math.floor(cc / 4);
        return `if (co0 + ${cc}u < P.Cout && p0 + ${pp}u < hwo) { y[(b * P.Cout + co0 + ${cc}u) * hwo + p0 + ${pp}u] = act_${s.act}(a${pp}_${cg}.${comps[cc % 4]}${s.bias ? ` + bias[co0 + ${cc}u]` : ''}); }`;
      }),
    )
    .join('\n    ');
  return `${ACTIVATIONS_WGSL}
${GRID_STRIDE_MAIN(WG)} {
  let hwo = P.Ho * P.Wo;
  let nPB = (hwo + ${tp - 1}u) / ${tp}u;
  let nCB = (P.Cout + ${tc - 1}u) / ${tc}u;
  let kk = P.KH * P.KW;
  let H = i32(P.H);
  let W = i32(P.W);
  let lane = vec4u(0u, 1u, 2u, 3u);
  ${gridStrideLoop(WG, 'P.B * nCB * nPB')} {
    let p0 = (idx % nPB) * ${tp}u;
    let rest = idx / nPB;
    let co0 = (rest % nCB) * ${tc}u;
    let b = rest / nCB;
    // top-left input corner of each pixel (pixels past the plane repeat the last one and are not written)
${lines(
  PG,
  (g) => `    let pix${g} = min(vec4u(p0 + ${g * 4}u) + lane, vec4u(hwo - 1u));
    let ih0_${g} = vec4i(pix${g} / vec4u(P.Wo)) * i32(P.stride) - i32(P.pad);
    let iw0_${g} = vec4i(pix${g} % vec4u(P.Wo)) * i32(P.stride) - i32(P.pad);`,
)}
    // weight rows of the output channels (channels past Cout repeat the last one and are not written)
${lines(CG, (g) => `    let wb${g} = min(vec4u(co0 + ${g * 4}u) + lane, vec4u(P.Cout - 1u)) * (P.Cin * kk);`)}
${lines(
  tp,
  (pp) =>
    `    ${range(CG)
      .map((g) => `var a${pp}_${g} = vec4f(0.0);`)
      .join(' ')}`,
)}
    for (var c = 0u; c < P.Cin; c++) {
      let xc = vec4u((b * P.Cin + c) * P.H * P.W);
      let wc = c * kk;
      for (var kh = 0u; kh < P.KH; kh++) {
${lines(
  PG,
  (g) => `        let ih${g} = ih0_${g} + i32(kh);
        let rowOk${g} = (ih${g} >= vec4i(0)) & (ih${g} < vec4i(H));
        let rowOff${g} = ih${g} * W;`,
)}
        for (var kw = 0u; kw < P.KW; kw++) {
${lines(
  PG,
  (g) => `          let iw${g} = iw0_${g} + i32(kw);
          let ok${g} = rowOk${g} & (iw${g} >= vec4i(0)) & (iw${g} < vec4i(W));
          let xi${g} = vec4u(select(vec4i(0), rowOff${g} + iw${g}, ok${g})) + xc;
          let xv${g} = select(vec4f(0.0), vec4f(x[xi${g}.x], x[xi${g}.y], x[xi${g}.z], x[xi${g}.w]), ok${g});`,
)}
          let o = wc + kh * P.KW + kw;
${lines(CG, (g) => `          let wv${g} = vec4f(weight[wb${g}.x + o], weight[wb${g}.y + o], weight[wb${g}.z + o], weight[wb${g}.w + o]);`)}
          ${fma}
        }
      }
    }
    ${stores}
  }
}`;
}

export const conv2d = defineKernel<Conv2dSpec>({
  name: 'conv2d',
  bindings: {
    x: { access: 'read', type: 'f32' },
    weight: { access: 'read', type: 'f32' },
    bias: { access: 'read', type: 'f32' },
    y: { access: 'write', type: 'f32' },
  },
  params: {
    B: 'u32',
    Cin: 'u32',
    H: 'u32',
    W: 'u32',
    Cout: 'u32',
    KH: 'u32',
    KW: 'u32',
    stride: 'u32',
    pad: 'u32',
    Ho: 'u32',
    Wo: 'u32',
  },
  spec: { bias: false, act: 'identity', tc: 8, tp: 8 },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p, s) => gridStrideDispatch(p.B * Math.ceil(p.Cout / s.tc) * Math.ceil((p.Ho * p.Wo) / s.tp), WG),
  sizes: (p, s) => {
    checkConv2d(p);
    checkBlock(s);
    return {
      x: p.B * p.Cin * p.H * p.W,
      weight: p.Cout * p.Cin * p.KH * p.KW,
      bias: s.bias ? p.Cout : 1,
      y: p.B * p.Cout * p.Ho * p.Wo,
    };
  },
  wgsl: (s) => {
    checkBlock(s);
    return conv2dWgsl(s, s.tc, s.tp);
  },
  reference: ({ x, weight, bias, y }, p, s) => {
    const f = activationRef[s.act];
    for (let b = 0; b < p.B; b++) {
      for (let o = 0; o < p.Cout; o++) {
        for (let i = 0; i < p.Ho; i++) {
          for (let j = 0; j < p.Wo; j++) {
            let acc = 0;
            for (let c = 0; c < p.Cin; c++) {
              for (let kh = 0; kh < p.KH; kh++) {
                const r = i * p.stride - p.pad + kh;
                if (r < 0 || r >= p.H) continue;
                for (let kw = 0; kw < p.KW; kw++) {
                  const q = j * p.stride - p.pad + kw;
                  if (q < 0 || q >= p.W) continue;
                  acc += weight[((o * p.Cin + c) * p.KH + kh) * p.KW + kw] * x[((b * p.Cin + c) * p.H + r) * p.W + q];
                }
              }
            }
            if (s.bias) acc += bias[o];
            y[((b * p.Cout + o) * p.Ho + i) * p.Wo + j] = f(acc);
          }
        }
      }
    }
  },
  testCases: conv2dCases(),
  tolerance: 'accumulate',
});

function conv2dCases() {
  const c = (
    B: number,
    Cin: number,
    H: number,
    W: number,
    Cout: number,
    K: number | [number, number],
    stride: number,
    pad: number,
    spec: Partial<Conv2dSpec> = {},
  ) => {
    const [KH, KW] = typeof K === 'number' ? [K, K] : K;
    const params = {
      B,
      Cin,
      H,
      W,
      Cout,
      KH,
      KW,
      stride,
      pad,
      Ho: convOutSize(H, KH, stride, pad),
      Wo: convOutSize(W, KW, stride, pad),
    };
    const label = `B=${B} ${Cin}→${Cout} ${H}×${W} k${KH}×${KW} s${stride} p${pad} ${JSON.stringify(spec)}`;
    return { params, spec, label };
  };
  return [
    c(1, 1, 7, 7, 1, 3, 1, 1),
    c(2, 3, 7, 7, 5, 3, 2, 1, { bias: true, act: 'relu' }),
    c(2, 3, 7, 7, 5, 3, 2, 1, { bias: true, act: 'relu', tc: 4, tp: 4 }),
    c(2, 16, 13, 13, 9, 3, 2, 1, { bias: true, act: 'relu', tc: 4, tp: 8 }),
    c(1, 5, 11, 11, 12, 3, 1, 1, { bias: true, tc: 8, tp: 4 }),
    c(1, 1, 28, 28, 32, 3, 1, 1, { bias: true, act: 'relu' }),
    c(2, 16, 28, 28, 32, 3, 2, 1, { bias: true, act: 'gelu' }),
    c(2, 16, 13, 13, 5, 3, 1, 1, { act: 'silu' }),
    c(1, 3, 13, 13, 32, 3, 2, 1, { bias: true, act: 'tanh' }),
    c(2, 16, 13, 13, 32, 1, 1, 0, { bias: true }),
    c(1, 16, 7, 7, 5, 1, 2, 0, { act: 'sigmoid' }),
    c(2, 3, 28, 28, 1, 1, 2, 0, { bias: true }),
    c(1, 5, 13, 7, 3, [5, 3], 1, 2, { bias: true }),
    c(2, 3, 7, 13, 5, [3, 5], 3, 0),
    c(1, 1, 1, 1, 1, 1, 1, 0, { bias: true }),
    { ...c(4, 1, 131, 131, 8, 3, 1, 1, { bias: true }), label: 'more blocks than the grid: invocations loop' },
    { ...c(1, 2, 1, 1, 3, 3, 1, 1), label: '1×1 input, 3×3 kernel: all taps but the centre are padding' },
    {
      ...c(1, 3, 7, 7, 5, 3, 1, 1),
      inject: [{ binding: 'x', index: 24, value: Number.NaN }],
      label: 'NaN propagates',
    },
  ];
}
