// Scaled dot-product multi-head attention over a packed QKV buffer (the output of one matmul).
// qkv: (B, T, 3·d), per token [q (d) | k (d) | v (d)], head h owns columns h·dh..(h+1)·dh of each part
// (dh = d / heads); lengths: (B) valid tokens per row → out: (B, T, d).
//
// Query t of row b attends to keys j < min(lengths[b], T), and with `causal` also j ≤ t. Queries at
// positions ≥ length still get an output, computed over the valid keys. A row whose query sees no key
// (length 0) gets zeros, not NaN. Softmax is online (running max and running sum, one pass over the keys),
// so large scores never overflow. One invocation per (row, head, block of 4 queries): a per-thread loop over
// keys, each key and value load shared by the 4 queries, no workgroup memory (lavapipe runs a workgroup on
// one core and pays dearly for barriers).
import { ValidationError } from '../errors.js';
import type { AnyTypedArray } from '../runtime/dtype.js';
import { defineKernel, type Params } from '../runtime/kernel.js';

export interface AttentionSpec {
  [k: string]: string | number | boolean;
  causal: boolean;
  /**
   * ⌈head dim / 4⌉ fixed when the pipeline is built (0: any head dim up to the maximum). A fixed size lets the
   * shader compiler unroll the per-head loops and keep the query and accumulator rows in registers.
   */
  headDim4: number;
}

/** Largest head dimension (d / heads) the attention kernels accept. */
export const ATTENTION_MAX_HEAD_DIM = 128;
const MAX_V4 = ATTENTION_MAX_HEAD_DIM / 4;
// Small workgroups: a lavapipe workgroup runs on one core, and (row, head, query block) items are few.
const WG = 32;
/** Queries per invocation in the prefill kernel: they share every key and value load. */
const QB = 4;

/** Checks d, heads and the head dimension; returns dh. `where` names the kernel in the message. */
export function checkHeads(where: string, d: number, heads: number): number {
  if (heads < 1 || d % heads !== 0) {
    throw new ValidationError(`kernel '${where}': d (${d}) must be a positive multiple of heads (${heads})`);
  }
  const dh = d / heads;
  if (dh > ATTENTION_MAX_HEAD_DIM) {
    throw new ValidationError(
      `kernel '${where}': head dimension d / heads = ${dh} is over the supported maximum ${ATTENTION_MAX_HEAD_DIM}`,
    );
  }
  return dh;
}

/** A fixed ⌈dh / 4⌉ must match the head dimension the kernel is given. */
export function checkHeadDim4(where: string, dh: number, headDim4: number): void {
  if (headDim4 !== 0 && headDim4 !== Math.ceil(dh / 4)) {
    throw new ValidationError(
      `kernel '${where}': built for head dimension ≤ ${4 * headDim4} (headDim4 ${headDim4}) but given ${dh}; use headDim4 ${Math.ceil(dh / 4)} or 0`,
    );
  }
}

// Four consecutive elements of a head starting at column i (i < n); columns ≥ n read as 0. Indices are
// clamped so every read stays inside the head.
const ld4 = (fn: string, buf: string): string => `fn ${fn}(base: u32, i: u32, n: u32) -> vec4f {
  let l = n - 1u;
  return vec4f(${buf}[base + i], select(0.0, ${buf}[base + min(i + 1u, l)], i + 1u < n),
    select(0.0, ${buf}[base + min(i + 2u, l)], i + 2u < n), select(0.0, ${buf}[base + min(i + 3u, l)], i + 3u < n));
}
`;

/**
 * WGSL for the per-thread online-softmax attention of `QB` queries of one head (sharing every key and value
 * load), used by the prefill (QB = 4) and decoding (QB = 1) kernels. It defines
 * `attend(qBase, qStride, kBase, vBase, kvStride, nk, nq, dh, outBase, outStride, scale)`: query qi < nq at
 * qBase + qi·qStride attends to keys j < nk[qi] (key j at kBase + j·kvStride, its value at vBase + j·kvStride)
 * and writes dh outputs at outBase + qi·outStride; nk[qi] = 0 writes zeros.
 */
export function onlineAttentionWgsl(o: {
  q: string;
  k: string;
  v: string;
  out: string;
  QB: number;
  headDim4?: number;
}): string {
  const QB = o.QB;
  const fixed = o.headDim4 ?? 0;
  return /* wgsl */ `
const MAX_V4: u32 = ${fixed || MAX_V4}u;
const QB: u32 = ${QB}u;
${ld4('ld4q', o.q)}${ld4('ld4k', o.k)}${ld4('ld4v', o.v)}
fn attend(qBase: u32, qStride: u32, kBase: u32, vBase: u32, kvStride: u32, nk: array<u32, QB>, nq: u32, dh: u32,
          outBase: u32, outStride: u32, scale: f32) {
  let n4 = ${fixed ? 'MAX_V4' : '(dh + 3u) / 4u'};
  var nkMax = 0u;
  for (var qi = 0u; qi < QB; qi++) { nkMax = max(nkMax, nk[qi]); }
  var q: array<array<vec4f, MAX_V4>, QB>;
  var acc: array<array<vec4f, MAX_V4>, QB>;
  var m: array<f32, QB>;
  var l: array<f32, QB>;
  var s: array<f32, QB>;
  if (nkMax > 0u) {
    // key 0 (valid for every query with nk > 0) starts the running max m and the running sum l = 1
    for (var qi = 0u; qi < QB; qi++) {
      let qb = qBase + min(qi, nq - 1u) * qStride;
      for (var i = 0u; i < n4; i++) { q[qi][i] = ld4q(qb, i * 4u, dh) * scale; }
      s[qi] = 0.0;
    }
    for (var i = 0u; i < n4; i++) {
      let kk = ld4k(kBase, i * 4u, dh);
      for (var qi = 0u; qi < QB; qi++) { s[qi] += dot(q[qi][i], kk); }
    }
    for (var qi = 0u; qi < QB; qi++) { m[qi] = s[qi]; l[qi] = 1.0; }
    for (var i = 0u; i < n4; i++) {
      let vv = ld4v(vBase, i * 4u, dh);
      for (var qi = 0u; qi < QB; qi++) { acc[qi][i] = vv; }
    }
  }
  for (var j = 1u; j < nkMax; j++) {
    let kb = kBase + j * kvStride;
    for (var qi = 0u; qi < QB; qi++) { s[qi] = 0.0; }
    for (var i = 0u; i < n4; i++) {
      let kk = ld4k(kb, i * 4u, dh);
      for (var qi = 0u; qi < QB; qi++) { s[qi] += dot(q[qi][i], kk); }
    }
    var c: array<f32, QB>;
    var p: array<f32, QB>;
    for (var qi = 0u; qi < QB; qi++) {
      if (j < nk[qi]) {
        let mNew = max(m[qi], s[qi]);
        c[qi] = exp(m[qi] - mNew);
        p[qi] = exp(s[qi] - mNew);
        m[qi] = mNew;
        l[qi] = l[qi] * c[qi] + p[qi];
      } else {
        c[qi] = 1.0;
        p[qi] = 0.0;
      }
    }
    let vb = vBase + j * kvStride;
    for (var i = 0u; i < n4; i++) {
      let vv = ld4v(vb, i * 4u, dh);
      for (var qi = 0u; qi < QB; qi++) { acc[qi][i] = acc[qi][i] * c[qi] + p[qi] * vv; }
    }
  }
  for (var qi = 0u; qi < nq; qi++) {
    let ob = outBase + qi * outStride;
    if (nk[qi] == 0u) {
      for (var i = 0u; i < dh; i++) { ${o.out}[ob + i] = 0.0; }
    } else {
      let inv = 1.0 / l[qi];
      for (var i = 0u; i < dh; i++) { ${o.out}[ob + i] = acc[qi][i / 4u][i % 4u] * inv; }
    }
  }
}
`;
}

/**
 * Reference attention of one query (float64): softmax over `scores` of keys 0..nk-1 then the weighted sum
 * of values. Two passes (max, then sum), independent of the kernel's online form.
 */
export function attendRef(
  q: AnyTypedArray,
  qOff: number,
  kv: { k: AnyTypedArray; v: AnyTypedArray; kOff: (j: number) => number; vOff: (j: number) => number },
  nk: number,
  dh: number,
  scale: number,
  out: AnyTypedArray,
  outOff: number,
): void {
  if (nk <= 0) {
    for (let i = 0; i < dh; i++) out[outOff + i] = 0;
    return;
  }
  const scores = new Float64Array(nk);
  let max = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < nk; j++) {
    const ko = kv.kOff(j);
    let s = 0;
    for (let i = 0; i < dh; i++) s += q[qOff + i] * kv.k[ko + i];
    s *= scale;
    scores[j] = s;
    if (s > max) max = s;
  }
  let sum = 0;
  for (let j = 0; j < nk; j++) {
    scores[j] = Math.exp(scores[j] - max);
    sum += scores[j];
  }
  for (let i = 0; i < dh; i++) {
    let acc = 0;
    for (let j = 0; j < nk; j++) acc += scores[j] * kv.v[kv.vOff(j) + i];
    out[outOff + i] = acc / sum;
  }
}

export const attention = defineKernel<AttentionSpec>({
  name: 'attention',
  bindings: {
    qkv: { access: 'read', type: 'f32' },
    lengths: { access: 'read', type: 'u32' },
    out: { access: 'write', type: 'f32' },
  },
  params: { B: 'u32', T: 'u32', d: 'u32', heads: 'u32', scale: 'f32' },
  spec: { causal: false, headDim4: 0 },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => [Math.ceil((p.B * p.heads * Math.ceil(p.T / QB)) / WG), 1, 1],
  sizes: (p, spec) => {
    checkHeadDim4('attention', checkHeads('attention', p.d, p.heads), spec.headDim4);
    return { qkv: p.B * p.T * 3 * p.d, lengths: p.B, out: p.B * p.T * p.d };
  },
  wgsl: ({ causal, headDim4 }) => `${onlineAttentionWgsl({ q: 'qkv', k: 'qkv', v: 'qkv', out: 'out', QB, headDim4 })}
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let idx = linear_wg(wg, nwg) * ${WG}u + li;
  let nBlocks = (P.T + QB - 1u) / QB;
  if (idx >= P.B * P.heads * nBlocks) { return; }
  let t0 = (idx % nBlocks) * QB;
  let bh = idx / nBlocks;
  let h = bh % P.heads;
  let b = bh / P.heads;
  let dh = P.d / P.heads;
  let stride = 3u * P.d;
  let row = b * P.T * stride + h * dh;
  let len = min(lengths[b], P.T);
  let nq = min(QB, P.T - t0);
  var nk: array<u32, QB>;
  for (var qi = 0u; qi < QB; qi++) { nk[qi] = select(0u, ${causal ? 'min(len, t0 + qi + 1u)' : 'len'}, qi < nq); }
  attend(row + t0 * stride, stride, row + P.d, row + 2u * P.d, stride, nk, nq, dh, (b * P.T + t0) * P.d + h * dh, P.d, P.scale);
}`,
  reference: ({ qkv, lengths, out }, p, { causal }) => {
    const dh = p.d / p.heads;
    const stride = 3 * p.d;
    for (let b = 0; b < p.B; b++) {
      const len = Math.min(lengths[b], p.T);
      for (let h = 0; h < p.heads; h++) {
        const kv = {
          k: qkv,
          v: qkv,
          kOff: (j: number) => (b * p.T + j) * stride + p.d + h * dh,
          vOff: (j: number) => (b * p.T + j) * stride + 2 * p.d + h * dh,
        };
        for (let t = 0; t < p.T; t++) {
          const nk = causal ? Math.min(len, t + 1) : len;
          attendRef(qkv, (b * p.T + t) * stride + h * dh, kv, nk, dh, p.scale, out, (b * p.T + t) * p.d + h * dh);
        }
      }
    }
  },
  testInputs: (p, _s, rand) => {
    const lengths = new Uint32Array(Math.max(1, p.B));
    for (let b = 0; b < p.B; b++) lengths[b] = Math.floor(rand() * (p.T + 1));
    return { lengths };
  },
  testCases: attentionCases(),
  tolerance: 'accumulate',
});

function attentionCases() {
  const c = (B: number, T: number, d: number, heads: number, causal: boolean, extra: object = {}) => {
    const params: Params = { B, T, d, heads, scale: 1 / Math.sqrt(d / heads) };
    return { params, spec: { causal }, label: `B=${B} T=${T} d=${d} heads=${heads} causal=${causal}`, ...extra };
  };
  const full = (b: number, T: number) => ({ binding: 'lengths', index: b, value: T });
  const empty = (b: number) => ({ binding: 'lengths', index: b, value: 0 });
  return [
    c(1, 1, 8, 1, false),
    c(1, 1, 8, 2, true, { inject: [full(0, 1)] }),
    c(2, 5, 12, 4, false, { inject: [full(0, 5)] }),
    c(2, 5, 12, 4, true, { inject: [full(1, 5)] }),
    c(3, 17, 24, 2, false, { inject: [empty(0), full(2, 17)] }),
    c(3, 17, 24, 2, true, { inject: [empty(1), full(2, 17)] }),
    c(2, 17, 10, 2, true, { inject: [full(0, 17)], label: 'odd head dim 5' }),
    c(1, 64, 64, 1, true, { inject: [full(0, 64)], label: 'dh=64 causal full' }),
    c(3, 64, 64, 4, false),
    c(2, 64, 32, 2, true),
    c(2, 17, 64, 4, true, { inject: [full(0, 17), full(1, 17)] }),
    // the head size fixed when the pipeline is built (unrolled loops)
    {
      ...c(3, 17, 24, 2, true, { inject: [full(2, 17)] }),
      spec: { causal: true, headDim4: 3 },
      label: 'fixed headDim4 3',
    },
    { ...c(2, 17, 10, 2, false), spec: { causal: false, headDim4: 2 }, label: 'fixed headDim4 2, odd head dim 5' },
    { ...c(2, 33, 64, 4, false), spec: { causal: false, headDim4: 4 }, label: 'fixed headDim4 4' },
    {
      ...c(1, 33, 128, 1, false, { inject: [full(0, 33)] }),
      label: 'head dim 128 (maximum)',
    },
    {
      ...c(2, 17, 8, 1, false, { inject: [full(0, 17)] }),
      params: { B: 2, T: 17, d: 8, heads: 1, scale: 1 },
      scale: 10,
      label: 'large scores: no overflow (online max)',
    },
    {
      ...c(2, 17, 16, 2, true, { inject: [empty(0), empty(1)] }),
      label: 'all lengths 0 → zeros',
    },
  ];
}
