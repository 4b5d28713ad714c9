// A plain float64 forward of the multi-exit embedder, written from the equations in config.ts (independent of
// the engine's kernels): for tests of the engine and of exported checkpoints.
import type { HostTensor } from '../models/common.js';
import { EMBED_NORM_EPS, type EncoderEmbedderConfig } from './config.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** Embeddings of one sequence of token ids (all valid) at every exit: E arrays of p values. */
export function embedReference(
  c: EncoderEmbedderConfig,
  w: Map<string, HostTensor>,
  ids: readonly number[],
): Float64Array[] {
  const T = ids.length;
  const d = c.hidden_size;
  const ff = c.intermediate_size;
  const H = c.num_heads;
  const dh = d / H;
  const eps = c.layer_norm_eps ?? 1e-5;
  const get = (n: string) => {
    const t = w.get(n);
    if (!t) throw new Error(`embedReference: no tensor ${n}`);
    return t.data;
  };
  const ln = (x: Float64Array, g: ArrayLike<number>, b: ArrayLike<number>) => {
    const y = new Float64Array(x.length);
    for (let r = 0; r < x.length / d; r++) {
      let m = 0;
      for (let k = 0; k < d; k++) m += x[r * d + k];
      m /= d;
      let v = 0;
      for (let k = 0; k < d; k++) v += (x[r * d + k] - m) ** 2;
      const s = 1 / Math.sqrt(v / d + eps);
      for (let k = 0; k < d; k++) y[r * d + k] = (x[r * d + k] - m) * s * g[k] + b[k];
    }
    return y;
  };
  const lin = (
    x: Float64Array,
    rows: number,
    inF: number,
    outF: number,
    W: ArrayLike<number>,
    b: ArrayLike<number>,
  ) => {
    const y = new Float64Array(rows * outF);
    for (let r = 0; r < rows; r++)
      for (let o = 0; o < outF; o++) {
        let s = b[o];
        for (let k = 0; k < inF; k++) s += x[r * inF + k] * W[k * outF + o];
        y[r * outF + o] = s;
      }
    return y;
  };
  const tok = get('embeddings.token.weight');
  const pos = get('embeddings.position.weight');
  let h = new Float64Array(T * d);
  for (let t = 0; t < T; t++) for (let k = 0; k < d; k++) h[t * d + k] = tok[ids[t] * d + k] + pos[t * d + k];
  const out: Float64Array[] = [];
  for (let i = 0; i < c.num_layers; i++) {
    const p = `blocks.${i}`;
    const x1 = ln(h, get(`${p}.ln1.weight`), get(`${p}.ln1.bias`));
    const qkv = lin(x1, T, d, 3 * d, get(`${p}.attn.qkv.weight`), get(`${p}.attn.qkv.bias`));
    const ctx = new Float64Array(T * d);
    for (let hd = 0; hd < H; hd++)
      for (let t = 0; t < T; t++) {
        const sc = new Float64Array(T);
        let mx = -Infinity;
        for (let u = 0; u < T; u++) {
          let s = 0;
          for (let k = 0; k < dh; k++) s += qkv[t * 3 * d + hd * dh + k] * qkv[u * 3 * d + d + hd * dh + k];
          sc[u] = s / Math.sqrt(dh);
          mx = Math.max(mx, sc[u]);
        }
        let z = 0;
        for (let u = 0; u < T; u++) z += sc[u] = Math.exp(sc[u] - mx);
        for (let k = 0; k < dh; k++) {
          let s = 0;
          for (let u = 0; u < T; u++) s += (sc[u] / z) * qkv[u * 3 * d + 2 * d + hd * dh + k];
          ctx[t * d + hd * dh + k] = s;
        }
      }
    const o = lin(ctx, T, d, d, get(`${p}.attn.out.weight`), get(`${p}.attn.out.bias`));
    const mid = h.map((v, k) => v + o[k]);
    const x2 = ln(mid, get(`${p}.ln2.weight`), get(`${p}.ln2.bias`));
    const f1 = lin(x2, T, d, ff, get(`${p}.mlp.fc1.weight`), get(`${p}.mlp.fc1.bias`)).map(
      (v) => 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v ** 3))),
    );
    const f2 = lin(f1, T, ff, d, get(`${p}.mlp.fc2.weight`), get(`${p}.mlp.fc2.bias`));
    h = mid.map((v, k) => v + f2[k]);
    const j = c.exit_blocks.indexOf(i);
    if (j < 0) continue;
    const pooled = new Float64Array(d);
    for (let t = 0; t < T; t++) for (let k = 0; k < d; k++) pooled[k] += h[t * d + k] / T;
    const z = ln(pooled, get('head.ln.weight'), get('head.ln.bias'));
    const e = c.exit_embedding_dim;
    const ze = new Float64Array(d + e);
    ze.set(z);
    const E = get('head.exit_embedding.weight');
    for (let k = 0; k < e; k++) ze[d + k] = E[j * e + k];
    const u = lin(ze, 1, d + e, c.embedding_dim, get('head.proj.weight'), get('head.proj.bias'));
    const norm = Math.max(Math.hypot(...u), EMBED_NORM_EPS);
    out.push(u.map((v) => v / norm));
  }
  return out;
}
