// One Mamba-1 block on a Device, dispatched eagerly: prefill over (B, T) rows and a decoding step over any
// subset of a batch's rows (their conv/SSM state rows are gathered, advanced and scattered back).
//   h: (rows, d) → RMSNorm → in_proj x, z: (rows, D) → conv + SiLU → x_proj δ (R), B, C (N) → dt_proj
//   → selective scan → out_proj: (rows, out) [+ h when residual]
// The same code runs backbone layers (out = d, residual) and the DYNAMAX exit classifier (out = 1).
import {
  type Bindable,
  binary,
  conv1dCausal,
  conv1dStep,
  type Device,
  gatherRows,
  type HostTensor,
  matmul,
  rmsNorm,
  scatterRows,
  type Tensor,
} from '@offramp/core';
import { convStateFromSequence } from './kernels/conv-state.js';
import { selectiveScan, selectiveStateUpdate } from './kernels/selective-scan.js';

export interface BlockDims {
  d: number;
  D: number;
  N: number;
  R: number;
  K: number;
  out: number;
  residual: boolean;
  eps: number;
}

/** Device tensors of one block, in_proj and x_proj split into their row blocks. */
export interface BlockWeights {
  dims: BlockDims;
  norm: Tensor;
  inX: Tensor;
  inZ: Tensor;
  inXb?: Tensor;
  inZb?: Tensor;
  convW: Tensor;
  convB?: Tensor;
  xDt: Tensor;
  xB: Tensor;
  xC: Tensor;
  dtW: Tensor;
  dtB: Tensor;
  A_log: Tensor;
  Dskip: Tensor;
  /** (2, D): dt_proj.bias then D, one binding for the prefill scan (keeps it within 10 storage buffers). */
  scanChan: Tensor;
  outW: Tensor;
  outB?: Tensor;
}

/** Per-row recurrent state of one block: conv (B, D, K) and SSM (B, D, N). */
export interface BlockState {
  conv: Tensor;
  ssm: Tensor;
}

/** Temporary tensors of one call, disposed together. */
export class Scope {
  private readonly owned: Tensor[] = [];
  constructor(readonly device: Device) {}
  f32(shape: number[], data?: ArrayLike<number>, label?: string): Tensor {
    const t = this.device.tensor(
      'f32',
      shape.map((s) => Math.max(1, s)),
      data,
      label,
    );
    this.owned.push(t);
    return t;
  }
  u32(data: ArrayLike<number>, label?: string): Tensor {
    const t = this.device.tensor('u32', [Math.max(1, data.length)], data.length ? data : [0], label);
    this.owned.push(t);
    return t;
  }
  dispose(): void {
    for (const t of this.owned) t.dispose();
    this.owned.length = 0;
  }
}

/** Whether the device rasterises on the CPU (lavapipe and friends), where register-blocked matmuls win. */
export function isCpuLike(device: Device): boolean {
  const a = device.adapter;
  return (
    device.kind === 'cpu' ||
    a.isFallback ||
    /llvmpipe|lavapipe|swiftshader|software|warp/i.test(`${a.vendor} ${a.architecture} ${a.description}`)
  );
}

/** y (M, N) = x (M, K) · Wᵀ (+ bias), W stored (N, K) as PyTorch's Linear. */
export function linearOp(
  device: Device,
  x: Bindable,
  W: Bindable,
  M: number,
  N: number,
  K: number,
  y: Bindable,
  bias?: Tensor,
  dummy?: Tensor,
): void {
  let spec: Record<string, string | number | boolean>;
  if (isCpuLike(device)) {
    let tm = 1;
    while (tm < Math.min(M, 16)) tm *= 2;
    let tn = 1;
    while (tn < Math.min(N, 8)) tn *= 2;
    spec = { variant: 'regblock', tm, tn };
  } else spec = { variant: 'tiled' };
  device.dispatch(
    matmul,
    { a: x, b: W, bias: bias ?? dummy ?? W, c: y },
    { M, N, K, batch: 1, strideA: 0, strideB: 0, strideC: 0 },
    { ...spec, transB: true, bias: Boolean(bias) },
  );
}

/** Uploads one block's HF-layout host tensors (names under `prefix`, e.g. `layers.3`), splitting in_proj and x_proj. */
export function uploadBlock(device: Device, t: Map<string, HostTensor>, prefix: string, dims: BlockDims): BlockWeights {
  const { d, D, N, R, K, out } = dims;
  const get = (n: string): Float32Array => {
    const x = t.get(`${prefix}.${n}`);
    if (!x) throw new Error(`internal: tensor ${prefix}.${n} missing after validation`);
    return x.data as Float32Array;
  };
  const has = (n: string) => t.has(`${prefix}.${n}`);
  const up = (shape: number[], data: Float32Array, label: string) =>
    device.tensor('f32', shape, data, `${prefix}.${label}`);
  const inW = get('mixer.in_proj.weight');
  const xW = get('mixer.x_proj.weight');
  const scanChan = new Float32Array(2 * D);
  scanChan.set(get('mixer.dt_proj.bias'), 0);
  scanChan.set(get('mixer.D'), D);
  const w: BlockWeights = {
    dims,
    norm: up([d], get('norm.weight'), 'norm'),
    inX: up([D, d], inW.subarray(0, D * d), 'in_proj.x'),
    inZ: up([D, d], inW.subarray(D * d, 2 * D * d), 'in_proj.z'),
    convW: up([D, K], get('mixer.conv1d.weight'), 'conv1d'),
    xDt: up([R, D], xW.subarray(0, R * D), 'x_proj.dt'),
    xB: up([N, D], xW.subarray(R * D, (R + N) * D), 'x_proj.B'),
    xC: up([N, D], xW.subarray((R + N) * D, (R + 2 * N) * D), 'x_proj.C'),
    dtW: up([D, R], get('mixer.dt_proj.weight'), 'dt_proj'),
    dtB: up([D], get('mixer.dt_proj.bias'), 'dt_proj.bias'),
    A_log: up([D, N], get('mixer.A_log'), 'A_log'),
    Dskip: up([D], get('mixer.D'), 'D'),
    scanChan: up([2, D], scanChan, 'scan_chan'),
    outW: up([out, D], get('mixer.out_proj.weight'), 'out_proj'),
  };
  if (has('mixer.in_proj.bias')) {
    const b = get('mixer.in_proj.bias');
    w.inXb = up([D], b.subarray(0, D), 'in_proj.x.bias');
    w.inZb = up([D], b.subarray(D, 2 * D), 'in_proj.z.bias');
  }
  if (has('mixer.conv1d.bias')) w.convB = up([D], get('mixer.conv1d.bias'), 'conv1d.bias');
  if (has('mixer.out_proj.bias')) w.outB = up([out], get('mixer.out_proj.bias'), 'out_proj.bias');
  return w;
}

export function blockWeightTensors(w: BlockWeights): Tensor[] {
  return Object.entries(w)
    .filter(([k]) => k !== 'dims')
    .map(([, v]) => v as Tensor)
    .filter(Boolean);
}

/**
 * Prefill of (B, T) right-padded rows h (B·T, d); `lengths` (B) u32 gives each sequence's valid length (null:
 * all T). Writes the block's final conv/SSM state of each sequence into `state` and returns (B·T, out).
 */
export function blockPrefill(
  s: Scope,
  w: BlockWeights,
  h: Tensor,
  B: number,
  T: number,
  lengths: Tensor | null,
  state: BlockState,
): Tensor {
  const dev = s.device;
  const { d, D, N, R, K, out, eps } = w.dims;
  const M = B * T;
  const varlen = lengths !== null;
  const lens = lengths ?? s.u32([0]);
  const u = s.f32([M, d]);
  dev.dispatch(rmsNorm, { x: h, weight: w.norm, y: u }, { rows: M, cols: d, eps });
  const xi = s.f32([M, D]);
  const z = s.f32([M, D]);
  linearOp(dev, u, w.inX, M, D, d, xi, w.inXb);
  linearOp(dev, u, w.inZ, M, D, d, z, w.inZb);
  dev.dispatch(convStateFromSequence, { x: xi, lengths: lens, state: state.conv }, { B, T, D, K }, { varlen });
  const xc = s.f32([M, D]);
  dev.dispatch(
    conv1dCausal,
    { x: xi, weight: w.convW, bias: w.convB ?? w.dtB, y: xc },
    { B, T, D, K },
    { bias: Boolean(w.convB), silu: true },
  );
  const delta = s.f32([M, R]);
  const Bm = s.f32([M, N]);
  const Cm = s.f32([M, N]);
  linearOp(dev, xc, w.xDt, M, R, D, delta);
  linearOp(dev, xc, w.xB, M, N, D, Bm);
  linearOp(dev, xc, w.xC, M, N, D, Cm);
  const dpre = s.f32([M, D]);
  linearOp(dev, delta, w.dtW, M, D, R, dpre);
  const y = s.f32([M, D]);
  dev.dispatch(
    selectiveScan,
    {
      x: xc,
      delta: dpre,
      chan: w.scanChan,
      A_log: w.A_log,
      Bm,
      Cm,
      z,
      lengths: lens,
      y,
      state: state.ssm,
    },
    { B, T, D },
    { N, gate: true, varlen },
  );
  const o = s.f32([M, out]);
  linearOp(dev, y, w.outW, M, out, D, o, w.outB);
  if (!w.dims.residual) return o;
  const hOut = s.f32([M, d]);
  dev.dispatch(binary, { x: h, b: o, y: hOut }, { n: M * d, period: M * d }, { op: 'add' });
  return hOut;
}

/**
 * One decoding step for `n` rows h (n, d). `rows` maps them to rows of the batch state (null: rows 0..n−1
 * of a state of n rows). `stateOnly` advances the state without outputs (a skipped block's partial
 * update: no z half of in_proj, no C, no out_proj) and returns null.
 */
export function blockStep(
  s: Scope,
  w: BlockWeights,
  h: Tensor,
  n: number,
  rows: Tensor | null,
  state: BlockState,
  stateOnly = false,
): Tensor | null {
  const dev = s.device;
  const { d, D, N, R, K, out, eps } = w.dims;
  let conv = state.conv;
  let ssm = state.ssm;
  if (rows) {
    conv = s.f32([n, D, K]);
    ssm = s.f32([n, D, N]);
    dev.dispatch(
      gatherRows,
      { idx: rows, x: state.conv, y: conv },
      { count: n, width: D * K, srcStride: D * K, srcOffset: 0 },
    );
    dev.dispatch(
      gatherRows,
      { idx: rows, x: state.ssm, y: ssm },
      { count: n, width: D * N, srcStride: D * N, srcOffset: 0 },
    );
  }
  const u = s.f32([n, d]);
  dev.dispatch(rmsNorm, { x: h, weight: w.norm, y: u }, { rows: n, cols: d, eps });
  const xi = s.f32([n, D]);
  linearOp(dev, u, w.inX, n, D, d, xi, w.inXb);
  const xc = s.f32([n, D]);
  dev.dispatch(
    conv1dStep,
    { x: xi, state: conv, weight: w.convW, bias: w.convB ?? w.dtB, y: xc },
    { B: n, D, K },
    { bias: Boolean(w.convB), silu: true },
  );
  const delta = s.f32([n, R]);
  const Bm = s.f32([n, N]);
  linearOp(dev, xc, w.xDt, n, R, D, delta);
  linearOp(dev, xc, w.xB, n, N, D, Bm);
  const dpre = s.f32([n, D]);
  linearOp(dev, delta, w.dtW, n, D, R, dpre);
  let result: Tensor | null = null;
  if (stateOnly) {
    dev.dispatch(
      selectiveStateUpdate,
      {
        x: xc,
        delta: dpre,
        dtBias: w.dtB,
        A_log: w.A_log,
        Bm,
        Cm: Bm,
        Dskip: w.Dskip,
        z: xc,
        state: ssm,
        y: s.f32([1]),
      },
      { B: n, D },
      { N, gate: false, output: false },
    );
  } else {
    const z = s.f32([n, D]);
    linearOp(dev, u, w.inZ, n, D, d, z, w.inZb);
    const Cm = s.f32([n, N]);
    linearOp(dev, xc, w.xC, n, N, D, Cm);
    const y = s.f32([n, D]);
    dev.dispatch(
      selectiveStateUpdate,
      { x: xc, delta: dpre, dtBias: w.dtB, A_log: w.A_log, Bm, Cm, Dskip: w.Dskip, z, state: ssm, y },
      { B: n, D },
      { N, gate: true, output: true },
    );
    const o = s.f32([n, out]);
    linearOp(dev, y, w.outW, n, out, D, o, w.outB);
    if (w.dims.residual) {
      result = s.f32([n, d]);
      dev.dispatch(binary, { x: h, b: o, y: result }, { n: n * d, period: n * d }, { op: 'add' });
    } else result = o;
  }
  if (rows) {
    dev.dispatch(
      scatterRows,
      { idx: rows, x: conv, y: state.conv },
      { count: n, width: D * K, dstStride: D * K, dstOffset: 0 },
    );
    dev.dispatch(
      scatterRows,
      { idx: rows, x: ssm, y: state.ssm },
      { count: n, width: D * N, dstStride: D * N, dstOffset: 0 },
    );
  }
  return result;
}
