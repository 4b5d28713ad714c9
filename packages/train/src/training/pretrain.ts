// Embedding pre-training for text encoders: a bag-of-embeddings classifier (mean of the token embeddings of
// the valid, non-CLS positions → linear) trained on the same split. Its embedding table initialises the
// encoder's token embeddings, which saves most of the encoder's training compute on a small machine.
//   ids (B, T) i32, lengths (B) → mean_t E[ids] (B, d) → logits (B, C)
import { mulberry32, randn } from '@offramp/core';
import * as tf from '@tensorflow/tfjs';
import { disposeBatch, makeBatch, mixSeed, permutation, type TokenExamples } from './examples.js';
import { AdamW, scheduledLr } from './optimizer.js';
import type { Progress } from './progress.js';

export interface EmbeddingPretrainOptions {
  vocabSize: number;
  dim: number;
  classes: number;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** Dropout on the pooled vector (default 0.2). */
  dropout?: number;
  progress?: Progress;
}

export interface EmbeddingPretrainResult {
  /** (vocabSize, dim) row-major. */
  embeddings: Float32Array;
  /** Accuracy of the bag-of-embeddings classifier on `test`. */
  accuracy: number;
  seconds: number;
}

function pooled(E: tf.Tensor2D, ids: tf.Tensor2D, lengths: tf.Tensor1D): tf.Tensor2D {
  const [, T] = ids.shape;
  // valid positions 1 .. length−1 (position 0 is the CLS token)
  const pos = tf.range(0, T, 1, 'int32').expandDims(0);
  const mask = tf.cast(tf.logicalAnd(tf.greater(pos, 0), tf.less(pos, lengths.expandDims(1))), 'float32');
  const sum = tf.sum(tf.mul(tf.gather(E, ids), mask.expandDims(2)), 1);
  return tf.div(sum, tf.maximum(tf.sum(mask, 1, true), 1)) as tf.Tensor2D;
}

/** Trains the bag-of-embeddings classifier and returns its embedding table and held-out accuracy. */
export async function pretrainEmbeddings(
  train: TokenExamples,
  test: TokenExamples,
  o: EmbeddingPretrainOptions,
): Promise<EmbeddingPretrainResult> {
  const t0 = performance.now();
  const rand = mulberry32(mixSeed(o.seed, 0xe3b));
  const vars = new Map<string, tf.Variable>([
    [
      'E',
      tf.variable(
        tf.tensor2d(randn(o.vocabSize * o.dim, rand, 0.1), [o.vocabSize, o.dim]),
        true,
        `pretrain${o.seed}/E`,
      ),
    ],
    [
      'W',
      tf.variable(
        tf.tensor2d(randn(o.dim * o.classes, rand, 1 / Math.sqrt(o.dim)), [o.dim, o.classes]),
        true,
        `pretrain${o.seed}/W`,
      ),
    ],
    ['b', tf.variable(tf.zeros([o.classes]), true, `pretrain${o.seed}/b`)],
  ]);
  const opt = new AdamW({ lr: o.lr, weightDecay: 0 });
  const steps = Math.floor(train.n / o.batchSize);
  const total = steps * o.epochs;
  let step = 0;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const perm = permutation(train.n, mixSeed(o.seed, 0xe3b, epoch));
    let lossSum = 0;
    for (let s = 0; s < steps; s++) {
      const batch = makeBatch(train, perm.subarray(s * o.batchSize, (s + 1) * o.batchSize));
      const input = batch.input as { ids: tf.Tensor2D; lengths: tf.Tensor1D };
      const { value, grads } = tf.variableGrads(() => {
        let h = pooled(vars.get('E')! as tf.Tensor2D, input.ids, input.lengths);
        h = tf.dropout(h, o.dropout ?? 0.2, undefined, mixSeed(o.seed, step)) as tf.Tensor2D;
        const logits = tf.add(tf.matMul(h, vars.get('W')!), vars.get('b')!) as tf.Tensor2D;
        return tf.losses.softmaxCrossEntropy(tf.oneHot(batch.labels, o.classes), logits) as tf.Scalar;
      }, [...vars.values()]);
      const named = new Map<string, tf.Tensor>();
      for (const [k, v] of vars) if (grads[v.name]) named.set(k, grads[v.name]);
      const norm = opt.apply(
        vars,
        named,
        scheduledLr(o.lr, step, { warmup: Math.max(1, Math.round(0.02 * total)), total }),
      );
      lossSum += ((await value.data()) as Float32Array)[0];
      tf.dispose([value, norm, ...Object.values(grads)]);
      disposeBatch(batch);
      step++;
      o.progress?.step(
        `embedding pre-training ep ${epoch + 1}/${o.epochs}`,
        step,
        total,
        step / ((performance.now() - t0) / 1000),
        {
          loss: (lossSum / (s + 1)).toFixed(4),
        },
      );
    }
  }
  // held-out accuracy
  let correct = 0;
  for (let s = 0; s < test.n; s += 500) {
    const idx = Int32Array.from({ length: Math.min(500, test.n - s) }, (_, i) => s + i);
    const batch = makeBatch(test, idx);
    const input = batch.input as { ids: tf.Tensor2D; lengths: tf.Tensor1D };
    const ok = tf.tidy(() => {
      const logits = tf.add(
        tf.matMul(pooled(vars.get('E')! as tf.Tensor2D, input.ids, input.lengths), vars.get('W')!),
        vars.get('b')!,
      );
      return tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), batch.labels), 'float32'));
    });
    correct += ((await ok.data()) as Float32Array)[0];
    ok.dispose();
    disposeBatch(batch);
  }
  const embeddings = Float32Array.from((await vars.get('E')!.data()) as Float32Array);
  opt.dispose();
  for (const v of vars.values()) v.dispose();
  return { embeddings, accuracy: correct / test.n, seconds: (performance.now() - t0) / 1000 };
}
