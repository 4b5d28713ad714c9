// Mamba-1 selective scan, one thread per (sequence b, channel d), sequential over time, N states in registers.
// selectiveScan (prefill): x, delta, z (B, T, D); Bm, Cm (B, T, N); chan (2, D) = dtBias then Dskip; A_log
//   (D, N); lengths (B) u32 (spec.varlen) → y (B, T, D), state (B, D, N) = the state after the last valid
//   step. (dtBias and Dskip share one binding so the kernel uses 10 storage buffers, the most a browser's
//   WebGPU adapter may offer: Chromium's SwiftShader gives 10.)
// selectiveStateUpdate (decode): x, delta, z (B, D); Bm, Cm (B, N); state (B, D, N) read_write → y (B, D).
// Both compute, from a zero state (prefill) or the given state (decode):
//   Δ = softplus(delta + dtBias[d]),  A = −exp(A_log[d, n])
//   s[n] ← exp(Δ·A[n])·s[n] + Δ·Bm[n]·x,   y = (Σ_n Cm[n]·s[n] + Dskip[d]·x) · SiLU(z)   (gate: z optional)
// With varlen, steps t ≥ lengths[b] leave the state alone and write y = 0 (right-padded batches).
// With output: false the decode kernel only advances the state (Cm, Dskip, z and y are not touched).
import { ACTIVATIONS_WGSL, activationRef, defineKernel, type KernelTestCase, ValidationError } from '@offramp/core';

export interface ScanSpec {
  [k: string]: string | number | boolean;
  /** State size N (compile time: the per-thread state lives in registers). */
  N: number;
  /** Multiply y by SiLU(z). */
  gate: boolean;
  /** Per-sequence valid lengths (prefill only). */
  varlen: boolean;
}

export interface StepSpec {
  [k: string]: string | number | boolean;
  N: number;
  gate: boolean;
  /** Compute y; false advances the state only (a skipped layer's partial update). */
  output: boolean;
}

/** Largest state size the kernels accept. */
export const SCAN_MAX_N = 256;
const WG = 64;
// WGSL bounds exp's error relative to its argument, so exp(Δ·A) for Δ·A ~ −1e14 is not promised to be 0;
// below −87 the result is under f32's smallest normal anyway, so the argument is clamped there.
// softplus(x) = log(1 + e^x): f32 log(1 + e^x) rounds 1 + e^x to 1 for x < −16 and returns 0 where the
// true value is e^x; with a strongly negative A a zero Δ turns exp(Δ·A) from 0 into 1. Below −5 a
// three-term log1p series is exact to f32 precision.
const SCAN_MATH_WGSL = `const EXP_MIN: f32 = -87.0;
fn softplus_f32(x: f32) -> f32 {
  if (x > 20.0) { return x; }
  let e = exp(x);
  if (x < -5.0) { return e * (1.0 - e * (0.5 - e / 3.0)); }
  return log(1.0 + e);
}`;

function checkN(name: string, N: number): void {
  if (!Number.isInteger(N) || N < 1 || N > SCAN_MAX_N) {
    throw new ValidationError(
      `kernel '${name}': spec.N (state size) must be an integer in [1, ${SCAN_MAX_N}], got ${N}`,
    );
  }
}

/** 1-D workgroup count for `items` threads, 64 per workgroup (the framework folds it into 2-D). */
const dispatch1d = (items: number): [number, number, number] => [Math.ceil(items / WG), 1, 1];

const softplusRef = activationRef.softplus;
const siluRef = activationRef.silu;

export const selectiveScan = defineKernel<ScanSpec>({
  name: 'selectiveScan',
  bindings: {
    x: { access: 'read', type: 'f32' },
    delta: { access: 'read', type: 'f32' },
    chan: { access: 'read', type: 'f32' },
    A_log: { access: 'read', type: 'f32' },
    Bm: { access: 'read', type: 'f32' },
    Cm: { access: 'read', type: 'f32' },
    z: { access: 'read', type: 'f32' },
    lengths: { access: 'read', type: 'u32' },
    y: { access: 'write', type: 'f32' },
    state: { access: 'write', type: 'f32' },
  },
  params: { B: 'u32', T: 'u32', D: 'u32' },
  spec: { N: 16, gate: true, varlen: false },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => dispatch1d(p.B * p.D),
  sizes: (p, s) => {
    checkN('selectiveScan', s.N);
    const n = p.B * p.T * p.D;
    return {
      x: n,
      delta: n,
      chan: 2 * p.D,
      A_log: p.D * s.N,
      Bm: p.B * p.T * s.N,
      Cm: p.B * p.T * s.N,
      z: s.gate ? n : 1,
      lengths: s.varlen ? p.B : 1,
      y: n,
      state: p.B * p.D * s.N,
    };
  },
  wgsl: (s) => `${ACTIVATIONS_WGSL}
const NS: u32 = ${s.N}u;
${SCAN_MATH_WGSL}
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = linear_wg(wg, nwg) * ${WG}u + li;
  if (i >= P.B * P.D) { return; }
  let b = i / P.D;
  let d = i - b * P.D;
  let L = ${s.varlen ? 'min(lengths[b], P.T)' : 'P.T'};
  var A: array<f32, NS>;
  var st: array<f32, NS>;
  for (var n = 0u; n < NS; n++) { A[n] = -exp(A_log[d * NS + n]); st[n] = 0.0; }
  let bias = chan[d];
  let dsk = chan[P.D + d];
  for (var t = 0u; t < P.T; t++) {
    let o = (b * P.T + t) * P.D + d;
    if (t >= L) { y[o] = 0.0; continue; }
    let xv = x[o];
    let dt = softplus_f32(delta[o] + bias);
    let dtx = dt * xv;
    let bo = (b * P.T + t) * NS;
    var acc = 0.0;
    for (var n = 0u; n < NS; n++) {
      let sv = exp(max(dt * A[n], EXP_MIN)) * st[n] + dtx * Bm[bo + n];
      st[n] = sv;
      acc += Cm[bo + n] * sv;
    }
    var out = acc + dsk * xv;
    ${s.gate ? 'out = out * act_silu(z[o]);' : ''}
    y[o] = out;
  }
  let so = (b * P.D + d) * NS;
  for (var n = 0u; n < NS; n++) { state[so + n] = st[n]; }
}`,
  reference: ({ x, delta, chan, A_log, Bm, Cm, z, lengths, y, state }, p, s) => {
    const { B, T, D } = p;
    const N = s.N;
    const dtBias = chan.subarray(0, D);
    const Dskip = chan.subarray(D, 2 * D);
    const st = new Float64Array(N);
    for (let b = 0; b < B; b++) {
      const L = s.varlen ? Math.min(lengths[b], T) : T;
      for (let d = 0; d < D; d++) {
        st.fill(0);
        for (let t = 0; t < T; t++) {
          const o = (b * T + t) * D + d;
          if (t >= L) {
            y[o] = 0;
            continue;
          }
          const dt = softplusRef(delta[o] + dtBias[d]);
          let acc = 0;
          for (let n = 0; n < N; n++) {
            const a = -Math.exp(A_log[d * N + n]);
            st[n] = Math.exp(dt * a) * st[n] + dt * Bm[(b * T + t) * N + n] * x[o];
            acc += Cm[(b * T + t) * N + n] * st[n];
          }
          const out = acc + Dskip[d] * x[o];
          y[o] = s.gate ? out * siluRef(z[o]) : out;
        }
        for (let n = 0; n < N; n++) state[(b * D + d) * N + n] = st[n];
      }
    }
  },
  testInputs: (p, s, rand) => {
    if (!s.varlen) return {};
    // lengths cover 0, 1, T, a length beyond T (clamped) and values between
    const lengths = new Uint32Array(Math.max(1, p.B));
    for (let b = 0; b < p.B; b++) {
      const k = b % 5;
      lengths[b] = k === 0 ? p.T : k === 1 ? 0 : k === 2 ? 1 : k === 3 ? p.T + 3 : Math.floor(rand() * (p.T + 1));
    }
    return { lengths };
  },
  testCases: [
    { params: { B: 1, T: 1, D: 1 }, spec: { N: 1 }, label: 'B=T=D=N=1' },
    { params: { B: 2, T: 5, D: 3 }, spec: { N: 4, gate: false }, label: 'no gate' },
    { params: { B: 3, T: 17, D: 67 }, spec: { N: 16 }, label: 'B=3 T=17 D=67 N=16' },
    { params: { B: 1, T: 64, D: 129 }, spec: { N: 7 }, label: 'D=129 (ragged workgroup), N=7' },
    { params: { B: 2, T: 3, D: 1031 }, spec: { N: 16 }, label: 'D=1031, many workgroups' },
    { params: { B: 7, T: 13, D: 11 }, spec: { N: 5, varlen: true }, label: 'varlen: lengths 0, 1, T, >T, random' },
    {
      params: { B: 2, T: 9, D: 5 },
      spec: { N: 3 },
      scale: 30,
      label: 'scale 30: softplus linear branch, exp underflow',
    },
    {
      params: { B: 2, T: 8, D: 6 },
      spec: { N: 4 },
      inject: [{ binding: 'x', index: (0 * 8 + 3) * 6 + 2, value: Number.NaN }],
      label: 'NaN in x at (0, 3, 2) spreads along that channel only',
    },
  ] satisfies KernelTestCase<ScanSpec>[],
  tolerance: 'accumulate',
});

export const selectiveStateUpdate = defineKernel<StepSpec>({
  name: 'selectiveStateUpdate',
  bindings: {
    x: { access: 'read', type: 'f32' },
    delta: { access: 'read', type: 'f32' },
    dtBias: { access: 'read', type: 'f32' },
    A_log: { access: 'read', type: 'f32' },
    Bm: { access: 'read', type: 'f32' },
    Cm: { access: 'read', type: 'f32' },
    Dskip: { access: 'read', type: 'f32' },
    z: { access: 'read', type: 'f32' },
    state: { access: 'read_write', type: 'f32' },
    y: { access: 'write', type: 'f32' },
  },
  params: { B: 'u32', D: 'u32' },
  spec: { N: 16, gate: true, output: true },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => dispatch1d(p.B * p.D),
  sizes: (p, s) => {
    checkN('selectiveStateUpdate', s.N);
    const n = p.B * p.D;
    return {
      x: n,
      delta: n,
      dtBias: p.D,
      A_log: p.D * s.N,
      Bm: p.B * s.N,
      Cm: s.output ? p.B * s.N : 1,
      Dskip: s.output ? p.D : 1,
      z: s.output && s.gate ? n : 1,
      state: p.B * p.D * s.N,
      y: s.output ? n : 1,
    };
  },
  wgsl: (s) => `${ACTIVATIONS_WGSL}
const NS: u32 = ${s.N}u;
${SCAN_MATH_WGSL}
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = linear_wg(wg, nwg) * ${WG}u + li;
  if (i >= P.B * P.D) { return; }
  let b = i / P.D;
  let d = i - b * P.D;
  let xv = x[i];
  let dt = softplus_f32(delta[i] + dtBias[d]);
  let dtx = dt * xv;
  let so = i * NS;
  let bo = b * NS;
  var acc = 0.0;
  for (var n = 0u; n < NS; n++) {
    let sv = exp(max(dt * -exp(A_log[d * NS + n]), EXP_MIN)) * state[so + n] + dtx * Bm[bo + n];
    state[so + n] = sv;
    ${s.output ? 'acc += Cm[bo + n] * sv;' : ''}
  }
  ${s.output ? `var out = acc + Dskip[d] * xv;\n  ${s.gate ? 'out = out * act_silu(z[i]);' : ''}\n  y[i] = out;` : ''}
}`,
  reference: ({ x, delta, dtBias, A_log, Bm, Cm, Dskip, z, state, y }, p, s) => {
    const { B, D } = p;
    const N = s.N;
    for (let b = 0; b < B; b++) {
      for (let d = 0; d < D; d++) {
        const i = b * D + d;
        const dt = softplusRef(delta[i] + dtBias[d]);
        let acc = 0;
        for (let n = 0; n < N; n++) {
          const a = -Math.exp(A_log[d * N + n]);
          const sv = Math.exp(dt * a) * state[i * N + n] + dt * Bm[b * N + n] * x[i];
          state[i * N + n] = sv;
          if (s.output) acc += Cm[b * N + n] * sv;
        }
        if (s.output) {
          const out = acc + Dskip[d] * x[i];
          y[i] = s.gate ? out * siluRef(z[i]) : out;
        }
      }
    }
  },
  testCases: [
    { params: { B: 1, D: 1 }, spec: { N: 1 }, label: 'B=D=N=1' },
    { params: { B: 3, D: 67 }, spec: { N: 16 }, label: 'B=3 D=67 N=16' },
    { params: { B: 5, D: 130 }, spec: { N: 7, gate: false }, label: 'no gate, N=7' },
    { params: { B: 2, D: 1537 }, spec: { N: 16 }, label: 'D=1537' },
    { params: { B: 4, D: 33 }, spec: { N: 16, output: false }, label: 'state only (partial update)' },
    { params: { B: 2, D: 9 }, spec: { N: 3 }, scale: 30, label: 'scale 30' },
    {
      params: { B: 2, D: 6 },
      spec: { N: 4 },
      inject: [{ binding: 'state', index: (1 * 6 + 4) * 4 + 2, value: Number.NaN }],
      label: 'NaN in one state entry',
    },
  ] satisfies KernelTestCase<StepSpec>[],
  tolerance: 'accumulate',
});
