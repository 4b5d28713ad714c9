// The Llama-style decoder with token-level exits on ONNX Runtime's CPU execution provider: the same weights,
// exits and GenerationModel interface as DecoderLM, for machines without a GPU. The KV cache stays on the
// host ((B, Hkv, Tmax, hd) per block, as DecoderCache lays it out); the graphs of decoder-graphs.ts run the
// blocks. A decode step runs one graph per segment between exits, its exit head included (the rows' past K/V
// go in; the token's K/V, hidden state and exit logits come out); at each early exit the host computes the
// live rows' signals, asks the rule, and gathers the staying rows for the next segment; the blocks an exited row skips get K/V
// from its hidden state at the exit (CALM state propagation, a K/V-only graph) unless the skip strategy is
// 'none'. Without an exit rule one graph runs every block. Sessions are built on first use and cached per
// (kind, segment); rows and lengths are symbolic dimensions, so one session serves every batch.
import { ValidationError } from '../errors.js';
import { concatSignals, nllOf } from '../generation/decoder-model.js';
import type {
  GenerationCache,
  GenerationExit,
  GenerationModel,
  GenerationScore,
  GenerationStepResult,
} from '../generation/interface.js';
import { hostExitSignals } from '../generation/signals.js';
import type { ExitSignalArrays } from '../kernels/exit-signals.js';
import type { HostTensor } from '../models/common.js';
import {
  checkDecoderExits,
  checkDecoderTensors,
  type DecoderConfig,
  ropeInverseFrequencies,
} from '../models/decoder-config.js';
import {
  headGraph,
  kvGraph,
  MASK_NEG,
  type OrtDecoderHeadWeights,
  type OrtDecoderLayerWeights,
  prefillGraph,
  stackTransposed,
  stepGraph,
  transpose2d,
} from './decoder-graphs.js';
import { createOrtCpu, type OrtCpu, type OrtCpuOptions, type OrtSession, type OrtTensor } from './ort-cpu.js';
import { OrtSessionCache } from './session-cache.js';

export interface OrtDecoderLMOptions {
  /** Exit blocks (0-based, increasing; the last block is added). Default: config.exits. */
  exits?: number[];
  /** Most tokens (Σ padded prompt lengths) one prefill or score call runs at once (default 16384). */
  maxTokens?: number;
}

const ORT_DECODER_SKIPS = ['propagate', 'none'] as const;

/** Host KV cache of OrtDecoderLM: per block (B, Hkv, Tmax, hd) keys and values, and each row's length. */
export class OrtDecoderCache implements GenerationCache {
  readonly lengths: Int32Array;
  readonly k: Float32Array[];
  readonly v: Float32Array[];
  constructor(
    readonly batch: number,
    readonly maxLength: number,
    readonly numLayers: number,
    readonly numKvHeads: number,
    readonly headDim: number,
  ) {
    this.lengths = new Int32Array(batch);
    const size = batch * numKvHeads * maxLength * headDim;
    this.k = Array.from({ length: numLayers }, () => new Float32Array(size));
    this.v = Array.from({ length: numLayers }, () => new Float32Array(size));
  }

  /** Keys and values of one row at block `layer`: (Hkv, length, hd) each (as DecoderCache.readRow). */
  readRow(layer: number, row: number): { k: Float32Array; v: Float32Array } {
    if (!Number.isInteger(row) || row < 0 || row >= this.batch)
      throw new ValidationError(`readRow: row must be in [0, ${this.batch}), got ${row}`);
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.numLayers)
      throw new ValidationError(`readRow: layer must be in [0, ${this.numLayers}), got ${layer}`);
    const n = this.lengths[row];
    const { numKvHeads: Hkv, headDim: hd, maxLength: T } = this;
    const pick = (all: Float32Array) => {
      const out = new Float32Array(Hkv * n * hd);
      for (let h = 0; h < Hkv; h++)
        out.set(all.subarray((row * Hkv + h) * T * hd, ((row * Hkv + h) * T + n) * hd), h * n * hd);
      return out;
    };
    return { k: pick(this.k[layer]), v: pick(this.v[layer]) };
  }

  /** Writes kv [n, Hkv, t, hd] (t positions per row from `start[r]`, `count[r]` of them) into rows `rows`. */
  write(
    layer: number,
    k: Float32Array,
    v: Float32Array,
    rows: readonly number[],
    start: readonly number[],
    t: number,
    count?: readonly number[],
  ): void {
    const { numKvHeads: Hkv, headDim: hd, maxLength: T } = this;
    rows.forEach((row, r) => {
      const m = count ? count[r] : t;
      for (let h = 0; h < Hkv; h++) {
        const src = (r * Hkv + h) * t * hd;
        const dst = ((row * Hkv + h) * T + start[r]) * hd;
        this.k[layer].set(k.subarray(src, src + m * hd), dst);
        this.v[layer].set(v.subarray(src, src + m * hd), dst);
      }
    });
  }

  /** Past keys and values of rows `rows`, padded to p positions: [n, Hkv, p, hd] each. */
  past(layer: number, rows: readonly number[], p: number): { k: Float32Array; v: Float32Array } {
    const { numKvHeads: Hkv, headDim: hd, maxLength: T } = this;
    const k = new Float32Array(rows.length * Hkv * p * hd);
    const v = new Float32Array(rows.length * Hkv * p * hd);
    rows.forEach((row, r) => {
      const len = this.lengths[row];
      for (let h = 0; h < Hkv; h++) {
        const src = (row * Hkv + h) * T * hd;
        const dst = (r * Hkv + h) * p * hd;
        k.set(this.k[layer].subarray(src, src + len * hd), dst);
        v.set(this.v[layer].subarray(src, src + len * hd), dst);
      }
    });
    return { k, v };
  }

  dispose(): void {}
}

type Weights = ReadonlyMap<string, HostTensor | { shape: readonly number[]; data: ArrayLike<number> }>;

/** The decoder on ONNX Runtime (CPU) as a GenerationModel; skip strategies 'propagate' (CALM) and 'none'. */
export class OrtDecoderLM implements GenerationModel<OrtDecoderCache> {
  readonly kind = 'decoder';
  readonly numLayers: number;
  readonly exits: readonly number[];
  readonly vocabSize: number;
  readonly maxSequenceLength: number;
  readonly skipStrategies = ORT_DECODER_SKIPS;
  readonly maxTokens: number;
  readonly d: number;
  private readonly layers: OrtDecoderLayerWeights[];
  private readonly heads = new Map<number, OrtDecoderHeadWeights>();
  private readonly emb: Float32Array;
  private readonly invFreq: Float64Array;
  private readonly sessions: OrtSessionCache;

  /** Builds from HF-named host tensors (checked against the config as DecoderLM checks them). */
  constructor(
    readonly ortCpu: OrtCpu,
    readonly config: DecoderConfig,
    tensors: Weights,
    options: OrtDecoderLMOptions = {},
  ) {
    const c = config;
    this.sessions = new OrtSessionCache(ortCpu, 'OrtDecoderLM');
    checkDecoderTensors(c, tensors as ReadonlyMap<string, { shape: readonly number[] }>);
    this.numLayers = c.numLayers;
    this.vocabSize = c.vocabSize;
    this.maxSequenceLength = c.maxPositionEmbeddings;
    this.d = c.hiddenSize;
    this.exits = checkDecoderExits(options.exits ?? c.exits, c.numLayers, 'OrtDecoderLM exits');
    const cap = options.maxTokens ?? 16384;
    if (!Number.isInteger(cap) || cap < 1)
      throw new ValidationError(`OrtDecoderLM: maxTokens must be a positive integer, got ${cap}`);
    this.maxTokens = cap;
    const { hiddenSize: d, vocabSize: V } = c;
    const get = (name: string) => tensors.get(name)!.data;
    const f32 = (name: string) => Float32Array.from(get(name));
    this.layers = Array.from({ length: c.numLayers }, (_, i) => {
      const p = `model.layers.${i}`;
      const q = get(`${p}.self_attn.q_proj.weight`);
      const k = get(`${p}.self_attn.k_proj.weight`);
      const v = get(`${p}.self_attn.v_proj.weight`);
      return {
        ln1: f32(`${p}.input_layernorm.weight`),
        ln2: f32(`${p}.post_attention_layernorm.weight`),
        qkvT: stackTransposed([q, k, v], d),
        kvT: stackTransposed([k, v], d),
        oT: transpose2d(get(`${p}.self_attn.o_proj.weight`), d, c.numHeads * c.headDim),
        guT: stackTransposed([get(`${p}.mlp.gate_proj.weight`), get(`${p}.mlp.up_proj.weight`)], d),
        downT: transpose2d(get(`${p}.mlp.down_proj.weight`), d, c.intermediateSize),
      };
    });
    this.emb = f32('model.embed_tokens.weight');
    const sharedHead = transpose2d(get(c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'), V, d);
    const normF = f32('model.norm.weight');
    for (const j of this.exits) {
      const early = j < c.numLayers - 1;
      const ownNorm = early && tensors.has(`offramp.exit_norm.${j}.weight`);
      const ownHead = early && tensors.has(`offramp.exit_head.${j}.weight`);
      this.heads.set(j, {
        norm: ownNorm ? f32(`offramp.exit_norm.${j}.weight`) : normF,
        headT: ownHead ? transpose2d(get(`offramp.exit_head.${j}.weight`), V, d) : sharedHead,
      });
    }
    this.invFreq = ropeInverseFrequencies(c);
  }

  /** Loads onnxruntime-node (OrtUnavailableError when it cannot) and builds the model. */
  static async create(
    config: DecoderConfig,
    tensors: Weights,
    options: OrtDecoderLMOptions & OrtCpuOptions = {},
  ): Promise<OrtDecoderLM> {
    return new OrtDecoderLM(await createOrtCpu(options), config, tensors, options);
  }

  /** Sessions built so far (by kind and segment). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  describe(): string {
    return `decoder on ${this.ortCpu.describe()}`;
  }

  private session(key: string, build: () => Uint8Array): Promise<OrtSession> {
    return this.sessions.get(key, build);
  }

  private tensor(data: Float32Array, dims: number[]): OrtTensor {
    return new this.ortCpu.ort.Tensor('float32', data, dims);
  }

  newCache(batch: number, maxLength: number): OrtDecoderCache {
    if (!Number.isInteger(batch) || batch < 1)
      throw new ValidationError(`newCache: batch must be a positive integer, got ${batch}`);
    if (!Number.isInteger(maxLength) || maxLength < 1 || maxLength > this.maxSequenceLength)
      throw new ValidationError(
        `newCache: maxLength must be an integer in [1, ${this.maxSequenceLength}] (max_position_embeddings), got ${maxLength}`,
      );
    const c = this.config;
    return new OrtDecoderCache(batch, maxLength, c.numLayers, c.numKvHeads, c.headDim);
  }

  private checkIds(ids: readonly number[], what: string): void {
    for (const id of ids)
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize)
        throw new ValidationError(`${what} ${id} is not a token id in [0, ${this.vocabSize})`);
  }

  /** Embedding rows of `ids`, end to end. */
  private embed(ids: readonly number[], out = new Float32Array(ids.length * this.d), at = 0): Float32Array {
    const d = this.d;
    ids.forEach((id, i) => {
      out.set(this.emb.subarray(id * d, (id + 1) * d), (at + i) * d);
    });
    return out;
  }

  /** cos/sin [n, t, 1, hd/2] of positions pos[r][j] (angles in float64, rounded once). */
  private rope(positions: readonly (readonly number[])[], t: number): { cos: Float32Array; sin: Float32Array } {
    const half = this.invFreq.length;
    const n = positions.length;
    const cos = new Float32Array(n * t * half).fill(1);
    const sin = new Float32Array(n * t * half);
    positions.forEach((ps, r) => {
      ps.forEach((p, j) => {
        const o = (r * t + j) * half;
        for (let i = 0; i < half; i++) {
          const a = p * this.invFreq[i];
          cos[o + i] = Math.cos(a);
          sin[o + i] = Math.sin(a);
        }
      });
    });
    return { cos, sin };
  }

  /** Logits [m, V] of the exit after block `block` for hidden states h [m, d]. */
  private async head(block: number, h: Float32Array, m: number): Promise<Float32Array> {
    const s = await this.session(`head:${block}`, () => headGraph(this.config, this.heads.get(block)!, block));
    const r = await s.run({ h: this.tensor(h, [m, this.d]) }, ['logits']);
    return r.logits.data as Float32Array;
  }

  /**
   * Runs [n, t] tokens (padded; row r has lens[r]) through every block, causal within each row. Returns the
   * fetched outputs (k.{l}, v.{l}, hidden.{b}).
   */
  private async forwardAll(
    inputs: readonly (readonly number[])[],
    fetch: string[],
  ): Promise<{ out: Record<string, OrtTensor>; t: number }> {
    const n = inputs.length;
    const t = Math.max(...inputs.map((q) => q.length));
    if (n * t > this.maxTokens)
      throw new ValidationError(
        `${n} rows of up to ${t} tokens make ${n * t} padded positions in one call, more than the limit of ${this.maxTokens} (OrtDecoderLMOptions.maxTokens); run fewer or shorter sequences at once`,
      );
    const d = this.d;
    const h = new Float32Array(n * t * d);
    inputs.forEach((q, r) => {
      this.embed(q, h, r * t);
    });
    const { cos, sin } = this.rope(
      inputs.map((q) => q.map((_, j) => j)),
      t,
    );
    const mask = new Float32Array(n * t * t).fill(MASK_NEG);
    inputs.forEach((q, r) => {
      for (let i = 0; i < t; i++) for (let j = 0; j <= Math.min(i, q.length - 1); j++) mask[(r * t + i) * t + j] = 0;
    });
    const half = this.invFreq.length;
    const s = await this.session('prefill', () => prefillGraph(this.config, this.layers, this.exits));
    const out = await s.run(
      {
        h: this.tensor(h, [n, t, d]),
        cos: this.tensor(cos, [n, t, 1, half]),
        sin: this.tensor(sin, [n, t, 1, half]),
        mask: this.tensor(mask, [n, 1, 1, t, t]),
      },
      fetch,
    );
    return { out, t };
  }

  async prefill(prompts: readonly (readonly number[])[], cache: OrtDecoderCache): Promise<Float32Array> {
    if (prompts.length === 0) throw new ValidationError('prefill: no prompts');
    if (prompts.length !== cache.batch)
      throw new ValidationError(`prefill: ${prompts.length} prompts for a cache of ${cache.batch} rows`);
    if (cache.lengths.some((x) => x !== 0))
      throw new ValidationError('prefill: the cache already holds positions; prefill needs an empty cache');
    prompts.forEach((p, b) => {
      if (p.length === 0)
        throw new ValidationError(`prefill: prompt ${b} is empty; every prompt needs at least one token`);
      if (p.length > cache.maxLength)
        throw new ValidationError(
          `prefill: prompt ${b} has ${p.length} tokens, more than the cache's ${cache.maxLength} positions`,
        );
      this.checkIds(p, `prefill: prompt ${b}, token`);
    });
    const L = this.numLayers;
    const fetch = [`hidden.${L - 1}`];
    for (let l = 0; l < L; l++) fetch.push(`k.${l}`, `v.${l}`);
    const { out, t } = await this.forwardAll(prompts, fetch);
    const rows = prompts.map((_, b) => b);
    const zeros = prompts.map(() => 0);
    const lens = prompts.map((p) => p.length);
    for (let l = 0; l < L; l++)
      cache.write(l, out[`k.${l}`].data as Float32Array, out[`v.${l}`].data as Float32Array, rows, zeros, t, lens);
    const hid = out[`hidden.${L - 1}`].data as Float32Array;
    const d = this.d;
    const last = new Float32Array(prompts.length * d);
    prompts.forEach((p, b) => {
      last.set(hid.subarray((b * t + p.length - 1) * d, (b * t + p.length) * d), b * d);
    });
    lens.forEach((n, b) => {
      cache.lengths[b] = n;
    });
    return this.head(L - 1, last, prompts.length);
  }

  /**
   * Blocks from..to for one token per live row; writes their K/V into the cache. Returns h [n, d] and the
   * logits [n, V] of the exit after block `to`.
   */
  private async runBlocks(
    from: number,
    to: number,
    h: Float32Array,
    live: readonly number[],
    pos: readonly number[],
    rope: { cos: Float32Array; sin: Float32Array },
    cache: OrtDecoderCache,
  ): Promise<{ h: Float32Array; logits: Float32Array }> {
    const n = live.length;
    const longest = Math.max(...live.map((row) => cache.lengths[row]));
    // every row live, in order, and the rows fill at least half of the cache: the cache arrays go in as they
    // are ([B, Hkv, Tmax, hd], no copy; the positions past each row's length are masked); otherwise the live
    // rows' past K/V are gathered, padded to the longest
    const whole = n === cache.batch && live.every((row, r) => row === r) && 2 * longest >= cache.maxLength;
    const p = whole ? cache.maxLength : longest;
    const mask = new Float32Array(n * (p + 1));
    live.forEach((row, r) => {
      mask.fill(MASK_NEG, r * (p + 1) + cache.lengths[row], r * (p + 1) + p);
    });
    const { numKvHeads: Hkv, headDim: hd } = this.config;
    const half = hd / 2;
    const feeds: Record<string, OrtTensor> = {
      h: this.tensor(h, [n, 1, this.d]),
      cos: this.tensor(rope.cos, [n, 1, 1, half]),
      sin: this.tensor(rope.sin, [n, 1, 1, half]),
      mask: this.tensor(mask, [n, 1, 1, 1, p + 1]),
    };
    const fetch = ['h_out', 'logits'];
    for (let l = from; l <= to; l++) {
      const past = whole ? { k: cache.k[l], v: cache.v[l] } : cache.past(l, live, p);
      feeds[`past_k.${l}`] = this.tensor(past.k, [n, Hkv, p, hd]);
      feeds[`past_v.${l}`] = this.tensor(past.v, [n, Hkv, p, hd]);
      fetch.push(`k.${l}`, `v.${l}`);
    }
    const s = await this.session(`step:${from}-${to}`, () =>
      stepGraph(this.config, this.layers, from, to, this.heads.get(to)!),
    );
    const out = await s.run(feeds, fetch);
    for (let l = from; l <= to; l++)
      cache.write(l, out[`k.${l}`].data as Float32Array, out[`v.${l}`].data as Float32Array, live, pos, 1);
    return { h: out.h_out.data as Float32Array, logits: out.logits.data as Float32Array };
  }

  /** CALM state propagation: K/V of blocks from..L−1 for rows `rows` at `pos` from their hidden states h. */
  private async propagate(
    from: number,
    h: Float32Array,
    rows: readonly number[],
    pos: readonly number[],
    rope: { cos: Float32Array; sin: Float32Array },
    cache: OrtDecoderCache,
  ): Promise<void> {
    const n = rows.length;
    const half = this.config.headDim / 2;
    const s = await this.session(`kv:${from}`, () => kvGraph(this.config, this.layers, from));
    const fetch: string[] = [];
    for (let l = from; l < this.numLayers; l++) fetch.push(`k.${l}`, `v.${l}`);
    const out = await s.run(
      {
        h: this.tensor(h, [n, 1, this.d]),
        cos: this.tensor(rope.cos, [n, 1, 1, half]),
        sin: this.tensor(rope.sin, [n, 1, 1, half]),
      },
      fetch,
    );
    for (let l = from; l < this.numLayers; l++)
      cache.write(l, out[`k.${l}`].data as Float32Array, out[`v.${l}`].data as Float32Array, rows, pos, 1);
  }

  /**
   * One token per row at the row's next position, with per-row exits decided by `exit` at every early exit
   * (rows that leave are compacted out of the later segments; their skipped blocks' K/V are propagated from
   * the exit's hidden state unless exit.skip is 'none').
   */
  async step(tokens: readonly number[], cache: OrtDecoderCache, exit?: GenerationExit): Promise<GenerationStepResult> {
    const B = cache.batch;
    if (tokens.length !== B) throw new ValidationError(`step: ${tokens.length} tokens for a cache of ${B} rows`);
    this.checkIds(tokens, 'step: token');
    cache.lengths.forEach((len, b) => {
      if (len >= cache.maxLength)
        throw new ValidationError(`step: row ${b} is full (${len} of maxLength ${cache.maxLength} positions)`);
      if (len === 0) throw new ValidationError(`step: row ${b} is empty; prefill the cache first`);
    });
    const skip = exit?.skip ?? 'propagate';
    if (!(ORT_DECODER_SKIPS as readonly string[]).includes(skip))
      throw new ValidationError(
        `decoder step: skip strategy '${skip}' is not one of ${ORT_DECODER_SKIPS.join(', ')} (the decoder's)`,
      );
    const L = this.numLayers;
    const V = this.vocabSize;
    const d = this.d;
    const half = this.invFreq.length;
    const out = new Float32Array(B * V);
    const exitBlocks = new Int32Array(B).fill(L - 1);
    let blocksRun = 0;
    let live = Array.from({ length: B }, (_, i) => i);
    let pos = live.map((b) => cache.lengths[b]);
    let rope = this.rope(
      pos.map((p) => [p]),
      1,
    );
    let h = this.embed(tokens);
    let prev = h;
    const segments = exit ? this.exits : [L - 1];
    let from = 0;
    for (const block of segments) {
      const n = live.length;
      const seg = await this.runBlocks(from, block, h, live, pos, rope, cache);
      h = seg.h;
      const z = seg.logits;
      blocksRun += n * (block - from + 1);
      from = block + 1;
      if (block === L - 1) {
        live.forEach((row, r) => {
          out.set(z.subarray(r * V, (r + 1) * V), row * V);
        });
        break;
      }
      const signals = hostExitSignals(z, n, V, { h, prev, d });
      const decide = exit!.decide(signals, { block, rows: live });
      if (decide.length !== n)
        throw new ValidationError(`exit rule returned ${decide.length} decisions for ${n} rows at block ${block}`);
      const leave: number[] = [];
      const stay: number[] = [];
      for (let r = 0; r < n; r++) (decide[r] ? leave : stay).push(r);
      prev = h;
      if (leave.length === 0) continue;
      for (const r of leave) {
        out.set(z.subarray(r * V, (r + 1) * V), live[r] * V);
        exitBlocks[live[r]] = block;
      }
      if (skip === 'propagate') {
        const hl = gatherRows(h, leave, d);
        const rl = gatherRows(rope.cos, leave, half);
        const sl = gatherRows(rope.sin, leave, half);
        await this.propagate(
          block + 1,
          hl,
          leave.map((r) => live[r]),
          leave.map((r) => pos[r]),
          { cos: rl, sin: sl },
          cache,
        );
      }
      if (stay.length === 0) {
        live = [];
        break;
      }
      h = gatherRows(h, stay, d);
      prev = h;
      rope = { cos: gatherRows(rope.cos, stay, half), sin: gatherRows(rope.sin, stay, half) };
      live = stay.map((r) => live[r]);
      pos = stay.map((r) => pos[r]);
    }
    for (let b = 0; b < B; b++) cache.lengths[b]++;
    return { logits: out, exitBlocks, blocksRun };
  }

  /**
   * Teacher-forced signals and −log p(next token) at every exit, as decoderScore computes them on the GPU
   * (similarity with the previous exit's hidden state, the embedding before the first).
   */
  async score(sequences: readonly (readonly number[])[]): Promise<GenerationScore> {
    if (sequences.length === 0) throw new ValidationError('score: no sequences');
    sequences.forEach((q, b) => {
      if (q.length < 2) throw new ValidationError(`score: sequence ${b} has ${q.length} tokens; at least 2 are needed`);
      if (q.length - 1 > this.maxTokens)
        throw new ValidationError(
          `score: sequence ${b} has ${q.length - 1} scored positions, more than the limit of ${this.maxTokens} per call`,
        );
      this.checkIds(q, `score: sequence ${b}, token`);
    });
    const V = this.vocabSize;
    const d = this.d;
    const count = sequences.reduce((a, q) => a + q.length - 1, 0);
    const parts: ExitSignalArrays[][] = this.exits.map(() => []);
    const tokenNll = this.exits.map(() => new Float64Array(count));
    let done = 0;
    for (let a = 0; a < sequences.length; ) {
      // a group of whole sequences whose padded size fits the per-call cap
      let b = a + 1;
      let t = sequences[a].length - 1;
      while (b < sequences.length && (b + 1 - a) * Math.max(t, sequences[b].length - 1) <= this.maxTokens)
        t = Math.max(t, sequences[b++].length - 1);
      const group = sequences.slice(a, b);
      const inputs = group.map((q) => q.slice(0, -1));
      const targets = group.flatMap((q) => q.slice(1));
      const n = targets.length;
      const { out, t: T } = await this.forwardAll(
        inputs,
        this.exits.map((e) => `hidden.${e}`),
      );
      const pick = (all: Float32Array) => {
        const hv = new Float32Array(n * d);
        let i = 0;
        inputs.forEach((q, r) => {
          hv.set(all.subarray(r * T * d, (r * T + q.length) * d), i * d);
          i += q.length;
        });
        return hv;
      };
      let prev = this.embed(inputs.flat());
      for (let e = 0; e < this.exits.length; e++) {
        const block = this.exits[e];
        const hv = pick(out[`hidden.${block}`].data as Float32Array);
        const z = await this.head(block, hv, n);
        parts[e].push(hostExitSignals(z, n, V, { h: hv, prev, d }));
        for (let i = 0; i < n; i++) tokenNll[e][done + i] = nllOf(z, i * V, V, targets[i]);
        prev = hv;
      }
      done += n;
      a = b;
    }
    return { exits: this.exits, count, signals: parts.map(concatSignals), tokenNll };
  }

  /** Releases every session. */
  async dispose(): Promise<void> {
    await this.sessions.dispose();
  }
}

/** Rows `idx` of x (rows of `width`), end to end. */
function gatherRows(x: Float32Array, idx: readonly number[], width: number): Float32Array {
  const y = new Float32Array(idx.length * width);
  idx.forEach((r, k) => {
    y.set(x.subarray(r * width, (r + 1) * width), k * width);
  });
  return y;
}
