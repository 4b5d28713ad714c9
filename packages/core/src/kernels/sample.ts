// Next-token choice on the device, one workgroup per row of (rows, V) logits:
//   temperature 0 → argmax (lowest index on ties); otherwise s = z / temperature, keep the topK largest s
//   (ties broken by lower index, as a stable sort by s descending would), then the smallest set of the most
//   likely kept tokens whose probability reaches topP (same tie order), and draw from softmax(s) over the
//   kept set with a uniform number u = hash(seed, key[row], step).
// The draw is counter-based: u depends only on (seed, key, step), so a row's token does not depend on which
// other rows share the batch (key is the caller's row identity, e.g. the sequence index) or on how the
// steps were grouped into submissions.
// Cut-offs are found without sorting: the topK-th largest value by bisection over the order-preserving u32
// image of the floats (32 counting passes), ties at the cut-off by bisection over the index; the top-p cut-off
// likewise over masses. The draw walks the kept tokens in index order (the distribution is the same as in
// sorted order). NaN logits are never drawn and are skipped by the argmax.
//   logits: (rows, V) f32; keys: (rows) u32; tokens: (rows) u32 (written)
import { ValidationError } from '../errors.js';
import type { AnyTypedArray } from '../runtime/dtype.js';
import { defineKernel } from '../runtime/kernel.js';

const WG = 64;

export interface SampleParams {
  rows: number;
  V: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  step: number;
}

export const HASH_WGSL = /* wgsl */ `
fn pcg_hash(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
// Uniform in [0, 1) with 24 bits, from (seed, key, step).
fn uniform3(seed: u32, key: u32, step: u32) -> f32 {
  let h = pcg_hash(pcg_hash(pcg_hash(seed) ^ key) ^ pcg_hash(step + 0x9e3779b9u));
  return f32(h >> 8u) * (1.0 / 16777216.0);
}`;

/** PCG hash (u32 → u32), as the WGSL. */
export function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The draw's uniform number in [0, 1) for (seed, key, step), as the kernel computes it. */
export function uniform3(seed: number, key: number, step: number): number {
  const h = pcgHash((pcgHash((pcgHash(seed >>> 0) ^ key) >>> 0) ^ pcgHash((step + 0x9e3779b9) >>> 0)) >>> 0);
  return (h >>> 8) / 16777216;
}

const wgsl = () => `${HASH_WGSL}
var<workgroup> red_f: array<f32, ${WG}>;
var<workgroup> red_u: array<u32, ${WG}>;
var<workgroup> red_i: array<u32, ${WG}>;
var<workgroup> pick: u32;
fn sum_f(v: f32, li: u32) -> f32 {
  red_f[li] = v;
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (li < s) { red_f[li] = red_f[li] + red_f[li + s]; }
  }
  let t = workgroupUniformLoad(&red_f[0]);
  workgroupBarrier();
  return t;
}
fn sum_u(v: u32, li: u32) -> u32 {
  red_u[li] = v;
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (li < s) { red_u[li] = red_u[li] + red_u[li + s]; }
  }
  let t = workgroupUniformLoad(&red_u[0]);
  workgroupBarrier();
  return t;
}
fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
// Order-preserving image of a float in u32 (larger float → larger key); NaN → 0.
fn fkey(v: f32) -> u32 {
  if (is_nan(v)) { return 0u; }
  let b = bitcast<u32>(v);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = linear_wg(wg, nwg);
  if (row >= P.rows) { return; }
  let V = P.V;
  let base = row * V;
  // contiguous chunk of this thread (index order is kept by chunk order)
  let C = (V + ${WG - 1}u) / ${WG}u;
  let j0 = min(li * C, V);
  let j1 = min(j0 + C, V);
  // argmax (lowest index on ties) by (key, ~index)
  var bk = 0u; var bi = 0xffffffffu;
  for (var j = j0; j < j1; j++) {
    let z = logits[base + j];
    if (is_nan(z)) { continue; }
    let k = fkey(z) ;
    if (bi == 0xffffffffu || k > bk) { bk = k; bi = j; }
  }
  red_u[li] = bk; red_i[li] = bi;
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (li < s) {
      let ok = red_u[li + s]; let oi = red_i[li + s];
      if (oi != 0xffffffffu && (red_i[li] == 0xffffffffu || ok > red_u[li] || (ok == red_u[li] && oi < red_i[li]))) {
        red_u[li] = ok; red_i[li] = oi;
      }
    }
  }
  workgroupBarrier();
  let best = select(red_i[0], 0u, red_i[0] == 0xffffffffu);
  let mx = logits[base + best];
  workgroupBarrier();
  if (P.temperature == 0.0) {
    if (li == 0u) { tokens[row] = best; }
    return;
  }
  let inv = 1.0 / P.temperature;
  let m = mx * inv;
  // top-k: tau = the largest key t with #(key >= t) >= k; ties at tau kept up to index ck
  var tauK = 0u; var ck = V;
  let useK = P.topK > 0u && P.topK < V;
  if (useK) {
    var lo = 0u; var hi = 0xffffffffu;
    for (var it = 0u; it < 32u; it++) {
      if (lo >= hi) { break; }
      let mid = lo + (hi - lo) / 2u + 1u;
      var c = 0u;
      for (var j = j0; j < j1; j++) { let z = logits[base + j]; if (!is_nan(z) && fkey(z * inv) >= mid) { c++; } }
      if (sum_u(c, li) >= P.topK) { lo = mid; } else { hi = mid - 1u; }
    }
    tauK = lo;
    var gt = 0u;
    for (var j = j0; j < j1; j++) { let z = logits[base + j]; if (!is_nan(z) && fkey(z * inv) > tauK) { gt++; } }
    let need = P.topK - sum_u(gt, li);
    // smallest index c with #(key == tau, index <= c) >= need
    var a = 0u; var b = V - 1u;
    for (var it = 0u; it < 32u; it++) {
      if (a >= b) { break; }
      let mid = a + (b - a) / 2u;
      var c = 0u;
      for (var j = j0; j < min(j1, mid + 1u); j++) { let z = logits[base + j]; if (!is_nan(z) && fkey(z * inv) == tauK) { c++; } }
      if (sum_u(c, li) >= need) { b = mid; } else { a = mid + 1u; }
    }
    ck = a;
  }
  // kept(j) after top-k
  var total = 0.0;
  for (var j = j0; j < j1; j++) {
    let z = logits[base + j];
    if (is_nan(z)) { continue; }
    let k = fkey(z * inv);
    if (k > tauK || (k == tauK && j <= ck)) { total += exp(z * inv - m); }
  }
  total = sum_f(total, li);
  // top-p over the kept set
  var tauP = 0u; var cp = V;
  if (P.topP < 1.0) {
    let goal = P.topP * total;
    var lo = 0u; var hi = 0xffffffffu;
    for (var it = 0u; it < 32u; it++) {
      if (lo >= hi) { break; }
      let mid = lo + (hi - lo) / 2u + 1u;
      var w = 0.0;
      for (var j = j0; j < j1; j++) {
        let z = logits[base + j];
        if (is_nan(z)) { continue; }
        let k = fkey(z * inv);
        if ((k > tauK || (k == tauK && j <= ck)) && k >= mid) { w += exp(z * inv - m); }
      }
      if (sum_f(w, li) >= goal) { lo = mid; } else { hi = mid - 1u; }
    }
    tauP = lo;
    var w = 0.0;
    for (var j = j0; j < j1; j++) {
      let z = logits[base + j];
      if (is_nan(z)) { continue; }
      let k = fkey(z * inv);
      if ((k > tauK || (k == tauK && j <= ck)) && k > tauP) { w += exp(z * inv - m); }
    }
    let gtMass = sum_f(w, li);
    var a = 0u; var b = V;
    for (var it = 0u; it < 32u; it++) {
      if (a >= b) { break; }
      let mid = a + (b - a) / 2u;
      var t = 0.0;
      for (var j = j0; j < min(j1, mid + 1u); j++) {
        let z = logits[base + j];
        if (is_nan(z)) { continue; }
        let k = fkey(z * inv);
        if ((k > tauK || (k == tauK && j <= ck)) && k == tauP) { t += exp(z * inv - m); }
      }
      if (gtMass + sum_f(t, li) >= goal) { b = mid; } else { a = mid + 1u; }
    }
    cp = a;
  }
  // the draw: chunk masses in index order, thread 0 walks them
  var part = 0.0;
  for (var j = j0; j < j1; j++) {
    let z = logits[base + j];
    if (is_nan(z)) { continue; }
    let k = fkey(z * inv);
    if ((k > tauK || (k == tauK && j <= ck)) && (k > tauP || (k == tauP && j <= cp))) { part += exp(z * inv - m); }
  }
  red_f[li] = part;
  workgroupBarrier();
  if (li == 0u) {
    var mass = 0.0;
    for (var t = 0u; t < ${WG}u; t++) { mass += red_f[t]; }
    var r = uniform3(P.seed, keys[row], P.step) * mass;
    var chosen = best;
    var found = false;
    for (var t = 0u; t < ${WG}u && !found; t++) {
      if (r < red_f[t]) {
        let c0 = min(t * C, V);
        let c1 = min(c0 + C, V);
        for (var j = c0; j < c1; j++) {
          let z = logits[base + j];
          if (is_nan(z)) { continue; }
          let k = fkey(z * inv);
          if ((k > tauK || (k == tauK && j <= ck)) && (k > tauP || (k == tauP && j <= cp))) {
            let e = exp(z * inv - m);
            chosen = j;
            if (r < e) { found = true; break; }
            r -= e;
          }
        }
        found = true;
      } else {
        r -= red_f[t];
      }
    }
    tokens[row] = chosen;
  }
}`;

/** Order-preserving u32 image of an f32 (NaN → 0), as the kernel's fkey. */
function fkey(v: number): number {
  if (Number.isNaN(v)) return 0;
  const f = new Float32Array([v]);
  const b = new Uint32Array(f.buffer)[0];
  return (b & 0x80000000 ? ~b : b | 0x80000000) >>> 0;
}

/** Reference: the same cut-offs in f64 with a sort (the kernel's f32 sums can differ exactly at a cut-off). */
function referenceRow(z: ArrayLike<number>, o: number, p: SampleParams, key: number): number {
  const V = p.V;
  let best = -1;
  for (let j = 0; j < V; j++) {
    const v = z[o + j];
    if (Number.isNaN(v)) continue;
    if (best < 0 || fkey(v) > fkey(z[o + best])) best = j;
  }
  if (best < 0) best = 0;
  if (p.temperature === 0) return best;
  const inv = Math.fround(1 / p.temperature);
  const s = (j: number) => Math.fround(z[o + j] * inv);
  const ids = Array.from({ length: V }, (_, j) => j).filter((j) => !Number.isNaN(z[o + j]));
  ids.sort((a, b) => fkey(s(b)) - fkey(s(a)) || a - b);
  const k = p.topK > 0 && p.topK < V ? Math.min(p.topK, ids.length) : ids.length;
  const top = ids.slice(0, k);
  const m = s(best);
  const w = top.map((j) => Math.exp(s(j) - m));
  const total = w.reduce((a, b) => a + b, 0);
  let keep = top.length;
  if (p.topP < 1) {
    let acc = 0;
    const i = w.findIndex((x) => {
      acc += x;
      return acc >= p.topP * total;
    });
    keep = i < 0 ? top.length : i + 1;
  }
  const kept = top.slice(0, keep).sort((a, b) => a - b);
  const wk = kept.map((j) => Math.exp(s(j) - m));
  let r = uniform3(p.seed, key, p.step) * wk.reduce((a, b) => a + b, 0);
  for (let i = 0; i < kept.length; i++) {
    if (r < wk[i]) return kept[i];
    r -= wk[i];
  }
  return kept[kept.length - 1];
}

export const sampleTokens = defineKernel({
  name: 'sampleTokens',
  bindings: {
    logits: { access: 'read', type: 'f32' },
    keys: { access: 'read', type: 'u32' },
    tokens: { access: 'write', type: 'u32' },
  },
  params: { rows: 'u32', V: 'u32', temperature: 'f32', topK: 'u32', topP: 'f32', seed: 'u32', step: 'u32' },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => [p.rows, 1, 1],
  sizes: (p) => {
    if (!(p.V >= 1)) throw new ValidationError(`kernel 'sampleTokens': V must be ≥ 1, got ${p.V}`);
    if (!(p.temperature >= 0))
      throw new ValidationError(`kernel 'sampleTokens': temperature must be ≥ 0, got ${p.temperature}`);
    if (!(p.topP > 0 && p.topP <= 1))
      throw new ValidationError(`kernel 'sampleTokens': topP must be in (0, 1], got ${p.topP}`);
    return { logits: p.rows * p.V, keys: p.rows, tokens: p.rows };
  },
  wgsl,
  reference: ({ logits, keys, tokens }: Record<string, AnyTypedArray>, p) => {
    for (let r = 0; r < p.rows; r++) tokens[r] = referenceRow(logits, r * p.V, p as unknown as SampleParams, keys[r]);
  },
  testCases: [
    { params: { rows: 3, V: 37, temperature: 0, topK: 0, topP: 1, seed: 1, step: 0 }, label: 'greedy' },
    { params: { rows: 5, V: 300, temperature: 0, topK: 0, topP: 1, seed: 1, step: 0 }, label: 'greedy, V 300' },
  ],
  tolerance: 'exact',
});

/** Reference of one row's draw (exported for tests). */
export const sampleReferenceRow = referenceRow;
