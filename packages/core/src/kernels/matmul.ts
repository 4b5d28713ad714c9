// Batched matmul with bias and activation epilogue:
//   C[b, m, n] = act( Σ_k A[b, m, k] · B[b, k, n] + bias[n] )
// A is (batch, M, K), or (batch, K, M) with transA; B is (batch, K, N), or (batch, N, K) with transB
// (PyTorch Linear weights are (out, in): transB). strideA/strideB/strideC are batch strides in elements;
// strideB = 0 broadcasts one weight matrix over the batch.
// Variants: 'regblock' (each thread owns a tm×tn block of C in registers, no workgroup memory: fastest on
// CPU-rasterised adapters such as lavapipe, where barriers are expensive) and 'tiled' (shared-memory tiles:
// what real GPUs favour). `selectMatmulSpec` picks one for an adapter and a shape.
import { ValidationError } from '../errors.js';
import type { Device } from '../runtime/device.js';
import { defineKernel, type KernelTestCase } from '../runtime/kernel.js';
import { ACTIVATIONS_WGSL, activationRef, type UnaryOp } from './elementwise.js';

export interface MatmulSpec {
  [k: string]: string | number | boolean;
  transA: boolean;
  transB: boolean;
  bias: boolean;
  act: UnaryOp;
  variant: 'regblock' | 'tiled';
  /** regblock: rows of C per thread (1..32). All threads of a workgroup share their rows. */
  tm: number;
  /** regblock: columns of C per thread (1..16); tm·tn ≤ MATMUL_MAX_BLOCK. */
  tn: number;
}

/** Largest register blocks the regblock variant accepts (tm·tn accumulators per thread). */
export const MATMUL_MAX_TM = 32;
export const MATMUL_MAX_TN = 16;
/** Largest tm·tn: bigger blocks can take minutes to compile on lavapipe and spill registers on GPUs. */
export const MATMUL_MAX_BLOCK = 128;

/** regblock: threads per workgroup, side by side along N (one row block per workgroup). */
const RB_WG = 16;
// tiled: 8×8 threads, each 4×4 outputs of a 32×32 tile of C; K in steps of 16.
const TM = 4;
const TN = 4;
const WG = 8;
const TILE = 32;
const TK = 16;

function checkBlock(s: MatmulSpec): void {
  if (s.variant !== 'regblock' && s.variant !== 'tiled') {
    throw new ValidationError(`kernel 'matmul': variant must be 'regblock' or 'tiled', got '${s.variant}'`);
  }
  if (s.variant !== 'regblock') return;
  if (!Number.isInteger(s.tm) || s.tm < 1 || s.tm > MATMUL_MAX_TM) {
    throw new ValidationError(`kernel 'matmul': spec.tm must be an integer in [1, ${MATMUL_MAX_TM}], got ${s.tm}`);
  }
  if (!Number.isInteger(s.tn) || s.tn < 1 || s.tn > MATMUL_MAX_TN) {
    throw new ValidationError(`kernel 'matmul': spec.tn must be an integer in [1, ${MATMUL_MAX_TN}], got ${s.tn}`);
  }
  if (s.tm * s.tn > MATMUL_MAX_BLOCK) {
    throw new ValidationError(
      `kernel 'matmul': spec.tm·spec.tn must be at most ${MATMUL_MAX_BLOCK} accumulators per thread, got ${s.tm}·${s.tn} = ${s.tm * s.tn}`,
    );
  }
}

function loadA(transA: boolean): string {
  return transA ? 'a[aBase + k * P.M + m]' : 'a[aBase + m * P.K + k]';
}
function loadB(transB: boolean): string {
  return transB ? 'b[bBase + n * P.K + k]' : 'b[bBase + k * P.N + n]';
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/**
 * Register blocking. Workgroup (RB_WG, 1, 1): all its threads share rows m0..m0+tm−1 (so the loads of A
 * are the same address in every lane) and thread x owns columns n0..n0+tn−1. Row and column offsets are
 * clamped into the matrix once, before the K loop, so the loop has no bounds tests; out-of-range rows and
 * columns compute duplicates that the guarded stores drop.
 */
function regblockWgsl(s: MatmulSpec): string {
  const { tm, tn } = s;
  const rows = range(tm);
  const cols = range(tn);
  // A: element (m, k) at rowA_i + k (row-major) or rowA_i + k·M (transA); B likewise with colB_j.
  const rowOff = rows
    .map((i) => `let ra${i} = aBase + min(m0 + ${i}u, P.M - 1u)${s.transA ? '' : ' * P.K'};`)
    .join('\n  ');
  const colOff = cols
    .map((j) => `let cb${j} = bBase + min(n0 + ${j}u, P.N - 1u)${s.transB ? ' * P.K' : ''};`)
    .join('\n  ');
  const accs = rows.map((i) => `var acc${i}: array<f32, ${tn}>;`).join(' ');
  const aIdx = (i: number) => (s.transA ? `ra${i} + ka` : `ra${i} + k`);
  const bIdx = (j: number) => (s.transB ? `cb${j} + k` : `kb + cb${j}`);
  const step = [
    s.transA ? 'let ka = k * P.M;' : '',
    s.transB ? '' : 'let kb = k * P.N;',
    cols.map((j) => `let b${j} = b[${bIdx(j)}];`).join(' '),
    ...rows.map(
      (i) =>
        `{ let av = a[${aIdx(i)}]; ${cols.map((j) => `acc${i}[${j}] = fma(av, b${j}, acc${i}[${j}]);`).join(' ')} }`,
    ),
  ]
    .filter(Boolean)
    .join('\n    ');
  // Bias is added as the block is stored; the activation then runs in place in a loop over the block, so
  // its code appears once rather than tm·tn times (unrolled, a gelu epilogue triples lavapipe's compile time).
  const biasLoads = s.bias ? cols.map((j) => `let bias${j} = bias[min(n0 + ${j}u, P.N - 1u)];`).join(' ') : '';
  const store = rows
    .map(
      (i) => `if (m0 + ${i}u < P.M) {
    let co = cBase + (m0 + ${i}u) * P.N + n0;
    ${cols.map((j) => `if (n0 + ${j}u < P.N) { c[co + ${j}u] = acc${i}[${j}]${s.bias ? ` + bias${j}` : ''}; }`).join('\n    ')}
  }`,
    )
    .join('\n  ');
  const activate =
    s.act === 'identity'
      ? ''
      : `let mEnd = min(m0 + ${tm}u, P.M);
  let nEnd = min(n0 + ${tn}u, P.N);
  for (var m = m0; m < mEnd; m++) {
    let co = cBase + m * P.N;
    for (var n = n0; n < nEnd; n++) { c[co + n] = act_${s.act}(c[co + n]); }
  }`;
  return `${ACTIVATIONS_WGSL}
@compute @workgroup_size(${RB_WG}, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let batch = wg.z;
  let m0 = wg.y * ${tm}u;
  let n0 = (wg.x * ${RB_WG}u + lid.x) * ${tn}u;
  if (n0 >= P.N || m0 >= P.M) { return; }
  let aBase = batch * P.strideA;
  let bBase = batch * P.strideB;
  let cBase = batch * P.strideC;
  ${rowOff}
  ${colOff}
  ${accs}
  for (var k = 0u; k < P.K; k++) {
    ${step}
  }
  ${biasLoads}
  ${store}
  ${activate}
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

/** Whether an adapter is a CPU rasteriser (lavapipe, llvmpipe, SwiftShader, WARP) rather than a GPU. */
export function isCpuRasteriser(device: Device): boolean {
  const a = device.adapter;
  if (device.kind === 'cpu' || a.isFallback) return true;
  return /llvmpipe|lavapipe|swiftshader|software|warp|microsoft basic render/i.test(
    `${a.vendor} ${a.architecture} ${a.description}`,
  );
}

/**
 * The matmul specialisation to use on this device for an (M, K) × (K, N) product: the register-blocked
 * variant with a block sized to the shape on CPU rasterisers, shared-memory tiles on GPUs. M may vary at
 * run time (the kernel is correct for every M); pass the typical or largest row count.
 */
export function selectMatmulSpec(
  device: Device,
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
): Partial<MatmulSpec> {
  for (const [name, v] of Object.entries({ M, N, K })) {
    if (!Number.isInteger(v) || v < 0) {
      throw new ValidationError(`selectMatmulSpec: ${name} must be a non-negative integer, got ${v}`);
    }
  }
  if (!isCpuRasteriser(device)) return { variant: 'tiled', transA, transB };
  // Measured on lavapipe: 16×8 blocks are the fastest at 1024³; smaller blocks only where the matrix is
  // too small to fill them or to give each CPU core several workgroups.
  let tm = Math.min(16, pow2AtLeast(M));
  const tn = Math.min(8, pow2AtLeast(N));
  const workgroups = (m: number) => Math.ceil(Math.max(1, M) / m) * Math.ceil(Math.max(1, N) / (RB_WG * tn));
  while (tm > 4 && workgroups(tm) < 8) tm /= 2;
  return { variant: 'regblock', tm, tn, transA, transB };
}

function pow2AtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

const P1 = { batch: 1, strideA: 0, strideB: 0, strideC: 0 };

/**
 * The shared shape set for one variant/block. `short` keeps two cases (two pipelines) for big blocks, whose
 * pipelines take seconds each to compile on lavapipe.
 */
function casesFor(spec: Partial<MatmulSpec>, tag: string, short = false): KernelTestCase<MatmulSpec>[] {
  const c = (
    M: number,
    N: number,
    K: number,
    extra: Partial<MatmulSpec> = {},
    batch?: { batch: number; strideA: number; strideB: number; strideC: number },
  ): KernelTestCase<MatmulSpec> => {
    const s = { ...spec, ...extra };
    const flags = [s.transA && 'transA', s.transB && 'transB', s.bias && 'bias', s.act && s.act]
      .filter(Boolean)
      .join(' ');
    return {
      params: { M, N, K, ...(batch ?? P1) },
      spec: s,
      label: `${tag} ${M}×${K}·${K}×${N}${batch ? ` batch ${batch.batch}` : ''}${flags ? ` ${flags}` : ''}`,
    };
  };
  const all = [
    c(37, 53, 29),
    c(1, 1, 1),
    c(64, 96, 128, { bias: true, act: 'gelu' }),
    c(17, 31, 67, { transB: true, bias: true }, { batch: 3, strideA: 17 * 67, strideB: 0, strideC: 17 * 31 }),
    c(13, 7, 11, { transA: true, act: 'tanh' }, { batch: 2, strideA: 13 * 11, strideB: 11 * 7, strideC: 13 * 7 }),
    c(5, 130, 257, { transA: true, transB: true, act: 'silu' }),
  ];
  return short
    ? [
        all[0],
        c(
          41,
          67,
          19,
          { transA: true, transB: true, bias: true, act: 'gelu' },
          { batch: 2, strideA: 41 * 19, strideB: 0, strideC: 41 * 67 },
        ),
      ]
    : all;
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
  spec: { transA: false, transB: false, bias: false, act: 'identity', variant: 'regblock', tm: 16, tn: 8 },
  workgroupSize: (s) => (s.variant === 'tiled' ? [WG, WG, 1] : [RB_WG, 1, 1]),
  dispatch: (p, s) => {
    checkBlock(s);
    return s.variant === 'tiled'
      ? [Math.ceil(p.N / (WG * TN)), Math.ceil(p.M / (WG * TM)), p.batch]
      : [Math.ceil(p.N / (RB_WG * s.tn)), Math.ceil(p.M / s.tm), p.batch];
  },
  sizes: (p, s) => ({
    a: (p.batch - 1) * p.strideA + p.M * p.K,
    b: (p.batch - 1) * p.strideB + p.K * p.N,
    bias: s.bias ? p.N : 1,
    c: (p.batch - 1) * p.strideC + p.M * p.N,
  }),
  wgsl: (s) => {
    checkBlock(s);
    return s.variant === 'tiled' ? tiledWgsl(s) : regblockWgsl(s);
  },
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
  testCases: [
    ...casesFor({ variant: 'tiled' }, 'tiled'),
    // Default regblock block (16×8): shapes smaller than, straddling and not dividing the block.
    ...casesFor({ variant: 'regblock' }, 'regblock 16×8'),
    ...casesFor({ variant: 'regblock', tm: 4, tn: 4 }, 'regblock 4×4'),
    ...casesFor({ variant: 'regblock', tm: 1, tn: 1 }, 'regblock 1×1'),
    ...casesFor({ variant: 'regblock', tm: 32, tn: 4 }, 'regblock 32×4', true),
    ...casesFor({ variant: 'regblock', tm: 8, tn: 16 }, 'regblock 8×16', true),
    ...casesFor({ variant: 'regblock', tm: 3, tn: 5 }, 'regblock 3×5'),
    {
      // Several workgroups along N with a ragged last one (N = 3·16·8 + 5), M not a multiple of tm.
      params: { M: 35, N: 389, K: 40, ...P1 },
      spec: { variant: 'regblock', bias: true, act: 'relu' },
      label: 'regblock 16×8 35×40·40×389 ragged workgroups bias relu',
    },
    {
      params: { M: 130, N: 260, K: 3, batch: 2, strideA: 130 * 3 + 7, strideB: 3 * 260, strideC: 130 * 260 + 1 },
      spec: { variant: 'regblock', transB: true },
      label: 'regblock 16×8 padded batch strides transB',
    },
    {
      params: { M: 33, N: 17, K: 1, ...P1 },
      spec: { variant: 'regblock', tm: 8, tn: 8, transA: true, bias: true, act: 'sigmoid' },
      label: 'regblock 8×8 K=1 transA bias sigmoid',
    },
    {
      params: { M: 16, N: 8, K: 64, ...P1 },
      spec: { variant: 'regblock', act: 'softplus' },
      scale: 30,
      label: 'regblock 16×8 one exact block, large values softplus',
    },
    {
      params: { M: 20, N: 24, K: 33, ...P1 },
      spec: { variant: 'regblock', bias: true },
      inject: [
        { binding: 'a', index: 5 * 33 + 2, value: Number.NaN },
        { binding: 'b', index: 3 * 24 + 19, value: Number.POSITIVE_INFINITY },
      ],
      label: 'regblock 16×8 NaN in A row 5 and Infinity in B column 19 propagate',
    },
    {
      params: { M: 19, N: 21, K: 23, ...P1 },
      spec: { variant: 'tiled', bias: true },
      inject: [{ binding: 'a', index: 4 * 23 + 9, value: Number.NaN }],
      label: 'tiled NaN in A row 4 propagates',
    },
  ],
  tolerance: 'accumulate',
});
