import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { bmm, linear } from './matmul.js';

// Values and gradients of the plain-product ops against tf.matMul's own (whose gradient uses transposed
// products), on random operands and a random upstream gradient.
function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

describe('linear and bmm', () => {
  it('linear: value and both gradients equal tf.matMul', () => {
    const x = tf.randomNormal([37, 11], 0, 1, 'float32', 1) as tf.Tensor2D;
    const w = tf.randomNormal([11, 5], 0, 1, 'float32', 2) as tf.Tensor2D;
    const up = tf.randomNormal([37, 5], 0, 1, 'float32', 3);
    const ref = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.matMul(a, b), up)));
    const ours = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(linear(a as tf.Tensor2D, b as tf.Tensor2D), up)),
    );
    expect(maxDiff(linear(x, w), tf.matMul(x, w))).toBe(0);
    const [ra, rb] = ref([x, w]);
    const [oa, ob] = ours([x, w]);
    expect(oa.shape).toEqual([37, 11]);
    expect(ob.shape).toEqual([11, 5]);
    expect(maxDiff(oa, ra)).toBeLessThan(1e-4);
    expect(maxDiff(ob, rb)).toBeLessThan(1e-4);
    expect(tf.max(tf.abs(rb)).dataSync()[0]).toBeGreaterThan(0.1);
  });

  it('bmm: value and both gradients equal tf.matMul on 4-D operands', () => {
    const a = tf.randomNormal([3, 2, 7, 4], 0, 1, 'float32', 4) as tf.Tensor4D;
    const b = tf.randomNormal([3, 2, 4, 6], 0, 1, 'float32', 5) as tf.Tensor4D;
    const up = tf.randomNormal([3, 2, 7, 6], 0, 1, 'float32', 6);
    const ref = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y), up)));
    const ours = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(bmm(x as tf.Tensor4D, y as tf.Tensor4D), up)));
    expect(maxDiff(bmm(a, b), tf.matMul(a, b))).toBeLessThan(1e-5);
    const [ra, rb] = ref([a, b]);
    const [oa, ob] = ours([a, b]);
    expect(oa.shape).toEqual([3, 2, 7, 4]);
    expect(ob.shape).toEqual([3, 2, 4, 6]);
    expect(maxDiff(oa, ra)).toBeLessThan(1e-4);
    expect(maxDiff(ob, rb)).toBeLessThan(1e-4);
  });
});
