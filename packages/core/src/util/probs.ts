// Host-side forms of a row's class probabilities and prediction, shared by the runners (the WebGPU Runner,
// the ONNX Runtime runner, the stepped runner, cascades) so every path reports a result the same way.

/** Softmax of one row of logits (max-shifted, f32 output). */
export function softmax(z: Float32Array): Float32Array {
  let m = Number.NEGATIVE_INFINITY;
  for (const v of z) m = Math.max(m, v);
  const p = new Float32Array(z.length);
  let s = 0;
  for (let i = 0; i < z.length; i++) s += p[i] = Math.exp(z[i] - m);
  for (let i = 0; i < z.length; i++) p[i] /= s;
  return p;
}

/** Index of the largest value (the first on ties). */
export function argmax(z: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < z.length; i++) if (z[i] > z[best]) best = i;
  return best;
}
