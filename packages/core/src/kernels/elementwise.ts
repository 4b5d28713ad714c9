// Elementwise kernels. unary: y[i] = f(x[i]); binary: y[i] = x[i] ∘ b[i mod period] (period = size of b,
// so b broadcasts over rows when it is one row). x, y: (n,), b: (period,).
import { defineKernel } from '../runtime/kernel.js';
import { GRID_STRIDE_MAIN, gridStrideDispatch, gridStrideLoop } from './grid-stride.js';

export type UnaryOp = 'gelu' | 'silu' | 'tanh' | 'softplus' | 'exp' | 'sigmoid' | 'relu' | 'identity';
export type BinaryOp = 'add' | 'mul' | 'sub';

const SQRT_2_OVER_PI = 0.7978845608028654;

/** WGSL activation functions shared by every kernel with an activation epilogue. */
export const ACTIVATIONS_WGSL = /* wgsl */ `
fn act_tanh(x: f32) -> f32 { let c = clamp(x, -15.0, 15.0); let e = exp(2.0 * c); return (e - 1.0) / (e + 1.0); }
fn act_sigmoid(x: f32) -> f32 { if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); } let e = exp(x); return e / (1.0 + e); }
fn act_gelu(x: f32) -> f32 { return 0.5 * x * (1.0 + act_tanh(${SQRT_2_OVER_PI} * (x + 0.044715 * x * x * x))); }
fn act_silu(x: f32) -> f32 { return x * act_sigmoid(x); }
fn act_softplus(x: f32) -> f32 { if (x > 20.0) { return x; } if (x < -15.0) { return exp(x); } return log(1.0 + exp(x)); }
fn act_relu(x: f32) -> f32 { return max(x, 0.0); }
fn act_exp(x: f32) -> f32 { return exp(x); }
fn act_identity(x: f32) -> f32 { return x; }
`;

/** Reference activations (plain TypeScript, float64 then rounded by the Float32Array store). */
export const activationRef: Record<UnaryOp, (x: number) => number> = {
  gelu: (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))),
  silu: (x) => x / (1 + Math.exp(-x)),
  tanh: Math.tanh,
  softplus: (x) => (x > 20 ? x : Math.log1p(Math.exp(x))),
  exp: Math.exp,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  relu: (x) => Math.max(x, 0),
  identity: (x) => x,
};

export const unary = defineKernel<{ op: UnaryOp }>({
  name: 'unary',
  bindings: { x: { access: 'read', type: 'f32' }, y: { access: 'write', type: 'f32' } },
  params: { n: 'u32' },
  spec: { op: 'gelu' },
  workgroupSize: () => [256, 1, 1],
  linear: true,
  dispatch: (p) => gridStrideDispatch(p.n, 256),
  sizes: (p) => ({ x: p.n, y: p.n }),
  wgsl: ({ op }) => `${ACTIVATIONS_WGSL}
${GRID_STRIDE_MAIN(256)} {
  ${gridStrideLoop(256, 'P.n')} { y[idx] = act_${op}(x[idx]); }
}`,
  reference: ({ x, y }, p, { op }) => {
    const f = activationRef[op];
    for (let i = 0; i < p.n; i++) y[i] = f(x[i]);
  },
  testCases: [
    ...(['gelu', 'silu', 'tanh', 'softplus', 'exp', 'sigmoid', 'relu'] as const).map((op) => ({
      params: { n: 1031 },
      spec: { op },
    })),
    { params: { n: 1 }, spec: { op: 'gelu' } },
    { params: { n: 4099 }, spec: { op: 'tanh' }, scale: 40, label: 'tanh saturation' },
    { params: { n: 4099 }, spec: { op: 'sigmoid' }, scale: 120, label: 'sigmoid overflow' },
    { params: { n: 4099 }, spec: { op: 'softplus' }, scale: 60, label: 'softplus large' },
    {
      params: { n: 257 },
      spec: { op: 'gelu' },
      inject: [{ binding: 'x', index: 7, value: Number.NaN }],
      label: 'NaN propagates',
    },
  ],
  tolerance: 'transcendental',
});

export const binary = defineKernel<{ op: BinaryOp }>({
  name: 'binary',
  bindings: {
    x: { access: 'read', type: 'f32' },
    b: { access: 'read', type: 'f32' },
    y: { access: 'write', type: 'f32' },
  },
  params: { n: 'u32', period: 'u32' },
  spec: { op: 'add' },
  workgroupSize: () => [256, 1, 1],
  linear: true,
  dispatch: (p) => gridStrideDispatch(p.n, 256),
  sizes: (p) => ({ x: p.n, b: p.period, y: p.n }),
  wgsl: ({ op }) => `
${GRID_STRIDE_MAIN(256)} {
  ${gridStrideLoop(256, 'P.n')} {
    let v = b[idx % P.period];
    y[idx] = ${op === 'add' ? 'x[idx] + v' : op === 'mul' ? 'x[idx] * v' : 'x[idx] - v'};
  }
}`,
  reference: ({ x, b, y }, p, { op }) => {
    for (let i = 0; i < p.n; i++) {
      const v = b[i % p.period];
      y[i] = op === 'add' ? x[i] + v : op === 'mul' ? x[i] * v : x[i] - v;
    }
  },
  testCases: [
    { params: { n: 1000, period: 1000 }, spec: { op: 'add' } },
    { params: { n: 999, period: 37 }, spec: { op: 'mul' }, label: 'broadcast rows' },
    { params: { n: 1, period: 1 }, spec: { op: 'sub' } },
    { params: { n: 70001, period: 7 }, spec: { op: 'add' } },
  ],
  tolerance: 'elementwise',
});
