// Plain-TypeScript forward passes of the three model families, written from the architecture description
// (not from the kernels or the graph builders), used as the independent reference in engine tests.
import type {
  CnnClassifierConfig,
  EncoderClassifierConfig,
  MlpClassifierConfig,
  ModelConfig,
} from '../models/config.js';

type W = Map<string, { shape: number[]; data: Float32Array | Int32Array | Uint32Array }>;

export interface RefExit {
  logits: Float64Array;
  gateLogit: number;
  pooled: Float64Array;
}

const get = (w: W, name: string) => {
  const t = w.get(name);
  if (!t) throw new Error(`reference: missing ${name}`);
  return t.data;
};

function dense(
  x: Float64Array,
  rows: number,
  inF: number,
  w: W,
  prefix: string,
  act?: (v: number) => number,
): Float64Array {
  const Wt = get(w, `${prefix}.weight`);
  const b = get(w, `${prefix}.bias`);
  const outF = b.length;
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let s = b[o];
      for (let i = 0; i < inF; i++) s += x[r * inF + i] * Wt[i * outF + o];
      y[r * outF + o] = act ? act(s) : s;
    }
  }
  return y;
}

function layerNorm(x: Float64Array, rows: number, d: number, w: W, prefix: string, eps: number): Float64Array {
  const g = get(w, `${prefix}.weight`);
  const b = get(w, `${prefix}.bias`);
  const y = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[r * d + i];
    mean /= d;
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[r * d + i] - mean) ** 2;
    v /= d;
    const inv = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < d; i++) y[r * d + i] = (x[r * d + i] - mean) * inv * g[i] + b[i];
  }
  return y;
}

const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const relu = (x: number) => Math.max(0, x);

function head(cfg: ModelConfig, w: W, j: number, z: Float64Array, pooled: Float64Array, dim: number): RefExit {
  let h = z;
  if (cfg.exits.head === 'pooler') h = dense(z, 1, dim, w, `exits.${j}.pooler`, Math.tanh);
  const logits = dense(h, 1, dim, w, `exits.${j}.classifier`);
  let gateLogit = Number.NaN;
  if (cfg.exits.gate) {
    const g1 = dense(z, 1, dim, w, `exits.${j}.gate.fc1`, Math.tanh);
    gateLogit = dense(g1, 1, g1.length, w, `exits.${j}.gate.fc2`)[0];
  }
  return { logits, gateLogit, pooled };
}

export function refEncoder(cfg: EncoderClassifierConfig, w: W, ids: ArrayLike<number>): RefExit[] {
  const d = cfg.hidden_size;
  const H = cfg.num_heads;
  const dh = d / H;
  const T = ids.length;
  const eps = cfg.layer_norm_eps ?? 1e-5;
  const tok = get(w, 'embeddings.token.weight');
  const pos = get(w, 'embeddings.position.weight');
  let h: Float64Array = new Float64Array(T * d);
  for (let t = 0; t < T; t++) for (let k = 0; k < d; k++) h[t * d + k] = tok[ids[t] * d + k] + pos[t * d + k];
  const exits: RefExit[] = [];
  for (let i = 0; i < cfg.num_layers; i++) {
    const p = `blocks.${i}`;
    const a = layerNorm(h, T, d, w, `${p}.ln1`, eps);
    const qkv = dense(a, T, d, w, `${p}.attn.qkv`);
    const ctx = new Float64Array(T * d);
    for (let hd = 0; hd < H; hd++) {
      for (let q = 0; q < T; q++) {
        const scores = new Float64Array(T);
        let m = -Infinity;
        for (let k = 0; k < T; k++) {
          let s = 0;
          for (let e = 0; e < dh; e++) s += qkv[q * 3 * d + hd * dh + e] * qkv[k * 3 * d + d + hd * dh + e];
          scores[k] = s / Math.sqrt(dh);
          m = Math.max(m, scores[k]);
        }
        let z = 0;
        for (let k = 0; k < T; k++) z += scores[k] = Math.exp(scores[k] - m);
        for (let e = 0; e < dh; e++) {
          let s = 0;
          for (let k = 0; k < T; k++) s += scores[k] * qkv[k * 3 * d + 2 * d + hd * dh + e];
          ctx[q * d + hd * dh + e] = s / z;
        }
      }
    }
    const o = dense(ctx, T, d, w, `${p}.attn.out`);
    const mid = h.map((v, k) => v + o[k]);
    const b2 = layerNorm(mid, T, d, w, `${p}.ln2`, eps);
    const f1 = dense(b2, T, d, w, `${p}.mlp.fc1`, gelu);
    const f2 = dense(f1, T, cfg.intermediate_size, w, `${p}.mlp.fc2`);
    h = mid.map((v, k) => v + f2[k]);
    const j = cfg.exits.blocks.indexOf(i);
    if (j >= 0) {
      const cls = h.slice(0, d);
      exits.push(head(cfg, w, j, layerNorm(cls, 1, d, w, `exits.${j}.ln`, eps), cls, d));
    }
  }
  return exits;
}

export function refMlp(cfg: MlpClassifierConfig, w: W, x: Float32Array): RefExit[] {
  let h: Float64Array = Float64Array.from(x);
  const exits: RefExit[] = [];
  for (let i = 0; i < cfg.num_layers; i++) {
    h = dense(h, 1, h.length, w, `blocks.${i}.fc`, relu);
    const j = cfg.exits.blocks.indexOf(i);
    if (j >= 0) exits.push(head(cfg, w, j, h, h, cfg.hidden_size));
  }
  return exits;
}

function conv3x3(
  x: Float64Array,
  cin: number,
  hw: number,
  w: W,
  prefix: string,
  stride: number,
): { y: Float64Array; hw: number } {
  const Wt = get(w, `${prefix}.weight`);
  const b = get(w, `${prefix}.bias`);
  const cout = b.length;
  const ho = Math.floor((hw + 2 - 3) / stride) + 1;
  const y = new Float64Array(cout * ho * ho);
  for (let co = 0; co < cout; co++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < ho; ox++) {
        let s = b[co];
        for (let ci = 0; ci < cin; ci++) {
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              const iy = oy * stride + ky - 1;
              const ix = ox * stride + kx - 1;
              if (iy < 0 || ix < 0 || iy >= hw || ix >= hw) continue;
              s += x[(ci * hw + iy) * hw + ix] * Wt[((co * cin + ci) * 3 + ky) * 3 + kx];
            }
          }
        }
        y[(co * ho + oy) * ho + ox] = relu(s);
      }
    }
  }
  return { y, hw: ho };
}

export function refCnn(cfg: CnnClassifierConfig, w: W, x: Float32Array): RefExit[] {
  let { y: h, hw } = conv3x3(Float64Array.from(x), cfg.in_channels, cfg.image_size, w, 'stem.conv', 1);
  let c = cfg.stem_channels;
  const exits: RefExit[] = [];
  cfg.channels.forEach((cout, i) => {
    const a = conv3x3(h, c, hw, w, `blocks.${i}.conv1`, cfg.strides[i]);
    const bb = conv3x3(a.y, cout, a.hw, w, `blocks.${i}.conv2`, 1);
    h = bb.y;
    hw = bb.hw;
    c = cout;
    const j = cfg.exits.blocks.indexOf(i);
    if (j >= 0) {
      const pooled = new Float64Array(c);
      for (let k = 0; k < c; k++) {
        let s = 0;
        for (let p = 0; p < hw * hw; p++) s += h[k * hw * hw + p];
        pooled[k] = s / (hw * hw);
      }
      if ((cfg.exit_pool ?? 'global') === 'global') exits.push(head(cfg, w, j, pooled, pooled, c));
      else exits.push(head(cfg, w, j, h, pooled, c * hw * hw));
    }
  });
  return exits;
}

/** Softmax-derived exit signals of a logit vector, in float64. */
export function refSignals(logits: ArrayLike<number>): {
  maxProb: number;
  entropy: number;
  margin: number;
  argmax: number;
} {
  const m = Math.max(...Array.from(logits));
  const e = Array.from(logits, (z) => Math.exp(z - m));
  const s = e.reduce((a, b) => a + b, 0);
  const p = e.map((v) => v / s);
  const sorted = [...p].sort((a, b) => b - a);
  let argmax = 0;
  for (let i = 1; i < p.length; i++) if (p[i] > p[argmax]) argmax = i;
  return {
    maxProb: sorted[0],
    entropy: -p.reduce((a, v) => a + (v > 0 ? v * Math.log(v) : 0), 0),
    margin: sorted[0] - (sorted[1] ?? 0),
    argmax,
  };
}
