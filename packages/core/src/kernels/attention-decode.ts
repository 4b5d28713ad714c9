// Token-by-token decoding with a KV cache.
// attentionDecode: q (B, d), kCache, vCache (B, Tmax, d), lengths (B) → out (B, d); row b attends to cached
//   positions < min(lengths[b], Tmax); a length of 0 gives zeros. One invocation per (row, head).
// kvAppend: qkv (B, 3·d) (the new token's packed [q | k | v]), pos (B) → writes k and v of row r at
//   kCache/vCache[r, pos[r], :]. A row with pos[r] ≥ Tmax is left unwritten (its token is dropped).
import { ValidationError } from '../errors.js';
import { defineKernel } from '../runtime/kernel.js';
import { attendRef, checkHeads, onlineAttentionWgsl } from './attention.js';
import { GRID_STRIDE_MAIN, gridStrideDispatch, gridStrideLoop } from './grid-stride.js';

// Small workgroups so that the few (row, head) items still spread over the CPU cores under lavapipe.
const WG = 16;
const APPEND_WG = 256;

export const attentionDecode = defineKernel({
  name: 'attentionDecode',
  bindings: {
    kCache: { access: 'read', type: 'f32' },
    vCache: { access: 'read', type: 'f32' },
    q: { access: 'read', type: 'f32' },
    lengths: { access: 'read', type: 'u32' },
    out: { access: 'write', type: 'f32' },
  },
  params: { B: 'u32', Tmax: 'u32', d: 'u32', heads: 'u32', scale: 'f32' },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => [Math.ceil((p.B * p.heads) / WG), 1, 1],
  sizes: (p) => {
    checkHeads('attentionDecode', p.d, p.heads);
    const cache = p.B * p.Tmax * p.d;
    return { kCache: cache, vCache: cache, q: p.B * p.d, lengths: p.B, out: p.B * p.d };
  },
  wgsl: () => `${onlineAttentionWgsl({ q: 'q', k: 'kCache', v: 'vCache', out: 'out', QB: 1 })}
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let idx = linear_wg(wg, nwg) * ${WG}u + li;
  if (idx >= P.B * P.heads) { return; }
  let h = idx % P.heads;
  let b = idx / P.heads;
  let dh = P.d / P.heads;
  let head = b * P.d + h * dh;
  let cache = b * P.Tmax * P.d + h * dh;
  attend(head, 0u, cache, cache, P.d, array<u32, 1>(min(lengths[b], P.Tmax)), 1u, dh, head, 0u, P.scale);
}`,
  reference: ({ kCache, vCache, q, lengths, out }, p) => {
    const dh = p.d / p.heads;
    for (let b = 0; b < p.B; b++) {
      const nk = Math.min(lengths[b], p.Tmax);
      for (let h = 0; h < p.heads; h++) {
        const off = (j: number) => (b * p.Tmax + j) * p.d + h * dh;
        attendRef(
          q,
          b * p.d + h * dh,
          { k: kCache, v: vCache, kOff: off, vOff: off },
          nk,
          dh,
          p.scale,
          out,
          b * p.d + h * dh,
        );
      }
    }
  },
  testInputs: (p, _s, rand) => {
    const lengths = new Uint32Array(Math.max(1, p.B));
    // [0, Tmax + 1]: Tmax + 1 checks the clamp to the cache size
    for (let b = 0; b < p.B; b++) lengths[b] = Math.floor(rand() * (p.Tmax + 2));
    return { lengths };
  },
  testCases: [
    {
      params: { B: 1, Tmax: 1, d: 8, heads: 1, scale: 1 / Math.sqrt(8) },
      inject: [{ binding: 'lengths', index: 0, value: 1 }],
    },
    {
      params: { B: 3, Tmax: 17, d: 24, heads: 2, scale: 1 / Math.sqrt(12) },
      inject: [{ binding: 'lengths', index: 1, value: 0 }],
    },
    { params: { B: 2, Tmax: 64, d: 64, heads: 4, scale: 0.25 }, inject: [{ binding: 'lengths', index: 0, value: 64 }] },
    { params: { B: 5, Tmax: 31, d: 10, heads: 2, scale: 0.5 }, label: 'odd head dim 5' },
    { params: { B: 67, Tmax: 13, d: 16, heads: 4, scale: 0.5 }, label: 'B·heads over one workgroup' },
    {
      params: { B: 2, Tmax: 9, d: 8, heads: 1, scale: 1 },
      scale: 10,
      inject: [{ binding: 'lengths', index: 0, value: 9 }],
      label: 'large scores: no overflow (online max)',
    },
  ],
  tolerance: 'accumulate',
});

export const kvAppend = defineKernel({
  name: 'kvAppend',
  bindings: {
    qkv: { access: 'read', type: 'f32' },
    pos: { access: 'read', type: 'u32' },
    kCache: { access: 'read_write', type: 'f32' },
    vCache: { access: 'read_write', type: 'f32' },
  },
  params: { B: 'u32', Tmax: 'u32', d: 'u32' },
  workgroupSize: () => [APPEND_WG, 1, 1],
  linear: true,
  dispatch: (p) => gridStrideDispatch(p.B * p.d, APPEND_WG),
  sizes: (p) => {
    if (p.d < 1) throw new ValidationError(`kernel 'kvAppend': d must be at least 1, got ${p.d}`);
    const cache = p.B * p.Tmax * p.d;
    return { qkv: p.B * 3 * p.d, pos: p.B, kCache: cache, vCache: cache };
  },
  wgsl: () => `
${GRID_STRIDE_MAIN(APPEND_WG)} {
  ${gridStrideLoop(APPEND_WG, 'P.B * P.d')} {
    let c = idx % P.d;
    let r = idx / P.d;
    let t = pos[r];
    if (t < P.Tmax) {
      let dst = (r * P.Tmax + t) * P.d + c;
      let src = r * 3u * P.d + P.d + c;
      kCache[dst] = qkv[src];
      vCache[dst] = qkv[src + P.d];
    }
  }
}`,
  reference: ({ qkv, pos, kCache, vCache }, p) => {
    for (let r = 0; r < p.B; r++) {
      const t = pos[r];
      if (t >= p.Tmax) continue;
      const k = qkv.subarray(r * 3 * p.d + p.d, r * 3 * p.d + 2 * p.d);
      const v = qkv.subarray(r * 3 * p.d + 2 * p.d, r * 3 * p.d + 3 * p.d);
      kCache.set(k, (r * p.Tmax + t) * p.d);
      vCache.set(v, (r * p.Tmax + t) * p.d);
    }
  },
  testInputs: (p, _s, rand) => {
    const pos = new Uint32Array(Math.max(1, p.B));
    // [0, Tmax + 2]: positions ≥ Tmax must not write
    for (let r = 0; r < p.B; r++) pos[r] = Math.floor(rand() * (p.Tmax + 3));
    return { pos };
  },
  testCases: [
    { params: { B: 1, Tmax: 1, d: 1 }, inject: [{ binding: 'pos', index: 0, value: 0 }] },
    { params: { B: 3, Tmax: 17, d: 24 }, inject: [{ binding: 'pos', index: 2, value: 16 }] },
    {
      params: { B: 5, Tmax: 7, d: 13 },
      inject: [
        { binding: 'pos', index: 0, value: 7 },
        { binding: 'pos', index: 1, value: 0xffffffff },
      ],
      label: 'pos ≥ Tmax writes nothing',
    },
    { params: { B: 7, Tmax: 64, d: 67 }, label: 'B·d not a multiple of the workgroup' },
    { params: { B: 33, Tmax: 5, d: 1031 }, label: 'more items than the grid' },
  ],
  tolerance: 'exact',
});
