// TensorFlow.js forms of the engine's three model families, built from the same ModelConfig and computing the
// same function, with parameters named as the engine names them (models/config.ts of @offramp/core).
//   encoder: ids (B, T) i32, lengths (B) i32 → per exit: CLS (B, d) → LN → [pooler tanh] → logits (B, C)
//   cnn:     x (B, Cin·H·W) NCHW-flat → NHWC convs → per exit: global average pool (B, c_i) or the map
//            flattened in NCHW order (B, c_i·H_i·W_i) (exit_pool 'flatten') → logits (B, C)
//   mlp:     x (B, input_size) → per exit: h (B, d) → logits (B, C)
// Every parameter is stored as the engine stores it, except conv filters, kept in the tfjs layout
// (kh, kw, in, out) and transposed to (out, in, kh, kw) on export. Initialisation is seeded (mulberry32).
import {
  type CnnClassifierConfig,
  cnnExitWidth,
  DEFAULT_GATE_HIDDEN,
  type EncoderClassifierConfig,
  type MlpClassifierConfig,
  type ModelConfig,
  modelTensorSpec,
  mulberry32,
  randn,
} from '@offramp/core';
import * as tf from '@tensorflow/tfjs';

/** A batch for the model: flat features (MLP, CNN) or token ids with their valid lengths (encoder). */
export type BatchInput = { x: tf.Tensor2D } | { ids: tf.Tensor2D; lengths: tf.Tensor1D };

export interface ForwardOptions {
  /** Training mode: dropout on (encoder only). Default false. */
  training?: boolean;
  /** Dropout rate in training mode (encoder; default 0.1). */
  dropout?: number;
  /** Seed of this call's dropout masks (one per step keeps runs reproducible). */
  seed?: number;
}

export interface HeadOutput {
  /** (B, C) */
  logits: tf.Tensor2D;
  /** Gate/λ logit per row (B), when the config has gate heads. */
  gate?: tf.Tensor1D;
  /** The state the classifier and gate read (B, dim): LN(CLS) for the encoder, the pooled state otherwise. */
  z: tf.Tensor2D;
}

export interface ExitOutputs {
  /** Raw head inputs per exit: CLS state (encoder), pooled state (CNN), hidden state (MLP). */
  features: tf.Tensor2D[];
  heads: HeadOutput[];
}

export interface TfModel {
  readonly config: ModelConfig;
  /** Every exported parameter, by engine name (conv filters in tfjs layout). */
  readonly params: Map<string, tf.Variable>;
  /** Width of each exit's head input. */
  readonly exitDims: number[];
  /** Backbone up to each exit: the raw head inputs. */
  features(input: BatchInput, options?: ForwardOptions): tf.Tensor2D[];
  /** Exit head j on its raw input. */
  head(j: number, feature: tf.Tensor2D, options?: ForwardOptions): HeadOutput;
  forward(input: BatchInput, options?: ForwardOptions): ExitOutputs;
  /**
   * Training-only trainable parameters that are folded away at export (the CNN's batch-norm scales and
   * shifts); empty for models without them.
   */
  readonly trainParams: Map<string, tf.Variable>;
  /** Non-trainable training state exported only through folding (batch-norm running statistics). */
  readonly buffers: Map<string, tf.Variable>;
  /** Updates running statistics with the batch statistics of the last training-mode forward. */
  commitStats(): void;
  dispose(): void;
}

export interface ModelOptions {
  /**
   * CNN only: batch normalisation after every convolution in training (batch statistics; running statistics
   * in eval mode), folded into the convolution's weight and bias at export, so the engine's model is the
   * eval-mode function.
   */
  batchNorm?: boolean;
  /** Momentum of the running statistics (default 0.9). */
  bnMomentum?: number;
}

export const BN_EPS = 1e-5;

/** Names of parameters that belong to exit heads ('exits.{j}.…'); the rest is the backbone. */
export function isHeadParam(name: string, exit?: number): boolean {
  return exit === undefined ? name.startsWith('exits.') : name.startsWith(`exits.${exit}.`);
}
export function isGateParam(name: string): boolean {
  return /^exits\.\d+\.gate\./.test(name);
}

export interface InitOptions {
  seed: number;
}

/** Seeded initial values for every tensor of `config`, in the engine's layouts. */
export function initialWeights(
  config: ModelConfig,
  { seed }: InitOptions,
): Map<string, { shape: number[]; data: Float32Array }> {
  const rand = mulberry32(seed);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const isEncoder = config.architecture === 'encoder_classifier';
  for (const [name, shape] of modelTensorSpec(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (/\.(ln\d?)\.weight$/.test(name)) data = new Float32Array(n).fill(1);
    else if (name.endsWith('.bias')) data = new Float32Array(n);
    else if (name.startsWith('embeddings.')) data = randn(n, rand, 0.02);
    else if (isEncoder && !isHeadParam(name)) {
      // BERT-style N(0, 0.02²); residual output projections scaled down by √(2·layers) (GPT-2 style)
      const c = config as EncoderClassifierConfig;
      const residualOut = /\.(attn\.out|mlp\.fc2)\.weight$/.test(name);
      data = randn(n, rand, residualOut ? 0.02 / Math.sqrt(2 * c.num_layers) : 0.02);
    } else {
      // He-normal for ReLU convs and layers, Xavier-like 1/√fan_in for heads
      const fanIn = shape.length === 4 ? shape[1] * shape[2] * shape[3] : shape[0];
      const relu = !isHeadParam(name);
      data = randn(n, rand, Math.sqrt((relu ? 2 : 1) / fanIn));
    }
    out.set(name, { shape, data });
  }
  return out;
}

/** Engine layout (out, in, kh, kw) → tfjs filter layout (kh, kw, in, out), and back. */
export function convToTf(data: Float32Array, [o, i, kh, kw]: number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let a = 0; a < o; a++)
    for (let b = 0; b < i; b++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++) out[((y * kw + x) * i + b) * o + a] = data[((a * i + b) * kh + y) * kw + x];
  return out;
}
export function convFromTf(data: Float32Array, [o, i, kh, kw]: number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let a = 0; a < o; a++)
    for (let b = 0; b < i; b++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++) out[((a * i + b) * kh + y) * kw + x] = data[((y * kw + x) * i + b) * o + a];
  return out;
}

function isConvWeight(config: ModelConfig, name: string, shape: number[]): boolean {
  return config.architecture === 'cnn_classifier' && shape.length === 4 && name.endsWith('.weight');
}

let modelCount = 0;

/**
 * Builds the tfjs model of `config`. Weights come from `weights` (engine layouts, e.g. a loaded checkpoint)
 * or are initialised with `seed`.
 */
export function createTfModel(
  config: ModelConfig,
  init: { seed: number } | { weights: Map<string, { shape: number[]; data: Float32Array | ArrayLike<number> }> },
  options: ModelOptions = {},
): TfModel {
  const source = 'weights' in init ? init.weights : initialWeights(config, init);
  const params = new Map<string, tf.Variable>();
  // tfjs variable names are global: prefix each model's with its own number
  const scope = `model${++modelCount}`;
  for (const [name, shape] of modelTensorSpec(config)) {
    const t = source.get(name);
    if (!t) throw new Error(`createTfModel: no value for parameter ${name} (shape [${shape.join(', ')}])`);
    if (t.shape.join(',') !== shape.join(',')) {
      throw new Error(
        `createTfModel: parameter ${name} has shape [${t.shape.join(', ')}]; the config implies [${shape.join(', ')}]`,
      );
    }
    const data = Float32Array.from(t.data);
    if (isConvWeight(config, name, shape)) {
      params.set(
        name,
        tf.variable(
          tf.tensor4d(convToTf(data, shape), [shape[2], shape[3], shape[1], shape[0]]),
          true,
          `${scope}/${name}`,
        ),
      );
    } else params.set(name, tf.variable(tf.tensor(data, shape), true, `${scope}/${name}`));
  }
  const trainParams = new Map<string, tf.Variable>();
  const buffers = new Map<string, tf.Variable>();
  if (options.batchNorm) {
    if (config.architecture !== 'cnn_classifier')
      throw new Error(`batchNorm is for cnn_classifier models, not ${config.architecture}`);
    const convs = ['stem.conv', ...config.channels.flatMap((_, i) => [`blocks.${i}.conv1`, `blocks.${i}.conv2`])];
    const width = [config.stem_channels, ...config.channels.flatMap((c) => [c, c])];
    convs.forEach((name, k) => {
      const c = width[k];
      const given = (suffix: string) => ('weights' in init ? init.weights.get(`${name}.bn.${suffix}`) : undefined);
      const make = (suffix: string, fill: number, trainable: boolean) => {
        const g = given(suffix);
        const data = g ? Float32Array.from(g.data) : new Float32Array(c).fill(fill);
        return tf.variable(tf.tensor1d(data), trainable, `${scope}/${name}.bn.${suffix}`);
      };
      trainParams.set(`${name}.bn.weight`, make('weight', 1, true));
      trainParams.set(`${name}.bn.bias`, make('bias', 0, true));
      buffers.set(`${name}.bn.mean`, make('mean', 0, false));
      buffers.set(`${name}.bn.var`, make('var', 1, false));
    });
  }
  let model: TfModel;
  switch (config.architecture) {
    case 'encoder_classifier':
      model = new TfEncoder(config, params);
      break;
    case 'mlp_classifier':
      model = new TfMlp(config, params);
      break;
    case 'cnn_classifier':
      model = new TfCnn(config, params, trainParams, buffers, options.bnMomentum ?? 0.9);
      break;
    default:
      throw new Error(`createTfModel: unknown architecture '${(config as { architecture: string }).architecture}'`);
  }
  return model;
}

/**
 * Parameter values in the engine's layouts (conv filters transposed back), ready for saveModelDir. Batch norm,
 * when present, is folded in (unless `foldBatchNorm` is false, as checkpoints keep it apart): W' = W·γ/√(var + ε) per output channel, b' = (b − mean)·γ/√(var + ε) + β.
 */
export async function exportWeights(
  model: TfModel,
  options: { foldBatchNorm?: boolean } = {},
): Promise<Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>> {
  const out = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  const read = async (v: tf.Variable) => Float32Array.from((await v.data()) as Float32Array);
  for (const [name, shape] of modelTensorSpec(model.config)) {
    let data = await read(model.params.get(name)!);
    const conv = name.replace(/\.(weight|bias)$/, '');
    const gamma = (options.foldBatchNorm ?? true) ? model.trainParams.get(`${conv}.bn.weight`) : undefined;
    if (gamma) {
      const g = await read(gamma);
      const beta = await read(model.trainParams.get(`${conv}.bn.bias`)!);
      const mean = await read(model.buffers.get(`${conv}.bn.mean`)!);
      const variance = await read(model.buffers.get(`${conv}.bn.var`)!);
      const scale = g.map((x, o) => x / Math.sqrt(variance[o] + BN_EPS));
      if (name.endsWith('.weight')) {
        // tfjs layout (kh, kw, in, out): the output channel is the fastest axis
        const O = scale.length;
        data = data.map((x, k) => x * scale[k % O]);
      } else data = data.map((b, o) => (b - mean[o]) * scale[o] + beta[o]);
    }
    out.set(name, {
      dtype: 'F32',
      shape,
      data: isConvWeight(model.config, name, shape) ? convFromTf(data, shape) : data,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Shared pieces

const SQRT_2_OVER_PI = 0.7978845608028654;

/** Identity whose gradient is zero: the value is used as a constant target (tfjs has no stop-gradient op). */
export const stopGradient = tf.customGrad(((x: tf.Tensor) => ({
  value: tf.clone(x),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as unknown as Parameters<typeof tf.customGrad>[0]) as <T extends tf.Tensor>(x: T) => T;

/** GELU, tanh form (as the engine computes it). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(SQRT_2_OVER_PI, tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
  });
}

/** LayerNorm over the last axis with biased variance. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const axis = x.rank - 1;
  const mean = tf.mean(x, axis, true);
  const c = tf.sub(x, mean);
  const variance = tf.mean(tf.square(c), axis, true);
  return tf.add(tf.mul(tf.mul(c, tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

function dense(x: tf.Tensor2D, p: Map<string, tf.Variable>, prefix: string): tf.Tensor2D {
  return tf.add(tf.matMul(x, p.get(`${prefix}.weight`)!), p.get(`${prefix}.bias`)!) as tf.Tensor2D;
}

abstract class TfModelBase<C extends ModelConfig> implements TfModel {
  abstract readonly exitDims: number[];
  readonly trainParams: Map<string, tf.Variable> = new Map();
  readonly buffers: Map<string, tf.Variable> = new Map();
  constructor(
    readonly config: C,
    readonly params: Map<string, tf.Variable>,
  ) {}
  commitStats(): void {}
  abstract features(input: BatchInput, options?: ForwardOptions): tf.Tensor2D[];

  /** Hook for the encoder's LayerNorm before the head. */
  protected headInput(_j: number, feature: tf.Tensor2D): tf.Tensor2D {
    return feature;
  }

  head(j: number, feature: tf.Tensor2D, _options?: ForwardOptions): HeadOutput {
    const p = this.params;
    const z = this.headInput(j, feature);
    const e = this.config.exits;
    let h = z;
    if (e.head === 'pooler') h = tf.tanh(dense(z, p, `exits.${j}.pooler`));
    const logits = dense(h, p, `exits.${j}.classifier`);
    let gate: tf.Tensor1D | undefined;
    if (e.gate) {
      const g = tf.tanh(dense(z, p, `exits.${j}.gate.fc1`));
      gate = tf.reshape(dense(g, p, `exits.${j}.gate.fc2`), [-1]) as tf.Tensor1D;
    }
    return { logits, gate, z };
  }

  forward(input: BatchInput, options?: ForwardOptions): ExitOutputs {
    const features = this.features(input, options);
    return { features, heads: features.map((f, j) => this.head(j, f, options)) };
  }

  dispose(): void {
    for (const v of [...this.params.values(), ...this.trainParams.values(), ...this.buffers.values()]) v.dispose();
  }
}

function needFeatures(input: BatchInput, arch: string, width: number): tf.Tensor2D {
  if (!('x' in input)) throw new Error(`${arch} takes flat features { x: (B, ${width}) }`);
  if (input.x.rank !== 2 || input.x.shape[1] !== width) {
    throw new Error(`${arch}: input has shape [${input.x.shape.join(', ')}]; expected (B, ${width})`);
  }
  return input.x;
}

// ---------------------------------------------------------------------------------------------------------
// MLP

class TfMlp extends TfModelBase<MlpClassifierConfig> {
  readonly exitDims: number[];
  constructor(config: MlpClassifierConfig, params: Map<string, tf.Variable>) {
    super(config, params);
    this.exitDims = config.exits.blocks.map(() => config.hidden_size);
  }
  features(input: BatchInput): tf.Tensor2D[] {
    const c = this.config;
    let h = needFeatures(input, 'mlp_classifier', c.input_size);
    const out: tf.Tensor2D[] = [];
    for (let i = 0; i < c.num_layers; i++) {
      h = tf.relu(dense(h, this.params, `blocks.${i}.fc`));
      if (c.exits.blocks.includes(i)) out.push(h);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------------
// CNN

class TfCnn extends TfModelBase<CnnClassifierConfig> {
  readonly exitDims: number[];
  private pending: { name: string; mean: tf.Tensor; variance: tf.Tensor }[] = [];
  constructor(
    config: CnnClassifierConfig,
    params: Map<string, tf.Variable>,
    trainParams: Map<string, tf.Variable>,
    buffers: Map<string, tf.Variable>,
    private readonly momentum: number,
  ) {
    super(config, params);
    for (const [k, v] of trainParams) this.trainParams.set(k, v);
    for (const [k, v] of buffers) this.buffers.set(k, v);
    this.exitDims = config.exits.blocks.map((b) => cnnExitWidth(config, b));
    if (config.strides.length !== config.channels.length) {
      throw new Error(
        `cnn_classifier: strides has ${config.strides.length} entries; channels has ${config.channels.length}`,
      );
    }
  }
  private conv(x: tf.Tensor4D, name: string, stride: number, training: boolean): tf.Tensor4D {
    const w = this.params.get(`${name}.weight`)! as unknown as tf.Tensor4D;
    // zero padding 1 on each side, as the engine pads (also for stride 2)
    let y = tf.add(tf.conv2d(x, w, stride, 1), this.params.get(`${name}.bias`)!) as tf.Tensor4D;
    const gamma = this.trainParams.get(`${name}.bn.weight`);
    if (gamma) {
      const beta = this.trainParams.get(`${name}.bn.bias`)!;
      let mean: tf.Tensor;
      let variance: tf.Tensor;
      if (training) {
        ({ mean, variance } = tf.moments(y, [0, 1, 2]));
        this.pending.push({ name, mean: tf.keep(tf.clone(mean)), variance: tf.keep(tf.clone(variance)) });
      } else {
        mean = this.buffers.get(`${name}.bn.mean`)!;
        variance = this.buffers.get(`${name}.bn.var`)!;
      }
      y = tf.add(tf.mul(tf.div(tf.sub(y, mean), tf.sqrt(tf.add(variance, BN_EPS))), gamma), beta) as tf.Tensor4D;
    }
    return tf.relu(y) as tf.Tensor4D;
  }
  commitStats(): void {
    const m = this.momentum;
    for (const p of this.pending) {
      tf.tidy(() => {
        const rm = this.buffers.get(`${p.name}.bn.mean`)!;
        const rv = this.buffers.get(`${p.name}.bn.var`)!;
        rm.assign(tf.add(tf.mul(rm, m), tf.mul(p.mean, 1 - m)));
        rv.assign(tf.add(tf.mul(rv, m), tf.mul(p.variance, 1 - m)));
      });
      tf.dispose([p.mean, p.variance]);
    }
    this.pending = [];
  }
  features(input: BatchInput, options: ForwardOptions = {}): tf.Tensor2D[] {
    const c = this.config;
    const s = c.image_size;
    const training = options.training ?? false;
    const flat = needFeatures(input, 'cnn_classifier', c.in_channels * s * s);
    let h = tf.transpose(tf.reshape(flat, [-1, c.in_channels, s, s]), [0, 2, 3, 1]) as tf.Tensor4D;
    h = this.conv(h, 'stem.conv', 1, training);
    const out: tf.Tensor2D[] = [];
    for (let i = 0; i < c.channels.length; i++) {
      h = this.conv(h, `blocks.${i}.conv1`, c.strides[i], training);
      h = this.conv(h, `blocks.${i}.conv2`, 1, training);
      if (!c.exits.blocks.includes(i)) continue;
      if ((c.exit_pool ?? 'global') === 'global') out.push(tf.mean(h, [1, 2]) as tf.Tensor2D);
      // the engine's flat NCHW order
      else out.push(tf.reshape(tf.transpose(h, [0, 3, 1, 2]), [h.shape[0], -1]) as tf.Tensor2D);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Encoder

class TfEncoder extends TfModelBase<EncoderClassifierConfig> {
  readonly exitDims: number[];
  constructor(config: EncoderClassifierConfig, params: Map<string, tf.Variable>) {
    super(config, params);
    this.exitDims = config.exits.blocks.map(() => config.hidden_size);
    if (config.hidden_size % config.num_heads !== 0) {
      throw new Error(
        `encoder_classifier: hidden_size ${config.hidden_size} must be divisible by num_heads ${config.num_heads}`,
      );
    }
  }
  protected headInput(j: number, feature: tf.Tensor2D): tf.Tensor2D {
    const eps = this.config.layer_norm_eps ?? 1e-5;
    return layerNorm(
      feature,
      this.params.get(`exits.${j}.ln.weight`)!,
      this.params.get(`exits.${j}.ln.bias`)!,
      eps,
    ) as tf.Tensor2D;
  }
  features(input: BatchInput, options: ForwardOptions = {}): tf.Tensor2D[] {
    if (!('ids' in input))
      throw new Error('encoder_classifier takes token ids { ids: (B, T) int32, lengths: (B) int32 }');
    const c = this.config;
    const p = this.params;
    const [B, T] = input.ids.shape;
    if (T > c.max_position)
      throw new Error(`encoder_classifier: ${T} positions; this model takes at most max_position = ${c.max_position}`);
    const d = c.hidden_size;
    const H = c.num_heads;
    const dh = d / H;
    const eps = c.layer_norm_eps ?? 1e-5;
    const rate = options.training ? (options.dropout ?? 0.1) : 0;
    let seed = options.seed ?? 0;
    const drop = <X extends tf.Tensor>(x: X): X => (rate > 0 ? (tf.dropout(x, rate, undefined, seed++) as X) : x);

    const tok = tf.gather(p.get('embeddings.token.weight')!, input.ids) as tf.Tensor3D;
    const pos = tf.slice(p.get('embeddings.position.weight')!, [0, 0], [T, d]);
    let h = drop(tf.add(tok, pos) as tf.Tensor3D);
    // additive key mask: 0 for keys j < length, −1e9 beyond
    const valid = tf.cast(tf.less(tf.range(0, T, 1, 'int32').expandDims(0), input.lengths.expandDims(1)), 'float32');
    const mask = tf.reshape(tf.mul(tf.sub(1, valid), -1e9), [B, 1, 1, T]);
    const scale = 1 / Math.sqrt(dh);
    const out: tf.Tensor2D[] = [];
    for (let i = 0; i < c.num_layers; i++) {
      const q = `blocks.${i}`;
      const x1 = layerNorm(h, p.get(`${q}.ln1.weight`)!, p.get(`${q}.ln1.bias`)!, eps);
      const qkv = tf.add(
        tf.matMul(tf.reshape(x1, [B * T, d]), p.get(`${q}.attn.qkv.weight`)!),
        p.get(`${q}.attn.qkv.bias`)!,
      );
      // (B·T, 3d) → (3, B, H, T, dh)
      const parts = tf.transpose(tf.reshape(qkv, [B, T, 3, H, dh]), [2, 0, 3, 1, 4]);
      const [qh, kh, vh] = tf.unstack(parts, 0) as tf.Tensor4D[];
      const scores = tf.add(tf.mul(tf.matMul(qh, kh, false, true), scale), mask);
      const probs = drop(tf.softmax(scores, -1));
      const ctx = tf.reshape(tf.transpose(tf.matMul(probs, vh), [0, 2, 1, 3]), [B * T, d]);
      const o = tf.add(tf.matMul(ctx, p.get(`${q}.attn.out.weight`)!), p.get(`${q}.attn.out.bias`)!);
      const mid = tf.add(h, drop(tf.reshape(o, [B, T, d])));
      const x2 = tf.reshape(layerNorm(mid, p.get(`${q}.ln2.weight`)!, p.get(`${q}.ln2.bias`)!, eps), [B * T, d]);
      const f1 = geluTanh(tf.add(tf.matMul(x2, p.get(`${q}.mlp.fc1.weight`)!), p.get(`${q}.mlp.fc1.bias`)!));
      const f2 = tf.add(tf.matMul(f1 as tf.Tensor2D, p.get(`${q}.mlp.fc2.weight`)!), p.get(`${q}.mlp.fc2.bias`)!);
      h = tf.add(mid, drop(tf.reshape(f2, [B, T, d]))) as tf.Tensor3D;
      if (c.exits.blocks.includes(i)) out.push(tf.reshape(tf.slice(h, [0, 0, 0], [B, 1, d]), [B, d]) as tf.Tensor2D);
    }
    return out;
  }
}

/** Default gate hidden width, re-exported for recipes. */
export const GATE_HIDDEN_DEFAULT = DEFAULT_GATE_HIDDEN;
