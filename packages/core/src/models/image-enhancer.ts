// Enhancing grey images of any size with the RBQE enhancer: each image is padded (edges replicated) to the
// network's multiple (2^levels), images of one padded size run together as one batch through a Runner for
// that size (one program per size, weights shared), and outputs are cropped back and clamped to [0, 1].
// The exit of every image is decided by the run's policy (for example `quality` on the GPU).
import type { ExitPolicy } from '../engine/policy.js';
import { Runner } from '../engine/runner.js';
import { ValidationError } from '../errors.js';
import type { Device } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import type { HostTensor } from './common.js';
import {
  cropPlane,
  type EnhancerConfig,
  padReplicate,
  padUp,
  RbqeEnhancer,
  uploadEnhancerWeights,
} from './enhancer.js';

export interface GreyPlane {
  width: number;
  height: number;
  /** Row-major luma, nominally in [0, 1]. */
  data: Float32Array;
}

export interface EnhancedImage extends GreyPlane {
  exitIndex: number;
  /** FLOPs this image spent, and the fraction of the last exit's. */
  flops: number;
  costFraction: number;
  /** The quality score at each exit the image reached (with `trace`). */
  scores?: number[];
}

export interface EnhanceOptions {
  policy: ExitPolicy<any>;
  mode?: 'host' | 'device' | 'auto';
  trace?: boolean;
}

export interface ImageEnhancerOptions {
  /** Largest image accepted, in pixels (default: what one storage binding of the device holds). */
  maxPixels?: number;
  /** Most images of one size per batch (default 8). */
  maxBatch?: number;
  /**
   * Most padded sizes whose compiled programs are kept (default 16): past it, the least recently used idle
   * size's runner is disposed, so a stream of images of ever new sizes (a server) holds bounded memory.
   */
  maxSizes?: number;
}

export class ImageEnhancer {
  readonly multiple: number;
  readonly maxPixels: number;
  private readonly weights: Map<string, Tensor>;
  /** Runners per padded size, in least-recently-used order (a Map keeps insertion order). */
  private readonly runners = new Map<string, { model: RbqeEnhancer; runner: Runner; busy: number }>();
  private readonly maxBatch: number;
  private readonly maxSizes: number;

  constructor(
    readonly device: Device,
    readonly config: EnhancerConfig,
    tensors: Map<string, HostTensor>,
    options: ImageEnhancerOptions = {},
  ) {
    this.weights = uploadEnhancerWeights(device, config, tensors);
    this.multiple = 2 ** config.levels;
    this.maxBatch = options.maxBatch ?? 8;
    this.maxSizes = options.maxSizes ?? 16;
    if (!Number.isInteger(this.maxSizes) || this.maxSizes < 1)
      throw new ValidationError(`ImageEnhancer: maxSizes must be a positive integer, got ${options.maxSizes}`);
    // the widest per-image tensor is the concatenation at full size: 2·channels maps
    const fit = Math.floor(device.limits.maxStorageBufferBindingSize / (4 * 2 * config.channels));
    this.maxPixels = Math.min(options.maxPixels ?? fit, fit);
  }

  /** Checks one image; the message says what is wrong and what is allowed. */
  check(img: GreyPlane, what = 'image'): void {
    const { width: w, height: h } = img;
    if (!Number.isInteger(w) || !Number.isInteger(h) || w < 16 || h < 16) {
      throw new ValidationError(`${what} is ${w}×${h}; images must be at least 16×16 pixels`);
    }
    const pw = padUp(w, this.multiple);
    const ph = padUp(h, this.multiple);
    if (pw * ph > this.maxPixels) {
      throw new ValidationError(
        `${what} is ${w}×${h} (${(w * h).toLocaleString('en-US')} pixels); at most ${this.maxPixels.toLocaleString('en-US')} pixels (for example ${Math.floor(Math.sqrt(this.maxPixels))}×${Math.floor(Math.sqrt(this.maxPixels))}) fit on this device`,
      );
    }
    if (img.data.length !== w * h) throw new ValidationError(`${what}: ${img.data.length} values for ${w}×${h} pixels`);
  }

  private runnerFor(ph: number, pw: number): { model: RbqeEnhancer; runner: Runner; busy: number } {
    const key = `${ph}x${pw}`;
    let r = this.runners.get(key);
    if (r) {
      this.runners.delete(key); // most recently used goes last
    } else {
      const model = new RbqeEnhancer(this.config, this.weights, ph, pw);
      const fit = Math.max(1, Math.floor(this.maxPixels / (ph * pw)));
      // the ONNX Runtime CPU path does not translate the enhancer: its own kernels always
      const runner = new Runner(this.device, model, { maxBatch: Math.min(this.maxBatch, fit), ort: false });
      r = { model, runner, busy: 0 };
    }
    this.runners.set(key, r);
    this.evict();
    return r;
  }

  /** Disposes the least recently used idle runners while more than maxSizes sizes are kept. */
  private evict(): void {
    for (const [key, r] of this.runners) {
      if (this.runners.size <= this.maxSizes) return;
      if (r.busy > 0) continue;
      r.runner.dispose();
      this.runners.delete(key);
    }
  }

  /** Padded sizes whose programs are kept now. */
  get cachedSizes(): number {
    return this.runners.size;
  }

  /** FLOPs of each exit for an image of this size (padded). */
  flopsPerExit(width: number, height: number): number[] {
    const { runner } = this.runnerFor(padUp(height, this.multiple), padUp(width, this.multiple));
    return runner.costs(1).atExit.slice();
  }

  async enhance(images: GreyPlane[], options: EnhanceOptions): Promise<EnhancedImage[]> {
    for (const [i, img] of images.entries()) this.check(img, images.length > 1 ? `image ${i}` : 'image');
    const groups = new Map<string, number[]>();
    for (const [i, img] of images.entries()) {
      const key = `${padUp(img.height, this.multiple)}x${padUp(img.width, this.multiple)}`;
      groups.set(key, [...(groups.get(key) ?? []), i]);
    }
    const out: EnhancedImage[] = new Array(images.length);
    for (const [key, idx] of groups) {
      const [ph, pw] = key.split('x').map(Number);
      const entry = this.runnerFor(ph, pw);
      const features = idx.map((i) => padReplicate(images[i].data, images[i].height, images[i].width, ph, pw));
      entry.busy++;
      let res: Awaited<ReturnType<Runner['run']>>;
      try {
        res = await entry.runner.run(
          { features },
          { policy: options.policy, mode: options.mode, trace: options.trace },
        );
      } finally {
        entry.busy--;
      }
      this.evict();
      for (const [k, i] of idx.entries()) {
        const s = res.samples[k];
        const { width, height } = images[i];
        const data = cropPlane(s.logits, pw, height, width).map((v) => Math.min(1, Math.max(0, v)));
        out[i] = { width, height, data, exitIndex: s.exitIndex, flops: s.flops, costFraction: s.costFraction };
        if (s.trace) out[i].scores = s.trace.gate.slice();
      }
    }
    return out;
  }

  dispose(): void {
    for (const { runner } of this.runners.values()) runner.dispose();
    this.runners.clear();
    for (const t of this.weights.values()) t.dispose();
  }
}
