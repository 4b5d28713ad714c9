// Matrix products whose gradients are computed with untransposed products only.
//
// On TensorFlow.js's WebAssembly backend a product with a transposed operand (the `transposeA`/`transposeB`
// flags that tf.matMul's own gradient uses) takes a generic loop that runs 7–15× slower than the plain
// product, and a 5-D transpose is ~100× slower than a 4-D one (measured on 4,608 × 64 · 64 × 192 and the
// attention shapes of the code-search embedder: 1.3 vs 8.9–19 GFLOP/s). These ops give the same values and
// gradients as tf.matMul but write every transposed operand out first (a small weight, or a 2-D / 4-D
// transpose that the backend does fast), so the forward and backward passes are all plain products.
import * as tf from '@tensorflow/tfjs';

type GradFn = Parameters<typeof tf.customGrad>[0];

/** x (n, k) · w (k, m) → (n, m); gradients dX = dY · wᵀ, dW = xᵀ · dY, each as a plain product. */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const f = tf.customGrad(((a: tf.Tensor2D, b: tf.Tensor2D, save: (ts: tf.Tensor[]) => void) => {
    save([a, b]);
    return {
      value: tf.matMul(a, b),
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as tf.Tensor2D[];
        return [tf.matMul(dy, tf.transpose(sb)), tf.matMul(tf.transpose(sa), dy)];
      },
    };
  }) as unknown as GradFn);
  return f(x, w) as tf.Tensor2D;
}

/** Batched a (B, H, n, k) · b (B, H, k, m) → (B, H, n, m), gradients as plain batched products. */
export function bmm(a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor4D {
  const f = tf.customGrad(((x: tf.Tensor4D, y: tf.Tensor4D, save: (ts: tf.Tensor[]) => void) => {
    save([x, y]);
    return {
      value: tf.matMul(x, y),
      gradFunc: (dz: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [sx, sy] = saved as tf.Tensor4D[];
        return [tf.matMul(dz, tf.transpose(sy, [0, 1, 3, 2])), tf.matMul(tf.transpose(sx, [0, 1, 3, 2]), dz)];
      },
    };
  }) as unknown as GradFn);
  return f(a, b) as tf.Tensor4D;
}
