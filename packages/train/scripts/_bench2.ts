import { type EncoderEmbedderConfig } from '@offramp/core';
import { TfEmbedder, padBatch, gatherRows } from '../src/embeddings/model.js';
import { embedLoss } from '../src/embeddings/train.js';
import { tf } from '../src/training/backend.js';
import { initDecoderBackend } from '../src/decoder/backend.js';
const [what, d, T, B] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
await initDecoderBackend('wasm');
const rows = (L: number) => Array.from({ length: B }, (_, i) => Array.from({ length: L }, (_, k) => (i * 7 + k * 13) % 8000));
const opt = tf.train.adam(1e-3);
if (what === 'bag') {
  const table = tf.variable(tf.randomNormal([8257, d], 0, 0.02));
  for (let s = 0; s < 6; s++) {
    const t0 = performance.now();
    const loss = opt.minimize(() => {
      const bag = (r: number[][]) => { const p = padBatch(r, 8256, 16); const e = tf.sum(gatherRows(table, p.ids), 1) as tf.Tensor2D; return tf.div(e, tf.norm(e, 2, 1, true)) as tf.Tensor2D; };
      return embedLoss('last', [tf.div(tf.matMul(bag(rows(16)), bag(rows(T)), false, true), 0.05) as tf.Tensor2D]);
    }, true, [table]) as tf.Scalar;
    await loss.data();
    console.log(what, d, T, B, 'step', s, ((performance.now() - t0) / 1000).toFixed(2), 's');
  }
} else {
  const config: EncoderEmbedderConfig = { architecture: 'encoder_embedder', vocab_size: 8257, max_position: 256, hidden_size: d, num_layers: 3, num_heads: 2, intermediate_size: 2 * d, layer_norm_eps: 1e-5, pad_token_id: 8256, exit_blocks: [0, 1, 2], embedding_dim: d, exit_embedding_dim: 4, pooling: 'mean' };
  const m = new TfEmbedder(config, { seed: 1 });
  for (let s = 0; s < 4; s++) {
    const t0 = performance.now();
    const q = padBatch(rows(16), 8256, 16); const c = padBatch(rows(T), 8256, 32);
    const loss = opt.minimize(() => { const qe = m.embed(q.ids, q.lengths); const ce = m.embed(c.ids, c.lengths); return embedLoss('mose', qe.map((x, j) => tf.div(tf.matMul(x, ce[j], false, true), 0.05) as tf.Tensor2D)); }, true, [...m.params.values()]) as tf.Scalar;
    await loss.data();
    console.log(what, d, T, B, 'step', s, ((performance.now() - t0) / 1000).toFixed(2), 's');
  }
}
