// A Mamba-1 block in float64 with a hand-written backward, for training: RMSNorm → in_proj → causal
// depthwise conv + SiLU → x_proj → dt_proj + softplus → selective scan → ·SiLU(z) → out_proj [→ + residual].
// Batches are (Bt sequences, T steps) laid out as M = Bt·T rows. The same code trains backbone layers
// (out = d, residual) and the DYNAMAX exit classifier (out = 1, no residual, a bias).
import {
  type F64,
  linear,
  linearBackward,
  rmsNormBackward,
  rmsNormForward,
  sigmoid,
  silu,
  siluGrad,
  softplus,
} from './ops.js';

export interface BlockDims {
  /** Input width (the model's hidden size). */
  d: number;
  /** Inner width (expand · d). */
  D: number;
  N: number;
  R: number;
  K: number;
  /** Output width of out_proj: d for a residual block, 1 for the exit classifier. */
  out: number;
  residual: boolean;
  eps: number;
}

/** Parameters in the HF layout: inProj (2D, d), conv (D, K), xProj (R+2N, D), dtW (D, R), A_log (D, N), outProj (out, D). */
export interface BlockParams {
  norm: F64;
  inProj: F64;
  convW: F64;
  convB: F64;
  xProj: F64;
  dtW: F64;
  dtB: F64;
  A_log: F64;
  Dskip: F64;
  outProj: F64;
  /** Present when out_proj has a bias (the exit classifier). */
  outB?: F64;
}

export const BLOCK_PARAM_NAMES = [
  'norm',
  'inProj',
  'convW',
  'convB',
  'xProj',
  'dtW',
  'dtB',
  'A_log',
  'Dskip',
  'outProj',
  'outB',
] as const;

export function blockParamShapes(dm: BlockDims, outBias: boolean): Record<string, number[]> {
  const { d, D, N, R, K, out } = dm;
  const s: Record<string, number[]> = {
    norm: [d],
    inProj: [2 * D, d],
    convW: [D, K],
    convB: [D],
    xProj: [R + 2 * N, D],
    dtW: [D, R],
    dtB: [D],
    A_log: [D, N],
    Dskip: [D],
    outProj: [out, D],
  };
  if (outBias) s.outB = [out];
  return s;
}

export function zerosLike(p: BlockParams): BlockParams {
  const z: Record<string, F64> = {};
  for (const [k, v] of Object.entries(p)) if (v) z[k] = new Float64Array(v.length);
  return z as unknown as BlockParams;
}

export interface BlockCache {
  Bt: number;
  T: number;
  h: F64;
  rstd: F64;
  u: F64;
  xi: F64;
  z: F64;
  xcp: F64;
  xc: F64;
  delta: F64;
  Bm: F64;
  Cm: F64;
  dpre: F64;
  dt: F64;
  /** State after each step: (M, D, N). */
  S: F64;
  ys: F64;
  gated: F64;
}

/** Forward over (Bt, T) rows of h (M, d). Returns the block output (M, out) — h + out_proj(…) with residual. */
export function blockForward(
  p: BlockParams,
  dm: BlockDims,
  h: F64,
  Bt: number,
  T: number,
): { y: F64; cache: BlockCache } {
  const { d, D, N, R, K, out } = dm;
  const M = Bt * T;
  const { y: u, rstd } = rmsNormForward(h, p.norm, M, d, dm.eps);
  const xz = linear(u, p.inProj, M, d, 2 * D);
  const xi = new Float64Array(M * D);
  const z = new Float64Array(M * D);
  for (let m = 0; m < M; m++) {
    xi.set(xz.subarray(m * 2 * D, m * 2 * D + D), m * D);
    z.set(xz.subarray(m * 2 * D + D, (m + 1) * 2 * D), m * D);
  }
  const xcp = new Float64Array(M * D);
  const xc = new Float64Array(M * D);
  for (let b = 0; b < Bt; b++) {
    for (let t = 0; t < T; t++) {
      const m = b * T + t;
      for (let c = 0; c < D; c++) {
        let acc = p.convB[c];
        for (let j = 0; j < K; j++) {
          const tt = t - (K - 1) + j;
          if (tt >= 0) acc += p.convW[c * K + j] * xi[(b * T + tt) * D + c];
        }
        xcp[m * D + c] = acc;
        xc[m * D + c] = silu(acc);
      }
    }
  }
  const W = R + 2 * N;
  const dbc = linear(xc, p.xProj, M, D, W);
  const delta = new Float64Array(M * R);
  const Bm = new Float64Array(M * N);
  const Cm = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    delta.set(dbc.subarray(m * W, m * W + R), m * R);
    Bm.set(dbc.subarray(m * W + R, m * W + R + N), m * N);
    Cm.set(dbc.subarray(m * W + R + N, (m + 1) * W), m * N);
  }
  const dpre = linear(delta, p.dtW, M, R, D, p.dtB);
  const dt = dpre.map(softplus);
  const S = new Float64Array(M * D * N);
  const ys = new Float64Array(M * D);
  const gated = new Float64Array(M * D);
  const A = p.A_log.map((v) => -Math.exp(v));
  for (let b = 0; b < Bt; b++) {
    for (let c = 0; c < D; c++) {
      for (let t = 0; t < T; t++) {
        const m = b * T + t;
        const x = xc[m * D + c];
        const g = dt[m * D + c];
        const so = (m * D + c) * N;
        const prev = t > 0 ? ((m - 1) * D + c) * N : -1;
        let acc = 0;
        for (let n = 0; n < N; n++) {
          const sp = prev >= 0 ? S[prev + n] : 0;
          const s = Math.exp(g * A[c * N + n]) * sp + g * Bm[m * N + n] * x;
          S[so + n] = s;
          acc += Cm[m * N + n] * s;
        }
        const yv = acc + p.Dskip[c] * x;
        ys[m * D + c] = yv;
        gated[m * D + c] = yv * silu(z[m * D + c]);
      }
    }
  }
  const o = linear(gated, p.outProj, M, D, out, p.outB);
  if (dm.residual) for (let i = 0; i < o.length; i++) o[i] += h[i];
  return { y: o, cache: { Bt, T, h, rstd, u, xi, z, xcp, xc, delta, Bm, Cm, dpre, dt, S, ys, gated } };
}

/** Backward: accumulates parameter gradients into `g` and returns dL/dh (M, d). */
export function blockBackward(p: BlockParams, dm: BlockDims, cache: BlockCache, dy: F64, g: BlockParams): F64 {
  const { d, D, N, R, K, out } = dm;
  const { Bt, T } = cache;
  const M = Bt * T;
  const dh = new Float64Array(M * d);
  if (dm.residual) dh.set(dy);
  const dGated = new Float64Array(M * D);
  linearBackward(dy, cache.gated, p.outProj, M, D, out, g.outProj, dGated, g.outB);
  const dys = new Float64Array(M * D);
  const dxz = new Float64Array(M * 2 * D);
  for (let m = 0; m < M; m++) {
    for (let c = 0; c < D; c++) {
      const i = m * D + c;
      const zv = cache.z[i];
      dys[i] = dGated[i] * silu(zv);
      dxz[m * 2 * D + D + c] = dGated[i] * cache.ys[i] * siluGrad(zv);
    }
  }
  // selective scan, backwards in time
  const A = p.A_log.map((v) => -Math.exp(v));
  const dA = new Float64Array(D * N);
  const dxc = new Float64Array(M * D);
  const ddt = new Float64Array(M * D);
  const dBm = new Float64Array(M * N);
  const dCm = new Float64Array(M * N);
  const ds = new Float64Array(N);
  const { S, Bm, Cm, xc, dt } = cache;
  for (let b = 0; b < Bt; b++) {
    for (let c = 0; c < D; c++) {
      ds.fill(0);
      for (let t = T - 1; t >= 0; t--) {
        const m = b * T + t;
        const i = m * D + c;
        const x = xc[i];
        const gdt = dt[i];
        const gy = dys[i];
        g.Dskip[c] += gy * x;
        let dx = gy * p.Dskip[c];
        let dd = 0;
        const so = i * N;
        const prev = t > 0 ? ((m - 1) * D + c) * N : -1;
        for (let n = 0; n < N; n++) {
          const a = A[c * N + n];
          let dsn = ds[n] + gy * Cm[m * N + n];
          dCm[m * N + n] += gy * S[so + n];
          const e = Math.exp(gdt * a);
          const sp = prev >= 0 ? S[prev + n] : 0;
          const de = dsn * sp;
          dd += de * e * a + dsn * Bm[m * N + n] * x;
          dA[c * N + n] += de * e * gdt;
          dBm[m * N + n] += dsn * gdt * x;
          dx += dsn * gdt * Bm[m * N + n];
          dsn *= e;
          ds[n] = dsn;
        }
        dxc[i] += dx;
        ddt[i] = dd;
      }
    }
  }
  for (let k = 0; k < D * N; k++) g.A_log[k] += dA[k] * A[k];
  // dt_proj and x_proj
  const ddpre = new Float64Array(M * D);
  for (let i = 0; i < M * D; i++) ddpre[i] = ddt[i] * sigmoid(cache.dpre[i]);
  const dDelta = new Float64Array(M * R);
  linearBackward(ddpre, cache.delta, p.dtW, M, R, D, g.dtW, dDelta, g.dtB);
  const W = R + 2 * N;
  const ddbc = new Float64Array(M * W);
  for (let m = 0; m < M; m++) {
    ddbc.set(dDelta.subarray(m * R, (m + 1) * R), m * W);
    ddbc.set(dBm.subarray(m * N, (m + 1) * N), m * W + R);
    ddbc.set(dCm.subarray(m * N, (m + 1) * N), m * W + R + N);
  }
  linearBackward(ddbc, xc, p.xProj, M, D, W, g.xProj, dxc);
  // SiLU and the causal conv
  for (let b = 0; b < Bt; b++) {
    for (let t = 0; t < T; t++) {
      const m = b * T + t;
      for (let c = 0; c < D; c++) {
        const gpre = dxc[m * D + c] * siluGrad(cache.xcp[m * D + c]);
        g.convB[c] += gpre;
        for (let j = 0; j < K; j++) {
          const tt = t - (K - 1) + j;
          if (tt < 0) continue;
          const src = (b * T + tt) * D + c;
          g.convW[c * K + j] += gpre * cache.xi[src];
          dxz[(b * T + tt) * 2 * D + c] += gpre * p.convW[c * K + j];
        }
      }
    }
  }
  const du = new Float64Array(M * d);
  linearBackward(dxz, cache.u, p.inProj, M, d, 2 * D, g.inProj, du);
  rmsNormBackward(du, cache.h, p.norm, cache.rstd, M, d, dh, g.norm);
  return dh;
}

/**
 * Mamba's initialisation (reconstructed from the reference implementation's defaults): Linear weights
 * N(0, 1/fan_in), out_proj further scaled by 1/sqrt(numLayers); dt_proj weights U(±R^−½) and biases the
 * inverse softplus of dt log-uniform in [1e-3, 1e-1]; A_log[c, n] = log(n + 1); D = 1; conv U(±K^−½).
 */
export function initBlock(dm: BlockDims, rand: () => number, numLayers: number, outBias: boolean): BlockParams {
  const { d, D, N, R, K, out } = dm;
  const normal = (n: number, std: number) => {
    const a = new Float64Array(n);
    for (let i = 0; i < n; i += 2) {
      const u = Math.max(rand(), 1e-12);
      const v = rand();
      const r = Math.sqrt(-2 * Math.log(u)) * std;
      a[i] = r * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) a[i + 1] = r * Math.sin(2 * Math.PI * v);
    }
    return a;
  };
  const uniform = (n: number, lim: number) => Float64Array.from({ length: n }, () => (rand() * 2 - 1) * lim);
  const dtB = Float64Array.from({ length: D }, () => {
    const v = Math.exp(rand() * (Math.log(0.1) - Math.log(1e-3)) + Math.log(1e-3));
    return v + Math.log(-Math.expm1(-v));
  });
  const A_log = new Float64Array(D * N);
  for (let c = 0; c < D; c++) for (let n = 0; n < N; n++) A_log[c * N + n] = Math.log(n + 1);
  const p: BlockParams = {
    norm: new Float64Array(d).fill(1),
    inProj: normal(2 * D * d, 1 / Math.sqrt(d)),
    convW: uniform(D * K, 1 / Math.sqrt(K)),
    convB: uniform(D, 1 / Math.sqrt(K)),
    xProj: normal((R + 2 * N) * D, 1 / Math.sqrt(D)),
    dtW: uniform(D * R, 1 / Math.sqrt(R)),
    dtB,
    A_log,
    Dskip: new Float64Array(D).fill(1),
    outProj: normal(out * D, 1 / Math.sqrt(D) / Math.sqrt(Math.max(1, numLayers))),
  };
  if (outBias) p.outB = new Float64Array(out);
  return p;
}
