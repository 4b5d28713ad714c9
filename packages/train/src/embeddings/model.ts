// TensorFlow.js form of the multi-exit embedder (config and equations: @offramp/core's embeddings/config.ts),
// with parameters named as the engine names them, so exported weights run in the engine unchanged.
//   ids (B, T) i32, lengths (B) i32 → h per exit block (B, T, d) → masked mean (B, d) → shared head → (B, p)
import { type EncoderEmbedderConfig, embedderTensorSpec, mulberry32, randn } from '@offramp/core';
import * as tf from '@tensorflow/tfjs';
import { bmm, linear } from '../training/matmul.js';
import { geluTanh, layerNorm } from '../training/models.js';

let count = 0;

/**
 * Rows of `table` at `ids` (any shape) with the table's gradient as a scatter-add (ScatterNd sums duplicate
 * indices): tf.gather's own gradient needs UnsortedSegmentSum, which the WebAssembly backend lacks.
 */
export function gatherRows(table: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  const f = tf.customGrad(((t: tf.Tensor, i: tf.Tensor, save: (ts: tf.Tensor[]) => void) => {
    save([i]);
    return {
      value: tf.gather(t, i),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [V, d] = t.shape;
        const flat = tf.reshape(saved[0], [-1, 1]);
        return [tf.scatterND(flat, tf.reshape(dy, [-1, d]), [V, d]), tf.zerosLike(saved[0])];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(table, ids) as tf.Tensor;
}

export class TfEmbedder {
  readonly params = new Map<string, tf.Variable>();

  constructor(
    readonly config: EncoderEmbedderConfig,
    init: { seed: number } | { weights: Map<string, { shape: number[]; data: ArrayLike<number> }> },
  ) {
    const scope = `embedder${++count}`;
    const rand = 'seed' in init ? mulberry32(init.seed) : null;
    const L = config.num_layers;
    for (const [name, shape] of embedderTensorSpec(config)) {
      const n = shape.reduce((a, b) => a * b, 1);
      let data: Float32Array;
      if ('weights' in init) {
        const t = init.weights.get(name);
        if (!t || t.shape.join(',') !== shape.join(','))
          throw new Error(`TfEmbedder: parameter ${name} missing or not of shape [${shape.join(', ')}]`);
        data = Float32Array.from(t.data);
      } else if (/\.ln\d?\.weight$/.test(name)) data = new Float32Array(n).fill(1);
      else if (name.endsWith('.bias')) data = new Float32Array(n);
      else if (name === 'head.proj.weight') data = randn(n, rand!, 1 / Math.sqrt(shape[0]));
      else if (name === 'head.exit_embedding.weight') data = randn(n, rand!, 1);
      else data = randn(n, rand!, /\.(attn\.out|mlp\.fc2)\.weight$/.test(name) ? 0.02 / Math.sqrt(2 * L) : 0.02);
      this.params.set(name, tf.variable(tf.tensor(data, shape), true, `${scope}/${name}`));
    }
  }

  private p(name: string): tf.Variable {
    return this.params.get(name)!;
  }

  /** A 2-D weight (a matrix), typed as one. */
  private w(name: string): tf.Tensor2D {
    return this.params.get(name)! as unknown as tf.Tensor2D;
  }

  /** Masked mean of the hidden states after each exit block: E tensors (B, d). */
  pooled(ids: tf.Tensor2D, lengths: tf.Tensor1D): tf.Tensor2D[] {
    const c = this.config;
    const [B, T] = ids.shape;
    const d = c.hidden_size;
    const H = c.num_heads;
    const dh = d / H;
    const eps = c.layer_norm_eps ?? 1e-5;
    const tok = gatherRows(this.p('embeddings.token.weight'), ids) as tf.Tensor3D;
    const pos = tf.slice(this.p('embeddings.position.weight'), [0, 0], [T, d]);
    let h = tf.add(tok, pos) as tf.Tensor3D;
    const valid = tf.cast(tf.less(tf.range(0, T, 1, 'int32').expandDims(0), lengths.expandDims(1)), 'float32');
    const mask = tf.reshape(tf.mul(tf.sub(1, valid), -1e9), [B, 1, 1, T]);
    const weights = tf.div(valid, tf.cast(lengths, 'float32').expandDims(1)).expandDims(2); // (B, T, 1)
    const out: tf.Tensor2D[] = [];
    for (let i = 0; i < c.num_layers; i++) {
      const q = `blocks.${i}`;
      const x1 = layerNorm(h, this.p(`${q}.ln1.weight`), this.p(`${q}.ln1.bias`), eps);
      // every product is a plain one (linear/bmm) and every transpose 4-D: the fast paths of the wasm backend
      const qkv = tf.add(
        linear(tf.reshape(x1, [B * T, d]), this.w(`${q}.attn.qkv.weight`)),
        this.p(`${q}.attn.qkv.bias`),
      );
      const [qf, kf, vf] = tf.split(qkv, 3, 1) as tf.Tensor2D[];
      const heads = (x: tf.Tensor2D, perm: number[]) => tf.transpose(tf.reshape(x, [B, T, H, dh]), perm) as tf.Tensor4D;
      const qh = heads(qf, [0, 2, 1, 3]); // (B, H, T, dh)
      const khT = heads(kf, [0, 2, 3, 1]); // (B, H, dh, T)
      const vh = heads(vf, [0, 2, 1, 3]);
      const scores = tf.add(tf.mul(bmm(qh, khT), 1 / Math.sqrt(dh)), mask) as tf.Tensor4D;
      const ctx = tf.reshape(tf.transpose(bmm(tf.softmax(scores, -1) as tf.Tensor4D, vh), [0, 2, 1, 3]), [B * T, d]);
      const o = tf.add(linear(ctx as tf.Tensor2D, this.w(`${q}.attn.out.weight`)), this.p(`${q}.attn.out.bias`));
      const mid = tf.add(h, tf.reshape(o, [B, T, d]));
      const x2 = tf.reshape(layerNorm(mid, this.p(`${q}.ln2.weight`), this.p(`${q}.ln2.bias`), eps), [B * T, d]);
      const f1 = geluTanh(
        tf.add(linear(x2 as tf.Tensor2D, this.w(`${q}.mlp.fc1.weight`)), this.p(`${q}.mlp.fc1.bias`)),
      );
      const f2 = tf.add(linear(f1 as tf.Tensor2D, this.w(`${q}.mlp.fc2.weight`)), this.p(`${q}.mlp.fc2.bias`));
      h = tf.add(mid, tf.reshape(f2, [B, T, d])) as tf.Tensor3D;
      if (c.exit_blocks.includes(i)) out.push(tf.sum(tf.mul(h, weights), 1) as tf.Tensor2D);
    }
    return out;
  }

  /** The shared head at exit j: unit-length embeddings (B, p). */
  head(j: number, pooled: tf.Tensor2D): tf.Tensor2D {
    const c = this.config;
    const B = pooled.shape[0];
    const z = layerNorm(pooled, this.p('head.ln.weight'), this.p('head.ln.bias'), c.layer_norm_eps ?? 1e-5);
    const e = tf.tile(tf.slice(this.p('head.exit_embedding.weight'), [j, 0], [1, c.exit_embedding_dim]), [B, 1]);
    const u = tf.add(
      tf.matMul(tf.concat([z, e], 1) as tf.Tensor2D, this.p('head.proj.weight')),
      this.p('head.proj.bias'),
    );
    return tf.div(u, tf.maximum(tf.norm(u, 2, 1, true), 1e-12)) as tf.Tensor2D;
  }

  /** Embeddings at every exit: E tensors (B, p). */
  embed(ids: tf.Tensor2D, lengths: tf.Tensor1D): tf.Tensor2D[] {
    return this.pooled(ids, lengths).map((x, j) => this.head(j, x));
  }

  async export(): Promise<Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
    for (const [name, shape] of embedderTensorSpec(this.config)) {
      out.set(name, { dtype: 'F32', shape, data: Float32Array.from(await this.p(name).data()) });
    }
    return out;
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
  }
}

/** Pads `rows` of ids into (B, T) with `pad`; T = the longest row rounded up to a multiple of `multiple`. */
export function padBatch(
  rows: readonly number[][],
  pad: number,
  multiple = 1,
): { ids: tf.Tensor2D; lengths: tf.Tensor1D } {
  const T = Math.ceil(Math.max(...rows.map((r) => r.length)) / multiple) * multiple;
  const flat = new Int32Array(rows.length * T).fill(pad);
  rows.forEach((r, i) => {
    flat.set(r, i * T);
  });
  return {
    ids: tf.tensor2d(flat, [rows.length, T], 'int32'),
    lengths: tf.tensor1d(Int32Array.from(rows.map((r) => r.length)), 'int32'),
  };
}
