// Float64 building blocks of the hand-written training code: register-blocked matrix products (PyTorch
// Linear layout, weights (out, in)), RMSNorm forward/backward, SiLU/softplus and their derivatives.
// Shapes in comments: x (M, K) is M rows of K values, row-major.
export type F64 = Float64Array;

/** C (M, N) = A (M, K) · W (N, K)ᵀ, or C += … with `accumulate`. Blocks of 4 rows × 2 columns. */
export function matmulABt(A: F64, W: F64, M: number, N: number, K: number, C: F64, accumulate = false): void {
  let i = 0;
  for (; i + 4 <= M; i += 4) {
    const a0 = i * K;
    const a1 = a0 + K;
    const a2 = a1 + K;
    const a3 = a2 + K;
    let j = 0;
    for (; j + 2 <= N; j += 2) {
      const w0 = j * K;
      const w1 = w0 + K;
      let s00 = 0;
      let s01 = 0;
      let s10 = 0;
      let s11 = 0;
      let s20 = 0;
      let s21 = 0;
      let s30 = 0;
      let s31 = 0;
      for (let k = 0; k < K; k++) {
        const x0 = W[w0 + k];
        const x1 = W[w1 + k];
        const b0 = A[a0 + k];
        const b1 = A[a1 + k];
        const b2 = A[a2 + k];
        const b3 = A[a3 + k];
        s00 += b0 * x0;
        s01 += b0 * x1;
        s10 += b1 * x0;
        s11 += b1 * x1;
        s20 += b2 * x0;
        s21 += b2 * x1;
        s30 += b3 * x0;
        s31 += b3 * x1;
      }
      const c = i * N + j;
      if (accumulate) {
        C[c] += s00;
        C[c + 1] += s01;
        C[c + N] += s10;
        C[c + N + 1] += s11;
        C[c + 2 * N] += s20;
        C[c + 2 * N + 1] += s21;
        C[c + 3 * N] += s30;
        C[c + 3 * N + 1] += s31;
      } else {
        C[c] = s00;
        C[c + 1] = s01;
        C[c + N] = s10;
        C[c + N + 1] = s11;
        C[c + 2 * N] = s20;
        C[c + 2 * N + 1] = s21;
        C[c + 3 * N] = s30;
        C[c + 3 * N + 1] = s31;
      }
    }
    for (; j < N; j++) {
      const w0 = j * K;
      for (let r = 0; r < 4; r++) {
        let s = 0;
        const a = (i + r) * K;
        for (let k = 0; k < K; k++) s += A[a + k] * W[w0 + k];
        const c = (i + r) * N + j;
        C[c] = accumulate ? C[c] + s : s;
      }
    }
  }
  for (; i < M; i++) {
    const a = i * K;
    for (let j = 0; j < N; j++) {
      const w0 = j * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += A[a + k] * W[w0 + k];
      const c = i * N + j;
      C[c] = accumulate ? C[c] + s : s;
    }
  }
}

/** (rows, cols) → (cols, rows). */
export function transpose(X: F64, rows: number, cols: number, out = new Float64Array(rows * cols)): F64 {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = X[o + c];
  }
  return out;
}

/** y (M, N) = x (M, K) · W (N, K)ᵀ + bias. */
export function linear(x: F64, W: F64, M: number, K: number, N: number, bias?: F64): F64 {
  const y = new Float64Array(M * N);
  matmulABt(x, W, M, N, K, y);
  if (bias) for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) y[m * N + n] += bias[n];
  return y;
}

/**
 * Backward of linear: dx (M, K) += dy (M, N) · W; dW (N, K) += dyᵀ · x; dBias (N) += Σ_m dy.
 * `dx` may be omitted when the input needs no gradient.
 */
export function linearBackward(
  dy: F64,
  x: F64,
  W: F64,
  M: number,
  K: number,
  N: number,
  dW: F64,
  dx?: F64,
  dBias?: F64,
): void {
  if (dx) matmulABt(dy, transpose(W, N, K), M, K, N, dx, true);
  matmulABt(transpose(dy, M, N), transpose(x, M, K), N, K, M, dW, true);
  if (dBias) for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) dBias[n] += dy[m * N + n];
}

/** y = x / sqrt(mean(x²) + eps) · w per row; returns y and the per-row reciprocal RMS. */
export function rmsNormForward(x: F64, w: F64, M: number, d: number, eps: number): { y: F64; rstd: F64 } {
  const y = new Float64Array(M * d);
  const rstd = new Float64Array(M);
  for (let m = 0; m < M; m++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += x[m * d + k] * x[m * d + k];
    const r = 1 / Math.sqrt(s / d + eps);
    rstd[m] = r;
    for (let k = 0; k < d; k++) y[m * d + k] = x[m * d + k] * r * w[k];
  }
  return { y, rstd };
}

/** Backward of rmsNormForward: dx += …, dw += … */
export function rmsNormBackward(dy: F64, x: F64, w: F64, rstd: F64, M: number, d: number, dx: F64, dw: F64): void {
  for (let m = 0; m < M; m++) {
    const r = rstd[m];
    let dot = 0;
    for (let k = 0; k < d; k++) {
      const g = dy[m * d + k];
      dw[k] += g * x[m * d + k] * r;
      dot += g * w[k] * x[m * d + k];
    }
    const c = (r * r * r * dot) / d;
    for (let k = 0; k < d; k++) dx[m * d + k] += r * dy[m * d + k] * w[k] - x[m * d + k] * c;
  }
}

export const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
export const silu = (x: number): number => x * sigmoid(x);
/** d/dx SiLU(x) = σ(x)·(1 + x·(1 − σ(x))). */
export const siluGrad = (x: number): number => {
  const s = sigmoid(x);
  return s * (1 + x * (1 - s));
};
export const softplus = (x: number): number => (x > 20 ? x : Math.log1p(Math.exp(x)));
