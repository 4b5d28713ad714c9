// An independent float64 forward of the Llama architecture in plain JavaScript, reading Hugging Face tensor
// names and layouts directly (Linear weights (out, in)), written separately from the TensorFlow.js graph:
// RMSNorm x·(mean(x²)+eps)^(−1/2)·w; RoPE rotate_half (dims i and i + hd/2 pair, inv_freq_i = θ^(−2i/hd));
// causal attention q·k/√hd with query head h reading key/value head ⌊h/(H/KV)⌋; MLP down(silu(gate x)·up x);
// exits read the final norm and the embedding as head (tied) or lm_head.weight when present.
import { ValidationError } from '@offramp/core';
import type { DecoderDims } from './model.js';

export type HfTensors = Map<string, { shape: number[]; data: ArrayLike<number> }>;

function mat(t: HfTensors, name: string): ArrayLike<number> {
  const x = t.get(name);
  if (!x) throw new ValidationError(`reference forward: missing tensor ${name}`);
  return x.data;
}

/** y = W·x for W (out, in) row-major. */
function linear(W: ArrayLike<number>, x: Float64Array, outDim: number): Float64Array {
  const inDim = x.length;
  const y = new Float64Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let s = 0;
    const base = o * inDim;
    for (let i = 0; i < inDim; i++) s += W[base + i] * x[i];
    y[o] = s;
  }
  return y;
}

function rmsnorm(x: Float64Array, w: ArrayLike<number>, eps: number): Float64Array {
  let ms = 0;
  for (const v of x) ms += v * v;
  const r = 1 / Math.sqrt(ms / x.length + eps);
  return x.map((v, i) => v * r * w[i]);
}

/** Rotates each head of v in place at position `pos` (rotate_half pairs: i and i + hd/2). */
export function rope(v: Float64Array, heads: number, hd: number, pos: number, theta: number): void {
  const half = hd / 2;
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < half; i++) {
      const a = pos * theta ** (-(2 * i) / hd);
      const c = Math.cos(a);
      const s = Math.sin(a);
      const x1 = v[h * hd + i];
      const x2 = v[h * hd + i + half];
      v[h * hd + i] = x1 * c - x2 * s;
      v[h * hd + i + half] = x2 * c + x1 * s;
    }
}

/** Logits (T rows of vocab) at each exit (0-based blocks, ascending) for one sequence of ids. */
export function referenceLogits(
  t: HfTensors,
  dims: DecoderDims,
  ids: ArrayLike<number>,
  exits: number[],
): Float64Array[][] {
  const { d, heads: H, kvHeads: KV, ffn, vocab, eps } = dims;
  const hd = d / H;
  const G = H / KV;
  const T = ids.length;
  const emb = mat(t, 'model.embed_tokens.weight');
  const head = t.has('lm_head.weight') ? mat(t, 'lm_head.weight') : emb;
  const normW = mat(t, 'model.norm.weight');
  const xs: Float64Array[] = [];
  for (let p = 0; p < T; p++) {
    const id = ids[p];
    if (!(id >= 0 && id < vocab)) throw new ValidationError(`reference forward: id ${id} outside [0, ${vocab})`);
    xs.push(Float64Array.from({ length: d }, (_, i) => emb[id * d + i]));
  }
  const out: Float64Array[][] = [];
  const last = Math.max(...exits);
  for (let l = 0; l <= last; l++) {
    const P = `model.layers.${l}.`;
    const ks: Float64Array[] = [];
    const vs: Float64Array[] = [];
    const qs: Float64Array[] = [];
    for (let p = 0; p < T; p++) {
      const h = rmsnorm(xs[p], mat(t, `${P}input_layernorm.weight`), eps);
      const q = linear(mat(t, `${P}self_attn.q_proj.weight`), h, H * hd);
      const k = linear(mat(t, `${P}self_attn.k_proj.weight`), h, KV * hd);
      rope(q, H, hd, p, dims.ropeTheta);
      rope(k, KV, hd, p, dims.ropeTheta);
      qs.push(q);
      ks.push(k);
      vs.push(linear(mat(t, `${P}self_attn.v_proj.weight`), h, KV * hd));
    }
    for (let p = 0; p < T; p++) {
      const o = new Float64Array(H * hd);
      for (let h = 0; h < H; h++) {
        const kv = Math.floor(h / G);
        const s = new Float64Array(p + 1);
        let mx = Number.NEGATIVE_INFINITY;
        for (let j = 0; j <= p; j++) {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += qs[p][h * hd + i] * ks[j][kv * hd + i];
          s[j] = dot / Math.sqrt(hd);
          mx = Math.max(mx, s[j]);
        }
        let z = 0;
        for (let j = 0; j <= p; j++) {
          s[j] = Math.exp(s[j] - mx);
          z += s[j];
        }
        for (let j = 0; j <= p; j++) for (let i = 0; i < hd; i++) o[h * hd + i] += (s[j] / z) * vs[j][kv * hd + i];
      }
      const a = linear(mat(t, `${P}self_attn.o_proj.weight`), o, d);
      for (let i = 0; i < d; i++) xs[p][i] += a[i];
    }
    for (let p = 0; p < T; p++) {
      const h = rmsnorm(xs[p], mat(t, `${P}post_attention_layernorm.weight`), eps);
      const g = linear(mat(t, `${P}mlp.gate_proj.weight`), h, ffn);
      const u = linear(mat(t, `${P}mlp.up_proj.weight`), h, ffn);
      const m = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]);
      const y = linear(mat(t, `${P}mlp.down_proj.weight`), m, d);
      for (let i = 0; i < d; i++) xs[p][i] += y[i];
    }
    if (exits.includes(l)) out.push(xs.map((x) => linear(head, rmsnorm(x, normW, eps), vocab)));
  }
  return out;
}

/** Mean cross-entropy (nats) per exit of `inputs` predicting `targets` (one sequence each). */
export function referenceLoss(
  t: HfTensors,
  dims: DecoderDims,
  inputs: ArrayLike<number>,
  targets: ArrayLike<number>,
  exits: number[],
): number[] {
  return referenceLogits(t, dims, inputs, exits).map((rows) => {
    let sum = 0;
    rows.forEach((z, p) => {
      let mx = Number.NEGATIVE_INFINITY;
      for (const v of z) mx = Math.max(mx, v);
      let s = 0;
      for (const v of z) s += Math.exp(v - mx);
      sum += mx + Math.log(s) - z[targets[p]];
    });
    return sum / rows.length;
  });
}
