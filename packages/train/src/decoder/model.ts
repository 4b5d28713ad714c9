// A Llama-style decoder LM in TensorFlow.js for training with early exits: token embedding, pre-norm blocks
// (RMSNorm; causal grouped-query attention with RoPE in the rotate_half convention; SwiGLU MLP), a final
// RMSNorm and an LM head tied to the embedding. Every exit reads norm(x) after its block through the shared
// norm and head (LayerSkip style). Matrices are held as (in, out) for x·W; the export transposes them to the
// Hugging Face Linear layout (out, in).
import { randn, ValidationError } from '@offramp/core';
import * as tf from '@tensorflow/tfjs';

export interface DecoderDims {
  vocab: number;
  /** Hidden width (hidden_size). */
  d: number;
  layers: number;
  heads: number;
  /** Key/value heads (grouped-query attention): heads must be a multiple of it. */
  kvHeads: number;
  /** SwiGLU inner width (intermediate_size). */
  ffn: number;
  ropeTheta: number;
  eps: number;
  /** Longest context (max_position_embeddings). */
  maxPos: number;
}

export function checkDims(dims: DecoderDims): void {
  const ints: (keyof DecoderDims)[] = ['vocab', 'd', 'layers', 'heads', 'kvHeads', 'ffn', 'maxPos'];
  for (const k of ints) {
    if (!Number.isSafeInteger(dims[k]) || dims[k] < 1)
      throw new ValidationError(`decoder dims: ${k} is ${dims[k]}; expected a positive integer`);
  }
  if (dims.d % dims.heads !== 0)
    throw new ValidationError(`decoder dims: d ${dims.d} is not a multiple of heads ${dims.heads}`);
  if ((dims.d / dims.heads) % 2 !== 0)
    throw new ValidationError(`decoder dims: head width ${dims.d / dims.heads} must be even for RoPE`);
  if (dims.heads % dims.kvHeads !== 0)
    throw new ValidationError(`decoder dims: heads ${dims.heads} is not a multiple of kvHeads ${dims.kvHeads}`);
  if (!(dims.ropeTheta > 0) || !(dims.eps > 0))
    throw new ValidationError('decoder dims: ropeTheta and eps must be positive numbers');
}

export const headDim = (dims: DecoderDims): number => dims.d / dims.heads;

/** Names and shapes of the trainable tensors (matrices as (in, out)). */
export function paramShapes(dims: DecoderDims): [string, number[]][] {
  const hd = headDim(dims);
  const out: [string, number[]][] = [['embeddings.tokens', [dims.vocab, dims.d]]];
  for (let i = 0; i < dims.layers; i++) {
    out.push(
      [`layers.${i}.ln1`, [dims.d]],
      [`layers.${i}.wq`, [dims.d, dims.heads * hd]],
      [`layers.${i}.wk`, [dims.d, dims.kvHeads * hd]],
      [`layers.${i}.wv`, [dims.d, dims.kvHeads * hd]],
      [`layers.${i}.wo`, [dims.heads * hd, dims.d]],
      [`layers.${i}.ln2`, [dims.d]],
      [`layers.${i}.wg`, [dims.d, dims.ffn]],
      [`layers.${i}.wu`, [dims.d, dims.ffn]],
      [`layers.${i}.wd`, [dims.ffn, dims.d]],
    );
  }
  out.push(['norm', [dims.d]]);
  return out;
}

export function paramCount(dims: DecoderDims): number {
  return paramShapes(dims).reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
}

/** Seeded host-side initial values: norms 1, matrices N(0, 0.02²), output projections scaled by 1/√(2L). */
export function initValues(dims: DecoderDims, rand: () => number): Map<string, Float32Array> {
  checkDims(dims);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of paramShapes(dims)) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (shape.length === 1) out.set(name, new Float32Array(n).fill(1));
    else {
      const std = /\.(wo|wd)$/.test(name) ? 0.02 / Math.sqrt(2 * dims.layers) : 0.02;
      out.set(name, randn(n, rand, std));
    }
  }
  return out;
}

let modelCount = 0;

/** The trainable model: named tfjs variables plus the constant RoPE tables and causal mask. */
export class DecoderModel {
  readonly vars = new Map<string, tf.Variable>();
  private readonly scope = `decoder${++modelCount}`;
  private ropeCache = new Map<number, { cos: tf.Tensor; sin: tf.Tensor; mask: tf.Tensor }>();

  constructor(
    readonly dims: DecoderDims,
    values: Map<string, Float32Array>,
  ) {
    checkDims(dims);
    for (const [name, shape] of paramShapes(dims)) {
      const v = values.get(name);
      if (!v) throw new ValidationError(`decoder model: no initial value for ${name}`);
      if (v.length !== shape.reduce((a, b) => a * b, 1))
        throw new ValidationError(`decoder model: ${name} has ${v.length} values; expected shape [${shape}]`);
      this.vars.set(name, tf.variable(tf.tensor(v, shape), true, `${this.scope}/${name}`));
    }
  }

  /** Maps a tfjs variable name back to its parameter name. */
  paramName(varName: string): string {
    return varName.slice(this.scope.length + 1);
  }

  v(name: string): tf.Variable {
    const t = this.vars.get(name);
    if (!t) throw new Error(`decoder model: no parameter ${name}`);
    return t;
  }

  private tables(T: number): { cos: tf.Tensor; sin: tf.Tensor; mask: tf.Tensor } {
    let c = this.ropeCache.get(T);
    if (!c) {
      const half = headDim(this.dims) / 2;
      const cos = new Float32Array(T * half);
      const sin = new Float32Array(T * half);
      for (let t = 0; t < T; t++)
        for (let i = 0; i < half; i++) {
          const a = t * this.dims.ropeTheta ** (-(2 * i) / (2 * half));
          cos[t * half + i] = Math.cos(a);
          sin[t * half + i] = Math.sin(a);
        }
      const mask = new Float32Array(T * T);
      for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = -1e9;
      c = {
        cos: tf.keep(tf.tensor(cos, [1, 1, T, half])),
        sin: tf.keep(tf.tensor(sin, [1, 1, T, half])),
        mask: tf.keep(tf.tensor(mask, [T, T])),
      };
      this.ropeCache.set(T, c);
    }
    return c;
  }

  rmsnorm(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
    const ms = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, this.dims.eps))), w);
  }

  private rope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
    const half = headDim(this.dims) / 2;
    const [x1, x2] = tf.split(x, [half, half], -1);
    return tf.concat([tf.sub(tf.mul(x1, cos), tf.mul(x2, sin)), tf.add(tf.mul(x2, cos), tf.mul(x1, sin))], -1);
  }

  /** Attention sub-block output (before the residual add) for x of shape (B·T, d). */
  private attention(i: number, x: tf.Tensor, B: number, T: number): tf.Tensor {
    const { heads: H, kvHeads: KV } = this.dims;
    const hd = headDim(this.dims);
    const G = H / KV;
    const { cos, sin, mask } = this.tables(T);
    const h = this.rmsnorm(x, this.v(`layers.${i}.ln1`));
    const q = this.rope(
      tf.transpose(tf.reshape(tf.matMul(h, this.v(`layers.${i}.wq`)), [B, T, H, hd]), [0, 2, 1, 3]),
      cos,
      sin,
    );
    const k = this.rope(
      tf.transpose(tf.reshape(tf.matMul(h, this.v(`layers.${i}.wk`)), [B, T, KV, hd]), [0, 2, 1, 3]),
      cos,
      sin,
    );
    const v = tf.transpose(tf.reshape(tf.matMul(h, this.v(`layers.${i}.wv`)), [B, T, KV, hd]), [0, 2, 1, 3]);
    // query head h = kv·G + g reads key/value head kv: group the G query heads of one kv head along time
    const qg = tf.reshape(q, [B, KV, G * T, hd]);
    const scores = tf.reshape(tf.mul(tf.matMul(qg, k, false, true), 1 / Math.sqrt(hd)), [B, KV, G, T, T]);
    // softmax written out: the WebGPU backend's softmax kernel was among the most expensive on lavapipe
    const z = tf.add(scores, mask);
    const e = tf.exp(tf.sub(z, tf.max(z, -1, true)));
    const att = tf.reshape(tf.div(e, tf.sum(e, -1, true)), [B, KV, G * T, T]);
    const o = tf.reshape(tf.matMul(att, v), [B, H, T, hd]);
    const merged = tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [B * T, H * hd]);
    return tf.matMul(merged, this.v(`layers.${i}.wo`));
  }

  private mlp(i: number, x: tf.Tensor): tf.Tensor {
    const h = this.rmsnorm(x, this.v(`layers.${i}.ln2`));
    const g = tf.matMul(h, this.v(`layers.${i}.wg`));
    const u = tf.matMul(h, this.v(`layers.${i}.wu`));
    return tf.matMul(tf.mul(tf.mul(g, tf.sigmoid(g)), u), this.v(`layers.${i}.wd`));
  }

  /**
   * Runs the blocks on ids (B·T row-major) and returns the residual stream (B·T, d) after each block in
   * `exits` (0-based). `keep[l]`, when given, is a 0/1 per sequence: 0 skips block l for that sequence (layer
   * dropout); a block every sequence skips is not computed.
   */
  hidden(ids: Int32Array, B: number, T: number, exits: readonly number[], keep?: Float32Array[]): tf.Tensor[] {
    const { vocab, layers } = this.dims;
    if (ids.length !== B * T) throw new ValidationError(`decoder: ${ids.length} ids for B ${B} × T ${T}`);
    if (T > this.dims.maxPos) throw new ValidationError(`decoder: T ${T} exceeds maxPos ${this.dims.maxPos}`);
    for (const e of exits)
      if (!Number.isInteger(e) || e < 0 || e >= layers)
        throw new ValidationError(`decoder: exit ${e} is not a block index in [0, ${layers})`);
    const onehot = tf.oneHot(tf.tensor1d(ids, 'int32'), vocab);
    let x = tf.matMul(onehot, this.v('embeddings.tokens'));
    const out: tf.Tensor[] = [];
    const last = Math.max(...exits);
    for (let l = 0; l <= last; l++) {
      const k = keep?.[l];
      const all = !k || k.every((z) => z === 1);
      if (k?.every((z) => z === 0)) {
        // skipped by every sequence
      } else if (all) {
        x = tf.add(x, this.attention(l, x, B, T));
        x = tf.add(x, this.mlp(l, x));
      } else {
        const rows = new Float32Array(B * T);
        for (let b = 0; b < B; b++) rows.fill(k[b], b * T, (b + 1) * T);
        const m = tf.tensor2d(rows, [B * T, 1]);
        x = tf.add(x, tf.mul(m, this.attention(l, x, B, T)));
        x = tf.add(x, tf.mul(m, this.mlp(l, x)));
      }
      if (exits.includes(l)) out.push(x);
    }
    return out;
  }

  /** Logits (B·T, vocab) of an exit: the shared final norm, then the tied head. */
  head(x: tf.Tensor): tf.Tensor {
    return tf.matMul(this.rmsnorm(x, this.v('norm')), this.v('embeddings.tokens'), false, true);
  }

  /** Current values as host arrays (matrices (in, out)). */
  async values(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [name, v] of this.vars) out.set(name, (await v.data()) as Float32Array);
    return out;
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    for (const c of this.ropeCache.values()) tf.dispose([c.cos, c.sin, c.mask]);
    this.vars.clear();
    this.ropeCache.clear();
  }
}

/** Identity whose gradient is zero (the teacher side of self-distillation). */
export const detach = tf.customGrad(((x: tf.Tensor) => ({
  value: tf.clone(x),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor;

/** Mean cross-entropy (nats) of logits (N, V) against a one-hot target matrix (N, V). */
export function crossEntropy(logits: tf.Tensor, onehot: tf.Tensor): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), onehot), -1))) as tf.Scalar;
}

/** Mean KL(teacher ‖ student) (nats) over rows, teacher log-probabilities given (already detached). */
export function klDivergence(teacherLogp: tf.Tensor, studentLogits: tf.Tensor): tf.Scalar {
  const lp = tf.logSoftmax(studentLogits);
  return tf.mean(tf.sum(tf.mul(tf.exp(teacherLogp), tf.sub(teacherLogp, lp)), -1)) as tf.Scalar;
}
