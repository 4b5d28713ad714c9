// Grouped-query causal attention of a list of query tokens against a KV cache, for prefill, extend and
// decode alike (the tokens' own keys and values are written into the cache first, by ropeCacheWrite).
//   q: (n, H·hd) rotated queries; rows, pos: (n) u32 (cache row and position of each token);
//   kCache, vCache: (B, Hkv, Tmax, hd) → out: (n, H·hd)
// Token t, head h attends to keys 0..pos[t] of row rows[t] in key/value head ⌊h / (H / Hkv)⌋ (causal by
// position: entries after pos[t] are never read, so a cache needs no length mask and rolling a row back is
// just lowering its length). A token whose row is ≥ B gets zeros; positions ≥ Tmax see the whole cache.
// One invocation per (token, key/value head, block of `qb` query heads of that group): the heads of a block
// share every key and value load (online softmax, as the prefill attention kernel).
import { ValidationError } from '../errors.js';
import { defineKernel } from '../runtime/kernel.js';
import { attendRef, checkHeadDim4, checkHeads, onlineAttentionWgsl } from './attention.js';

export interface CachedAttentionSpec {
  [k: string]: string | number | boolean;
  /** Query heads per invocation (divides H / Hkv). */
  qb: number;
  /** ⌈hd / 4⌉ fixed at build time, or 0 for any head dimension. */
  headDim4: number;
}

const WG = 16;

/** Query heads per invocation for a group of `group` heads: the largest of 4, 2, 1 dividing it. */
export function cachedAttentionBlock(group: number): number {
  return group % 4 === 0 ? 4 : group % 2 === 0 ? 2 : 1;
}

export const cachedAttention = defineKernel<CachedAttentionSpec>({
  name: 'cachedAttention',
  bindings: {
    q: { access: 'read', type: 'f32' },
    rows: { access: 'read', type: 'u32' },
    pos: { access: 'read', type: 'u32' },
    kCache: { access: 'read', type: 'f32' },
    vCache: { access: 'read', type: 'f32' },
    out: { access: 'write', type: 'f32' },
  },
  params: { n: 'u32', H: 'u32', Hkv: 'u32', hd: 'u32', B: 'u32', Tmax: 'u32', scale: 'f32' },
  spec: { qb: 1, headDim4: 0 },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p, s) => [Math.ceil((p.n * p.H) / s.qb / WG), 1, 1],
  sizes: (p, s) => {
    checkHeads('cachedAttention', p.hd * p.H, p.H);
    checkHeadDim4('cachedAttention', p.hd, s.headDim4);
    if (p.Hkv < 1 || p.H % p.Hkv !== 0)
      throw new ValidationError(
        `kernel 'cachedAttention': query heads H (${p.H}) must be a positive multiple of key/value heads Hkv (${p.Hkv})`,
      );
    if (!Number.isInteger(s.qb) || s.qb < 1 || (p.H / p.Hkv) % s.qb !== 0)
      throw new ValidationError(
        `kernel 'cachedAttention': spec.qb (${s.qb}) must divide the group size H / Hkv = ${p.H / p.Hkv}`,
      );
    const cache = p.B * p.Hkv * p.Tmax * p.hd;
    return { q: p.n * p.H * p.hd, rows: p.n, pos: p.n, kCache: cache, vCache: cache, out: p.n * p.H * p.hd };
  },
  wgsl: ({
    qb,
    headDim4,
  }) => `${onlineAttentionWgsl({ q: 'q', k: 'kCache', v: 'vCache', out: 'out', QB: qb, headDim4 })}
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let idx = linear_wg(wg, nwg) * ${WG}u + li;
  let blocks = P.H / QB;
  if (idx >= P.n * blocks) { return; }
  let t = idx / blocks;
  let h0 = (idx % blocks) * QB;
  let g = h0 / (P.H / P.Hkv);
  let row = rows[t];
  var n = 0u;
  if (row < P.B) { n = min(pos[t], P.Tmax - 1u) + 1u; }
  var nk: array<u32, QB>;
  for (var qi = 0u; qi < QB; qi++) { nk[qi] = n; }
  let base = t * P.H * P.hd + h0 * P.hd;
  let cache = ((min(row, P.B - 1u) * P.Hkv + g) * P.Tmax) * P.hd;
  attend(base, P.hd, cache, cache, P.hd, nk, QB, P.hd, base, P.hd, P.scale);
}`,
  reference: ({ q, rows, pos, kCache, vCache, out }, p) => {
    const { H, Hkv, hd, Tmax } = p;
    const group = H / Hkv;
    for (let t = 0; t < p.n; t++) {
      const nk = rows[t] < p.B ? Math.min(pos[t], Tmax - 1) + 1 : 0;
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / group);
        const off = (j: number) => ((rows[t] * Hkv + g) * Tmax + j) * hd;
        const base = (t * H + h) * hd;
        attendRef(q, base, { k: kCache, v: vCache, kOff: off, vOff: off }, nk, hd, p.scale, out, base);
      }
    }
  },
  testInputs: (p, _s, rand) => {
    const rows = new Uint32Array(Math.max(1, p.n));
    const pos = new Uint32Array(Math.max(1, p.n));
    for (let t = 0; t < p.n; t++) {
      rows[t] = Math.floor(rand() * (p.B + 1)); // B: no row, zeros
      pos[t] = Math.floor(rand() * (p.Tmax + 2)); // ≥ Tmax: the whole cache
    }
    return { rows, pos };
  },
  testCases: [
    { params: { n: 1, H: 1, Hkv: 1, hd: 8, B: 1, Tmax: 1, scale: 0.35 }, label: 'one token, one key' },
    { params: { n: 9, H: 4, Hkv: 2, hd: 8, B: 3, Tmax: 13, scale: 0.35 }, spec: { qb: 2 }, label: 'GQA 4:2' },
    { params: { n: 7, H: 4, Hkv: 1, hd: 6, B: 2, Tmax: 17, scale: 0.4 }, spec: { qb: 4 }, label: 'GQA 4:1 hd 6' },
    { params: { n: 5, H: 4, Hkv: 1, hd: 6, B: 2, Tmax: 17, scale: 0.4 }, spec: { qb: 1 }, label: 'GQA 4:1 qb 1' },
    {
      params: { n: 21, H: 8, Hkv: 2, hd: 32, B: 4, Tmax: 40, scale: 0.18 },
      spec: { qb: 4, headDim4: 8 },
      label: 'fixed headDim4 8',
    },
    {
      params: { n: 3, H: 2, Hkv: 2, hd: 8, B: 2, Tmax: 9, scale: 1 },
      scale: 10,
      label: 'large scores: no overflow',
    },
  ],
  tolerance: 'accumulate',
});
