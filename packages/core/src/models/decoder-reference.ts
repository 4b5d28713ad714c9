// Float64 reference of the Llama-style decoder with exits, in plain loops, written apart from the kernels
// (it shares only the config type): a whole-sequence forward with every exit's logits, token-by-token
// decoding with a per-sequence KV cache, and CALM state propagation (a token that leaves after block j has
// the keys and values of blocks j+1.. computed from its hidden state at j). Tests check every GPU path
// against it.
import type { DecoderConfig } from './decoder-config.js';

type Weights = ReadonlyMap<string, { shape: readonly number[]; data: ArrayLike<number> }>;

/** Per-sequence cache of the reference: keys and values (Hkv·hd each) per layer per position. */
export interface ReferenceCache {
  k: Float64Array[][];
  v: Float64Array[][];
}

export class DecoderReference {
  private readonly w = new Map<string, Float64Array>();
  private readonly freq: Float64Array;

  constructor(
    readonly config: DecoderConfig,
    weights: Weights,
  ) {
    for (const [n, t] of weights) this.w.set(n, Float64Array.from(t.data));
    const c = config;
    const half = c.headDim / 2;
    this.freq = new Float64Array(half);
    for (let i = 0; i < half; i++) {
      let f = c.ropeTheta ** (-(2 * i) / c.headDim);
      const s = c.ropeScaling;
      if (s) {
        const period = (2 * Math.PI) / f;
        const ratio = s.originalMaxPositionEmbeddings / period; // wavelengths fitting in the original context
        if (ratio < s.lowFreqFactor) f /= s.factor;
        else if (ratio <= s.highFreqFactor) {
          const a = (ratio - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
          f = a * f + (1 - a) * (f / s.factor);
        }
      }
      this.freq[i] = f;
    }
  }

  private W(name: string): Float64Array {
    const t = this.w.get(name);
    if (!t) throw new Error(`reference: no tensor '${name}'`);
    return t;
  }

  /** y = W x, W (rows, cols) row-major. */
  private mv(name: string, x: Float64Array): Float64Array {
    const W = this.W(name);
    const cols = x.length;
    const rows = W.length / cols;
    const y = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let k = 0; k < cols; k++) s += W[r * cols + k] * x[k];
      y[r] = s;
    }
    return y;
  }

  private norm(name: string, x: Float64Array): Float64Array {
    const g = this.W(name);
    let ss = 0;
    for (const v of x) ss += v * v;
    const inv = 1 / Math.sqrt(ss / x.length + this.config.rmsNormEps);
    return x.map((v, i) => v * inv * g[i]);
  }

  /** Rotates each head of x (heads·hd) at position p: pairs (i, i + hd/2). */
  private rope(x: Float64Array, p: number): Float64Array {
    const hd = this.config.headDim;
    const half = hd / 2;
    const y = new Float64Array(x.length);
    for (let h = 0; h < x.length / hd; h++) {
      for (let i = 0; i < half; i++) {
        const a = x[h * hd + i];
        const b = x[h * hd + half + i];
        const c = Math.cos(p * this.freq[i]);
        const s = Math.sin(p * this.freq[i]);
        y[h * hd + i] = a * c - b * s;
        y[h * hd + half + i] = b * c + a * s;
      }
    }
    return y;
  }

  embed(id: number): Float64Array {
    const d = this.config.hiddenSize;
    return this.W('model.embed_tokens.weight').slice(id * d, (id + 1) * d);
  }

  /** Logits of the exit after block j from the hidden state after block j. */
  exitLogits(j: number, h: Float64Array): Float64Array {
    const own = this.w.has(`offramp.exit_norm.${j}.weight`) && j < this.config.numLayers - 1;
    const hn = this.norm(own ? `offramp.exit_norm.${j}.weight` : 'model.norm.weight', h);
    const headName =
      j < this.config.numLayers - 1 && this.w.has(`offramp.exit_head.${j}.weight`)
        ? `offramp.exit_head.${j}.weight`
        : this.config.tieWordEmbeddings
          ? 'model.embed_tokens.weight'
          : 'lm_head.weight';
    return this.mv(headName, hn);
  }

  /** Keys (rotated) and values of block l for hidden state h at position p. */
  kv(l: number, h: Float64Array, p: number): { k: Float64Array; v: Float64Array } {
    const x = this.norm(`model.layers.${l}.input_layernorm.weight`, h);
    return {
      k: this.rope(this.mv(`model.layers.${l}.self_attn.k_proj.weight`, x), p),
      v: this.mv(`model.layers.${l}.self_attn.v_proj.weight`, x),
    };
  }

  /** Block l for one token at position p whose keys/values are already in keys[0..p], values[0..p]. */
  private block(l: number, h: Float64Array, p: number, keys: Float64Array[], values: Float64Array[]): Float64Array {
    const c = this.config;
    const { headDim: hd, numHeads: H, numKvHeads: Hkv } = c;
    const pre = `model.layers.${l}`;
    const x = this.norm(`${pre}.input_layernorm.weight`, h);
    const q = this.rope(this.mv(`${pre}.self_attn.q_proj.weight`, x), p);
    const att = new Float64Array(H * hd);
    for (let head = 0; head < H; head++) {
      const g = Math.floor(head / (H / Hkv));
      const scores = new Float64Array(p + 1);
      for (let j = 0; j <= p; j++) {
        let s = 0;
        for (let i = 0; i < hd; i++) s += q[head * hd + i] * keys[j][g * hd + i];
        scores[j] = s / Math.sqrt(hd);
      }
      const m = Math.max(...scores);
      let z = 0;
      for (let j = 0; j <= p; j++) {
        scores[j] = Math.exp(scores[j] - m);
        z += scores[j];
      }
      for (let i = 0; i < hd; i++) {
        let a = 0;
        for (let j = 0; j <= p; j++) a += scores[j] * values[j][g * hd + i];
        att[head * hd + i] = a / z;
      }
    }
    const o = this.mv(`${pre}.self_attn.o_proj.weight`, att);
    const h1 = h.map((v, i) => v + o[i]);
    const y = this.norm(`${pre}.post_attention_layernorm.weight`, h1);
    const gate = this.mv(`${pre}.mlp.gate_proj.weight`, y);
    const up = this.mv(`${pre}.mlp.up_proj.weight`, y);
    const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
    const down = this.mv(`${pre}.mlp.down_proj.weight`, act);
    return h1.map((v, i) => v + down[i]);
  }

  /**
   * Whole-sequence forward, layer by layer over all positions: logits[e][t] of every exit e (in
   * config.exits order) at every position t.
   */
  forward(ids: readonly number[]): Float64Array[][] {
    const c = this.config;
    let hs = ids.map((id) => this.embed(id));
    const out: Float64Array[][] = c.exits.map(() => []);
    for (let l = 0; l < c.numLayers; l++) {
      const kvs = hs.map((h, p) => this.kv(l, h, p));
      const keys = kvs.map((x) => x.k);
      const values = kvs.map((x) => x.v);
      hs = hs.map((h, p) => this.block(l, h, p, keys, values));
      const e = c.exits.indexOf(l);
      if (e >= 0) out[e] = hs.map((h) => this.exitLogits(l, h));
    }
    return out;
  }

  newCache(): ReferenceCache {
    return {
      k: Array.from({ length: this.config.numLayers }, () => []),
      v: Array.from({ length: this.config.numLayers }, () => []),
    };
  }

  /**
   * One token at the next position of `cache`, leaving after block `exitBlock` (default: the last): blocks
   * above it get keys and values from its hidden state at exitBlock (CALM state propagation). Returns the
   * logits of the exits it passed (by block) and its hidden state after each block it ran.
   */
  token(
    cache: ReferenceCache,
    id: number,
    exitBlock = this.config.numLayers - 1,
  ): { logits: Map<number, Float64Array>; hidden: Float64Array[] } {
    const c = this.config;
    const p = cache.k[0].length;
    let h = this.embed(id);
    const logits = new Map<number, Float64Array>();
    const hidden: Float64Array[] = [];
    for (let l = 0; l < c.numLayers; l++) {
      if (l > exitBlock) {
        const { k, v } = this.kv(l, hidden[exitBlock], p);
        cache.k[l].push(k);
        cache.v[l].push(v);
        continue;
      }
      const { k, v } = this.kv(l, h, p);
      cache.k[l].push(k);
      cache.v[l].push(v);
      h = this.block(l, h, p, cache.k[l], cache.v[l]);
      hidden.push(h);
      if (c.exits.includes(l)) logits.set(l, this.exitLogits(l, h));
    }
    return { logits, hidden };
  }
}
