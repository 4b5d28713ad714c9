// RBQE-style image enhancement with nested exits (grey images, NCHW with one channel): a small UNet++-like
// network over levels 0..L (level i at 1/2^i of the image size, `channels` maps at every level).
//   x_{0,0} = relu(conv3×3(image))                           stem
//   x_{i+1,0} = relu(conv3×3 stride 2(x_{i,0}))               down.{i}
//   x_{i,j} = relu(conv3×3(concat(x_{i,j−1}, up2(x_{i+1,j−1})))) node.{i}.{j}  (nearest upsampling)
// Block k (0-based, k < L) computes x_{k+1,0} and the diagonal x_{k,1}, x_{k−1,2}, …, x_{0,k+1}; exit k is
//   out_k = conv3×3(att_k(x_{0,k+1})) + image,  att_k(z) = z · σ(W2 · relu(W1 · avgpool(z) + b1) + b2)
// (channel attention per map). Later exits reuse every node the earlier ones computed: the carried state is
// the newest node of each level and the input image, compacted with the rows when samples leave. (UNet++
// feeds a node every earlier node of its level; here a node sees the newest one, which keeps the state small.)
// The exit's "logits" are its output image (classes = H·W); the engine writes the no-reference quality score
// of that image (clamped to [0, 1]) into the exit's gate signal, which the `quality` policy reads.
//
// Weights (conv (out, in, 3, 3), linear (in, out)):
//   stem.{weight,bias} [c, 1, 3, 3], [c]           down.{i}.{weight,bias} [c, c, 3, 3], [c]   (i < L)
//   node.{i}.{j}.{weight,bias} [c, 2c, 3, 3], [c]  (j ≥ 1, i + j ≤ L)
//   exits.{k}.att.fc1.{weight,bias} [c, a], [a]    exits.{k}.att.fc2.{weight,bias} [a, c], [c]
//   exits.{k}.out.{weight,bias} [1, c, 3, 3], [1]  (k < L; a = attention_hidden)
import type { GraphBuilder, TRef } from '../engine/graph.js';
import type { EarlyExitModel, EncodedBatch, ExitHeadOut, ModelInput, ModelProgram } from '../engine/model.js';
import { ValidationError } from '../errors.js';
import { channelScale, concatChannels } from '../kernels/channel-ops.js';
import { conv2d, selectConv2dSpec } from '../kernels/conv2d.js';
import { binary, unary } from '../kernels/elementwise.js';
import { upsample2x } from '../kernels/pixel-shuffle.js';
import { globalAvgPool } from '../kernels/pool.js';
import type { Device } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { mulberry32, randn } from '../util/random.js';
import { type HostTensor, linear, uploadWeights } from './common.js';
import type { ModelConfig } from './config.js';
import { encodeFeatures, featureRows } from './mlp.js';

export interface EnhancerConfig {
  architecture: 'rbqe_enhancer';
  /** Levels below full resolution (L); the model has L exits and works on images whose sides are multiples of 2^L. */
  levels: number;
  /** Feature maps at every level. */
  channels: number;
  /** Hidden width of each exit's channel attention. */
  attention_hidden: number;
}

export function checkEnhancerConfig(cfg: EnhancerConfig): void {
  if (cfg.architecture !== 'rbqe_enhancer') {
    throw new ValidationError(`enhancer config: architecture must be 'rbqe_enhancer', got '${cfg.architecture}'`);
  }
  for (const [k, lo, hi] of [
    ['levels', 1, 6],
    ['channels', 1, 256],
    ['attention_hidden', 1, 256],
  ] as const) {
    const v = cfg[k];
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new ValidationError(`enhancer config: ${k} must be an integer in [${lo}, ${hi}], got ${v}`);
    }
  }
}

/** Every weight of the model with its shape. */
export function enhancerTensorSpec(cfg: EnhancerConfig): Map<string, number[]> {
  checkEnhancerConfig(cfg);
  const c = cfg.channels;
  const a = cfg.attention_hidden;
  const spec = new Map<string, number[]>();
  const conv = (name: string, cout: number, cin: number) => {
    spec.set(`${name}.weight`, [cout, cin, 3, 3]);
    spec.set(`${name}.bias`, [cout]);
  };
  conv('stem', c, 1);
  for (let i = 0; i < cfg.levels; i++) conv(`down.${i}`, c, c);
  for (let j = 1; j <= cfg.levels; j++) for (let i = 0; i + j <= cfg.levels; i++) conv(`node.${i}.${j}`, c, 2 * c);
  for (let k = 0; k < cfg.levels; k++) {
    spec.set(`exits.${k}.att.fc1.weight`, [c, a]);
    spec.set(`exits.${k}.att.fc1.bias`, [a]);
    spec.set(`exits.${k}.att.fc2.weight`, [a, c]);
    spec.set(`exits.${k}.att.fc2.bias`, [c]);
    conv(`exits.${k}.out`, 1, c);
  }
  return spec;
}

/** Seeded random weights (He-style N(0, 2/fan_in) for convs, small biases; output convs scaled down). */
export function randomEnhancerWeights(cfg: EnhancerConfig, seed = 1): Map<string, HostTensor> {
  const rand = mulberry32(seed);
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of enhancerTensorSpec(cfg)) {
    const n = shape.reduce((x, y) => x * y, 1);
    let data: Float32Array;
    if (name.endsWith('.bias')) data = randn(n, rand, 0.02);
    else {
      const fanIn = shape.length === 4 ? shape[1] * shape[2] * shape[3] : shape[0];
      data = randn(n, rand, Math.sqrt(2 / fanIn) * (name.includes('.out.') ? 0.1 : 1));
    }
    out.set(name, { shape, data });
  }
  return out;
}

/** Checks host weights against the config: every name present with its shape, nothing extra. */
export function checkEnhancerWeights(cfg: EnhancerConfig, tensors: Map<string, HostTensor>): void {
  const spec = enhancerTensorSpec(cfg);
  for (const [name, shape] of spec) {
    const t = tensors.get(name);
    if (!t) throw new ValidationError(`enhancer weights: tensor '${name}' is missing`);
    if (t.shape.join(',') !== shape.join(',')) {
      throw new ValidationError(`enhancer weights: '${name}' has shape [${t.shape}], expected [${shape}]`);
    }
  }
  for (const name of tensors.keys()) {
    if (!spec.has(name)) throw new ValidationError(`enhancer weights: unexpected tensor '${name}'`);
  }
}

/** FLOPs of one 3×3 conv with bias over an output of hw pixels (multiply-add = 2). */
const convFlops = (cin: number, cout: number, hw: number) => 2 * cin * 9 * cout * hw + cout * hw;

/**
 * The enhancement model for images of one size (height × width, multiples of 2^levels), on weights already
 * on the device (shared between the sizes: `dispose` leaves them to their owner unless `ownsWeights`).
 */
export class RbqeEnhancer implements EarlyExitModel {
  readonly config: ModelConfig;
  readonly numBlocks: number;
  readonly exitBlocks: readonly number[];
  readonly numClasses: number;

  constructor(
    readonly enhancer: EnhancerConfig,
    readonly weights: Map<string, Tensor>,
    readonly height: number,
    readonly width: number,
    private readonly ownsWeights = false,
  ) {
    checkEnhancerConfig(enhancer);
    const m = 2 ** enhancer.levels;
    if (!Number.isInteger(height) || !Number.isInteger(width) || height < m || width < m || height % m || width % m) {
      throw new ValidationError(
        `rbqe_enhancer: image size ${height}×${width} must be positive multiples of 2^levels = ${m} (pad the image)`,
      );
    }
    if (height < 16 || width < 16) {
      throw new ValidationError(
        `rbqe_enhancer: the quality score needs images of at least 16×16, got ${height}×${width}`,
      );
    }
    // the engine's configs are the classifiers'; this model carries its own (see `enhancer`)
    this.config = enhancer as unknown as ModelConfig;
    this.numBlocks = enhancer.levels;
    this.exitBlocks = Array.from({ length: enhancer.levels }, (_, k) => k);
    this.numClasses = height * width;
  }

  batchSize(input: ModelInput): number {
    return featureRows(input, this.numClasses, 'rbqe_enhancer');
  }
  bucket(): number {
    return 1;
  }
  encode(input: ModelInput): EncodedBatch {
    return encodeFeatures(input, this.numClasses, 'rbqe_enhancer');
  }

  program(b: GraphBuilder): ModelProgram {
    const { levels: L, channels: c, attention_hidden: a } = this.enhancer;
    const H = this.height;
    const W = this.width;
    const hwAt = (i: number) => (H >> i) * (W >> i);
    const x = b.input('x', H * W);
    const img = b.carry('image', H * W);
    const lvl = Array.from({ length: L + 1 }, (_, i) => b.carry(`level${i}`, c * hwAt(i)));
    // SwiftShader (Chromium's software adapter) takes minutes to compile the 8 × 8 conv body: 4 × 4 there
    const convSpec = selectConv2dSpec(this.weights.get('stem.weight')!.device);
    const conv = (
      src: TRef,
      dst: TRef,
      name: string,
      cin: number,
      cout: number,
      i: number,
      stride: number,
      act: 'relu' | 'identity',
    ) => {
      const hIn = H >> i;
      const wIn = W >> i;
      const ho = hIn / stride;
      const wo = wIn / stride;
      b.op(
        conv2d,
        { x: src, weight: b.weight(`${name}.weight`), bias: b.weight(`${name}.bias`), y: dst },
        (r) => ({ B: r, Cin: cin, H: hIn, W: wIn, Cout: cout, KH: 3, KW: 3, stride, pad: 1, Ho: ho, Wo: wo }),
        { spec: { bias: true, act, ...convSpec }, flopsPerRow: convFlops(cin, cout, ho * wo), label: name },
      );
    };
    return {
      stem: () => {
        b.op(unary, { x, y: b.next(img) }, (r) => ({ n: r * H * W }), { spec: { op: 'identity' }, label: 'image' });
        conv(x, b.next(lvl[0]), 'stem', 1, c, 0, 1, 'relu');
      },
      block: (k) => {
        conv(b.cur(lvl[k]), b.next(lvl[k + 1]), `down.${k}`, c, c, k, 2, 'relu');
        for (let i = k; i >= 0; i--) {
          const j = k + 1 - i;
          const hw = hwAt(i);
          const up = b.scratch(`node.${i}.${j}.up`, c * hw);
          const cat = b.scratch(`node.${i}.${j}.cat`, 2 * c * hw);
          b.op(upsample2x, { x: b.cur(lvl[i + 1]), y: up }, (r) => ({ B: r, C: c, H: H >> (i + 1), W: W >> (i + 1) }), {
            spec: { mode: 'nearest' },
            label: `node.${i}.${j}.up`,
          });
          b.op(concatChannels, { a: b.cur(lvl[i]), b: up, y: cat }, (r) => ({ B: r, Ca: c, Cb: c, HW: hw }), {
            label: `node.${i}.${j}.cat`,
          });
          conv(cat, b.next(lvl[i]), `node.${i}.${j}`, 2 * c, c, i, 1, 'relu');
        }
      },
      exit: (k): ExitHeadOut => {
        const p = `exits.${k}`;
        const hw = H * W;
        const z = b.cur(lvl[0]);
        const pooled = b.scratch(`${p}.pooled`, c);
        b.op(globalAvgPool, { x: z, y: pooled }, (r) => ({ B: r, C: c, HW: hw }), {
          flopsPerRow: c * hw,
          label: `${p}.pool`,
        });
        const h1 = linear(b, pooled, `${p}.att.fc1`, { inF: c, outF: a, rowsPerSample: 1 }, 'relu');
        const s = linear(b, h1, `${p}.att.fc2`, { inF: a, outF: c, rowsPerSample: 1 }, 'sigmoid');
        const att = b.scratch(`${p}.att`, c * hw);
        b.op(channelScale, { x: z, s, y: att }, (r) => ({ B: r, C: c, HW: hw }), {
          flopsPerRow: c * hw,
          label: `${p}.att.scale`,
        });
        const res = b.scratch(`${p}.residual`, hw);
        conv(att, res, `${p}.out`, c, 1, 0, 1, 'identity');
        const out = b.scratch(`${p}.image`, hw);
        b.op(binary, { x: res, b: b.cur(img), y: out }, (r) => ({ n: r * hw, period: Math.max(1, r * hw) }), {
          spec: { op: 'add' },
          flopsPerRow: hw,
          label: `${p}.add`,
        });
        return { logits: out, classes: hw, pooled, poolDim: c, image: { channels: 1, height: H, width: W } };
      },
    };
  }

  dispose(): void {
    if (this.ownsWeights) for (const t of this.weights.values()) t.dispose();
  }
}

/** Uploads checked host weights for an enhancer (shared by the models of every image size). */
export function uploadEnhancerWeights(
  device: Device,
  cfg: EnhancerConfig,
  tensors: Map<string, HostTensor>,
): Map<string, Tensor> {
  checkEnhancerWeights(cfg, tensors);
  return uploadWeights(device, tensors);
}

/** Side length padded up to a multiple of m. */
export const padUp = (n: number, m: number): number => Math.ceil(n / m) * m;

/** Pads a row-major plane to (ph, pw) by replicating its last row and column. */
export function padReplicate(data: ArrayLike<number>, h: number, w: number, ph: number, pw: number): Float32Array {
  const out = new Float32Array(ph * pw);
  for (let y = 0; y < ph; y++) {
    const sy = Math.min(y, h - 1);
    for (let x = 0; x < pw; x++) out[y * pw + x] = data[sy * w + Math.min(x, w - 1)];
  }
  return out;
}

/** The top-left (h, w) window of a row-major (ph, pw) plane. */
export function cropPlane(data: ArrayLike<number>, pw: number, h: number, w: number): Float32Array {
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = data[y * pw + x];
  return out;
}
