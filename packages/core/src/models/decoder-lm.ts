// A Llama-style decoder LM with exits on a Device (GPU, or the CPU device running the kernels' references):
//   ids → embedding → L × [RMSNorm → GQA causal attention with RoPE → + ; RMSNorm → SwiGLU MLP → +]
//   → exit heads after chosen blocks (model.norm + lm_head shared by default, own norm / head optional)
// Every forward works on a list of tokens, each naming its cache row and position: prefill (prompts of
// different lengths), extend (k new tokens per row, causal among them, attending to the cache), a decode
// step (one token per row, per-row token-level exits with compaction) and a range of layers over any tokens
// (what self-speculative decoding needs) are the same code. The KV cache is (B, Hkv, Tmax, hd) per layer;
// a query at position p reads entries 0..p of its row, so a row rolls back by lowering its length.
// Skipped blocks of an exited token get keys and values from its hidden state at the exit (CALM state
// propagation) by default, so later tokens attend to valid entries at every layer.
// The embedding gather and the LM head run over row windows of the (V, d) table when it exceeds one
// storage binding.
import { ValidationError } from '../errors.js';
import { cachedAttention, cachedAttentionBlock } from '../kernels/attention-cached.js';
import { binary } from '../kernels/elementwise.js';
import { embedding } from '../kernels/embedding.js';
import { type ExitSignalArrays, exitSignals, readSignals, SIGNALS_PER_ROW } from '../kernels/exit-signals.js';
import { gatherRows } from '../kernels/gather-rows.js';
import { matmul, selectMatmulSpec } from '../kernels/matmul.js';
import { rmsNorm } from '../kernels/rms-norm.js';
import { ropeCacheWrite } from '../kernels/rope.js';
import { scatterRows } from '../kernels/scatter-rows.js';
import { swiglu } from '../kernels/swiglu.js';
import type { Device } from '../runtime/device.js';
import type { Kernel, Params, Spec } from '../runtime/kernel.js';
import type { Bindable, Tensor, TensorView } from '../runtime/tensor.js';
import { mulberry32 } from '../util/random.js';
import type { HostTensor } from './common.js';
import {
  checkDecoderExits,
  checkDecoderTensors,
  type DecoderConfig,
  ropeInverseFrequencies,
} from './decoder-config.js';
import { checkSampling, type SamplingOptions, sampleToken } from './sampling.js';

export interface DecoderLMOptions {
  /** Largest storage binding (bytes) for windows of the embedding / LM head tables (default: the device's). */
  maxBindingBytes?: number;
  /** Exit blocks (0-based, increasing; the last block is added). Default: config.exits. */
  exits?: number[];
  /** Most tokens one prefill / extend / score call runs at once (default MAX_DECODER_TOKENS). */
  maxTokens?: number;
}

/** Default cap on the tokens of one prefill / extend / score call (activations are kept per token). */
export const MAX_DECODER_TOKENS = 16384;

/** When a token leaves at an early exit. Signals are those of core's exitSignals kernel. */
export type DecoderExitRule =
  | { kind: 'never' }
  /** Every token leaves after this exit block. */
  | { kind: 'fixed'; block: number }
  /** Leave when the exit's max softmax probability ≥ threshold. */
  | { kind: 'maxProb'; threshold: number }
  /** Leave when the exit's softmax entropy (nats) ≤ threshold. */
  | { kind: 'entropy'; threshold: number }
  /** Leave when top-1 minus top-2 softmax probability ≥ threshold. */
  | { kind: 'margin'; threshold: number }
  /**
   * Leave when the cosine similarity of the hidden state with the previous exit's (the embedding for the
   * first exit) ≥ threshold (CALM's state saturation).
   */
  | { kind: 'saturation'; threshold: number }
  /** Any policy: given the signals of the live rows at exit block `block`, which rows leave. */
  | {
      kind: 'custom';
      decide: (signals: ExitSignalArrays, ctx: { block: number; rows: readonly number[] }) => ArrayLike<boolean>;
    };

export interface DecoderExitOptions {
  rule: DecoderExitRule;
  /**
   * Keys and values of the blocks an exited token skips: 'propagate' (default, CALM: computed from its
   * hidden state at the exit) or 'none' (left unwritten; for strategies that fill them later, e.g.
   * deferred recomputation with forwardLayers, using StepResult.exitHidden).
   */
  skip?: 'propagate' | 'none';
  /** Return each row's hidden state at the block it left from (StepResult.exitHidden). */
  keepHidden?: boolean;
  /**
   * Deferred recomputation fused into the step (EE-LLM; needs skip 'none'): earlier positions whose keys
   * and values of blocks ≥ next[i] are still owed ride in this step's dispatches — at block b the rows are
   * the tokens still running plus the owed positions with next ≤ b (hidden state carried from where they
   * stopped; each attends causally at its own position), so the owed blocks cost no dispatches of their
   * own. null: nothing owed yet. StepResult.deferred is what is owed after the step.
   */
  deferred?: DeferredKV | null;
  /**
   * Gate logits (n) at an early exit from the live rows' hidden states h (n, d) there (an exit classifier,
   * e.g. DYNAMAX's): signal `gate` becomes σ(logit) for rules that read signals. The returned tensor stays
   * the caller's (keep it until step returns); null: no gate at this exit.
   */
  gate?: (h: Tensor, n: number, ctx: { block: number; rows: readonly number[] }) => Tensor | null;
}

export interface DecoderStepResult {
  /** (B, V) logits of each row at the exit it left from. */
  logits: Float32Array;
  /** Block after which each row left (numLayers − 1 = full depth). */
  exitBlocks: Int32Array;
  /** Blocks run, summed over rows. */
  blocksRun: number;
  /** Skipped blocks whose keys and values were computed by propagation, summed over rows. */
  propagatedBlocks: number;
  /** (B, d) hidden state of each row after the block it left from (with keepHidden). */
  exitHidden?: Float32Array;
  /**
   * With exit.deferred: the positions still owed after this step (this step's exited tokens, and owed ones
   * not carried to the last block because every token left before), or null when none. The caller disposes h.
   */
  deferred?: DeferredKV | null;
  /** With exit.deferred: owed blocks computed in this step's dispatches, summed over positions. */
  deferredBlocks?: number;
}

/** Positions whose keys and values from block next[i] up are still to be computed (deferred recomputation). */
export interface DeferredKV {
  /** Cache row of each owed position. */
  rows: readonly number[];
  positions: readonly number[];
  /** First block each still has to run, non-decreasing (1 ≤ next < numLayers). */
  next: readonly number[];
  /** (n, d): each one's hidden state entering block next[i]. */
  h: Tensor;
}

export interface DecoderGenerateOptions {
  maxNewTokens: number;
  sampling?: SamplingOptions;
  /** Token ids that end a sequence (kept in the output). */
  stop?: number[];
  exit?: DecoderExitOptions;
}

export interface DecoderGenerateResult {
  tokens: number[][];
  /** Exit block of each new token (the first comes from the prefill: full depth). */
  exitBlocks: number[][];
  /** Mean fraction of the blocks run per generated token after the first (1 = no early exit). */
  depthFraction: number;
}

export interface DecoderScoreResult {
  /** Exit blocks, in order (the last is numLayers − 1). */
  exits: readonly number[];
  /** Σ −log p(next token) in nats at each exit, over all scored positions. */
  nll: Float64Array;
  /** Scored positions (the same at every exit): Σ (length − 1). */
  count: number;
  /** Per exit, −log p(next token) of every scored position, sequences end to end. */
  tokenNll: Float64Array[];
}

/**
 * How a group of a block's dispatches is recorded: the device's dispatch, or (the device loop) an indirect
 * dispatch gated on whether any row is live.
 */
export type DispatchFn = <S extends Spec>(
  kernel: Kernel<S>,
  bindings: Record<string, Bindable>,
  params: Params,
  spec?: Partial<S>,
) => void;

/** @internal See DecoderLM.internals(). */
export interface DecoderInternals {
  scope(): Scope;
  /**
   * Block l; with `gated`, the heavy dispatches a row that only needs its keys and values can skip (the
   * query projection, attention over the cache, o_proj and the MLP's three matmuls) are recorded through it;
   * the light element-wise ones (norms, adds, SwiGLU) run directly, on whatever those left in their outputs.
   */
  layer(
    s: Scope,
    l: number,
    x: Tensor,
    n: number,
    rows: Tensor,
    pos: Tensor,
    cache: DecoderCache,
    gated?: DispatchFn,
  ): Tensor;
  /** An exit's logits; with `gated`, the LM head's matmul is recorded through it. */
  exitLogits(s: Scope, h: Tensor, n: number, block: number, gated?: DispatchFn): Tensor;
  embedIds(s: Scope, ids: Tensor, n: number): Tensor;
  propagate(
    s: Scope,
    h: Tensor,
    n: number,
    rows: Tensor,
    pos: Tensor,
    cache: DecoderCache,
    from: number,
    to: number,
  ): void;
  checkRule(rule: DecoderExitRule): void;
  /** A 4-float placeholder for unused bindings. */
  dummy: Tensor;
}

interface Window {
  start: number;
  count: number;
}

interface LayerWeights {
  ln1: Tensor;
  ln2: Tensor;
  q: Tensor;
  /** [k_proj; v_proj] rows: (2·Hkv·hd, d). */
  kv: Tensor;
  o: Tensor;
  gate: Tensor;
  up: Tensor;
  down: Tensor;
}

/** Temporary tensors of one call, disposed together (keep() takes one out). */
export class Scope {
  private readonly owned = new Set<Tensor>();
  constructor(readonly device: Device) {}
  f32(shape: number[], data?: ArrayLike<number>): Tensor {
    const t = this.device.tensor(
      'f32',
      shape.map((s) => Math.max(1, s)),
      data,
    );
    this.owned.add(t);
    return t;
  }
  u32(data: ArrayLike<number>): Tensor {
    const t = this.device.tensor('u32', [Math.max(1, data.length)], data.length ? data : [0]);
    this.owned.add(t);
    return t;
  }
  keep(t: Tensor): Tensor {
    this.owned.delete(t);
    return t;
  }
  dispose(): void {
    for (const t of this.owned) t.dispose();
    this.owned.clear();
  }
}

/** Per-row keys and values of every layer, (B, Hkv, Tmax, hd) each, and each row's cached length. */
export class DecoderCache {
  /** Cached positions per row (host side; the next token of row b goes to position lengths[b]). */
  readonly lengths: Int32Array;
  constructor(
    readonly batch: number,
    readonly maxLength: number,
    readonly k: Tensor[],
    readonly v: Tensor[],
  ) {
    this.lengths = new Int32Array(batch);
  }

  /** Cached positions of a row. */
  length(row: number): number {
    this.checkRow(row, 'length');
    return this.lengths[row];
  }

  /** Drops a row's positions from `length` on (entries after a query's position are never read). */
  truncate(row: number, length: number): void {
    this.checkRow(row, 'truncate');
    if (!Number.isInteger(length) || length < 0 || length > this.lengths[row])
      throw new ValidationError(
        `truncate: row ${row} has ${this.lengths[row]} positions; length must be in [0, ${this.lengths[row]}], got ${length}`,
      );
    this.lengths[row] = length;
  }

  /** Sets a row's length (after forwardLayers wrote its positions); at most maxLength. */
  setLength(row: number, length: number): void {
    this.checkRow(row, 'setLength');
    if (!Number.isInteger(length) || length < 0 || length > this.maxLength)
      throw new ValidationError(`setLength: length must be in [0, ${this.maxLength}], got ${length}`);
    this.lengths[row] = length;
  }

  /** Host copies of one row's keys and values at layer l: (Hkv, length, hd) each. */
  async readRow(layer: number, row: number): Promise<{ k: Float32Array; v: Float32Array }> {
    this.checkRow(row, 'readRow');
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.k.length)
      throw new ValidationError(`readRow: layer must be in [0, ${this.k.length}), got ${layer}`);
    const n = this.lengths[row];
    const Hkv = this.k[layer].shape[1];
    const hd = this.k[layer].shape[3];
    const pick = (all: Float32Array) => {
      const out = new Float32Array(Hkv * n * hd);
      for (let h = 0; h < Hkv; h++) {
        const src = (row * Hkv + h) * this.maxLength * hd;
        out.set(all.subarray(src, src + n * hd), h * n * hd);
      }
      return out;
    };
    return {
      k: pick((await this.k[layer].read()) as Float32Array),
      v: pick((await this.v[layer].read()) as Float32Array),
    };
  }

  private checkRow(row: number, what: string): void {
    if (!Number.isInteger(row) || row < 0 || row >= this.batch)
      throw new ValidationError(`${what}: row must be in [0, ${this.batch}), got ${row}`);
  }

  dispose(): void {
    for (const t of [...this.k, ...this.v]) t.dispose();
  }
}

export class DecoderLM {
  readonly L: number;
  readonly d: number;
  readonly V: number;
  readonly H: number;
  readonly Hkv: number;
  readonly hd: number;
  readonly I: number;
  readonly exits: readonly number[];
  readonly maxTokens: number;
  private readonly layers: LayerWeights[];
  private readonly emb: Tensor;
  private readonly head: Tensor;
  private readonly normF: Tensor;
  private readonly exitNorms = new Map<number, Tensor>();
  private readonly exitHeads = new Map<number, Tensor>();
  private readonly windows: Window[];
  private readonly dummy: Tensor;
  /** A second placeholder, for unused outputs (a buffer may not be bound for reading and writing at once). */
  private readonly dummyOut: Tensor;
  private rope: Tensor | null = null;
  private ropePositions = 0;
  private readonly invFreq: Float64Array;

  /** Builds from HF-named host tensors (checked against the config: names, shapes, nothing extra). */
  constructor(
    readonly device: Device,
    readonly config: DecoderConfig,
    tensors: ReadonlyMap<string, HostTensor | { shape: number[]; data: ArrayLike<number> }>,
    options: DecoderLMOptions = {},
  ) {
    const c = config;
    checkDecoderTensors(c, tensors);
    this.L = c.numLayers;
    this.d = c.hiddenSize;
    this.V = c.vocabSize;
    this.H = c.numHeads;
    this.Hkv = c.numKvHeads;
    this.hd = c.headDim;
    this.I = c.intermediateSize;
    const cap = options.maxTokens ?? MAX_DECODER_TOKENS;
    if (!Number.isInteger(cap) || cap < 1)
      throw new ValidationError(`DecoderLM: maxTokens must be a positive integer, got ${cap}`);
    this.maxTokens = cap;
    this.exits = checkDecoderExits(options.exits ?? c.exits, c.numLayers, 'DecoderLM exits');
    const limit = Math.min(
      options.maxBindingBytes ?? Number.POSITIVE_INFINITY,
      device.limits.maxStorageBufferBindingSize,
    );
    const up = (name: string): Tensor => {
      const t = tensors.get(name)!;
      if (
        name !== 'model.embed_tokens.weight' &&
        name !== 'lm_head.weight' &&
        !name.startsWith('offramp.exit_head') &&
        t.data.length * 4 > limit
      )
        throw new ValidationError(
          `DecoderLM: '${name}' takes ${t.data.length * 4} bytes, over the device's largest storage binding (${limit} bytes); this model is too large for the device`,
        );
      return device.tensor('f32', t.shape, t.data, name);
    };
    const concatRows = (a: string, b: string): Tensor => {
      const x = tensors.get(a)!;
      const y = tensors.get(b)!;
      const data = new Float32Array(x.data.length + y.data.length);
      data.set(x.data);
      data.set(y.data, x.data.length);
      if (data.length * 4 > limit)
        throw new ValidationError(
          `DecoderLM: '${a}' and '${b}' together take ${data.length * 4} bytes, over the device's largest storage binding (${limit} bytes)`,
        );
      return device.tensor('f32', [x.shape[0] + y.shape[0], x.shape[1]], data, `${a}+v`);
    };
    this.layers = Array.from({ length: this.L }, (_, i) => {
      const p = `model.layers.${i}`;
      return {
        ln1: up(`${p}.input_layernorm.weight`),
        ln2: up(`${p}.post_attention_layernorm.weight`),
        q: up(`${p}.self_attn.q_proj.weight`),
        kv: concatRows(`${p}.self_attn.k_proj.weight`, `${p}.self_attn.v_proj.weight`),
        o: up(`${p}.self_attn.o_proj.weight`),
        gate: up(`${p}.mlp.gate_proj.weight`),
        up: up(`${p}.mlp.up_proj.weight`),
        down: up(`${p}.mlp.down_proj.weight`),
      };
    });
    this.emb = up('model.embed_tokens.weight');
    this.head = c.tieWordEmbeddings ? this.emb : up('lm_head.weight');
    this.normF = up('model.norm.weight');
    for (const j of this.exits.slice(0, -1)) {
      if (tensors.has(`offramp.exit_norm.${j}.weight`)) this.exitNorms.set(j, up(`offramp.exit_norm.${j}.weight`));
      if (tensors.has(`offramp.exit_head.${j}.weight`)) this.exitHeads.set(j, up(`offramp.exit_head.${j}.weight`));
    }
    this.dummy = device.tensor('f32', [4], undefined, 'dummy');
    this.dummyOut = device.tensor('f32', [4], undefined, 'dummyOut');
    this.windows = tableWindows(device, this.V, this.d, options.maxBindingBytes);
    this.invFreq = ropeInverseFrequencies(c);
  }

  /** Row windows the embedding and LM head tables are bound in (1 unless a table exceeds one binding). */
  get windowCount(): number {
    return this.windows.length;
  }

  get numLayers(): number {
    return this.L;
  }

  /** A zeroed cache for `batch` rows of at most `maxLength` positions (≤ max_position_embeddings). */
  newCache(batch: number, maxLength: number): DecoderCache {
    if (!Number.isInteger(batch) || batch < 1)
      throw new ValidationError(`newCache: batch must be a positive integer, got ${batch}`);
    if (!Number.isInteger(maxLength) || maxLength < 1 || maxLength > this.config.maxPositionEmbeddings)
      throw new ValidationError(
        `newCache: maxLength must be an integer in [1, ${this.config.maxPositionEmbeddings}] (max_position_embeddings), got ${maxLength}`,
      );
    const shape = [batch, this.Hkv, maxLength, this.hd];
    const bytes = batch * this.Hkv * maxLength * this.hd * 4;
    if (bytes > this.device.limits.maxStorageBufferBindingSize)
      throw new ValidationError(
        `newCache: a layer's cache of ${batch} × ${this.Hkv} × ${maxLength} × ${this.hd} floats (${bytes} bytes) is over the device's largest storage binding (${this.device.limits.maxStorageBufferBindingSize} bytes); use fewer rows or a shorter maxLength`,
      );
    const z = new Float32Array(batch * this.Hkv * maxLength * this.hd);
    const k = this.layers.map((_, l) => this.device.tensor('f32', shape, z, `cache.${l}.k`));
    const v = this.layers.map((_, l) => this.device.tensor('f32', shape, z, `cache.${l}.v`));
    this.ensureRope(maxLength);
    return new DecoderCache(batch, maxLength, k, v);
  }

  /** cos/sin table for positions [0, n), grown by doubling. */
  private ensureRope(n: number): void {
    if (n <= this.ropePositions) return;
    const P = Math.min(Math.max(n, 2 * this.ropePositions, 64), Math.max(n, this.config.maxPositionEmbeddings));
    const half = this.hd / 2;
    const data = new Float32Array(P * this.hd);
    for (let p = 0; p < P; p++) {
      for (let i = 0; i < half; i++) {
        const a = p * this.invFreq[i];
        data[p * this.hd + i] = Math.cos(a);
        data[p * this.hd + half + i] = Math.sin(a);
      }
    }
    this.rope?.dispose();
    this.rope = this.device.tensor('f32', [P, this.hd], data, 'rope');
    this.ropePositions = P;
  }

  private checkIds(ids: readonly number[], what: string): void {
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.V)
        throw new ValidationError(`${what} ${i}: token id ${id} is outside [0, ${this.V}) (vocab_size)`);
    });
  }

  /** The device's own dispatch (the default of every DispatchFn parameter). */
  private readonly direct: DispatchFn = (k, b, p, sp) => this.device.dispatch(k, b, p, sp);

  private linear(
    x: Bindable,
    W: Bindable,
    M: number,
    N: number,
    K: number,
    y: Bindable,
    run: DispatchFn = this.direct,
  ): void {
    const spec = selectMatmulSpec(this.device, M, N, K, false, true);
    run(
      matmul,
      { a: x, b: W, bias: this.dummy, c: y },
      { M, N, K, batch: 1, strideA: 0, strideB: 0, strideC: 0 },
      { ...spec, transB: true, bias: false },
    );
  }

  private norm(s: Scope, x: Tensor, w: Tensor, n: number, run: DispatchFn = this.direct): Tensor {
    const y = s.f32([n, this.d]);
    run(rmsNorm, { x, weight: w, y }, { rows: n, cols: this.d, eps: this.config.rmsNormEps });
    return y;
  }

  private add(s: Scope, x: Tensor, b: Tensor, n: number, run: DispatchFn = this.direct): Tensor {
    const y = s.f32([n, this.d]);
    run(binary, { x, b, y }, { n: n * this.d, period: n * this.d }, { op: 'add' });
    return y;
  }

  private embedIn(s: Scope, ids: readonly number[]): Tensor {
    return this.embedIds(s, s.u32(ids), ids.length);
  }

  /** Embeddings (n, d) of n token ids held in a device tensor (no host data, so nothing is submitted). */
  private embedIds(s: Scope, idT: Tensor, n: number): Tensor {
    const y = s.f32([n, this.d]);
    const chunk = this.windows.length > 1;
    for (const w of this.windows) {
      const table: TensorView = { tensor: this.emb, offset: w.start * this.d, length: w.count * this.d };
      this.device.dispatch(
        embedding,
        { ids: idT, table: chunk ? table : this.emb, pos: this.dummy, y },
        { n, dim: this.d, vocab: w.count, seqLen: 1, addPosition: 0, idBase: w.start },
        { chunk },
      );
    }
    return y;
  }

  /** Token embeddings (n, d) on the device; the caller disposes the tensor. */
  embed(tokens: readonly number[]): Tensor {
    if (tokens.length === 0) throw new ValidationError('embed: no tokens');
    this.checkIds(tokens, 'embed: token');
    const s = new Scope(this.device);
    try {
      return s.keep(this.embedIn(s, tokens));
    } finally {
      s.dispose();
    }
  }

  private exitLogitsIn(s: Scope, h: Tensor, n: number, block: number, run: DispatchFn = this.direct): Tensor {
    const hn = this.norm(s, h, this.exitNorms.get(block) ?? this.normF, n);
    const head = this.exitHeads.get(block) ?? this.head;
    const out = s.f32([n, this.V]);
    if (this.windows.length === 1) {
      this.linear(hn, head, n, this.V, this.d, out, run);
      return out;
    }
    const spec = selectMatmulSpec(this.device, 1, this.windows[0].count, this.d, false, true);
    for (const w of this.windows) {
      run(
        matmul,
        {
          a: hn,
          b: { tensor: head, offset: w.start * this.d, length: w.count * this.d },
          bias: this.dummy,
          c: { tensor: out, offset: w.start, length: (n - 1) * this.V + w.count },
        },
        { M: 1, N: w.count, K: this.d, batch: n, strideA: this.d, strideB: 0, strideC: this.V },
        { ...spec, transB: true, bias: false },
      );
    }
    return out;
  }

  /** Logits (n, V) of the exit after `block` for hidden states h (n, d) on the device; the caller disposes. */
  exitLogits(h: Tensor, n: number, block: number): Tensor {
    this.checkExitBlock(block, 'exitLogits');
    this.checkHidden(h, n, 'exitLogits');
    const s = new Scope(this.device);
    try {
      return s.keep(this.exitLogitsIn(s, h, n, block));
    } finally {
      s.dispose();
    }
  }

  private checkExitBlock(block: number, what: string): void {
    if (!this.exits.includes(block))
      throw new ValidationError(`${what}: block ${block} is not an exit block; exits are [${this.exits.join(', ')}]`);
  }

  private checkHidden(h: Tensor, n: number, what: string): void {
    if (!Number.isInteger(n) || n < 1 || h.length < n * this.d)
      throw new ValidationError(
        `${what}: hidden states must hold n × ${this.d} floats for n ≥ 1, got n = ${n} and ${h.length} floats`,
      );
  }

  /**
   * Block l over n tokens (cache rows / positions as u32 tensors): writes their K/V, returns h (n, d). The
   * query projection, attention, o_proj and the MLP matmuls go through `run` (see DecoderInternals.layer).
   */
  private layer(
    s: Scope,
    l: number,
    x: Tensor,
    n: number,
    rows: Tensor,
    pos: Tensor,
    cache: DecoderCache,
    run: DispatchFn = this.direct,
  ): Tensor {
    const w = this.layers[l];
    const { H, Hkv, hd } = this;
    const xn = this.norm(s, x, w.ln1, n);
    const q = s.f32([n, H * hd]);
    const kv = s.f32([n, 2 * Hkv * hd]);
    this.linear(xn, w.q, n, H * hd, this.d, q, run);
    this.linear(xn, w.kv, n, 2 * Hkv * hd, this.d, kv);
    const qr = s.f32([n, H * hd]);
    const dims = { n, H, Hkv, hd, B: cache.batch, Tmax: cache.maxLength };
    this.device.dispatch(
      ropeCacheWrite,
      { q, kv, pos, rows, rope: this.rope!, qOut: qr, kCache: cache.k[l], vCache: cache.v[l] },
      { ...dims, P: this.ropePositions },
      { withQ: true },
    );
    const att = s.f32([n, H * hd]);
    run(
      cachedAttention,
      { q: qr, rows, pos, kCache: cache.k[l], vCache: cache.v[l], out: att },
      { ...dims, scale: 1 / Math.sqrt(hd) },
      { qb: cachedAttentionBlock(H / Hkv), headDim4: Math.ceil(hd / 4) },
    );
    const o = s.f32([n, this.d]);
    this.linear(att, w.o, n, this.d, H * hd, o, run);
    const h1 = this.add(s, x, o, n);
    const hn = this.norm(s, h1, w.ln2, n);
    const g = s.f32([n, this.I]);
    const u = s.f32([n, this.I]);
    this.linear(hn, w.gate, n, this.I, this.d, g, run);
    this.linear(hn, w.up, n, this.I, this.d, u, run);
    const a = s.f32([n, this.I]);
    this.device.dispatch(swiglu, { gate: g, up: u, y: a }, { n: n * this.I });
    const dn = s.f32([n, this.d]);
    this.linear(a, w.down, n, this.d, this.I, dn, run);
    return this.add(s, h1, dn, n);
  }

  /** Keys and values of layers [from, to) from hidden states h (n, d) (CALM propagation; no query side). */
  private propagateIn(
    s: Scope,
    h: Tensor,
    n: number,
    rows: Tensor,
    pos: Tensor,
    cache: DecoderCache,
    from: number,
    to: number,
  ): void {
    const { H, Hkv, hd } = this;
    for (let l = from; l < to; l++) {
      const w = this.layers[l];
      const xn = this.norm(s, h, w.ln1, n);
      const kv = s.f32([n, 2 * Hkv * hd]);
      this.linear(xn, w.kv, n, 2 * Hkv * hd, this.d, kv);
      this.device.dispatch(
        ropeCacheWrite,
        { q: this.dummy, kv, pos, rows, rope: this.rope!, qOut: this.dummyOut, kCache: cache.k[l], vCache: cache.v[l] },
        { n, H, Hkv, hd, B: cache.batch, Tmax: cache.maxLength, P: this.ropePositions },
        { withQ: false },
      );
    }
  }

  private checkTokens(cache: DecoderCache, rows: readonly number[], positions: readonly number[], what: string): void {
    if (rows.length !== positions.length)
      throw new ValidationError(`${what}: ${rows.length} rows but ${positions.length} positions`);
    rows.forEach((r, i) => {
      if (!Number.isInteger(r) || r < 0 || r >= cache.batch)
        throw new ValidationError(`${what}: token ${i} names row ${r}; rows are [0, ${cache.batch})`);
      const p = positions[i];
      if (!Number.isInteger(p) || p < 0 || p >= cache.maxLength)
        throw new ValidationError(
          `${what}: token ${i} has position ${p}; positions are [0, ${cache.maxLength}) (the cache's maxLength)`,
        );
    });
  }

  private checkRange(from: number, to: number, what: string): void {
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > this.L || from > to)
      throw new ValidationError(`${what}: layer range [${from}, ${to}) must satisfy 0 ≤ from ≤ to ≤ ${this.L}`);
  }

  /**
   * Runs blocks [from, to) on hidden states h (n, d) of n tokens at (rows[i], positions[i]), writing their
   * keys and values into `cache` (positions must be consecutive per row, every earlier position of the row
   * filled at these layers). Returns the hidden states after block to − 1 (a new tensor the caller disposes;
   * h itself when from = to). Does not change cache lengths (see setLength).
   */
  forwardLayers(
    h: Tensor,
    cache: DecoderCache,
    rows: readonly number[],
    positions: readonly number[],
    from: number,
    to: number,
  ): Tensor {
    const n = rows.length;
    this.checkHidden(h, n, 'forwardLayers');
    this.checkTokens(cache, rows, positions, 'forwardLayers');
    this.checkRange(from, to, 'forwardLayers');
    if (from === to) return h;
    const s = new Scope(this.device);
    try {
      const r = s.u32(rows);
      const p = s.u32(positions);
      let x = h;
      for (let l = from; l < to; l++) x = this.layer(s, l, x, n, r, p, cache);
      return s.keep(x);
    } finally {
      s.dispose();
    }
  }

  /**
   * Writes keys and values of blocks [from, to) for n tokens from their hidden states h (n, d) — CALM state
   * propagation for tokens that left after block from − 1, or deferred filling of skipped entries.
   */
  propagate(
    h: Tensor,
    cache: DecoderCache,
    rows: readonly number[],
    positions: readonly number[],
    from: number,
    to: number,
  ): void {
    const n = rows.length;
    this.checkHidden(h, n, 'propagate');
    this.checkTokens(cache, rows, positions, 'propagate');
    this.checkRange(from, to, 'propagate');
    const s = new Scope(this.device);
    try {
      this.propagateIn(s, h, n, s.u32(rows), s.u32(positions), cache, from, to);
    } finally {
      s.dispose();
    }
  }

  /**
   * Appends tokens[b] (any number, possibly none) to each row b of the cache, causal among themselves and
   * attending to the row's cached positions, at full depth (or up to exit `block`, CALM-propagating the
   * blocks above). Returns the logits (Σ k, V) of every new token in row order (`offsets[b]` is row b's
   * first), or with `last` only each extended row's last token (rows without new tokens get zeros).
   */
  async extend(
    tokens: readonly (readonly number[])[],
    cache: DecoderCache,
    options: { last?: boolean; block?: number } = {},
  ): Promise<{ logits: Float32Array; offsets: Int32Array }> {
    if (tokens.length !== cache.batch)
      throw new ValidationError(`extend: ${tokens.length} token lists for a cache of ${cache.batch} rows`);
    const block = options.block ?? this.L - 1;
    this.checkExitBlock(block, 'extend');
    const rows: number[] = [];
    const positions: number[] = [];
    const ids: number[] = [];
    const offsets = new Int32Array(cache.batch + 1);
    tokens.forEach((t, b) => {
      this.checkIds(t as number[], `extend: row ${b}, token`);
      if (cache.lengths[b] + t.length > cache.maxLength)
        throw new ValidationError(
          `extend: row ${b} holds ${cache.lengths[b]} positions; ${t.length} more exceed the cache's maxLength ${cache.maxLength}`,
        );
      offsets[b] = ids.length;
      t.forEach((id, i) => {
        rows.push(b);
        positions.push(cache.lengths[b] + i);
        ids.push(id);
      });
    });
    offsets[cache.batch] = ids.length;
    const n = ids.length;
    if (n === 0) throw new ValidationError('extend: no tokens');
    if (n > this.maxTokens)
      throw new ValidationError(
        `extend: ${n} tokens in one call, more than the limit of ${this.maxTokens} (DecoderLMOptions.maxTokens)`,
      );
    const s = new Scope(this.device);
    try {
      const r = s.u32(rows);
      const p = s.u32(positions);
      let h = this.embedIn(s, ids);
      for (let l = 0; l <= block; l++) h = this.layer(s, l, h, n, r, p, cache);
      if (block < this.L - 1) this.propagateIn(s, h, n, r, p, cache, block + 1, this.L);
      tokens.forEach((t, b) => {
        cache.lengths[b] += t.length;
      });
      if (!options.last) {
        const z = (await this.exitLogitsIn(s, h, n, block).read()) as Float32Array;
        return { logits: z, offsets };
      }
      const lastIdx = tokens.flatMap((t, b) => (t.length ? [offsets[b] + t.length - 1] : []));
      const hl = this.gather(s, h, lastIdx);
      const z = (await this.exitLogitsIn(s, hl, lastIdx.length, block).read()) as Float32Array;
      const out = new Float32Array(cache.batch * this.V);
      let k = 0;
      tokens.forEach((t, b) => {
        if (t.length) out.set(z.subarray(k++ * this.V, k * this.V), b * this.V);
      });
      return { logits: out, offsets };
    } finally {
      s.dispose();
    }
  }

  /**
   * Prefill of prompts of different lengths into an empty cache (a new one of maxLength positions by
   * default). Returns each prompt's last-token logits (B, V) at full depth.
   */
  async prefill(
    prompts: readonly (readonly number[])[],
    cache?: DecoderCache,
    maxLength?: number,
  ): Promise<{ logits: Float32Array; cache: DecoderCache }> {
    if (prompts.length === 0) throw new ValidationError('prefill: no prompts');
    prompts.forEach((p, b) => {
      if (p.length === 0)
        throw new ValidationError(`prefill: prompt ${b} is empty; every prompt needs at least one token`);
    });
    const c =
      cache ??
      this.newCache(
        prompts.length,
        maxLength ?? Math.min(this.config.maxPositionEmbeddings, Math.max(...prompts.map((p) => p.length))),
      );
    try {
      if (c.lengths.some((x) => x !== 0))
        throw new ValidationError('prefill: the cache already holds positions; use extend to append to it');
      const { logits } = await this.extend(prompts, c, { last: true });
      return { logits, cache: c };
    } catch (e) {
      if (!cache) c.dispose();
      throw e;
    }
  }

  private gather(s: Scope, h: Tensor, idx: readonly number[]): Tensor {
    const y = s.f32([idx.length, this.d]);
    this.device.dispatch(
      gatherRows,
      { idx: s.u32(idx), x: h, y },
      { count: idx.length, width: this.d, srcStride: this.d, srcOffset: 0 },
    );
    return y;
  }

  /** (na + |idx|, d): rows 0..na of a, then rows idx of b. */
  private concatRows(s: Scope, a: Tensor, na: number, b: Tensor, idx: readonly number[]): Tensor {
    const y = s.f32([na + idx.length, this.d]);
    const ident = Array.from({ length: na + idx.length }, (_, i) => i);
    if (na > 0)
      this.device.dispatch(
        gatherRows,
        { idx: s.u32(ident.slice(0, na)), x: a, y },
        { count: na, width: this.d, srcStride: this.d, srcOffset: 0 },
      );
    const t = this.gather(s, b, idx);
    this.device.dispatch(
      scatterRows,
      { idx: s.u32(ident.slice(na)), x: t, y },
      { count: idx.length, width: this.d, dstStride: this.d, dstOffset: 0 },
    );
    return y;
  }

  private packRows(_s: Scope, rest: readonly { row: number; pos: number; next: number }[]) {
    return { rows: rest.map((x) => x.row), positions: rest.map((x) => x.pos), next: rest.map((x) => x.next) };
  }

  /** (|rest|, d): row k of each entry's tensor, in order (one gather and one scatter per source tensor). */
  private packHidden(s: Scope, rest: readonly { h: Tensor; k: number }[]): Tensor {
    const y = s.f32([rest.length, this.d]);
    const sources = [...new Set(rest.map((x) => x.h))];
    for (const src of sources) {
      const at = rest.flatMap((x, i) => (x.h === src ? [i] : []));
      const t = this.gather(
        s,
        src,
        at.map((i) => rest[i].k),
      );
      this.device.dispatch(
        scatterRows,
        { idx: s.u32(at), x: t, y },
        { count: at.length, width: this.d, dstStride: this.d, dstOffset: 0 },
      );
    }
    return y;
  }

  private checkDeferred(o: DeferredKV, cache: DecoderCache): void {
    const n = o.rows.length;
    if (o.positions.length !== n || o.next.length !== n)
      throw new ValidationError(
        `step: exit.deferred has ${n} rows, ${o.positions.length} positions and ${o.next.length} next blocks; they must be equally many`,
      );
    this.checkHidden(o.h, Math.max(1, n), 'step: exit.deferred');
    for (let i = 0; i < n; i++) {
      const r = o.rows[i];
      if (!Number.isInteger(r) || r < 0 || r >= cache.batch)
        throw new ValidationError(`step: exit.deferred entry ${i} names row ${r}; rows are [0, ${cache.batch})`);
      if (!Number.isInteger(o.positions[i]) || o.positions[i] < 0 || o.positions[i] >= cache.lengths[r])
        throw new ValidationError(
          `step: exit.deferred entry ${i} has position ${o.positions[i]}; it must be an earlier position of row ${r}, in [0, ${cache.lengths[r]})`,
        );
      if (!Number.isInteger(o.next[i]) || o.next[i] < 1 || o.next[i] >= this.L || (i > 0 && o.next[i] < o.next[i - 1]))
        throw new ValidationError(
          `step: exit.deferred next blocks must be non-decreasing integers in [1, ${this.L}), got [${o.next.join(', ')}]`,
        );
    }
  }

  private checkRule(rule: DecoderExitRule): void {
    const inUnit = (x: number) => x >= 0 && x <= 1;
    switch (rule.kind) {
      case 'never':
      case 'custom':
        return;
      case 'fixed':
        this.checkExitBlock(rule.block, "exit rule 'fixed'");
        return;
      case 'maxProb':
      case 'margin':
        if (!inUnit(rule.threshold))
          throw new ValidationError(`exit rule '${rule.kind}': threshold must be in [0, 1], got ${rule.threshold}`);
        return;
      case 'saturation':
        if (!(rule.threshold >= -1 && rule.threshold <= 1))
          throw new ValidationError(
            `exit rule 'saturation': threshold must be a cosine in [-1, 1], got ${rule.threshold}`,
          );
        return;
      case 'entropy':
        if (!(rule.threshold >= 0))
          throw new ValidationError(`exit rule 'entropy': threshold must be ≥ 0 nats, got ${rule.threshold}`);
        return;
      default:
        throw new ValidationError(
          `unknown exit rule '${(rule as { kind: string }).kind}': use never, fixed, maxProb, entropy, margin, saturation or custom`,
        );
    }
  }

  /**
   * One decoding step: tokens[b] goes to position cache.lengths[b] of row b, with per-row token-level exits
   * (rows that leave are compacted out of the later blocks; their skipped blocks' keys and values are
   * propagated from the exit's hidden state unless exit.skip is 'none').
   */
  async step(tokens: readonly number[], cache: DecoderCache, exit?: DecoderExitOptions): Promise<DecoderStepResult> {
    const B = cache.batch;
    if (tokens.length !== B) throw new ValidationError(`step: ${tokens.length} tokens for a cache of ${B} rows`);
    this.checkIds(tokens, 'step: token');
    cache.lengths.forEach((len, b) => {
      if (len >= cache.maxLength)
        throw new ValidationError(`step: row ${b} is full (${len} of maxLength ${cache.maxLength} positions)`);
    });
    const rule = exit?.rule ?? { kind: 'never' };
    this.checkRule(rule);
    const propagate = (exit?.skip ?? 'propagate') === 'propagate';
    if (exit?.skip !== undefined && exit.skip !== 'propagate' && exit.skip !== 'none')
      throw new ValidationError(`step: exit.skip must be 'propagate' or 'none', got '${exit.skip}'`);
    const V = this.V;
    const out = new Float32Array(B * V);
    const exitBlocks = new Int32Array(B).fill(this.L - 1);
    const exitHidden = exit?.keepHidden ? new Float32Array(B * this.d) : undefined;
    const fused = exit?.deferred !== undefined;
    const owed = exit?.deferred ?? null;
    if (fused && propagate)
      throw new ValidationError(
        "step: exit.deferred needs exit.skip 'none' (the owed positions fill the skipped entries themselves)",
      );
    if (owed) this.checkDeferred(owed, cache);
    let blocksRun = 0;
    let propagatedBlocks = 0;
    let deferredBlocks = 0;
    const s = new Scope(this.device);
    try {
      let live = Array.from({ length: B }, (_, i) => i);
      let pos = live.map((b) => cache.lengths[b]);
      let rowsT = s.u32(live);
      let posT = s.u32(pos);
      let h = this.embedIn(s, tokens);
      let prev = h; // hidden state at the previous exit (the embedding before the first)
      const early = this.exits.slice(0, -1);
      // fused recomputation: owed[wait..] have not joined yet; ride are the owed positions running with the
      // tokens (their hidden states are rows n.. of h); exited are this step's leaving tokens
      let wait = 0;
      let ride: number[] = [];
      const exited: { row: number; pos: number; next: number; h: Tensor; k: number }[] = [];
      let stopped = this.L; // the block after which every token had left (L: ran to the end)
      let stoppedRows = 0; // the tokens running then (the riders follow them in h)
      const withRiders = () => {
        rowsT = s.u32([...live, ...ride.map((i) => owed!.rows[i])]);
        posT = s.u32([...pos, ...ride.map((i) => owed!.positions[i])]);
      };
      for (let l = 0; l < this.L; l++) {
        const n = live.length;
        if (owed && wait < owed.rows.length && owed.next[wait] <= l) {
          let j = wait;
          while (j < owed.rows.length && owed.next[j] <= l) j++;
          const joined = Array.from({ length: j - wait }, (_, i) => wait + i);
          h = this.concatRows(s, h, n + ride.length, owed.h, joined);
          ride = [...ride, ...joined];
          wait = j;
          withRiders();
        }
        h = this.layer(s, l, h, n + ride.length, rowsT, posT, cache);
        blocksRun += n;
        deferredBlocks += ride.length;
        if (l === this.L - 1) {
          const z = (await this.exitLogitsIn(s, h, n, l).read()) as Float32Array;
          live.forEach((row, r) => {
            out.set(z.subarray(r * V, (r + 1) * V), row * V);
          });
          if (exitHidden) {
            const hh = (await h.read()) as Float32Array;
            live.forEach((row, r) => {
              exitHidden.set(hh.subarray(r * this.d, (r + 1) * this.d), row * this.d);
            });
          }
          break;
        }
        if (!early.includes(l) || rule.kind === 'never') continue;
        const leave: number[] = [];
        let z: Tensor | null = null;
        if (rule.kind === 'fixed') {
          if (rule.block === l) for (let r = 0; r < n; r++) leave.push(r);
        } else {
          z = this.exitLogitsIn(s, h, n, l);
          const sig = s.f32([n, SIGNALS_PER_ROW]);
          const g = exit?.gate?.(h, n, { block: l, rows: live }) ?? null;
          this.device.dispatch(
            exitSignals,
            { logits: z, gateLogit: g ?? this.dummy, pooled: h, prevPooled: prev, signals: sig },
            { rows: n, classes: V, dim: this.d },
            { gate: g !== null, similarity: true },
          );
          const signals = readSignals((await sig.read()) as Float32Array, n);
          let decide: ArrayLike<boolean>;
          if (rule.kind === 'custom') {
            decide = rule.decide(signals, { block: l, rows: live });
            if (decide.length !== n)
              throw new ValidationError(
                `exit rule 'custom' returned ${decide.length} decisions for ${n} rows at block ${l}`,
              );
          } else {
            const t = rule.threshold;
            decide = Array.from({ length: n }, (_, r) =>
              rule.kind === 'maxProb'
                ? signals.maxProb[r] >= t
                : rule.kind === 'entropy'
                  ? signals.entropy[r] <= t
                  : rule.kind === 'margin'
                    ? signals.margin[r] >= t
                    : signals.similarity[r] >= t,
            );
          }
          for (let r = 0; r < n; r++) if (decide[r]) leave.push(r);
        }
        prev = h;
        if (leave.length === 0) continue;
        const all = leave.length === n;
        const hLeave = all ? h : this.gather(s, h, leave);
        const zl = (await (z && all ? z : this.exitLogitsIn(s, hLeave, leave.length, l)).read()) as Float32Array;
        const hh = exitHidden ? ((await hLeave.read()) as Float32Array) : null;
        leave.forEach((r, k) => {
          out.set(zl.subarray(k * V, (k + 1) * V), live[r] * V);
          exitBlocks[live[r]] = l;
          if (hh) exitHidden!.set(hh.subarray(k * this.d, (k + 1) * this.d), live[r] * this.d);
          if (fused) exited.push({ row: live[r], pos: pos[r], next: l + 1, h: hLeave, k });
        });
        if (propagate) {
          const lr = all ? rowsT : s.u32(leave.map((r) => live[r]));
          const lp = all ? posT : s.u32(leave.map((r) => pos[r]));
          this.propagateIn(s, hLeave, leave.length, lr, lp, cache, l + 1, this.L);
          propagatedBlocks += leave.length * (this.L - 1 - l);
        }
        if (all) {
          stoppedRows = n;
          live = [];
          stopped = l;
          break;
        }
        const stay = Array.from({ length: n }, (_, r) => r).filter((r) => !leave.includes(r));
        h = this.gather(s, h, [...stay, ...ride.map((_, i) => n + i)]);
        prev = h;
        live = stay.map((r) => live[r]);
        pos = stay.map((r) => pos[r]);
        if (ride.length) withRiders();
        else {
          rowsT = s.u32(live);
          posT = s.u32(pos);
        }
      }
      for (let b = 0; b < B; b++) cache.lengths[b]++;
      const res: DecoderStepResult = { logits: out, exitBlocks, blocksRun, propagatedBlocks, exitHidden };
      if (fused) {
        // still owed: this step's exits, the riders if every token left before the last block, the rest
        const rest: { row: number; pos: number; next: number; h: Tensor; k: number }[] = [...exited];
        if (stopped < this.L)
          ride.forEach((i, k) => {
            rest.push({ row: owed!.rows[i], pos: owed!.positions[i], next: stopped + 1, h, k: stoppedRows + k });
          });
        for (let i = wait; owed && i < owed.rows.length; i++)
          rest.push({ row: owed.rows[i], pos: owed.positions[i], next: owed.next[i], h: owed.h, k: i });
        rest.sort((a, b) => a.next - b.next);
        res.deferred = rest.length ? { ...this.packRows(s, rest), h: s.keep(this.packHidden(s, rest)) } : null;
        res.deferredBlocks = deferredBlocks;
      }
      return res;
    } finally {
      s.dispose();
    }
  }

  /** Generates up to maxNewTokens after each prompt (prompts may differ in length). */
  async generate(prompts: readonly (readonly number[])[], o: DecoderGenerateOptions): Promise<DecoderGenerateResult> {
    if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1)
      throw new ValidationError(`generate: maxNewTokens must be a positive integer, got ${o.maxNewTokens}`);
    const sampling = o.sampling ?? {};
    checkSampling(sampling);
    const rand = mulberry32(sampling.seed ?? 0);
    const stop = new Set(o.stop ?? []);
    const B = prompts.length;
    const maxLen = Math.max(...prompts.map((p) => p.length)) + o.maxNewTokens;
    if (maxLen > this.config.maxPositionEmbeddings)
      throw new ValidationError(
        `generate: the longest prompt plus maxNewTokens is ${maxLen} positions, more than max_position_embeddings ${this.config.maxPositionEmbeddings}`,
      );
    const { logits, cache } = await this.prefill(prompts, undefined, maxLen);
    try {
      const tokens: number[][] = prompts.map(() => []);
      const exitBlocks: number[][] = prompts.map(() => []);
      const done = new Array(B).fill(false);
      let next = prompts.map((_, b) => sampleToken(logits, b * this.V, this.V, sampling, rand));
      next.forEach((t, b) => {
        tokens[b].push(t);
        exitBlocks[b].push(this.L - 1);
        if (stop.has(t)) done[b] = true;
      });
      let blocks = 0;
      let steps = 0;
      for (let k = 1; k < o.maxNewTokens && done.some((x) => !x); k++) {
        const r = await this.step(next, cache, o.exit);
        blocks += r.blocksRun;
        steps += B;
        next = next.map((_, b) => sampleToken(r.logits, b * this.V, this.V, sampling, rand));
        next.forEach((t, b) => {
          if (done[b]) return;
          tokens[b].push(t);
          exitBlocks[b].push(r.exitBlocks[b]);
          if (stop.has(t)) done[b] = true;
        });
      }
      return { tokens, exitBlocks, depthFraction: steps ? blocks / (steps * this.L) : 1 };
    } finally {
      cache.dispose();
    }
  }

  /**
   * Teacher-forced scoring at every exit: each sequence (length ≥ 2, lengths may differ) runs once at full
   * depth; position t is scored on token t + 1 under the logits of every exit. Gives held-out perplexity per
   * exit: exp(nll[e] / count).
   */
  async score(sequences: readonly (readonly number[])[]): Promise<DecoderScoreResult> {
    if (sequences.length === 0) throw new ValidationError('score: no sequences');
    sequences.forEach((q, b) => {
      if (q.length < 2) throw new ValidationError(`score: sequence ${b} has ${q.length} tokens; at least 2 are needed`);
      this.checkIds(q as number[], `score: sequence ${b}, token`);
    });
    const inputs = sequences.map((q) => q.slice(0, -1));
    const n = inputs.reduce((a, q) => a + q.length, 0);
    if (n > this.maxTokens)
      throw new ValidationError(
        `score: ${n} positions in one call, more than the limit of ${this.maxTokens} (DecoderLMOptions.maxTokens); score fewer sequences at once`,
      );
    const maxLen = Math.max(...inputs.map((q) => q.length));
    const cache = this.newCache(sequences.length, maxLen);
    const s = new Scope(this.device);
    const V = this.V;
    const targets = sequences.flatMap((q) => q.slice(1));
    const res: DecoderScoreResult = {
      exits: this.exits,
      nll: new Float64Array(this.exits.length),
      count: n,
      tokenNll: this.exits.map(() => new Float64Array(n)),
    };
    try {
      const rows = inputs.flatMap((q, b) => q.map(() => b));
      const positions = inputs.flatMap((q) => q.map((_, t) => t));
      const r = s.u32(rows);
      const p = s.u32(positions);
      let h = this.embedIn(s, inputs.flat());
      for (let l = 0; l < this.L; l++) {
        h = this.layer(s, l, h, n, r, p, cache);
        const e = this.exits.indexOf(l);
        if (e < 0) continue;
        const z = (await this.exitLogitsIn(s, h, n, l).read()) as Float32Array;
        for (let i = 0; i < n; i++) {
          const o = i * V;
          let mx = Number.NEGATIVE_INFINITY;
          for (let v = 0; v < V; v++) mx = Math.max(mx, z[o + v]);
          let se = 0;
          for (let v = 0; v < V; v++) se += Math.exp(z[o + v] - mx);
          const nll = mx + Math.log(se) - z[o + targets[i]];
          res.tokenNll[e][i] = nll;
          res.nll[e] += nll;
        }
      }
      return res;
    } finally {
      s.dispose();
      cache.dispose();
    }
  }

  /**
   * @internal Building blocks for the device-side decode loops of generation/ (gpu-loop, skipdecode,
   * recompute): a block over device row / position tensors, an exit's logits, embeddings from device ids.
   * None of them reads back or submits; temporaries go into the caller's Scope. Not a stable API.
   */
  internals(): DecoderInternals {
    return {
      scope: () => new Scope(this.device),
      layer: (s, l, x, n, rows, pos, cache, gated) => this.layer(s, l, x, n, rows, pos, cache, gated),
      exitLogits: (s, h, n, block, gated) => this.exitLogitsIn(s, h, n, block, gated),
      embedIds: (s, ids, n) => this.embedIds(s, ids, n),
      propagate: (s, h, n, rows, pos, cache, from, to) => this.propagateIn(s, h, n, rows, pos, cache, from, to),
      checkRule: (rule) => this.checkRule(rule),
      dummy: this.dummy,
    };
  }

  /** Every weight tensor on the device. */
  weightTensors(): Tensor[] {
    const out = this.layers.flatMap((w) => [w.ln1, w.ln2, w.q, w.kv, w.o, w.gate, w.up, w.down]);
    out.push(this.emb, this.normF, ...this.exitNorms.values(), ...this.exitHeads.values());
    if (this.head !== this.emb) out.push(this.head);
    return out;
  }

  dispose(): void {
    for (const t of this.weightTensors()) t.dispose();
    this.dummy.dispose();
    this.dummyOut.dispose();
    this.rope?.dispose();
  }
}

/** Row windows of a (V, d) table: each within the binding limit, starting at aligned offsets. */
export function tableWindows(device: Device, V: number, d: number, maxBindingBytes?: number): Window[] {
  const limit = Math.min(maxBindingBytes ?? Number.POSITIVE_INFINITY, device.limits.maxStorageBufferBindingSize);
  if (V * d * 4 <= limit) return [{ start: 0, count: V }];
  const align = Math.max(1, device.limits.minStorageBufferOffsetAlignment / 4);
  const rows = Math.floor(Math.floor(limit / (d * 4)) / align) * align;
  if (rows < 1)
    throw new ValidationError(
      `a binding limit of ${limit} bytes cannot hold ${align} aligned rows of ${d} float32 values of the embedding table; raise maxBindingBytes to at least ${align * d * 4}`,
    );
  const out: Window[] = [];
  for (let start = 0; start < V; start += rows) out.push({ start, count: Math.min(rows, V - start) });
  return out;
}
