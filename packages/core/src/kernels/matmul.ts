// Batched matmul with bias and activation epilogue:
//   C[b, m, n] = act( Σ_k A[b, m, k] · B[b, k, n] + bias[n] )
// A is (batch, M, K), or (batch, K, M) with transA; B is (batch, K, N), or (batch, N, K) with transB
// (PyTorch Linear weights are (out, in): transB). strideA/strideB/strideC are batch strides in elements;
// strideB = 0 broadcasts one weight matrix over the batch.
// Variants: 'regblock' (each thread owns a TM×TN block in registers, no workgroup memory: fastest on
// lavapipe, where barriers are expensive) and 'tiled' (shared-memory tiles: what real GPUs favour).
import { defineKernel } from '../runtime/kernel.js';
import { ACTIVATIONS_WGSL, activationRef, type UnaryOp } from './elementwise.js';

export interface MatmulSpec {
  [k: string]: string | number | boolean;
  transA: boolean;
  transB: boolean;
  bias: boolean;
  act: UnaryOp;
  variant: 'regblock' | 'tiled';
}

const TM = 4;
const TN = 4;
const WG = 8; // 8×8 threads → 32×32 outputs per workgroup
const TILE = 32;
const TK = 16;

function loadA(transA: boolean): string {
  return transA ? 'a[aBase + k * P.M + m]' : 'a[aBase + m * P.K + k]';
}
function loadB(transB: boolean): string {
  return transB ? 'b[bBase + n * P.K + k]' : 'b[bBase + k * P.N + n]';
}

function regblockWgsl(s: MatmulSpec): string {
  return `${ACTIVATIONS_WGSL}
fn ldA(aBase: u32, m: u32, k: u32) -> f32 { if (m >= P.M) { return 0.0; } return ${loadA(s.transA)}; }
fn ldB(bBase: u32, k: u32, n: u32) -> f32 { if (n >= P.N) { return 0.0; } return ${loadB(s.transB)}; }
@compute @workgroup_size(${WG}, ${WG}, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let batch = gid.z;
  let m0 = gid.y * ${TM}u;
  let n0 = gid.x * ${TN}u;
  if (m0 >= P.M || n0 >= P.N) { return; }
  let aBase = batch * P.strideA;
  let bBase = batch * P.strideB;
  var acc: array<vec4f, ${TM}>;
  for (var k = 0u; k < P.K; k++) {
    let bv = vec4f(ldB(bBase, k, n0), ldB(bBase, k, n0 + 1u), ldB(bBase, k, n0 + 2u), ldB(bBase, k, n0 + 3u));
    for (var i = 0u; i < ${TM}u; i++) {
      acc[i] += ldA(aBase, m0 + i, k) * bv;
    }
  }
  let cBase = batch * P.strideC;
  for (var i = 0u; i < ${TM}u; i++) {
    let m = m0 + i;
    if (m >= P.M) { break; }
    for (var j = 0u; j < ${TN}u; j++) {
      let n = n0 + j;
      if (n >= P.N) { break; }
      var v = acc[i][j];
      ${s.bias ? 'v += bias[n];' : ''}
      c[cBase + m * P.N + n] = act_${s.act}(v);
    }
  }
}`;
}

function tiledWgsl(s: MatmulSpec): string {
  return `${ACTIVATIONS_WGSL}
var<workgroup> tA: array<array<f32, ${TILE}>, ${TK}>;
var<workgroup> tB: array<array<f32, ${TILE}>, ${TK}>;
@compute @workgroup_size(${WG}, ${WG}, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let batch = wg.z;
  let aBase = batch * P.strideA;
  let bBase = batch * P.strideB;
  let mT = wg.y * ${TILE}u;
  let nT = wg.x * ${TILE}u;
  let t = lid.y * ${WG}u + lid.x;
  var acc: array<vec4f, ${TM}>;
  for (var k0 = 0u; k0 < P.K; k0 += ${TK}u) {
    for (var e = t; e < ${TILE * TK}u; e += ${WG * WG}u) {
      let kk = e / ${TILE}u; let mm = e % ${TILE}u;
      let k = k0 + kk; let m = mT + mm; let n = nT + mm;
      var av = 0.0; var bv = 0.0;
      if (k < P.K && m < P.M) { av = ${loadA(s.transA)}; }
      if (k < P.K && n < P.N) { bv = ${loadB(s.transB)}; }
      tA[kk][mm] = av; tB[kk][mm] = bv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk++) {
      let bv = vec4f(tB[kk][lid.x * 4u], tB[kk][lid.x * 4u + 1u], tB[kk][lid.x * 4u + 2u], tB[kk][lid.x * 4u + 3u]);
      for (var i = 0u; i < ${TM}u; i++) { acc[i] += tA[kk][lid.y * 4u + i] * bv; }
    }
    workgroupBarrier();
  }
  let cBase = batch * P.strideC;
  for (var i = 0u; i < ${TM}u; i++) {
    let m = mT + lid.y * 4u + i;
    if (m >= P.M) { break; }
    for (var j = 0u; j < ${TN}u; j++) {
      let n = nT + lid.x * 4u + j;
      if (n >= P.N) { break; }
      var v = acc[i][j];
      ${s.bias ? 'v += bias[n];' : ''}
      c[cBase + m * P.N + n] = act_${s.act}(v);
    }
  }
}`;
}

export const matmul = defineKernel<MatmulSpec>({
  name: 'matmul',
  bindings: {
    a: { access: 'read', type: 'f32' },
    b: { access: 'read', type: 'f32' },
    bias: { access: 'read', type: 'f32' },
    c: { access: 'write', type: 'f32' },
  },
  params: { M: 'u32', N: 'u32', K: 'u32', batch: 'u32', strideA: 'u32', strideB: 'u32', strideC: 'u32' },
  spec: { transA: false, transB: false, bias: false, act: 'identity', variant: 'regblock' },
  workgroupSize: () => [WG, WG, 1],
  dispatch: (p) => [Math.ceil(p.N / (WG * TN)), Math.ceil(p.M / (WG * TM)), p.batch],
  sizes: (p, s) => ({
    a: (p.batch - 1) * p.strideA + p.M * p.K,
    b: (p.batch - 1) * p.strideB + p.K * p.N,
    bias: s.bias ? p.N : 1,
    c: (p.batch - 1) * p.strideC + p.M * p.N,
  }),
  wgsl: (s) => (s.variant === 'tiled' ? tiledWgsl(s) : regblockWgsl(s)),
  reference: ({ a, b, bias, c }, p, s) => {
    const f = activationRef[s.act];
    for (let bt = 0; bt < p.batch; bt++) {
      const ao = bt * p.strideA;
      const bo = bt * p.strideB;
      const co = bt * p.strideC;
      for (let m = 0; m < p.M; m++) {
        for (let n = 0; n < p.N; n++) {
          let acc = 0;
          for (let k = 0; k < p.K; k++) {
            const av = s.transA ? a[ao + k * p.M + m] : a[ao + m * p.K + k];
            const bv = s.transB ? b[bo + n * p.K + k] : b[bo + k * p.N + n];
            acc += av * bv;
          }
          if (s.bias) acc += bias[n];
          c[co + m * p.N + n] = f(acc);
        }
      }
    }
  },
  testCases: (['regblock', 'tiled'] as const).flatMap((variant) => [
    { params: { M: 37, N: 53, K: 29, batch: 1, strideA: 0, strideB: 0, strideC: 0 }, spec: { variant } },
    { params: { M: 1, N: 1, K: 1, batch: 1, strideA: 0, strideB: 0, strideC: 0 }, spec: { variant } },
    {
      params: { M: 64, N: 96, K: 128, batch: 1, strideA: 0, strideB: 0, strideC: 0 },
      spec: { variant, bias: true, act: 'gelu' as const },
    },
    {
      params: { M: 17, N: 31, K: 67, batch: 3, strideA: 17 * 67, strideB: 0, strideC: 17 * 31 },
      spec: { variant, transB: true, bias: true },
    },
    {
      params: { M: 13, N: 7, K: 11, batch: 2, strideA: 13 * 11, strideB: 11 * 7, strideC: 13 * 7 },
      spec: { variant, transA: true, act: 'tanh' as const },
    },
    {
      params: { M: 5, N: 130, K: 257, batch: 1, strideA: 0, strideB: 0, strideC: 0 },
      spec: { variant, transA: true, transB: true, act: 'silu' as const },
    },
  ]),
  tolerance: 'accumulate',
});
