// Rotary position embedding (RoPE, the rotate_half convention of Hugging Face Llama: element i pairs with
// i + hd/2) fused with the write of a token's keys and values into a KV cache, for a list of tokens that
// each name their cache row and position (prefill, extend, decode and skipped-layer propagation alike).
//   q: (n, H·hd) raw query projections; kv: (n, 2·Hkv·hd) raw [k | v] projections; pos, rows: (n) u32;
//   rope: (P, hd) per position [cos (hd/2) | sin (hd/2)]; qOut: (n, H·hd) rotated queries;
//   kCache, vCache: (B, Hkv, Tmax, hd) ← rotated k and plain v at [rows[t], head, pos[t], :].
// rot(x)[i] = x[i]·cos[i mod hd/2] − x[i + hd/2]·sin[i mod hd/2]   (i < hd/2)
//           = x[i]·cos[i mod hd/2] + x[i − hd/2]·sin[i mod hd/2]   (i ≥ hd/2)
// A token whose row is ≥ B or whose position is ≥ Tmax writes nothing to the cache; positions ≥ P read the
// last table row (callers keep the table longer than every position). With withQ = false only the cache is
// written (keys and values of skipped layers computed from a propagated hidden state).
import { ValidationError } from '../errors.js';
import type { AnyTypedArray } from '../runtime/dtype.js';
import { defineKernel } from '../runtime/kernel.js';
import { GRID_STRIDE_MAIN, gridStrideDispatch, gridStrideLoop } from './grid-stride.js';

export interface RopeCacheWriteSpec {
  [k: string]: string | number | boolean;
  withQ: boolean;
}

const WG = 256;

function checkDims(p: Record<string, number>): void {
  if (p.hd < 2 || p.hd % 2 !== 0)
    throw new ValidationError(`kernel 'ropeCacheWrite': head dimension hd must be even and ≥ 2, got ${p.hd}`);
  if (p.Hkv < 1 || p.H < 1 || p.H % p.Hkv !== 0)
    throw new ValidationError(
      `kernel 'ropeCacheWrite': query heads H (${p.H}) must be a positive multiple of key/value heads Hkv (${p.Hkv})`,
    );
  if (p.P < 1) throw new ValidationError(`kernel 'ropeCacheWrite': the rope table needs at least 1 position`);
}

/** rot(x)[i] of the head starting at `base`, at table row `p` (float64 on the host). */
function rotRef(x: AnyTypedArray, base: number, i: number, hd: number, rope: AnyTypedArray, p: number): number {
  const half = hd / 2;
  const j = i % half;
  const c = rope[p * hd + j];
  const s = rope[p * hd + half + j];
  return i < half ? x[base + i] * c - x[base + i + half] * s : x[base + i] * c + x[base + i - half] * s;
}

export const ropeCacheWrite = defineKernel<RopeCacheWriteSpec>({
  name: 'ropeCacheWrite',
  bindings: {
    q: { access: 'read', type: 'f32' },
    kv: { access: 'read', type: 'f32' },
    pos: { access: 'read', type: 'u32' },
    rows: { access: 'read', type: 'u32' },
    rope: { access: 'read', type: 'f32' },
    qOut: { access: 'write', type: 'f32' },
    kCache: { access: 'read_write', type: 'f32' },
    vCache: { access: 'read_write', type: 'f32' },
  },
  params: { n: 'u32', H: 'u32', Hkv: 'u32', hd: 'u32', B: 'u32', Tmax: 'u32', P: 'u32' },
  spec: { withQ: true },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p, s) => gridStrideDispatch(p.n * ((s.withQ ? p.H : 0) + 2 * p.Hkv) * p.hd, WG),
  sizes: (p, s) => {
    checkDims(p);
    const cache = p.B * p.Hkv * p.Tmax * p.hd;
    return {
      q: s.withQ ? p.n * p.H * p.hd : 1,
      kv: p.n * 2 * p.Hkv * p.hd,
      pos: p.n,
      rows: p.n,
      rope: p.P * p.hd,
      qOut: s.withQ ? p.n * p.H * p.hd : 1,
      kCache: cache,
      vCache: cache,
    };
  },
  wgsl: ({ withQ }) => `
fn cs(p: u32, i: u32) -> vec2f {
  let half = P.hd / 2u;
  let j = i % half;
  let r = min(p, P.P - 1u) * P.hd;
  return vec2f(rope[r + j], rope[r + half + j]);
}
${GRID_STRIDE_MAIN(WG)} {
  let kvw = 2u * P.Hkv * P.hd;
  let w = kvw${withQ ? ' + P.H * P.hd' : ''};
  let half = P.hd / 2u;
  ${gridStrideLoop(WG, 'P.n * w')} {
    let t = idx / w;
    let c = idx % w;
    let p = pos[t];
    let i = c % P.hd;
    if (c < kvw) {
      let row = rows[t];
      if (row >= P.B || p >= P.Tmax) { continue; }
      let kvHead = (c % (P.Hkv * P.hd)) / P.hd;
      let dst = ((row * P.Hkv + kvHead) * P.Tmax + p) * P.hd + i;
      let src = t * kvw + c;
      if (c < P.Hkv * P.hd) {
        let cossin = cs(p, i);
        var partner: f32;
        if (i < half) { partner = -kv[src + half]; } else { partner = kv[src - half]; }
        kCache[dst] = kv[src] * cossin.x + partner * cossin.y;
      } else {
        vCache[dst] = kv[src];
      }
    }${
      withQ
        ? ` else {
      let qc = c - kvw;
      let src = t * P.H * P.hd + qc;
      let cossin = cs(p, i);
      var partner: f32;
      if (i < half) { partner = -q[src + half]; } else { partner = q[src - half]; }
      qOut[src] = q[src] * cossin.x + partner * cossin.y;
    }`
        : ''
    }
  }
}`,
  reference: ({ q, kv, pos, rows, rope, qOut, kCache, vCache }, p, { withQ }) => {
    const { hd, H, Hkv } = p;
    const kvw = 2 * Hkv * hd;
    for (let t = 0; t < p.n; t++) {
      const tp = Math.min(pos[t], p.P - 1);
      if (withQ) {
        for (let h = 0; h < H; h++) {
          const base = t * H * hd + h * hd;
          for (let i = 0; i < hd; i++) qOut[base + i] = rotRef(q, base, i, hd, rope, tp);
        }
      }
      if (rows[t] >= p.B || pos[t] >= p.Tmax) continue;
      for (let h = 0; h < Hkv; h++) {
        const dst = ((rows[t] * Hkv + h) * p.Tmax + pos[t]) * hd;
        const kb = t * kvw + h * hd;
        for (let i = 0; i < hd; i++) {
          kCache[dst + i] = rotRef(kv, kb, i, hd, rope, tp);
          vCache[dst + i] = kv[kb + Hkv * hd + i];
        }
      }
    }
  },
  testInputs: (p, _s, rand) => {
    // distinct (row, position) targets: rows in [0, B] (B: not written), positions in [0, Tmax + 1]
    const pos = new Uint32Array(Math.max(1, p.n));
    const rows = new Uint32Array(Math.max(1, p.n));
    const seen = new Set<string>();
    for (let t = 0; t < p.n; t++) {
      for (;;) {
        const r = Math.floor(rand() * (p.B + 1));
        const q = Math.floor(rand() * Math.min(p.P, p.Tmax + 2));
        const key = `${r},${q}`;
        if (seen.has(key) && seen.size < (p.B + 1) * Math.min(p.P, p.Tmax + 2)) continue;
        seen.add(key);
        rows[t] = r;
        pos[t] = q;
        break;
      }
    }
    return { pos, rows };
  },
  testCases: [
    { params: { n: 1, H: 1, Hkv: 1, hd: 2, B: 1, Tmax: 1, P: 1 }, label: 'one token, hd 2' },
    { params: { n: 7, H: 4, Hkv: 2, hd: 8, B: 3, Tmax: 5, P: 9 }, label: 'GQA 4:2, hd 8' },
    { params: { n: 11, H: 4, Hkv: 1, hd: 6, B: 2, Tmax: 9, P: 12 }, label: 'GQA 4:1, hd 6' },
    { params: { n: 5, H: 2, Hkv: 2, hd: 16, B: 4, Tmax: 7, P: 10 }, spec: { withQ: false }, label: 'cache only' },
    { params: { n: 40, H: 8, Hkv: 2, hd: 64, B: 5, Tmax: 16, P: 20 }, label: 'more items than the grid' },
  ],
  tolerance: 'elementwise',
});
