// Training examples held on the host and cut into tfjs batches: flat feature rows (images) or fixed-length
// token ids with their valid lengths (text). Seeded permutations give the same order on every run and resume.
//   features: x (n, width) f32, labels (n) → batch { x: (B, width) }, labels (B) i32
//   tokens:   ids (n, seqLen) i32, lengths (n) → batch { ids: (B, T_b), lengths: (B) } with T_b ≤ seqLen
import { mulberry32 } from '@offramp/core';
import * as tf from '@tensorflow/tfjs';
import type { BatchInput } from './models.js';

export interface FeatureExamples {
  kind: 'features';
  n: number;
  width: number;
  /** (n, width) row-major. */
  x: Float32Array;
  labels: Int32Array;
}

export interface TokenExamples {
  kind: 'tokens';
  n: number;
  /** Padded length of every row in `ids`. */
  seqLen: number;
  /** (n, seqLen) row-major, padding after the valid tokens. */
  ids: Int32Array;
  /** Valid tokens per row (≥ 1: position 0 is the CLS token). */
  lengths: Int32Array;
  labels: Int32Array;
}

export type Examples = FeatureExamples | TokenExamples;

export interface Batch {
  input: BatchInput;
  labels: tf.Tensor1D;
  size: number;
}

/** Token batches are trimmed to the longest row, rounded up to this multiple (fewer distinct shapes). */
export const TOKEN_LENGTH_QUANTUM = 32;

export function featureExamples(x: Float32Array, labels: ArrayLike<number>, width: number): FeatureExamples {
  const n = labels.length;
  if (x.length !== n * width)
    throw new Error(`featureExamples: ${x.length} values for ${n} rows of ${width}; expected ${n * width}`);
  return { kind: 'features', n, width, x, labels: Int32Array.from(labels) };
}

/**
 * Token examples from fixed-length rows (e.g. WordTokenizer.encodeBatch): the valid length of a row is the
 * position after its last non-padding id.
 */
export function tokenExamples(ids: Int32Array, labels: ArrayLike<number>, seqLen: number, padId = 0): TokenExamples {
  const n = labels.length;
  if (ids.length !== n * seqLen)
    throw new Error(`tokenExamples: ${ids.length} ids for ${n} rows of ${seqLen}; expected ${n * seqLen}`);
  const lengths = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let len = seqLen;
    while (len > 1 && ids[i * seqLen + len - 1] === padId) len--;
    lengths[i] = len;
  }
  return { kind: 'tokens', n, seqLen, ids, lengths, labels: Int32Array.from(labels) };
}

/** Rows `idx` of the examples as tfjs tensors (the caller disposes them). */
export function makeBatch(ex: Examples, idx: ArrayLike<number>): Batch {
  const B = idx.length;
  const labels = new Int32Array(B);
  for (let i = 0; i < B; i++) labels[i] = ex.labels[idx[i]];
  if (ex.kind === 'features') {
    const x = new Float32Array(B * ex.width);
    for (let i = 0; i < B; i++) x.set(ex.x.subarray(idx[i] * ex.width, (idx[i] + 1) * ex.width), i * ex.width);
    return { input: { x: tf.tensor2d(x, [B, ex.width]) }, labels: tf.tensor1d(labels, 'int32'), size: B };
  }
  let longest = 1;
  for (let i = 0; i < B; i++) longest = Math.max(longest, ex.lengths[idx[i]]);
  const T = Math.min(ex.seqLen, Math.ceil(longest / TOKEN_LENGTH_QUANTUM) * TOKEN_LENGTH_QUANTUM);
  const ids = new Int32Array(B * T);
  const lengths = new Int32Array(B);
  for (let i = 0; i < B; i++) {
    const r = idx[i];
    ids.set(ex.ids.subarray(r * ex.seqLen, r * ex.seqLen + T), i * T);
    lengths[i] = ex.lengths[r];
  }
  return {
    input: { ids: tf.tensor2d(ids, [B, T], 'int32'), lengths: tf.tensor1d(lengths, 'int32') },
    labels: tf.tensor1d(labels, 'int32'),
    size: B,
  };
}

export function disposeBatch(b: Batch): void {
  b.labels.dispose();
  if ('x' in b.input) b.input.x.dispose();
  else {
    b.input.ids.dispose();
    b.input.lengths.dispose();
  }
}

/** Mixes integers into a 32-bit seed (for per-epoch and per-step seeds derived from the run's seed). */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  }
  return h >>> 0;
}

/** A seeded permutation of 0..n-1 (Fisher-Yates with mulberry32). */
export function permutation(n: number, seed: number): Int32Array {
  const rand = mulberry32(seed);
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** The given rows of the examples as examples of their own (e.g. a validation split of a shuffled train set). */
export function subset(ex: Examples, rows: ArrayLike<number>): Examples {
  const idx = Array.from(rows);
  const labels = Int32Array.from(idx, (r) => ex.labels[r]);
  if (ex.kind === 'features') {
    const x = new Float32Array(idx.length * ex.width);
    idx.forEach((r, i) => {
      x.set(ex.x.subarray(r * ex.width, (r + 1) * ex.width), i * ex.width);
    });
    return { kind: 'features', n: idx.length, width: ex.width, x, labels };
  }
  const ids = new Int32Array(idx.length * ex.seqLen);
  idx.forEach((r, i) => {
    ids.set(ex.ids.subarray(r * ex.seqLen, (r + 1) * ex.seqLen), i * ex.seqLen);
  });
  return {
    kind: 'tokens',
    n: idx.length,
    seqLen: ex.seqLen,
    ids,
    lengths: Int32Array.from(idx, (r) => ex.lengths[r]),
    labels,
  };
}
