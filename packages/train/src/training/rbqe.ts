// Training the RBQE enhancer (core's `rbqe_enhancer`) in TensorFlow.js: the same network written with tfjs
// ops (NHWC), all exits trained jointly on the sum of their per-exit mean squared errors, on random crops of
// the training images JPEG-compressed at a random quality factor from 10..50 (blind: one model for all).
// Weights convert to and from the engine's layout: conv (out, in, 3, 3) ↔ tfjs filters [3, 3, in, out];
// linear (in, out) in both.
import type { EnhancerConfig, HostTensor } from '@offramp/core';
import { enhancerTensorSpec } from '@offramp/core';
import * as tf from '@tensorflow/tfjs';
import { type GreyImage, JPEG_QUALITIES, jpegDegrade } from '../data/images.js';

export type TfWeights = Map<string, tf.Variable>;

/** Engine layout → tfjs variables. */
export function toTf(cfg: EnhancerConfig, host: Map<string, HostTensor>): TfWeights {
  const out: TfWeights = new Map();
  for (const [name, shape] of enhancerTensorSpec(cfg)) {
    const t = host.get(name);
    if (!t) throw new Error(`weight '${name}' is missing`);
    const v =
      shape.length === 4
        ? tf.tidy(() =>
            tf.tensor4d(t.data as Float32Array, shape as [number, number, number, number]).transpose([2, 3, 1, 0]),
          )
        : tf.tensor(t.data as Float32Array, shape);
    out.set(name, tf.variable(v, true, name));
    v.dispose();
  }
  return out;
}

/** tfjs variables → engine layout (reads back asynchronously: the WebGPU backend has no synchronous read in Node). */
export async function fromTf(
  cfg: EnhancerConfig,
  w: TfWeights,
): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of enhancerTensorSpec(cfg)) {
    const v = w.get(name)!;
    const t = shape.length === 4 ? v.transpose([3, 2, 0, 1]) : v.clone();
    const data = Float32Array.from(await t.data());
    t.dispose();
    out.set(name, { shape, data });
  }
  return out;
}

function conv(x: tf.Tensor4D, w: TfWeights, name: string, stride: 1 | 2, relu: boolean): tf.Tensor4D {
  const y = tf.add(
    tf.conv2d(x, w.get(`${name}.weight`) as tf.Tensor4D, stride, 1),
    w.get(`${name}.bias`)!,
  ) as tf.Tensor4D;
  return relu ? tf.relu(y) : y;
}

/** Every exit's output (B, H, W, 1) for a batch of images x (B, H, W, 1); H, W multiples of 2^levels. */
export function forwardTf(cfg: EnhancerConfig, w: TfWeights, x: tf.Tensor4D): tf.Tensor4D[] {
  const L = cfg.levels;
  const lvl: tf.Tensor4D[] = [conv(x, w, 'stem', 1, true)];
  const outs: tf.Tensor4D[] = [];
  for (let k = 0; k < L; k++) {
    lvl[k + 1] = conv(lvl[k], w, `down.${k}`, 2, true);
    for (let i = k; i >= 0; i--) {
      const j = k + 1 - i;
      const [, h, ww] = lvl[i].shape;
      const up = tf.image.resizeNearestNeighbor(lvl[i + 1], [h, ww], false, false);
      lvl[i] = conv(tf.concat([lvl[i], up], 3), w, `node.${i}.${j}`, 1, true);
    }
    const z = lvl[0];
    const pooled = tf.mean(z, [1, 2]) as tf.Tensor2D;
    const h1 = tf.relu(
      tf.add(tf.matMul(pooled, w.get(`exits.${k}.att.fc1.weight`) as tf.Tensor2D), w.get(`exits.${k}.att.fc1.bias`)!),
    );
    const s = tf.sigmoid(
      tf.add(
        tf.matMul(h1 as tf.Tensor2D, w.get(`exits.${k}.att.fc2.weight`) as tf.Tensor2D),
        w.get(`exits.${k}.att.fc2.bias`)!,
      ),
    );
    const att = tf.mul(z, tf.reshape(s, [s.shape[0], 1, 1, cfg.channels])) as tf.Tensor4D;
    outs.push(tf.add(conv(att, w, `exits.${k}.out`, 1, false), x) as tf.Tensor4D);
  }
  return outs;
}

/** Seeded random numbers in [0, 1) (mulberry32), with a state that can be saved. */
export class Rng {
  constructor(public state: number) {}
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** Clean training images and their JPEG versions at every quality factor (compressed once, whole). */
export interface TrainPool {
  clean: GreyImage[];
  /** degraded[q][i]: image i at JPEG_QUALITIES[q]. */
  degraded: GreyImage[][];
}

export function makePool(images: GreyImage[]): TrainPool {
  return { clean: images, degraded: JPEG_QUALITIES.map((q) => images.map((img) => jpegDegrade(img, q))) };
}

/**
 * A batch of random crops (size × size) at random JPEG qualities: inputs and targets (B, size, size, 1).
 * Random flips and transposes, applied to input and target alike.
 */
export function sampleBatch(
  pool: TrainPool,
  rng: Rng,
  batch: number,
  size: number,
): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(batch * size * size);
  const y = new Float32Array(batch * size * size);
  for (let b = 0; b < batch; b++) {
    const i = rng.int(pool.clean.length);
    const q = rng.int(JPEG_QUALITIES.length);
    const clean = pool.clean[i];
    const deg = pool.degraded[q][i];
    const x0 = rng.int(clean.width - size + 1);
    const y0 = rng.int(clean.height - size + 1);
    const flipX = rng.next() < 0.5;
    const flipY = rng.next() < 0.5;
    const transpose = rng.next() < 0.5;
    for (let r = 0; r < size; r++)
      for (let c = 0; c < size; c++) {
        let sr = transpose ? c : r;
        let sc = transpose ? r : c;
        if (flipY) sr = size - 1 - sr;
        if (flipX) sc = size - 1 - sc;
        const src = (y0 + sr) * clean.width + x0 + sc;
        const dst = b * size * size + r * size + c;
        x[dst] = deg.data[src];
        y[dst] = clean.data[src];
      }
  }
  return { x, y };
}

/** Sum over exits of the mean squared error against the clean target. */
export function jointLoss(outs: tf.Tensor4D[], target: tf.Tensor4D): tf.Scalar {
  return tf.addN(outs.map((o) => tf.losses.meanSquaredError(target, o))) as tf.Scalar;
}
