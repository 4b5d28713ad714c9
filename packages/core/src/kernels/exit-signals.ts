// Exit signals: one fused reduction per row turns an exit head's outputs into the 8 floats the exit
// policies read.   logits: (rows, C); gateLogit: (rows); pooled, prevPooled: (rows, d); signals: (rows, 8)
//   0 max softmax probability        1 softmax entropy in nats       2 top-1 minus top-2 probability (0 if C = 1)
//   3 argmax as f32 (lowest index on ties)   4 σ(gateLogit) or NaN without spec.gate
//   5 cos(pooled, prevPooled) (0 if either norm is 0) or NaN without spec.similarity   6, 7 zero
// Entropy is H = log S − T/S with S = Σ e^(z−m), T = Σ (z−m)·e^(z−m): no log of 0, exact for peaked rows.
// Non-finite logits follow softmax: entries equal to the max weigh 1 (+Infinity entries share the mass, an
// all −Infinity row is uniform). A NaN logit makes signals 0–2 NaN and argmax −1; 4 and 5 are unaffected.
import { ValidationError } from '../errors.js';
import { defineKernel, type KernelTestCase } from '../runtime/kernel.js';
import { FLOAT_UTIL_WGSL, ROW_WG, rowReduceWgsl } from './layer-norm.js';

export interface ExitSignalsSpec {
  [k: string]: string | number | boolean;
  /** The exit has a gate/λ head: signal 4 is σ(gateLogit). */
  gate: boolean;
  /** Compare pooled states with the previous exit's: signal 5 is their cosine similarity. */
  similarity: boolean;
}

/** Floats per row in the signals buffer. */
export const SIGNALS_PER_ROW = 8;

const wgsl = (s: ExitSignalsSpec) => `${FLOAT_UTIL_WGSL}
const NONE: u32 = 0xffffffffu;
// A thread's share of one row: the two largest logits and the first index of the largest (NONE if it
// has seen none), whether it saw a NaN, and the sums of the cosine similarity.
struct Part { v1: f32, v2: f32, i1: u32, nan: u32, dot: f32, na: f32, nb: f32 }
fn part_merge(a: Part, b: Part) -> Part {
  var out = Part(a.v1, a.v2, a.i1, a.nan | b.nan, a.dot + b.dot, a.na + b.na, a.nb + b.nb);
  if (b.i1 == NONE) { return out; }
  if (a.i1 == NONE || b.v1 > a.v1 || (b.v1 == a.v1 && b.i1 < a.i1)) {
    out.v1 = b.v1; out.i1 = b.i1; out.v2 = max(b.v2, a.v1);
  } else {
    out.v2 = max(a.v2, b.v1);
  }
  return out;
}
${rowReduceWgsl('reduce_part', 'Part', 'part_merge(a, b)')}
${rowReduceWgsl('reduce_sums', 'vec2f', 'a + b')}
// z − m, with entries equal to the max at exactly 0 (so +Infinity − +Infinity is not NaN).
fn shifted(z: f32, m: f32) -> f32 { if (z == m) { return 0.0; } return z - m; }
fn sigmoid(x: f32) -> f32 { if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); } let e = exp(x); return e / (1.0 + e); }
@compute @workgroup_size(${ROW_WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = linear_wg(wg, nwg);
  if (row >= P.rows) { return; }
  let base = row * P.classes;
  let ninf = f32_inf(true);
  var t = Part(ninf, ninf, NONE, 0u, 0.0, 0.0, 0.0);
  for (var j = li; j < P.classes; j += WG_X) {
    let z = logits[base + j];
    if (is_nan(z)) {
      t.nan = 1u;
    } else if (t.i1 == NONE || z > t.v1) {
      t.v2 = t.v1; t.v1 = z; t.i1 = j;
    } else {
      t.v2 = max(t.v2, z);
    }
  }
  ${
    s.similarity
      ? `for (var j = li; j < P.dim; j += WG_X) {
    let a = pooled[row * P.dim + j];
    let b = prevPooled[row * P.dim + j];
    t.dot += a * b; t.na += a * a; t.nb += b * b;
  }`
      : ''
  }
  let top = reduce_part(t, li);
  let m = top.v1;
  var acc = vec2f(0.0, 0.0);
  for (var j = li; j < P.classes; j += WG_X) {
    let d = shifted(logits[base + j], m);
    let e = exp(d);
    acc += vec2f(e, select(d * e, 0.0, e == 0.0));
  }
  let sums = reduce_sums(acc, li);
  if (li != 0u) { return; }
  let o = row * ${SIGNALS_PER_ROW}u;
  if (top.nan != 0u || top.i1 == NONE) {
    signals[o] = f32_nan(); signals[o + 1u] = f32_nan(); signals[o + 2u] = f32_nan(); signals[o + 3u] = -1.0;
  } else {
    let total = sums.x;
    signals[o] = 1.0 / total;
    signals[o + 1u] = max(log(total) - sums.y / total, 0.0);
    signals[o + 2u] = select((1.0 - exp(shifted(top.v2, m))) / total, 0.0, P.classes == 1u);
    signals[o + 3u] = f32(top.i1);
  }
  signals[o + 4u] = ${s.gate ? 'sigmoid(gateLogit[row])' : 'f32_nan()'};
  ${
    s.similarity
      ? `if (top.na == 0.0 || top.nb == 0.0) { signals[o + 5u] = 0.0; }
  else { signals[o + 5u] = clamp(top.dot / (sqrt(top.na) * sqrt(top.nb)), -1.0, 1.0); }`
      : 'signals[o + 5u] = f32_nan();'
  }
  signals[o + 6u] = 0.0;
  signals[o + 7u] = 0.0;
}`;

/** Signals of one row of logits, from the definitions (float64). */
function rowSignals(z: ArrayLike<number>): [number, number, number, number] {
  const c = z.length;
  for (let j = 0; j < c; j++) if (Number.isNaN(z[j])) return [Number.NaN, Number.NaN, Number.NaN, -1];
  let m = Number.NEGATIVE_INFINITY;
  let arg = 0;
  for (let j = 0; j < c; j++) {
    if (z[j] > m) {
      m = z[j];
      arg = j;
    }
  }
  const w = Array.from(z, (v) => (v === m ? 1 : Math.exp(v - m)));
  const total = w.reduce((a, b) => a + b, 0);
  const p = w.map((v) => v / total);
  let entropy = 0;
  for (const q of p) if (q > 0) entropy -= q * Math.log(q);
  const sorted = [...p].sort((a, b) => b - a);
  const margin = c > 1 ? sorted[0] - sorted[1] : 0;
  return [p[arg], entropy, margin, arg];
}

export const exitSignals = defineKernel<ExitSignalsSpec>({
  name: 'exitSignals',
  bindings: {
    logits: { access: 'read', type: 'f32' },
    gateLogit: { access: 'read', type: 'f32' },
    pooled: { access: 'read', type: 'f32' },
    prevPooled: { access: 'read', type: 'f32' },
    signals: { access: 'write', type: 'f32' },
  },
  params: { rows: 'u32', classes: 'u32', dim: 'u32' },
  spec: { gate: false, similarity: false },
  workgroupSize: () => [ROW_WG, 1, 1],
  linear: true,
  dispatch: (p) => [p.rows, 1, 1],
  sizes: (p, s) => ({
    logits: p.rows * p.classes,
    gateLogit: s.gate ? p.rows : 1,
    pooled: s.similarity ? p.rows * p.dim : 1,
    prevPooled: s.similarity ? p.rows * p.dim : 1,
    signals: p.rows * SIGNALS_PER_ROW,
  }),
  wgsl,
  reference: ({ logits, gateLogit, pooled, prevPooled, signals }, p, s) => {
    for (let r = 0; r < p.rows; r++) {
      const out = signals.subarray(r * SIGNALS_PER_ROW, (r + 1) * SIGNALS_PER_ROW);
      out.set(rowSignals(logits.subarray(r * p.classes, (r + 1) * p.classes)));
      out[4] = s.gate ? 1 / (1 + Math.exp(-gateLogit[r])) : Number.NaN;
      if (s.similarity) {
        let dot = 0;
        let na = 0;
        let nb = 0;
        for (let j = 0; j < p.dim; j++) {
          const a = pooled[r * p.dim + j];
          const b = prevPooled[r * p.dim + j];
          dot += a * b;
          na += a * a;
          nb += b * b;
        }
        out[5] = na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
      } else {
        out[5] = Number.NaN;
      }
      out[6] = 0;
      out[7] = 0;
    }
  },
  testCases: testCases(),
  tolerance: 'accumulate',
});

function testCases(): KernelTestCase<ExitSignalsSpec>[] {
  const logit = (index: number, value: number) => ({ binding: 'logits', index, value });
  const fillRow = (binding: string, row: number, width: number, value: number) =>
    Array.from({ length: width }, (_, j) => ({ binding, index: row * width + j, value }));
  const all = { gate: true, similarity: true };
  const cases: KernelTestCase<ExitSignalsSpec>[] = [
    { params: { rows: 1, classes: 1, dim: 1 }, spec: all, label: 'C=1, d=1' },
    { params: { rows: 33, classes: 1, dim: 0 }, label: 'C=1, 33 rows' },
    { params: { rows: 7, classes: 2, dim: 7 }, spec: all, label: 'C=2, d=7' },
    { params: { rows: 5, classes: 10, dim: 0 }, spec: { gate: true }, label: 'C=10, gate only' },
    { params: { rows: 3, classes: 257, dim: 256 }, spec: { similarity: true }, label: 'C=257, similarity only' },
    { params: { rows: 33, classes: 1000, dim: 768 }, spec: all, label: 'C=1000, d=768, 33 rows' },
    { params: { rows: 2, classes: 3001, dim: 1000 }, spec: all, label: 'C=3001, d=1000' },
    { params: { rows: 4, classes: 1000, dim: 0 }, scale: 1e3, label: 'scale 1e3 (overflow unshifted)' },
    { params: { rows: 6, classes: 10, dim: 10 }, spec: all, scale: 1e3, label: 'C=10, scale 1e3, gate saturates' },
    {
      params: { rows: 3, classes: 257, dim: 0 },
      inject: [logit(5, 60), logit(257 + 256, 200), logit(514 + 128, 17)],
      label: 'peaked rows: entropy → 0',
    },
    {
      params: { rows: 4, classes: 1000, dim: 0 },
      inject: [
        ...[3, 100].map((j) => logit(j, 5)),
        ...[1000 + 259, 1000 + 3].map((j) => logit(j, 5)),
        ...[2000 + 250, 2000 + 7, 2000 + 200].map((j) => logit(j, 5)),
        ...fillRow('logits', 3, 1000, 0.25),
      ],
      label: 'exact ties: lowest index wins, margin 0; uniform row gives ln C',
    },
    {
      params: { rows: 2, classes: 2, dim: 0 },
      inject: fillRow('logits', 1, 2, -3),
      label: 'C=2 tie',
    },
    {
      params: { rows: 4, classes: 10, dim: 0 },
      inject: [
        logit(4, Number.POSITIVE_INFINITY),
        logit(10 + 1, Number.POSITIVE_INFINITY),
        logit(10 + 8, Number.POSITIVE_INFINITY),
        logit(20 + 6, Number.NEGATIVE_INFINITY),
        ...fillRow('logits', 3, 10, Number.NEGATIVE_INFINITY),
      ],
      label: '±Infinity logits',
    },
    {
      params: { rows: 3, classes: 257, dim: 64 },
      spec: all,
      inject: [logit(257 + 40, Number.NaN), logit(2 * 257, Number.NaN), logit(2 * 257 + 1, Number.POSITIVE_INFINITY)],
      label: 'NaN logit: NaN signals and argmax -1; gate and similarity unaffected',
    },
    {
      params: { rows: 4, classes: 3, dim: 5 },
      spec: all,
      inject: [
        ...fillRow('pooled', 1, 5, 0),
        ...fillRow('prevPooled', 2, 5, 0),
        ...fillRow('pooled', 3, 5, 0),
        ...fillRow('prevPooled', 3, 5, 0),
        { binding: 'gateLogit', index: 0, value: 100 },
        { binding: 'gateLogit', index: 1, value: -100 },
        { binding: 'gateLogit', index: 2, value: Number.POSITIVE_INFINITY },
        { binding: 'gateLogit', index: 3, value: Number.NEGATIVE_INFINITY },
      ],
      label: 'zero norms give similarity 0; extreme gate logits',
    },
  ];
  return cases;
}

export interface ExitSignalArrays {
  maxProb: Float32Array;
  entropy: Float32Array;
  margin: Float32Array;
  /** −1 where the row's logits held a NaN. */
  argmax: Int32Array;
  /** NaN where the exit has no gate. */
  gate: Float32Array;
  /** NaN where similarity was not computed. */
  similarity: Float32Array;
}

/** Unpacks the first `rows` rows of an `exitSignals` output into one array per signal. */
export function readSignals(buffer: Float32Array, rows: number): ExitSignalArrays {
  if (!Number.isInteger(rows) || rows < 0 || rows * SIGNALS_PER_ROW > buffer.length) {
    throw new ValidationError(
      `readSignals: rows must be an integer in [0, ${Math.floor(buffer.length / SIGNALS_PER_ROW)}] for a buffer of ${buffer.length} floats (${SIGNALS_PER_ROW} per row), got ${rows}`,
    );
  }
  const out: ExitSignalArrays = {
    maxProb: new Float32Array(rows),
    entropy: new Float32Array(rows),
    margin: new Float32Array(rows),
    argmax: new Int32Array(rows),
    gate: new Float32Array(rows),
    similarity: new Float32Array(rows),
  };
  for (let r = 0; r < rows; r++) {
    const o = r * SIGNALS_PER_ROW;
    out.maxProb[r] = buffer[o];
    out.entropy[r] = buffer[o + 1];
    out.margin[r] = buffer[o + 2];
    out.argmax[r] = Number.isNaN(buffer[o + 3]) ? -1 : Math.round(buffer[o + 3]);
    out.gate[r] = buffer[o + 4];
    out.similarity[r] = buffer[o + 5];
  }
  return out;
}
