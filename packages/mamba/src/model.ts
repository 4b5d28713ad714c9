// A Mamba-1 language model on a Device (GPU, or the CPU device running the kernels' references), run by
// eager dispatches: batched prefill of different-length prompts, a per-sequence conv/SSM state cache,
// step-by-step generation (greedy, temperature, top-k, top-p; seeded), and token-level early exit at exit
// blocks (DYNAMAX): exit heads = norm_f + the shared LM head; rules on the exit's softmax (max probability,
// entropy), a fixed exit, or learned exit classifiers; skipped blocks' state frozen or partially updated.
//   ids (B, T) → embedding (B·T, d) → blocks → norm_f → LM head (tied or separate) → logits (·, V)
// The embedding gather (core's embedding kernel in chunk mode) and the LM head run over row windows of the
// (V, d) table when it exceeds one storage binding (mamba-130m's 50280 × 768 float32 table is 154 MB;
// bindings stop at 128 MiB by default).
import {
  type Device,
  type ExitSignalArrays,
  embedding,
  exitSignals,
  gatherRows,
  type HostTensor,
  type MatmulSpec,
  matmul,
  mulberry32,
  readSignals,
  rmsNorm,
  SIGNALS_PER_ROW,
  type Tensor,
  type TensorView,
  tableWindows,
  ValidationError,
} from '@offramp/core';
import {
  type BlockDims,
  type BlockState,
  type BlockWeights,
  blockPrefill,
  blockStep,
  blockWeightTensors,
  isCpuLike,
  linearOp,
  Scope,
  uploadBlock,
} from './block.js';
import { checkExitBlocks, defaultExitBlocks, type MambaConfig } from './config.js';
import type { ExitClassifiers } from './exit-classifier.js';
import { argmax, checkSampling, type SamplingOptions, sampleToken } from './sampling.js';
import { normalizeMambaTensors } from './weights.js';

export interface MambaLMOptions {
  /**
   * Largest storage binding (bytes) for windows of the embedding / LM head table. Default: the device's
   * maxStorageBufferBindingSize. Smaller values force the windowed path (tests).
   */
  maxBindingBytes?: number;
  /** Exit blocks (0-based, increasing; the last block is added). Default: config.exits, else the latter half. */
  exits?: number[];
  /**
   * Longest prompt prefill accepts, in tokens (default MAX_PROMPT_TOKENS). A prefill keeps every block's
   * activations for the whole batch, about 4·L·(3d + 5D + R + 2N) bytes per token (≈ 20 KiB for the Austen
   * model, ≈ 1 MiB for mamba-130m), so the cap bounds its memory.
   */
  maxPromptTokens?: number;
}

/** Default longest prompt, in tokens, that prefill (and so generate) accepts; see MambaLMOptions. */
export const MAX_PROMPT_TOKENS = 8192;

/** When a token leaves at an early exit block. */
export type ExitRule =
  | { kind: 'never' }
  /** Every token leaves at this exit block. */
  | { kind: 'fixed'; block: number }
  /** Leave when the exit head's max softmax probability ≥ threshold. */
  | { kind: 'maxProb'; threshold: number }
  /** Leave when the exit head's softmax entropy (nats) ≤ threshold. */
  | { kind: 'entropy'; threshold: number }
  /** Leave when σ(classifier logit) ≥ threshold; the classifiers must be the cache's (see newCache). */
  | { kind: 'classifier'; threshold: number }
  /**
   * Any policy: given the exit signals of the live rows at exit block `block` (core's exitSignals: max
   * probability, entropy, margin, argmax, similarity with the previous exit's hidden state or the embedding,
   * and as gate σ(classifier logit) when the cache has exit classifiers, else NaN), which rows leave.
   */
  | {
      kind: 'custom';
      decide: (
        signals: ExitSignalArrays,
        ctx: { block: number; rows: readonly number[] },
      ) => ArrayLike<boolean | number>;
    };

export interface ExitOptions {
  rule: ExitRule;
  /** What happens to the state of the blocks a token skips: 'freeze' (default) or 'partial'. */
  skip?: 'freeze' | 'partial';
}

export interface StepResult {
  /** (B, V) logits of each row at the exit it left from. */
  logits: Float32Array;
  /** Block after which each row left (numLayers − 1 = full depth). */
  exitBlocks: Int32Array;
  /** Blocks run, summed over rows (partial updates not included). */
  blocksRun: number;
  /** Blocks partially run (state-only updates of skipped blocks), summed over rows. */
  partialBlocks: number;
}

export interface GenerateOptions {
  maxNewTokens: number;
  sampling?: SamplingOptions;
  /** Token ids that end a sequence (the stop token is kept in the output). */
  stop?: number[];
  exit?: ExitOptions;
  /** Exit classifiers (rule 'classifier'); their state is prefilled with the prompts. */
  classifiers?: ExitClassifiers;
}

export interface GenerateResult {
  /** New tokens of each sequence. */
  tokens: number[][];
  /** Exit block of each new token (the first is the prefill's: full depth). */
  exitBlocks: number[][];
  /** Mean fraction of the blocks run per generated token after the first (1 = no early exit). */
  depthFraction: number;
}

export interface ScoreResult {
  /** Σ −log p(next token) in nats over all scored positions. */
  nll: number;
  count: number;
  /** (B, T) exit block of each position. */
  exitBlocks: Int32Array;
  /** (B, T) argmax of the logits each position left with. */
  argmax: Int32Array;
  /** (B, T) −log p(next token) of each position. */
  tokenNll: Float64Array;
  blocksRun: number;
  partialBlocks: number;
}

type Window = ReturnType<typeof tableWindows>[number];

/** Per-sequence recurrent state of every block (and of stateful exit classifiers), for `batch` rows. */
export class MambaCache {
  constructor(
    readonly batch: number,
    readonly layers: BlockState[],
    readonly classifiers: ExitClassifiers | null,
    readonly classifierStates: (BlockState | null)[],
  ) {}

  /** Host copies of one sequence's states: conv (D·K) and SSM (D·N) per block. */
  async readSequence(row: number): Promise<{ conv: Float32Array[]; ssm: Float32Array[] }> {
    if (!Number.isInteger(row) || row < 0 || row >= this.batch)
      throw new ValidationError(`readSequence: row must be in [0, ${this.batch}), got ${row}`);
    const conv: Float32Array[] = [];
    const ssm: Float32Array[] = [];
    for (const l of this.layers) {
      const c = (await l.conv.read()) as Float32Array;
      const s = (await l.ssm.read()) as Float32Array;
      const wc = c.length / this.batch;
      const ws = s.length / this.batch;
      conv.push(c.slice(row * wc, (row + 1) * wc));
      ssm.push(s.slice(row * ws, (row + 1) * ws));
    }
    return { conv, ssm };
  }

  /** Overwrites one sequence's states (e.g. from readSequence of another cache, to move a sequence between batches). */
  writeSequence(row: number, states: { conv: ArrayLike<number>[]; ssm: ArrayLike<number>[] }): void {
    if (!Number.isInteger(row) || row < 0 || row >= this.batch)
      throw new ValidationError(`writeSequence: row must be in [0, ${this.batch}), got ${row}`);
    if (states.conv.length !== this.layers.length || states.ssm.length !== this.layers.length) {
      throw new ValidationError(
        `writeSequence: expected states of ${this.layers.length} blocks, got ${states.conv.length} conv and ${states.ssm.length} SSM`,
      );
    }
    this.layers.forEach((l, i) => {
      const wc = l.conv.length / this.batch;
      const ws = l.ssm.length / this.batch;
      if (states.conv[i].length !== wc || states.ssm[i].length !== ws) {
        throw new ValidationError(
          `writeSequence: block ${i} needs ${wc} conv and ${ws} SSM values, got ${states.conv[i].length} and ${states.ssm[i].length}`,
        );
      }
      l.conv.write(states.conv[i], row * wc);
      l.ssm.write(states.ssm[i], row * ws);
    });
  }

  dispose(): void {
    for (const l of [...this.layers, ...this.classifierStates]) {
      l?.conv.dispose();
      l?.ssm.dispose();
    }
  }
}

export class MambaLM {
  readonly blocks: BlockWeights[];
  readonly emb: Tensor;
  readonly head: Tensor;
  readonly normF: Tensor;
  readonly exits: readonly number[];
  readonly windows: readonly Window[];
  private readonly dummy: Tensor;
  readonly d: number;
  readonly V: number;
  readonly L: number;
  /** Longest prompt prefill accepts, in tokens. */
  readonly maxPromptTokens: number;

  /** Builds from normalized host tensors (see normalizeMambaTensors / loadMambaDir). */
  constructor(
    readonly device: Device,
    readonly config: MambaConfig,
    tensors: Map<string, HostTensor>,
    options: MambaLMOptions = {},
  ) {
    const c = config;
    this.d = c.hiddenSize;
    this.V = c.vocabSize;
    this.L = c.numLayers;
    const cap = options.maxPromptTokens ?? MAX_PROMPT_TOKENS;
    if (!Number.isInteger(cap) || cap < 1)
      throw new ValidationError(`MambaLM: maxPromptTokens must be a positive integer, got ${cap}`);
    this.maxPromptTokens = cap;
    this.exits = checkExitBlocks(
      options.exits ?? c.exits ?? defaultExitBlocks(c.numLayers),
      c.numLayers,
      'MambaLM exits',
    );
    const dims: BlockDims = {
      d: c.hiddenSize,
      D: c.intermediateSize,
      N: c.stateSize,
      R: c.timeStepRank,
      K: c.convKernel,
      out: c.hiddenSize,
      residual: true,
      eps: c.layerNormEpsilon,
    };
    const get = (n: string) => {
      const t = tensors.get(n);
      if (!t)
        throw new ValidationError(`MambaLM: tensor '${n}' is missing; pass tensors through normalizeMambaTensors`);
      return t;
    };
    this.blocks = Array.from({ length: c.numLayers }, (_, i) => uploadBlock(device, tensors, `layers.${i}`, dims));
    this.emb = device.tensor('f32', [this.V, this.d], get('embeddings.weight').data, 'embeddings');
    // tie_word_embeddings decides, as in HuggingFace: tied → the embedding is the head; untied → lm_head.weight
    if (c.tieWordEmbeddings && tensors.has('lm_head.weight'))
      throw new ValidationError(
        "MambaLM: the tensors hold 'lm_head.weight' but tieWordEmbeddings is true, so the head is the embedding; pass the tensors through normalizeMambaTensors (it drops the ignored head with a warning) or set tieWordEmbeddings to false to use it",
      );
    if (!c.tieWordEmbeddings && !tensors.has('lm_head.weight'))
      throw new ValidationError(
        "MambaLM: tieWordEmbeddings is false but the tensors have no 'lm_head.weight'; add the head or set tieWordEmbeddings to true to use the embedding as the head",
      );
    this.head = c.tieWordEmbeddings
      ? this.emb
      : device.tensor('f32', [this.V, this.d], get('lm_head.weight').data, 'lm_head');
    this.normF = device.tensor('f32', [this.d], get('norm_f.weight').data, 'norm_f');
    this.dummy = device.tensor('f32', [4], undefined, 'dummy');
    this.windows = tableWindows(device, this.V, this.d, options.maxBindingBytes);
  }

  /** From a config and HF-named tensors (any of the accepted name styles). */
  static fromHF(
    device: Device,
    config: MambaConfig,
    tensors: Map<string, { shape: readonly number[]; data: ArrayLike<number> }>,
    options: MambaLMOptions = {},
  ): MambaLM {
    return new MambaLM(device, config, normalizeMambaTensors(config, tensors).tensors, options);
  }

  get numLayers(): number {
    return this.L;
  }

  /** A zeroed cache for `batch` sequences (with state for `classifiers` when they are stateful). */
  newCache(batch: number, classifiers?: ExitClassifiers): MambaCache {
    if (!Number.isInteger(batch) || batch < 1)
      throw new ValidationError(`newCache: batch must be a positive integer, got ${batch}`);
    const { D, N, K } = this.blocks[0].dims;
    const z = (shape: number[], label: string) =>
      this.device.tensor('f32', shape, new Float32Array(shape[0] * shape[1] * shape[2]), label);
    const layers = this.blocks.map((_, i) => ({
      conv: z([batch, D, K], `cache.${i}.conv`),
      ssm: z([batch, D, N], `cache.${i}.ssm`),
    }));
    if (classifiers) this.checkClassifiers(classifiers);
    const cs = classifiers ? classifiers.config.exits.map((_, j) => classifiers.newState(j, batch)) : [];
    return new MambaCache(batch, layers, classifiers ?? null, cs);
  }

  private checkClassifiers(c: ExitClassifiers): void {
    const early = this.exits.slice(0, -1);
    if (
      c.config.hiddenSize !== this.d ||
      c.config.exits.length !== early.length ||
      c.config.exits.some((e, j) => e !== early[j])
    ) {
      throw new ValidationError(
        `exit classifiers read blocks [${c.config.exits.join(', ')}] of width ${c.config.hiddenSize}; this model's early exits are [${early.join(', ')}] of width ${this.d}`,
      );
    }
  }

  private checkIds(seqs: readonly (readonly number[])[], what: string): void {
    seqs.forEach((s, b) => {
      s.forEach((id, t) => {
        if (!Number.isInteger(id) || id < 0 || id >= this.V) {
          throw new ValidationError(
            `${what} ${b}, position ${t}: token id ${id} is outside [0, ${this.V}) (vocab_size)`,
          );
        }
      });
    });
  }

  /** Embeddings (n, d) of ids (n) u32, window by window when the table exceeds one binding. */
  embed(s: Scope, ids: Tensor, n: number): Tensor {
    const y = s.f32([n, this.d]);
    const chunk = this.windows.length > 1;
    for (const w of this.windows) {
      const table: TensorView = { tensor: this.emb, offset: w.start * this.d, length: w.count * this.d };
      this.device.dispatch(
        embedding,
        { ids, table: chunk ? table : this.emb, pos: this.dummy, y },
        { n, dim: this.d, vocab: w.count, seqLen: 1, addPosition: 0, idBase: w.start },
        { chunk },
      );
    }
    return y;
  }

  /** Exit-head logits (n, V) = LM head(norm_f(h)), window by window over the head's rows when needed. */
  logits(s: Scope, h: Tensor, n: number): Tensor {
    const hn = s.f32([n, this.d]);
    this.device.dispatch(
      rmsNorm,
      { x: h, weight: this.normF, y: hn },
      { rows: n, cols: this.d, eps: this.config.layerNormEpsilon },
    );
    const out = s.f32([n, this.V]);
    if (this.windows.length === 1) {
      linearOp(this.device, hn, this.head, n, this.V, this.d, out, undefined, this.dummy);
      return out;
    }
    // one matmul per window: each of the n rows is a batch entry writing columns [start, start + count)
    const spec: Partial<MatmulSpec> = isCpuLike(this.device)
      ? { variant: 'regblock', tm: 1, tn: 8 }
      : { variant: 'tiled' };
    for (const w of this.windows) {
      this.device.dispatch(
        matmul,
        {
          a: hn,
          b: { tensor: this.head, offset: w.start * this.d, length: w.count * this.d },
          bias: this.dummy,
          c: { tensor: out, offset: w.start, length: (n - 1) * this.V + w.count },
        },
        { M: 1, N: w.count, K: this.d, batch: n, strideA: this.d, strideB: 0, strideC: this.V },
        { ...spec, transB: true, bias: false },
      );
    }
    return out;
  }

  /**
   * Prefill of a batch of prompts of different lengths (right-padded; each sequence's state stops at its
   * length). Fills `cache` (a new one by default) and returns each prompt's last-token logits (B, V), and
   * with `allLogits` the logits of every position (B, T, V) with T the longest prompt.
   */
  async prefill(
    prompts: readonly (readonly number[])[],
    options: { cache?: MambaCache; allLogits?: boolean; classifiers?: ExitClassifiers } = {},
  ): Promise<{ logits: Float32Array; all?: Float32Array; cache: MambaCache; T: number }> {
    const B = prompts.length;
    if (B === 0) throw new ValidationError('prefill: no prompts');
    prompts.forEach((p, b) => {
      if (p.length === 0)
        throw new ValidationError(`prefill: prompt ${b} is empty; every prompt needs at least one token`);
      if (p.length > this.maxPromptTokens)
        throw new ValidationError(
          `prefill: prompt ${b} has ${p.length} tokens, more than the limit of ${this.maxPromptTokens} tokens (MambaLMOptions.maxPromptTokens; a prefill keeps every block's activations for every token)`,
        );
    });
    this.checkIds(prompts, 'prompt');
    const cache = options.cache ?? this.newCache(B, options.classifiers);
    if (cache.batch !== B)
      throw new ValidationError(`prefill: the cache holds ${cache.batch} sequences, ${B} prompts given`);
    const T = Math.max(...prompts.map((p) => p.length));
    const M = B * T;
    const ids = new Uint32Array(M);
    prompts.forEach((p, b) => {
      ids.set(p, b * T);
    });
    const lens = prompts.map((p) => p.length);
    const s = new Scope(this.device);
    try {
      const varlen = lens.some((l) => l !== T);
      const lengths = varlen ? s.u32(lens) : null;
      let h = this.embed(s, s.u32(ids), M);
      for (let l = 0; l < this.L; l++) {
        h = blockPrefill(s, this.blocks[l], h, B, T, lengths, cache.layers[l]);
        const j = cache.classifiers ? cache.classifiers.config.exits.indexOf(l) : -1;
        if (j >= 0) cache.classifiers!.prefill(s, j, h, B, T, lengths, cache.classifierStates[j]);
      }
      const last = s.f32([B, this.d]);
      this.device.dispatch(
        gatherRows,
        { idx: s.u32(lens.map((L, b) => b * T + L - 1)), x: h, y: last },
        { count: B, width: this.d, srcStride: this.d, srcOffset: 0 },
      );
      const logits = (await this.logits(s, last, B).read()) as Float32Array;
      const all = options.allLogits ? ((await this.logits(s, h, M).read()) as Float32Array) : undefined;
      return { logits, all, cache, T };
    } finally {
      s.dispose();
    }
  }

  /** One decoding step: `tokens` (one per cache row) through the blocks, with optional token-level early exit. */
  async step(tokens: readonly number[], cache: MambaCache, exit?: ExitOptions): Promise<StepResult> {
    const B = cache.batch;
    if (tokens.length !== B) throw new ValidationError(`step: ${tokens.length} tokens for a cache of ${B} sequences`);
    this.checkIds([tokens], 'step tokens');
    const rule = exit?.rule ?? { kind: 'never' };
    const skip = exit?.skip ?? 'freeze';
    this.checkRule(rule, cache);
    const V = this.V;
    const s = new Scope(this.device);
    const out = new Float32Array(B * V);
    const exitBlocks = new Int32Array(B).fill(this.L - 1);
    let blocksRun = 0;
    let partialBlocks = 0;
    try {
      let h = this.embed(s, s.u32(tokens), B);
      let prev = h; // hidden state at the previous exit (the embedding before the first), for 'custom'
      let live = Array.from({ length: B }, (_, i) => i);
      let rows: Tensor | null = null;
      const early = this.exits.slice(0, -1);
      for (let l = 0; l < this.L; l++) {
        const n = live.length;
        h = blockStep(s, this.blocks[l], h, n, rows, cache.layers[l])!;
        blocksRun += n;
        if (l === this.L - 1) {
          const z = (await this.logits(s, h, n).read()) as Float32Array;
          live.forEach((row, r) => {
            out.set(z.subarray(r * V, (r + 1) * V), row * V);
          });
          break;
        }
        const j = early.indexOf(l);
        if (j < 0 || rule.kind === 'never') continue;
        const decision = new Uint8Array(n);
        let z: Float32Array | null = null;
        if (rule.kind === 'fixed') decision.fill(rule.block === l ? 1 : 0);
        else if (rule.kind === 'classifier') {
          const c = cache.classifiers!;
          const g = (await c.step(s, j, h, n, rows, cache.classifierStates[j]).read()) as Float32Array;
          const t = rule.threshold;
          for (let r = 0; r < n; r++) decision[r] = 1 / (1 + Math.exp(-g[r])) >= t ? 1 : 0;
        } else if (rule.kind === 'custom') {
          const c = cache.classifiers;
          const g = c ? c.step(s, j, h, n, rows, cache.classifierStates[j]) : null;
          const sig = s.f32([n, SIGNALS_PER_ROW]);
          this.device.dispatch(
            exitSignals,
            { logits: this.logits(s, h, n), gateLogit: g ?? this.dummy, pooled: h, prevPooled: prev, signals: sig },
            { rows: n, classes: V, dim: this.d },
            { gate: g !== null, similarity: true },
          );
          const d = rule.decide(readSignals((await sig.read()) as Float32Array, n), { block: l, rows: live });
          if (!d || d.length !== n)
            throw new ValidationError(
              `exit rule 'custom' returned ${d?.length ?? 'nothing'} decisions for ${n} rows at block ${l}`,
            );
          for (let r = 0; r < n; r++) decision[r] = d[r] ? 1 : 0;
        } else {
          z = (await this.logits(s, h, n).read()) as Float32Array;
          for (let r = 0; r < n; r++) {
            const { maxProb, entropy } = softmaxSignals(z, r * V, V);
            decision[r] = (rule.kind === 'maxProb' ? maxProb >= rule.threshold : entropy <= rule.threshold) ? 1 : 0;
          }
        }
        const leave: number[] = [];
        const stay: number[] = [];
        decision.forEach((v, r) => {
          (v ? leave : stay).push(r);
        });
        prev = h;
        if (leave.length === 0) continue;
        const leaveRows = leave.map((r) => live[r]);
        const hLeave = leave.length === n ? h : this.gather(s, h, leave);
        const zl = z ? null : ((await this.logits(s, hLeave, leave.length).read()) as Float32Array);
        leave.forEach((r, k) => {
          const src = z ? z.subarray(r * V, (r + 1) * V) : zl!.subarray(k * V, (k + 1) * V);
          out.set(src, live[r] * V);
          exitBlocks[live[r]] = l;
        });
        if (skip === 'partial') {
          const idx = s.u32(leaveRows);
          for (let k = l + 1; k < this.L; k++) {
            blockStep(s, this.blocks[k], hLeave, leave.length, idx, cache.layers[k], true);
            partialBlocks += leave.length;
          }
        }
        if (stay.length === 0) break;
        h = this.gather(s, h, stay);
        prev = h;
        live = stay.map((r) => live[r]);
        rows = s.u32(live);
      }
      return { logits: out, exitBlocks, blocksRun, partialBlocks };
    } finally {
      s.dispose();
    }
  }

  private checkRule(rule: ExitRule, cache: MambaCache): void {
    const early = this.exits.slice(0, -1);
    switch (rule.kind) {
      case 'never':
      case 'custom':
        return;
      case 'fixed':
        if (!early.includes(rule.block) && rule.block !== this.L - 1) {
          throw new ValidationError(
            `exit rule 'fixed': block ${rule.block} is not an exit block; exits are [${this.exits.join(', ')}]`,
          );
        }
        return;
      case 'maxProb':
        if (!(rule.threshold >= 0 && rule.threshold <= 1))
          throw new ValidationError(`exit rule 'maxProb': threshold must be in [0, 1], got ${rule.threshold}`);
        return;
      case 'entropy':
        if (!(rule.threshold >= 0))
          throw new ValidationError(`exit rule 'entropy': threshold must be ≥ 0 nats, got ${rule.threshold}`);
        return;
      case 'classifier':
        if (!(rule.threshold >= 0 && rule.threshold <= 1))
          throw new ValidationError(`exit rule 'classifier': threshold must be in [0, 1], got ${rule.threshold}`);
        if (!cache.classifiers)
          throw new ValidationError(
            "exit rule 'classifier' needs a cache made with classifiers: newCache(batch, classifiers) or generate({ classifiers })",
          );
        return;
      default:
        throw new ValidationError(
          `unknown exit rule '${(rule as { kind: string }).kind}': use never, fixed, maxProb, entropy, classifier or custom`,
        );
    }
  }

  private gather(s: Scope, h: Tensor, positions: number[]): Tensor {
    const y = s.f32([positions.length, this.d]);
    this.device.dispatch(
      gatherRows,
      { idx: s.u32(positions), x: h, y },
      { count: positions.length, width: this.d, srcStride: this.d, srcOffset: 0 },
    );
    return y;
  }

  /** Generates up to maxNewTokens tokens after each prompt (prompts may differ in length). */
  async generate(prompts: readonly (readonly number[])[], o: GenerateOptions): Promise<GenerateResult> {
    if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1)
      throw new ValidationError(`generate: maxNewTokens must be a positive integer, got ${o.maxNewTokens}`);
    const sampling = o.sampling ?? {};
    checkSampling(sampling);
    const rand = mulberry32(sampling.seed ?? 0);
    const stop = new Set(o.stop ?? []);
    const B = prompts.length;
    const { logits, cache } = await this.prefill(prompts, { classifiers: o.classifiers });
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
   * Teacher-forced scoring with token-level exits: feeds sequences (all of one length T + 1) token by token
   * from an empty state and scores each next token under the logits of the exit the token left from.
   */
  async score(
    sequences: readonly (readonly number[])[],
    exit?: ExitOptions,
    classifiers?: ExitClassifiers,
  ): Promise<ScoreResult> {
    const B = sequences.length;
    if (B === 0) throw new ValidationError('score: no sequences');
    const T = sequences[0].length - 1;
    if (T < 1 || sequences.some((q) => q.length !== T + 1))
      throw new ValidationError('score: sequences must all have the same length ≥ 2');
    this.checkIds(sequences, 'sequence');
    const cache = this.newCache(B, classifiers);
    const res: ScoreResult = {
      nll: 0,
      count: 0,
      exitBlocks: new Int32Array(B * T),
      argmax: new Int32Array(B * T),
      tokenNll: new Float64Array(B * T),
      blocksRun: 0,
      partialBlocks: 0,
    };
    try {
      for (let t = 0; t < T; t++) {
        const r = await this.step(
          sequences.map((q) => q[t]),
          cache,
          exit,
        );
        res.blocksRun += r.blocksRun;
        res.partialBlocks += r.partialBlocks;
        for (let b = 0; b < B; b++) {
          const o = b * this.V;
          let mx = Number.NEGATIVE_INFINITY;
          for (let v = 0; v < this.V; v++) mx = Math.max(mx, r.logits[o + v]);
          let se = 0;
          for (let v = 0; v < this.V; v++) se += Math.exp(r.logits[o + v] - mx);
          const nll = mx + Math.log(se) - r.logits[o + sequences[b][t + 1]];
          res.tokenNll[b * T + t] = nll;
          res.nll += nll;
          res.count++;
          res.exitBlocks[b * T + t] = r.exitBlocks[b];
          res.argmax[b * T + t] = argmax(r.logits, o, this.V);
        }
      }
      return res;
    } finally {
      cache.dispose();
    }
  }

  /** Every weight tensor on the device. */
  weightTensors(): Tensor[] {
    const out = this.blocks.flatMap(blockWeightTensors);
    out.push(this.emb, this.normF);
    if (this.head !== this.emb) out.push(this.head);
    return out;
  }

  dispose(): void {
    for (const t of this.weightTensors()) t.dispose();
    this.dummy.dispose();
  }
}

/** Max probability and entropy (nats) of softmax(z[o .. o+V)). */
export function softmaxSignals(z: ArrayLike<number>, o: number, V: number): { maxProb: number; entropy: number } {
  let mx = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < V; v++) mx = Math.max(mx, z[o + v]);
  let se = 0;
  let sze = 0;
  for (let v = 0; v < V; v++) {
    const e = Math.exp(z[o + v] - mx);
    se += e;
    sze += (z[o + v] - mx) * e;
  }
  return { maxProb: 1 / se, entropy: Math.log(se) - sze / se };
}

/** Row windows of a (V, d) table within the binding limit (core's, shared with the decoder). */
export { tableWindows };
