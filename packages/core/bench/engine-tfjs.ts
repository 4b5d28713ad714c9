// The encoder classifier's full-depth forward written with TensorFlow.js ops, for the engine benchmark:
// the same weights (uploaded once), the same architecture as models/encoder.ts at the last exit only.
//   ids: (B, T) token ids, lengths: (B) → logits (B, C)
// TensorFlow.js comes from ./tfjs-webgpu.js (WebGPU backend on the Dawn instance Offramp uses).
import type { EncoderClassifierConfig } from '../src/models/config.js';
import type { HostTensor } from '../src/models/index.js';
import { tf } from './tfjs-webgpu.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export class TfjsEncoder {
  private readonly w = new Map<string, tf.Tensor>();

  constructor(
    readonly cfg: EncoderClassifierConfig,
    weights: Map<string, HostTensor>,
  ) {
    if (cfg.exits.head !== 'linear')
      throw new Error(`TfjsEncoder implements exit head 'linear' only, got '${cfg.exits.head}'`);
    for (const [name, t] of weights) {
      if (!(t.data instanceof Float32Array)) throw new Error(`weight '${name}' must be float32`);
      this.w.set(name, tf.tensor(t.data, t.shape, 'float32'));
    }
  }

  private get(name: string): tf.Tensor {
    const t = this.w.get(name);
    if (!t) throw new Error(`TfjsEncoder: weight '${name}' is missing`);
    return t;
  }

  private layerNorm(x: tf.Tensor, prefix: string): tf.Tensor {
    const eps = this.cfg.layer_norm_eps ?? 1e-5;
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(
      tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), this.get(`${prefix}.weight`)),
      this.get(`${prefix}.bias`),
    );
  }

  /** x (rows, in) · W (in, out) + b. */
  private linear(x: tf.Tensor2D, prefix: string): tf.Tensor2D {
    return tf.add(tf.matMul(x, this.get(`${prefix}.weight`) as tf.Tensor2D), this.get(`${prefix}.bias`));
  }

  private gelu(x: tf.Tensor): tf.Tensor {
    const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), SQRT_2_OVER_PI);
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  }

  /** Full-depth logits for a batch of equal-bucket sequences (ids padded to T with pad_token_id). */
  forward(ids: Int32Array, lengths: Int32Array, T: number): tf.Tensor2D {
    const c = this.cfg;
    const B = lengths.length;
    const d = c.hidden_size;
    const H = c.num_heads;
    const dh = d / H;
    const last = c.exits.blocks.length - 1;
    return tf.tidy(() => {
      const idsT = tf.tensor2d(ids, [B, T], 'int32');
      const tok = tf.gather(this.get('embeddings.token.weight'), idsT); // (B, T, d)
      const pos = tf.slice(this.get('embeddings.position.weight'), [0, 0], [T, d]);
      let h = tf.reshape(tf.add(tok, pos), [B * T, d]) as tf.Tensor2D;
      // keys at positions ≥ length get −1e9 before the softmax: (B, 1, 1, T)
      const keyPos = tf.range(0, T, 1, 'int32');
      const valid = tf.less(tf.reshape(keyPos, [1, T]), tf.reshape(tf.tensor1d(lengths, 'int32'), [B, 1]));
      const mask = tf.reshape(tf.mul(tf.sub(1, tf.cast(valid, 'float32')), -1e9), [B, 1, 1, T]);
      const heads = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [B, T, H, dh]), [0, 2, 1, 3]); // (B, H, T, dh)
      for (let i = 0; i < c.num_layers; i++) {
        const p = `blocks.${i}`;
        const qkv = this.linear(this.layerNorm(h, `${p}.ln1`) as tf.Tensor2D, `${p}.attn.qkv`);
        const [q, k, v] = tf.split(qkv, 3, 1);
        const scores = tf.add(tf.mul(tf.matMul(heads(q), heads(k), false, true), 1 / Math.sqrt(dh)), mask);
        const ctx = tf.matMul(tf.softmax(scores, -1), heads(v)); // (B, H, T, dh)
        const merged = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [B * T, d]) as tf.Tensor2D;
        const mid = tf.add(h, this.linear(merged, `${p}.attn.out`)) as tf.Tensor2D;
        const f1 = this.gelu(
          this.linear(this.layerNorm(mid, `${p}.ln2`) as tf.Tensor2D, `${p}.mlp.fc1`),
        ) as tf.Tensor2D;
        h = tf.add(mid, this.linear(f1, `${p}.mlp.fc2`)) as tf.Tensor2D;
      }
      // CLS token (position 0) of each sequence → exit LayerNorm → classifier
      const cls = tf.reshape(tf.slice(tf.reshape(h, [B, T, d]), [0, 0, 0], [B, 1, d]), [B, d]) as tf.Tensor2D;
      return this.linear(this.layerNorm(cls, `exits.${last}.ln`) as tf.Tensor2D, `exits.${last}.classifier`);
    });
  }

  /** Runs the forward and waits for the logits on the host. */
  async logits(ids: Int32Array, lengths: Int32Array, T: number): Promise<Float32Array> {
    const out = this.forward(ids, lengths, T);
    try {
      return (await out.data()) as Float32Array;
    } finally {
      out.dispose();
    }
  }

  dispose(): void {
    for (const t of this.w.values()) t.dispose();
    this.w.clear();
  }
}
