// The Mamba-1 LM with token-level exits on ONNX Runtime's CPU execution provider, as a GenerationModel: the same
// weights (normalized names, see weights.ts), exits and skip strategies ('freeze', 'partial') as MambaLM. The
// recurrent state stays on the host (conv (B, D, K), oldest input first, and SSM (B, D, N) per block, as
// MambaCache lays them out). Graphs, written with core's OnnxGraphWriter:
//   step   blocks a..b for one token per row: h [n, d] and the rows' states in → h, new states and the logits
//          of the exit after b out (RMSNorm → in_proj → conv over the shifted window + SiLU → x_proj → dt_proj +
//          softplus → state update exp(δ·A)·s + δ·B·x → C·s + D·x → ·SiLU(z) → out_proj → residual)
//   state  blocks a..L−1 state-only from one hidden state ('partial': the skipped blocks' states advanced from
//          the exit's hidden state, no outputs)
// A prefill runs the prompts token by token through the full-depth step graph (rows whose prompt has ended
// drop out of later calls), which is the recurrence the reference's prefill computes. Sessions are built on
// first use and cached per (kind, segment); the row count is a symbolic dimension.
import {
  concatSignals,
  createOrtCpu,
  type ExitSignalArrays,
  type GenerationCache,
  type GenerationExit,
  type GenerationModel,
  type GenerationScore,
  type GenerationStepResult,
  hostExitSignals,
  nllOf,
  OnnxGraphWriter,
  type OrtCpu,
  type OrtCpuOptions,
  type OrtSession,
  OrtSessionCache,
  ValidationError,
} from '@offramp/core';
import { checkExitBlocks, defaultExitBlocks, type MambaConfig } from './config.js';

const ORT_MAMBA_SKIPS = ['freeze', 'partial'] as const;

interface LayerW {
  norm: Float32Array;
  /** [d, 2D]: x, z. */
  inT: Float32Array;
  inB?: Float32Array;
  /** [D, K]. */
  conv: Float32Array;
  convB?: Float32Array;
  /** [D, R + 2N]. */
  xT: Float32Array;
  /** [R, D]. */
  dtT: Float32Array;
  dtB: Float32Array;
  /** −exp(A_log), [D, N] (computed in float64, rounded once). */
  A: Float32Array;
  Dsk: Float32Array;
  /** [D, d]. */
  outT: Float32Array;
  outB?: Float32Array;
}

function transpose2d(data: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** Host state of OrtMambaLM for `batch` rows: per block conv (B, D, K) and SSM (B, D, N). */
export class OrtMambaCache implements GenerationCache {
  readonly conv: Float32Array[];
  readonly ssm: Float32Array[];
  constructor(
    readonly batch: number,
    readonly numLayers: number,
    readonly D: number,
    readonly K: number,
    readonly N: number,
  ) {
    this.conv = Array.from({ length: numLayers }, () => new Float32Array(batch * D * K));
    this.ssm = Array.from({ length: numLayers }, () => new Float32Array(batch * D * N));
  }

  /** One row's states: conv (D·K) and SSM (D·N) per block (as MambaCache.readSequence). */
  readSequence(row: number): { conv: Float32Array[]; ssm: Float32Array[] } {
    if (!Number.isInteger(row) || row < 0 || row >= this.batch)
      throw new ValidationError(`readSequence: row must be in [0, ${this.batch}), got ${row}`);
    const { D, K, N } = this;
    return {
      conv: this.conv.map((c) => c.slice(row * D * K, (row + 1) * D * K)),
      ssm: this.ssm.map((s) => s.slice(row * D * N, (row + 1) * D * N)),
    };
  }

  dispose(): void {}
}

/** Rows `idx` of x (rows of `width`), end to end. */
function gather(x: Float32Array, idx: readonly number[], width: number): Float32Array {
  const y = new Float32Array(idx.length * width);
  idx.forEach((r, k) => {
    y.set(x.subarray(r * width, (r + 1) * width), k * width);
  });
  return y;
}
function scatter(dst: Float32Array, y: Float32Array, idx: readonly number[], width: number): void {
  idx.forEach((r, k) => {
    dst.set(y.subarray(k * width, (k + 1) * width), r * width);
  });
}

class MambaGraph {
  readonly w: OnnxGraphWriter;
  constructor(
    name: string,
    readonly c: MambaConfig,
  ) {
    this.w = new OnnxGraphWriter(name);
  }
  init(prefix: string, data: Float32Array, dims: number[]): string {
    return this.w.initializer(prefix, data, dims);
  }
  slice(x: string, a: number, b: number, axis = -1): string {
    const w = this.w;
    return w.op('Slice', [x, w.int64([a]), w.int64([b]), w.int64([axis])]);
  }
  rms(x: string, gain: Float32Array, label: string): string {
    const w = this.w;
    const ms = w.op('ReduceMean', [w.op('Pow', [x, w.float(2)])], { axes: [-1], keepdims: 1 });
    const r = w.op('Sqrt', [w.op('Add', [ms, w.float(this.c.layerNormEpsilon)])]);
    return w.op('Mul', [w.op('Div', [x, r]), this.init(label, gain, [gain.length])]);
  }
  silu(x: string): string {
    return this.w.op('Mul', [x, this.w.op('Sigmoid', [x])]);
  }
  linear(x: string, W: Float32Array, inF: number, outF: number, b: Float32Array | undefined, label: string): string {
    const y = this.w.op('MatMul', [x, this.init(label, W, [inF, outF])]);
    return b ? this.w.op('Add', [y, this.init(`${label}.bias`, b, [outF])]) : y;
  }

  /** Block l on h [n, d] with states conv [n, D, K], ssm [n, D, N]; the output (unless stateOnly) and states. */
  block(
    l: number,
    W: LayerW,
    h: string,
    conv: string,
    ssm: string,
    stateOnly: boolean,
  ): { h?: string; conv: string; ssm: string } {
    const w = this.w;
    const { hiddenSize: d, intermediateSize: D, stateSize: N, timeStepRank: R, convKernel: K } = this.c;
    const u = this.rms(h, W.norm, `norm.${l}`);
    const xz = this.linear(u, W.inT, d, 2 * D, W.inB, `in.${l}`);
    const x = this.slice(xz, 0, D);
    const window = w.op('Concat', [this.slice(conv, 1, K, 2), w.op('Reshape', [x, w.int64([-1, D, 1])])], {
      axis: 2,
    });
    let cs = w.op('ReduceSum', [w.op('Mul', [window, this.init(`conv.${l}`, W.conv, [D, K])]), w.int64([2])], {
      keepdims: 0,
    });
    if (W.convB) cs = w.op('Add', [cs, this.init(`conv.${l}.bias`, W.convB, [D])]);
    const xc = this.silu(cs); // [n, D]
    const dbc = this.linear(xc, W.xT, D, R + 2 * N, undefined, `x.${l}`);
    const dt = w.op('Softplus', [this.linear(this.slice(dbc, 0, R), W.dtT, R, D, W.dtB, `dt.${l}`)]);
    const dt3 = w.op('Reshape', [dt, w.int64([-1, D, 1])]);
    const Bv = w.op('Reshape', [this.slice(dbc, R, R + N), w.int64([-1, 1, N])]);
    const dA = w.op('Exp', [w.op('Mul', [dt3, this.init(`A.${l}`, W.A, [D, N])])]);
    const dBx = w.op('Mul', [w.op('Mul', [dt3, w.op('Reshape', [xc, w.int64([-1, D, 1])])]), Bv]);
    const s = w.op('Add', [w.op('Mul', [dA, ssm]), dBx]); // [n, D, N]
    if (stateOnly) return { conv: window, ssm: s };
    const Cv = w.op('Reshape', [this.slice(dbc, R + N, R + 2 * N), w.int64([-1, N, 1])]);
    const ys = w.op('Reshape', [w.op('MatMul', [s, Cv]), w.int64([-1, D])]);
    const y0 = w.op('Add', [ys, w.op('Mul', [xc, this.init(`D.${l}`, W.Dsk, [D])])]);
    const y = w.op('Mul', [y0, this.silu(this.slice(xz, D, 2 * D))]);
    const out = this.linear(y, W.outT, D, d, W.outB, `out.${l}`);
    return { h: w.op('Add', [h, out]), conv: window, ssm: s };
  }

  named(x: string, name: string, dims: (number | string)[]): void {
    this.w.node('Identity', [x], {}, [name]);
    this.w.output(name, 'float32', dims);
  }
}

/** The Mamba LM on ONNX Runtime (CPU) as a GenerationModel; skip strategies 'freeze' (default) and 'partial'. */
export class OrtMambaLM implements GenerationModel<OrtMambaCache> {
  readonly kind = 'mamba';
  readonly numLayers: number;
  readonly exits: readonly number[];
  readonly vocabSize: number;
  readonly maxSequenceLength = Number.POSITIVE_INFINITY;
  readonly skipStrategies = ORT_MAMBA_SKIPS;
  readonly d: number;
  private readonly layers: LayerW[];
  private readonly emb: Float32Array;
  private readonly normF: Float32Array;
  private readonly headT: Float32Array;
  private readonly sessions: OrtSessionCache;

  /** From normalized host tensors (normalizeMambaTensors / loadMambaDir), as MambaLM. */
  constructor(
    readonly ortCpu: OrtCpu,
    readonly config: MambaConfig,
    tensors: ReadonlyMap<string, { shape: readonly number[]; data: ArrayLike<number> }>,
    options: { exits?: number[] } = {},
  ) {
    const c = config;
    this.sessions = new OrtSessionCache(ortCpu, 'OrtMambaLM');
    this.numLayers = c.numLayers;
    this.vocabSize = c.vocabSize;
    this.d = c.hiddenSize;
    this.exits = checkExitBlocks(
      options.exits ?? c.exits ?? defaultExitBlocks(c.numLayers),
      c.numLayers,
      'OrtMambaLM exits',
    );
    const get = (n: string) => {
      const t = tensors.get(n);
      if (!t)
        throw new ValidationError(`OrtMambaLM: tensor '${n}' is missing; pass tensors through normalizeMambaTensors`);
      return t.data;
    };
    const f32 = (n: string) => Float32Array.from(get(n));
    const { hiddenSize: d, intermediateSize: D, stateSize: N, timeStepRank: R, vocabSize: V } = c;
    this.layers = Array.from({ length: c.numLayers }, (_, i) => {
      const p = `layers.${i}`;
      const A_log = get(`${p}.mixer.A_log`);
      return {
        norm: f32(`${p}.norm.weight`),
        inT: transpose2d(get(`${p}.mixer.in_proj.weight`), 2 * D, d),
        inB: c.useBias ? f32(`${p}.mixer.in_proj.bias`) : undefined,
        conv: f32(`${p}.mixer.conv1d.weight`),
        convB: c.useConvBias ? f32(`${p}.mixer.conv1d.bias`) : undefined,
        xT: transpose2d(get(`${p}.mixer.x_proj.weight`), R + 2 * N, D),
        dtT: transpose2d(get(`${p}.mixer.dt_proj.weight`), D, R),
        dtB: f32(`${p}.mixer.dt_proj.bias`),
        A: Float32Array.from(A_log, (a) => -Math.exp(a)),
        Dsk: f32(`${p}.mixer.D`),
        outT: transpose2d(get(`${p}.mixer.out_proj.weight`), d, D),
        outB: c.useBias ? f32(`${p}.mixer.out_proj.bias`) : undefined,
      };
    });
    this.emb = f32('embeddings.weight');
    if (!c.tieWordEmbeddings && !tensors.has('lm_head.weight'))
      throw new ValidationError("OrtMambaLM: tieWordEmbeddings is false but the tensors have no 'lm_head.weight'");
    this.headT = transpose2d(get(c.tieWordEmbeddings ? 'embeddings.weight' : 'lm_head.weight'), V, d);
    this.normF = f32('norm_f.weight');
  }

  /** Loads onnxruntime-node (OrtUnavailableError when it cannot) and builds the model. */
  static async create(
    config: MambaConfig,
    tensors: ReadonlyMap<string, { shape: readonly number[]; data: ArrayLike<number> }>,
    options: { exits?: number[] } & OrtCpuOptions = {},
  ): Promise<OrtMambaLM> {
    return new OrtMambaLM(await createOrtCpu(options), config, tensors, options);
  }

  private session(key: string, build: () => Uint8Array): Promise<OrtSession> {
    return this.sessions.get(key, build);
  }

  private stepGraph(from: number, to: number, stateOnly: boolean): Uint8Array {
    const c = this.config;
    const { hiddenSize: d, intermediateSize: D, stateSize: N, convKernel: K, vocabSize: V } = c;
    const g = new MambaGraph(`offramp.mamba.${stateOnly ? 'state' : 'step'}${from}-${to}`, c);
    const w = g.w;
    let h = w.input('h', 'float32', ['n', d]);
    for (let l = from; l <= to; l++) {
      const conv = w.input(`conv.${l}`, 'float32', ['n', D, K]);
      const ssm = w.input(`ssm.${l}`, 'float32', ['n', D, N]);
      const r = g.block(l, this.layers[l], h, conv, ssm, stateOnly);
      if (r.h) h = r.h;
      g.named(r.conv, `conv_out.${l}`, ['n', D, K]);
      g.named(r.ssm, `ssm_out.${l}`, ['n', D, N]);
    }
    if (!stateOnly) {
      g.named(h, 'h_out', ['n', d]);
      const z = w.op('MatMul', [g.rms(h, this.normF, 'norm_f'), g.init('head', this.headT, [d, V])]);
      g.named(z, 'logits', ['n', V]);
    }
    return w.encode();
  }

  /** Blocks from..to for rows `rows` (h [n, d]); their states advanced in the cache. */
  private async run(
    from: number,
    to: number,
    h: Float32Array,
    rows: readonly number[],
    cache: OrtMambaCache,
    stateOnly: boolean,
  ): Promise<{ h: Float32Array; logits: Float32Array }> {
    const { intermediateSize: D, stateSize: N, convKernel: K } = this.config;
    const n = rows.length;
    const T = this.ortCpu.ort.Tensor;
    const feeds: Record<string, InstanceType<typeof T>> = { h: new T('float32', h, [n, this.d]) };
    const fetch: string[] = stateOnly ? [] : ['h_out', 'logits'];
    // every row, in order: the cache arrays go in as they are (no gather)
    const all = n === cache.batch && rows.every((row, r) => row === r);
    for (let l = from; l <= to; l++) {
      feeds[`conv.${l}`] = new T('float32', all ? cache.conv[l] : gather(cache.conv[l], rows, D * K), [n, D, K]);
      feeds[`ssm.${l}`] = new T('float32', all ? cache.ssm[l] : gather(cache.ssm[l], rows, D * N), [n, D, N]);
      fetch.push(`conv_out.${l}`, `ssm_out.${l}`);
    }
    const key = `${stateOnly ? 'state' : 'step'}:${from}-${to}`;
    const s = await this.session(key, () => this.stepGraph(from, to, stateOnly));
    const out = await s.run(feeds, fetch);
    for (let l = from; l <= to; l++) {
      scatter(cache.conv[l], out[`conv_out.${l}`].data as Float32Array, rows, D * K);
      scatter(cache.ssm[l], out[`ssm_out.${l}`].data as Float32Array, rows, D * N);
    }
    return stateOnly
      ? { h, logits: new Float32Array(0) }
      : { h: out.h_out.data as Float32Array, logits: out.logits.data as Float32Array };
  }

  newCache(batch: number): OrtMambaCache {
    if (!Number.isInteger(batch) || batch < 1)
      throw new ValidationError(`newCache: batch must be a positive integer, got ${batch}`);
    const c = this.config;
    return new OrtMambaCache(batch, c.numLayers, c.intermediateSize, c.convKernel, c.stateSize);
  }

  private checkIds(ids: readonly number[], what: string): void {
    for (const id of ids)
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize)
        throw new ValidationError(`${what} ${id} is not a token id in [0, ${this.vocabSize})`);
  }

  private embed(ids: readonly number[]): Float32Array {
    const d = this.d;
    const out = new Float32Array(ids.length * d);
    ids.forEach((id, i) => {
      out.set(this.emb.subarray(id * d, (id + 1) * d), i * d);
    });
    return out;
  }

  /** Full-depth prefill, token by token (rows whose prompt has ended drop out); each prompt's last logits. */
  async prefill(prompts: readonly (readonly number[])[], cache: OrtMambaCache): Promise<Float32Array> {
    if (prompts.length === 0) throw new ValidationError('prefill: no prompts');
    if (prompts.length !== cache.batch)
      throw new ValidationError(`prefill: ${prompts.length} prompts for a cache of ${cache.batch} rows`);
    prompts.forEach((p, b) => {
      if (p.length === 0)
        throw new ValidationError(`prefill: prompt ${b} is empty; every prompt needs at least one token`);
      this.checkIds(p, `prefill: prompt ${b}, token`);
    });
    const V = this.vocabSize;
    const out = new Float32Array(prompts.length * V);
    const T = Math.max(...prompts.map((p) => p.length));
    for (let t = 0; t < T; t++) {
      const rows = prompts.flatMap((p, b) => (t < p.length ? [b] : []));
      const r = await this.run(0, this.numLayers - 1, this.embed(rows.map((b) => prompts[b][t])), rows, cache, false);
      rows.forEach((b, k) => {
        if (t === prompts[b].length - 1) out.set(r.logits.subarray(k * V, (k + 1) * V), b * V);
      });
    }
    return out;
  }

  /**
   * One token per row with per-row exits decided by `exit` at every early exit (signals: max prob, entropy,
   * margin, argmax, similarity with the previous exit's hidden state or the embedding; gate NaN). Skipped
   * blocks: 'freeze' leaves their state, 'partial' advances it from the exit's hidden state.
   */
  async step(tokens: readonly number[], cache: OrtMambaCache, exit?: GenerationExit): Promise<GenerationStepResult> {
    const B = cache.batch;
    if (tokens.length !== B) throw new ValidationError(`step: ${tokens.length} tokens for a cache of ${B} sequences`);
    this.checkIds(tokens, 'step: token');
    const skip = exit?.skip ?? 'freeze';
    if (!(ORT_MAMBA_SKIPS as readonly string[]).includes(skip))
      throw new ValidationError(`mamba step: skip strategy '${skip}' is not one of ${ORT_MAMBA_SKIPS.join(', ')}`);
    const L = this.numLayers;
    const V = this.vocabSize;
    const d = this.d;
    const out = new Float32Array(B * V);
    const exitBlocks = new Int32Array(B).fill(L - 1);
    let blocksRun = 0;
    let live = Array.from({ length: B }, (_, i) => i);
    let h = this.embed(tokens);
    let prev = h;
    let from = 0;
    for (const block of exit ? this.exits : [L - 1]) {
      const n = live.length;
      const r = await this.run(from, block, h, live, cache, false);
      h = r.h;
      const z = r.logits;
      blocksRun += n * (block - from + 1);
      from = block + 1;
      if (block === L - 1) {
        live.forEach((row, k) => {
          out.set(z.subarray(k * V, (k + 1) * V), row * V);
        });
        break;
      }
      const decide = exit!.decide(hostExitSignals(z, n, V, { h, prev, d }), { block, rows: live });
      if (!decide || decide.length !== n)
        throw new ValidationError(
          `exit rule returned ${decide?.length ?? 'nothing'} decisions for ${n} rows at block ${block}`,
        );
      const leave: number[] = [];
      const stay: number[] = [];
      for (let k = 0; k < n; k++) (decide[k] ? leave : stay).push(k);
      prev = h;
      if (leave.length === 0) continue;
      for (const k of leave) {
        out.set(z.subarray(k * V, (k + 1) * V), live[k] * V);
        exitBlocks[live[k]] = block;
      }
      if (skip === 'partial')
        await this.run(
          block + 1,
          L - 1,
          gather(h, leave, d),
          leave.map((k) => live[k]),
          cache,
          true,
        );
      if (stay.length === 0) break;
      h = gather(h, stay, d);
      prev = h;
      live = stay.map((k) => live[k]);
    }
    return { logits: out, exitBlocks, blocksRun };
  }

  /**
   * Teacher-forced signals and −log p(next token) at every exit: the sequences run token by token at full
   * depth, every exit's logits read (unlike MambaLM's score, the early exits' −log p is given).
   */
  async score(sequences: readonly (readonly number[])[]): Promise<GenerationScore> {
    const B = sequences.length;
    if (B === 0) throw new ValidationError('score: no sequences');
    sequences.forEach((q, b) => {
      if (q.length < 2) throw new ValidationError(`score: sequence ${b} has ${q.length} tokens; at least 2 are needed`);
      this.checkIds(q, `score: sequence ${b}, token`);
    });
    const V = this.vocabSize;
    const E = this.exits.length;
    const offsets: number[] = [];
    let count = 0;
    for (const q of sequences) {
      offsets.push(count);
      count += q.length - 1;
    }
    const tokenNll = this.exits.map(() => new Float64Array(count));
    const perRow: ExitSignalArrays[][][] = this.exits.map(() => sequences.map(() => []));
    const cache = this.newCache(B);
    const T = Math.max(...sequences.map((q) => q.length - 1));
    for (let t = 0; t < T; t++) {
      const rows = sequences.flatMap((q, b) => (t < q.length - 1 ? [b] : []));
      let h = this.embed(rows.map((b) => sequences[b][t]));
      let prev = h;
      let from = 0;
      for (let e = 0; e < E; e++) {
        const block = this.exits[e];
        const r = await this.run(from, block, h, rows, cache, false);
        from = block + 1;
        h = r.h;
        const sig = hostExitSignals(r.logits, rows.length, V, { h, prev, d: this.d });
        prev = h;
        rows.forEach((b, k) => {
          perRow[e][b].push(rowOf(sig, k));
          tokenNll[e][offsets[b] + t] = nllOf(r.logits, k * V, V, sequences[b][t + 1]);
        });
      }
    }
    return { exits: this.exits, count, signals: perRow.map((rs) => concatSignals(rs.flat())), tokenNll };
  }

  /** Releases every session. */
  async dispose(): Promise<void> {
    await this.sessions.dispose();
  }
}

function rowOf(s: ExitSignalArrays, r: number): ExitSignalArrays {
  const one = <T extends Float32Array | Int32Array>(a: T) => a.slice(r, r + 1) as T;
  return {
    maxProb: one(s.maxProb),
    entropy: one(s.entropy),
    margin: one(s.margin),
    argmax: one(s.argmax),
    gate: one(s.gate),
    similarity: one(s.similarity),
  };
}
