// Causal depthwise conv1d over time (Mamba's short convolution), channels last.
// conv1dCausal: x (B, T, D), weight (D, K), bias (D) → y (B, T, D),
//   y[b, t, c] = Σ_{j<K} weight[c, j] · x[b, t − (K−1) + j, c] (zero left padding) + bias[c], optional SiLU.
// conv1dStep: one decoding step with a rolling state (B, D, K) holding the last K inputs, oldest first:
//   shifts the state left by one, appends x (B, D), then y (B, D) = Σ_j weight[c, j] · state[b, c, j] + bias[c].
import { ValidationError } from '../errors.js';
import { defineKernel } from '../runtime/kernel.js';
import { ACTIVATIONS_WGSL, activationRef } from './elementwise.js';
import { GRID_STRIDE_MAIN, gridStrideDispatch, gridStrideLoop } from './grid-stride.js';

export interface Conv1dSpec {
  [k: string]: string | number | boolean;
  bias: boolean;
  silu: boolean;
}

const WG = 256;
/** Time steps per invocation in conv1dCausal. */
const TT = 8;

function checkK(where: string, K: number): void {
  if (K < 1) throw new ValidationError(`kernel '${where}': kernel size K must be at least 1, got ${K}`);
}

const epilogue = (s: Conv1dSpec, c: string): string =>
  `${s.bias ? `acc += bias[${c}];` : ''}${s.silu ? ' acc = act_silu(acc);' : ''}`;

const epilogueRef = (s: Conv1dSpec, acc: number, bias: number): number => {
  const v = s.bias ? acc + bias : acc;
  return s.silu ? activationRef.silu(v) : v;
};

export const conv1dCausal = defineKernel<Conv1dSpec>({
  name: 'conv1dCausal',
  bindings: {
    x: { access: 'read', type: 'f32' },
    weight: { access: 'read', type: 'f32' },
    bias: { access: 'read', type: 'f32' },
    y: { access: 'write', type: 'f32' },
  },
  params: { B: 'u32', T: 'u32', D: 'u32', K: 'u32' },
  spec: { bias: false, silu: false },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => gridStrideDispatch(p.B * Math.ceil(p.T / TT) * p.D, WG),
  sizes: (p, s) => {
    checkK('conv1dCausal', p.K);
    const n = p.B * p.T * p.D;
    return { x: n, weight: p.D * p.K, bias: s.bias ? p.D : 1, y: n };
  },
  // one invocation per (b, block of TT time steps, c); neighbouring invocations take neighbouring channels
  wgsl: (s) => `${ACTIVATIONS_WGSL}
${GRID_STRIDE_MAIN(WG)} {
  let nTB = (P.T + ${TT - 1}u) / ${TT}u;
  ${gridStrideLoop(WG, 'P.B * nTB * P.D')} {
    let c = idx % P.D;
    let tb = idx / P.D;
    let t0 = (tb % nTB) * ${TT}u;
    let rowBase = (tb / nTB) * P.T * P.D + c;
    let t1 = min(t0 + ${TT}u, P.T);
    for (var t = t0; t < t1; t++) {
      // taps j < K-1-t fall on the zero padding before the sequence start
      let j0 = (P.K - 1u) - min(t, P.K - 1u);
      let x0 = rowBase + (t + j0 + 1u - P.K) * P.D;
      var acc = 0.0;
      for (var j = j0; j < P.K; j++) {
        acc += weight[c * P.K + j] * x[x0 + (j - j0) * P.D];
      }
      ${epilogue(s, 'c')}
      y[rowBase + t * P.D] = acc;
    }
  }
}`,
  reference: ({ x, weight, bias, y }, p, s) => {
    for (let b = 0; b < p.B; b++) {
      for (let t = 0; t < p.T; t++) {
        for (let c = 0; c < p.D; c++) {
          let acc = 0;
          for (let j = 0; j < p.K; j++) {
            const tt = t - (p.K - 1) + j;
            if (tt >= 0) acc += weight[c * p.K + j] * x[(b * p.T + tt) * p.D + c];
          }
          y[(b * p.T + t) * p.D + c] = epilogueRef(s, acc, bias[c]);
        }
      }
    }
  },
  testCases: [
    { params: { B: 1, T: 1, D: 1, K: 1 }, spec: { bias: true } },
    { params: { B: 1, T: 1, D: 5, K: 4 }, spec: { bias: true, silu: true }, label: 'T=1 < K: all padding but one' },
    { params: { B: 2, T: 3, D: 7, K: 4 } },
    { params: { B: 3, T: 17, D: 67, K: 4 }, spec: { bias: true, silu: true } },
    { params: { B: 2, T: 64, D: 96, K: 3 }, spec: { silu: true } },
    { params: { B: 1, T: 129, D: 13, K: 7 }, spec: { bias: true } },
    { params: { B: 2, T: 130, D: 1031, K: 4 }, spec: { bias: true, silu: true }, label: 'more items than the grid' },
    {
      params: { B: 1, T: 9, D: 5, K: 2 },
      inject: [{ binding: 'x', index: 12, value: Number.NaN }],
      label: 'NaN propagates',
    },
  ],
  tolerance: 'transcendental',
});

export const conv1dStep = defineKernel<Conv1dSpec>({
  name: 'conv1dStep',
  bindings: {
    x: { access: 'read', type: 'f32' },
    state: { access: 'read_write', type: 'f32' },
    weight: { access: 'read', type: 'f32' },
    bias: { access: 'read', type: 'f32' },
    y: { access: 'write', type: 'f32' },
  },
  params: { B: 'u32', D: 'u32', K: 'u32' },
  spec: { bias: false, silu: false },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => gridStrideDispatch(p.B * p.D, WG),
  sizes: (p, s) => {
    checkK('conv1dStep', p.K);
    return { x: p.B * p.D, state: p.B * p.D * p.K, weight: p.D * p.K, bias: s.bias ? p.D : 1, y: p.B * p.D };
  },
  wgsl: (s) => `${ACTIVATIONS_WGSL}
${GRID_STRIDE_MAIN(WG)} {
  ${gridStrideLoop(WG, 'P.B * P.D')} {
    let c = idx % P.D;
    let sb = idx * P.K;
    let wb = c * P.K;
    var acc = 0.0;
    for (var j = 0u; j + 1u < P.K; j++) {
      let v = state[sb + j + 1u];
      state[sb + j] = v;
      acc += weight[wb + j] * v;
    }
    let xv = x[idx];
    state[sb + P.K - 1u] = xv;
    acc += weight[wb + P.K - 1u] * xv;
    ${epilogue(s, 'c')}
    y[idx] = acc;
  }
}`,
  reference: ({ x, state, weight, bias, y }, p, s) => {
    for (let b = 0; b < p.B; b++) {
      for (let c = 0; c < p.D; c++) {
        const st = state.subarray((b * p.D + c) * p.K, (b * p.D + c + 1) * p.K);
        st.copyWithin(0, 1);
        st[p.K - 1] = x[b * p.D + c];
        let acc = 0;
        for (let j = 0; j < p.K; j++) acc += weight[c * p.K + j] * st[j];
        y[b * p.D + c] = epilogueRef(s, acc, bias[c]);
      }
    }
  },
  testCases: [
    { params: { B: 1, D: 1, K: 1 }, spec: { bias: true } },
    { params: { B: 1, D: 5, K: 4 }, spec: { bias: true, silu: true } },
    { params: { B: 3, D: 67, K: 4 } },
    { params: { B: 2, D: 131, K: 3 }, spec: { bias: true, silu: true } },
    { params: { B: 5, D: 13, K: 7 }, spec: { silu: true } },
    { params: { B: 3, D: 11003, K: 4 }, spec: { bias: true }, label: 'more items than the grid' },
  ],
  tolerance: 'transcendental',
});
