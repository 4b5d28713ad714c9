// ONNX graphs of the Llama-style decoder, written node by node with OnnxGraphWriter (no capture: the decoder's
// layers map directly onto ONNX ops). Hidden states travel as [n, t, d] (n rows, t tokens per row; both
// symbolic). The host supplies what depends on positions: RoPE cos/sin [n, t, 1, hd/2] (float64 angles,
// rounded once) and the additive attention mask [n, 1, 1, t, s] (0 = attend, −1e30 = not), so one graph
// serves ragged prompts and rows at different positions. Graph kinds:
//   prefill  blocks 0..L−1 over whole prompts: every block's K/V [n, Hkv, t, hd] and the hidden state after
//            every exit block (the host fetches what it needs)
//   step     blocks a..b for one token per row (t = 1): past K/V of the row [n, Hkv, p, hd] per block go in,
//            the token's own K/V [n, Hkv, 1, hd], the hidden state and the logits of the exit after b come out
//   kv       K/V only of blocks a..L−1 from one hidden state (CALM state propagation for skipped blocks)
//   head     exit head: RMSNorm (shared final norm or the exit's own) + LM head, [m, d] → [m, V]
import type { DecoderConfig } from '../models/decoder-config.js';
import { OnnxGraphWriter } from './onnx-writer.js';

/** Weights of one block, laid out for MatMul (x · W): transposed from the HF (out, in) layout. */
export interface OrtDecoderLayerWeights {
  ln1: Float32Array;
  ln2: Float32Array;
  /** [d, (H + 2·Hkv)·hd]: q, k, v projections side by side. */
  qkvT: Float32Array;
  /** [d, 2·Hkv·hd]: k, v projections (the propagation graph's). */
  kvT: Float32Array;
  /** [H·hd, d]. */
  oT: Float32Array;
  /** [d, 2·I]: gate, up. */
  guT: Float32Array;
  /** [I, d]. */
  downT: Float32Array;
}

export interface OrtDecoderHeadWeights {
  norm: Float32Array;
  /** [d, V]. */
  headT: Float32Array;
}

export const MASK_NEG = -1e30;

/** (rows, cols) row-major → (cols, rows). */
export function transpose2d(data: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** Row blocks (each rows_i × cols) stacked, then transposed: [Σ rows_i, cols] → [cols, Σ rows_i]. */
export function stackTransposed(parts: readonly ArrayLike<number>[], cols: number): Float32Array {
  const rows = parts.reduce((a, p) => a + p.length / cols, 0);
  const stacked = new Float32Array(rows * cols);
  let o = 0;
  for (const p of parts) {
    stacked.set(p, o);
    o += p.length;
  }
  return transpose2d(stacked, rows, cols);
}

class DecoderGraph {
  readonly w: OnnxGraphWriter;
  private readonly ln = new Map<Float32Array, string>();
  constructor(
    name: string,
    readonly c: DecoderConfig,
  ) {
    this.w = new OnnxGraphWriter(name);
  }

  init(prefix: string, data: Float32Array, dims: number[]): string {
    if (dims.length === 1) {
      const n = this.ln.get(data);
      if (n) return n;
      const m = this.w.initializer(prefix, data, dims);
      this.ln.set(data, m);
      return m;
    }
    return this.w.initializer(prefix, data, dims);
  }

  slice(x: string, start: number, end: number, axis = -1): string {
    const w = this.w;
    return w.op('Slice', [x, w.int64([start]), w.int64([end]), w.int64([axis])]);
  }

  rms(x: string, gain: Float32Array, label: string): string {
    const w = this.w;
    const ms = w.op('ReduceMean', [w.op('Pow', [x, w.float(2)])], { axes: [-1], keepdims: 1 });
    const r = w.op('Sqrt', [w.op('Add', [ms, w.float(this.c.rmsNormEps)])]);
    return w.op('Mul', [w.op('Div', [x, r]), this.init(label, gain, [gain.length])]);
  }

  /** Rotates x [n, t, heads, hd] by cos/sin [n, t, 1, hd/2]: pairs (i, i + hd/2). */
  rope(x: string, cos: string, sin: string): string {
    const w = this.w;
    const half = this.c.headDim / 2;
    const x1 = this.slice(x, 0, half);
    const x2 = this.slice(x, half, 2 * half);
    const y1 = w.op('Sub', [w.op('Mul', [x1, cos]), w.op('Mul', [x2, sin])]);
    const y2 = w.op('Add', [w.op('Mul', [x2, cos]), w.op('Mul', [x1, sin])]);
    return w.op('Concat', [y1, y2], { axis: -1 });
  }

  /** Rotated keys and values [n, Hkv, t, hd] of projections [n, t, 2·Hkv·hd] (keys, then values). */
  kvOf(proj: string, cos: string, sin: string): { k: string; v: string } {
    const w = this.w;
    const { numKvHeads: Hkv, headDim: hd } = this.c;
    const kw = Hkv * hd;
    const k4 = this.rope(w.op('Reshape', [this.slice(proj, 0, kw), w.int64([0, 0, Hkv, hd])]), cos, sin);
    const v4 = w.op('Reshape', [this.slice(proj, kw, 2 * kw), w.int64([0, 0, Hkv, hd])]);
    return {
      k: w.op('Transpose', [k4], { perm: [0, 2, 1, 3] }),
      v: w.op('Transpose', [v4], { perm: [0, 2, 1, 3] }),
    };
  }

  /**
   * Block l over x [n, t, d] with mask [n, 1, 1, t, s]; keys are past (when given, [n, Hkv, p, hd]) then the
   * tokens' own (s = p + t). Returns the block's output and the tokens' own K/V [n, Hkv, t, hd].
   */
  block(
    l: number,
    W: OrtDecoderLayerWeights,
    x: string,
    cos: string,
    sin: string,
    mask: string,
    past?: { k: string; v: string },
  ): { h: string; k: string; v: string } {
    const w = this.w;
    const { hiddenSize: d, numHeads: H, numKvHeads: Hkv, headDim: hd, intermediateSize: I } = this.c;
    const G = H / Hkv;
    const xn = this.rms(x, W.ln1, `ln1.${l}`);
    const proj = w.op('MatMul', [xn, this.init(`qkv.${l}`, W.qkvT, [d, (H + 2 * Hkv) * hd])]);
    // queries and keys rotated together: [n, t, H + Hkv, hd]
    const qk = this.rope(
      w.op('Reshape', [this.slice(proj, 0, (H + Hkv) * hd), w.int64([0, 0, H + Hkv, hd])]),
      cos,
      sin,
    );
    const q4 = this.slice(qk, 0, H, 2);
    // [n, t, Hkv, G, hd] → [n, Hkv, G, t, hd], scaled
    const q = w.op('Mul', [
      w.op('Transpose', [w.op('Reshape', [q4, w.int64([0, 0, Hkv, G, hd])])], { perm: [0, 2, 3, 1, 4] }),
      w.float(1 / Math.sqrt(hd)),
    ]);
    const v4 = w.op('Reshape', [this.slice(proj, (H + Hkv) * hd, (H + 2 * Hkv) * hd), w.int64([0, 0, Hkv, hd])]);
    const own = {
      k: w.op('Transpose', [this.slice(qk, H, H + Hkv, 2)], { perm: [0, 2, 1, 3] }),
      v: w.op('Transpose', [v4], { perm: [0, 2, 1, 3] }),
    };
    const K = past ? w.op('Concat', [past.k, own.k], { axis: 2 }) : own.k;
    const Vv = past ? w.op('Concat', [past.v, own.v], { axis: 2 }) : own.v;
    // [n, Hkv, s, hd] → [n, Hkv, 1, hd, s] (keys) and [n, Hkv, 1, s, hd] (values): broadcast over the group
    const Kt = w.op('Reshape', [w.op('Transpose', [K], { perm: [0, 1, 3, 2] }), w.int64([0, 0, 1, hd, -1])]);
    const V5 = w.op('Reshape', [Vv, w.int64([0, 0, 1, -1, hd])]);
    const scores = w.op('Add', [w.op('MatMul', [q, Kt]), mask]);
    const probs = w.op('Softmax', [scores], { axis: -1 });
    const ctx = w.op('Transpose', [w.op('MatMul', [probs, V5])], { perm: [0, 3, 1, 2, 4] }); // [n, t, Hkv, G, hd]
    const att = w.op('Reshape', [ctx, w.int64([0, 0, H * hd])]);
    const h1 = w.op('Add', [x, w.op('MatMul', [att, this.init(`o.${l}`, W.oT, [H * hd, d])])]);
    const y = this.rms(h1, W.ln2, `ln2.${l}`);
    const gu = w.op('MatMul', [y, this.init(`gate_up.${l}`, W.guT, [d, 2 * I])]);
    const g = this.slice(gu, 0, I);
    const act = w.op('Mul', [w.op('Mul', [g, w.op('Sigmoid', [g])]), this.slice(gu, I, 2 * I)]);
    const h = w.op('Add', [h1, w.op('MatMul', [act, this.init(`down.${l}`, W.downT, [I, d])])]);
    return { h, k: own.k, v: own.v };
  }

  named(x: string, name: string, dims: (number | string)[]): void {
    this.w.node('Identity', [x], {}, [name]);
    this.w.output(name, 'float32', dims);
  }

  inputs(t: number | string, s: number | string) {
    const w = this.w;
    const half = this.c.headDim / 2;
    return {
      h: w.input('h', 'float32', ['n', t, this.c.hiddenSize]),
      cos: w.input('cos', 'float32', ['n', t, 1, half]),
      sin: w.input('sin', 'float32', ['n', t, 1, half]),
      mask: w.input('mask', 'float32', ['n', 1, 1, t, s]),
    };
  }
}

/**
 * Prefill: blocks 0..L−1 over [n, t] tokens. Outputs k.{l}, v.{l} [n, Hkv, t, hd] for every block and
 * hidden.{b} [n, t, d] after every block b of `exitBlocks`.
 */
export function prefillGraph(
  c: DecoderConfig,
  layers: readonly OrtDecoderLayerWeights[],
  exitBlocks: readonly number[],
): Uint8Array {
  const g = new DecoderGraph('offramp.decoder.prefill', c);
  const io = g.inputs('t', 't');
  const { numKvHeads: Hkv, headDim: hd, hiddenSize: d } = c;
  let h = io.h;
  for (let l = 0; l < c.numLayers; l++) {
    const r = g.block(l, layers[l], h, io.cos, io.sin, io.mask);
    h = r.h;
    g.named(r.k, `k.${l}`, ['n', Hkv, 't', hd]);
    g.named(r.v, `v.${l}`, ['n', Hkv, 't', hd]);
    if (exitBlocks.includes(l)) g.named(h, `hidden.${l}`, ['n', 't', d]);
  }
  return g.w.encode();
}

/**
 * One token per row through blocks from..to (inclusive): inputs h [n, 1, d], cos/sin, mask [n, 1, 1, 1, p + 1]
 * and past_k.{l}, past_v.{l} [n, Hkv, p, hd]; outputs h_out [n, 1, d], k.{l}, v.{l} [n, Hkv, 1, hd] and the
 * logits [n, V] of the exit head after block `to` (one session call per segment, head included).
 */
export function stepGraph(
  c: DecoderConfig,
  layers: readonly OrtDecoderLayerWeights[],
  from: number,
  to: number,
  head: OrtDecoderHeadWeights,
): Uint8Array {
  const g = new DecoderGraph(`offramp.decoder.step${from}-${to}`, c);
  const io = g.inputs(1, 's');
  const { numKvHeads: Hkv, headDim: hd, hiddenSize: d } = c;
  let h = io.h;
  for (let l = from; l <= to; l++) {
    const past = {
      k: g.w.input(`past_k.${l}`, 'float32', ['n', Hkv, 'p', hd]),
      v: g.w.input(`past_v.${l}`, 'float32', ['n', Hkv, 'p', hd]),
    };
    const r = g.block(l, layers[l], h, io.cos, io.sin, io.mask, past);
    h = r.h;
    g.named(r.k, `k.${l}`, ['n', Hkv, 1, hd]);
    g.named(r.v, `v.${l}`, ['n', Hkv, 1, hd]);
  }
  g.named(h, 'h_out', ['n', 1, d]);
  const w = g.w;
  const z = w.op('MatMul', [g.rms(h, head.norm, 'norm'), g.init('head', head.headT, [d, c.vocabSize])]);
  g.named(w.op('Reshape', [z, w.int64([-1, c.vocabSize])]), 'logits', ['n', c.vocabSize]);
  return w.encode();
}

/** K/V of blocks from..L−1 from one hidden state h [n, 1, d]: outputs k.{l}, v.{l} [n, Hkv, 1, hd]. */
export function kvGraph(c: DecoderConfig, layers: readonly OrtDecoderLayerWeights[], from: number): Uint8Array {
  const g = new DecoderGraph(`offramp.decoder.kv${from}`, c);
  const w = g.w;
  const { numKvHeads: Hkv, headDim: hd, hiddenSize: d } = c;
  const half = hd / 2;
  const h = w.input('h', 'float32', ['n', 1, d]);
  const cos = w.input('cos', 'float32', ['n', 1, 1, half]);
  const sin = w.input('sin', 'float32', ['n', 1, 1, half]);
  for (let l = from; l < c.numLayers; l++) {
    const xn = g.rms(h, layers[l].ln1, `ln1.${l}`);
    const proj = w.op('MatMul', [xn, g.init(`kv.${l}`, layers[l].kvT, [d, 2 * Hkv * hd])]);
    const r = g.kvOf(proj, cos, sin);
    g.named(r.k, `k.${l}`, ['n', Hkv, 1, hd]);
    g.named(r.v, `v.${l}`, ['n', Hkv, 1, hd]);
  }
  return w.encode();
}

/** Exit head: h [m, d] → logits [m, V]. */
export function headGraph(c: DecoderConfig, head: OrtDecoderHeadWeights, block: number): Uint8Array {
  const g = new DecoderGraph(`offramp.decoder.head${block}`, c);
  const w = g.w;
  const h = w.input('h', 'float32', ['m', c.hiddenSize]);
  const z = w.op('MatMul', [g.rms(h, head.norm, 'norm'), g.init('head', head.headT, [c.hiddenSize, c.vocabSize])]);
  g.named(z, 'logits', ['m', c.vocabSize]);
  return w.encode();
}
