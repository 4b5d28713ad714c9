// A Mamba sequence classifier for @offramp/core's early-exit Runner (EarlyExitModel): token embedding →
// Mamba-1 blocks (each a full prefill over the padded sequence; the SSM state stays inside the block) →
// at each exit: the hidden state at the sequence's last valid token → RMSNorm → [pooler: Linear + tanh] →
// Linear → logits, optionally a gate head (Linear + tanh → Linear → one logit). Every classification
// policy runs on it, in host or device mode, with the Runner's exits and row compaction.
//   ids (B, T) u32, lengths (B) u32 → h (B, T, d) → per exit: pooled (B, d) → logits (B, C)
// Tensors: embeddings.weight [V, d]; layers.{i}.norm.weight [d], layers.{i}.mixer.* as in HuggingFace
// Mamba-1; exits.{j}.norm.weight [d]; exits.{j}.pooler.{weight [d, d], bias}; exits.{j}.classifier.{weight
// [d, C], bias [C]}; exits.{j}.gate.fc1.{weight [d, g], bias}, exits.{j}.gate.fc2.{weight [g, 1], bias} —
// exit-head Linear weights stored (in, out) as everywhere in @offramp/core.
import {
  binary,
  conv1dCausal,
  type Device,
  type EarlyExitModel,
  type EncodedBatch,
  type ExitHeadOut,
  type ExitsConfig,
  embedding,
  type GraphBuilder,
  type HostTensor,
  type ModelConfig,
  type ModelInput,
  type ModelProgram,
  matmul,
  mulberry32,
  randn,
  rmsNorm,
  SEQ_BUCKETS,
  type Tensor,
  type TRef,
  ValidationError,
} from '@offramp/core';
import { type BlockDims, isCpuLike, uploadBlock } from './block.js';
import { checkExitBlocks, type MambaConfig, mambaTensorSpec } from './config.js';
import { lastTokenRows } from './kernels/last-token.js';
import { selectiveScan } from './kernels/selective-scan.js';

export interface MambaClassifierConfig {
  architecture: 'mamba_classifier';
  vocab_size: number;
  hidden_size: number;
  num_layers: number;
  state_size: number;
  intermediate_size: number;
  conv_kernel: number;
  time_step_rank: number;
  num_classes: number;
  layer_norm_eps?: number;
  max_position?: number;
  pad_token_id?: number;
  exits: ExitsConfig;
}

/** The backbone part of a classifier config, as a Mamba-1 LM config (no head). */
export function classifierBackbone(c: MambaClassifierConfig): MambaConfig {
  return {
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    numLayers: c.num_layers,
    stateSize: c.state_size,
    expand: c.intermediate_size / c.hidden_size,
    intermediateSize: c.intermediate_size,
    convKernel: c.conv_kernel,
    timeStepRank: c.time_step_rank,
    layerNormEpsilon: c.layer_norm_eps ?? 1e-5,
    useBias: false,
    useConvBias: true,
    tieWordEmbeddings: false,
  };
}

/** Every tensor name and shape of a classifier. */
export function mambaClassifierSpec(c: MambaClassifierConfig): Map<string, number[]> {
  const m = mambaTensorSpec(classifierBackbone(c), false);
  m.delete('norm_f.weight');
  const d = c.hidden_size;
  c.exits.blocks.forEach((_, j) => {
    const p = `exits.${j}`;
    m.set(`${p}.norm.weight`, [d]);
    if (c.exits.head === 'pooler') {
      m.set(`${p}.pooler.weight`, [d, d]);
      m.set(`${p}.pooler.bias`, [d]);
    }
    m.set(`${p}.classifier.weight`, [d, c.num_classes]);
    m.set(`${p}.classifier.bias`, [c.num_classes]);
    if (c.exits.gate) {
      const g = c.exits.gate_hidden ?? 64;
      m.set(`${p}.gate.fc1.weight`, [d, g]);
      m.set(`${p}.gate.fc1.bias`, [g]);
      m.set(`${p}.gate.fc2.weight`, [g, 1]);
      m.set(`${p}.gate.fc2.bias`, [1]);
    }
  });
  return m;
}

/** Seeded random classifier weights (tests, benchmarks) with Mamba-like value ranges. */
export function randomMambaClassifierWeights(c: MambaClassifierConfig, seed = 1): Map<string, HostTensor> {
  const rand = mulberry32(seed);
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of mambaClassifierSpec(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (name.endsWith('A_log'))
      data = Float32Array.from({ length: n }, (_, i) => Math.log((i % shape[1]) + 1) + (rand() - 0.5) * 0.5);
    else if (name.endsWith('dt_proj.bias'))
      data = Float32Array.from({ length: n }, () => Math.log(Math.expm1(0.001 + rand() * 0.099)));
    else if (name.endsWith('norm.weight') || name.endsWith('mixer.D')) data = randn(n, rand, 0.1).map((v) => 1 + v);
    else if (name.endsWith('.bias')) data = randn(n, rand, 0.05);
    else if (name.startsWith('embeddings')) data = randn(n, rand, 0.5);
    else {
      const fanIn = name.endsWith('conv1d.weight') ? shape[2] : name.startsWith('exits.') ? shape[0] : shape[1];
      data = randn(n, rand, 1 / Math.sqrt(fanIn));
    }
    out.set(name, { shape, data });
  }
  return out;
}

export class MambaSequenceClassifier implements EarlyExitModel {
  readonly numBlocks: number;
  readonly exitBlocks: readonly number[];
  readonly numClasses: number;
  readonly weights = new Map<string, Tensor>();
  /** The engine's config slot; this model's own config is `mambaConfig`. */
  readonly config: ModelConfig;
  private readonly dims: BlockDims;
  private readonly cpuLike: boolean;

  constructor(
    readonly device: Device,
    readonly mambaConfig: MambaClassifierConfig,
    tensors: Map<string, HostTensor>,
  ) {
    const c = mambaConfig;
    this.config = c as unknown as ModelConfig;
    this.numBlocks = c.num_layers;
    this.numClasses = c.num_classes;
    const exits = checkExitBlocks(c.exits.blocks, c.num_layers, 'exits.blocks');
    if (exits.length !== c.exits.blocks.length) {
      throw new ValidationError(
        `exits.blocks must end with the last block (${c.num_layers - 1}), got [${c.exits.blocks.join(', ')}]`,
      );
    }
    this.exitBlocks = exits;
    const spec = mambaClassifierSpec(c);
    const problems: string[] = [];
    for (const [n, shape] of spec) {
      const t = tensors.get(n);
      if (!t) problems.push(`missing '${n}' [${shape.join(', ')}]`);
      else if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i]))
        problems.push(`'${n}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    for (const n of tensors.keys()) if (!spec.has(n)) problems.push(`unexpected '${n}'`);
    if (problems.length)
      throw new ValidationError(`weights of the mamba_classifier model: ${problems.slice(0, 10).join('; ')}`);
    this.dims = {
      d: c.hidden_size,
      D: c.intermediate_size,
      N: c.state_size,
      R: c.time_step_rank,
      K: c.conv_kernel,
      out: c.hidden_size,
      residual: true,
      eps: c.layer_norm_eps ?? 1e-5,
    };
    this.cpuLike = isCpuLike(device);
    for (let i = 0; i < c.num_layers; i++) {
      const bw = uploadBlock(device, tensors, `layers.${i}`, this.dims);
      for (const [k, v] of Object.entries(bw)) if (k !== 'dims' && v) this.weights.set(`layers.${i}.${k}`, v as Tensor);
    }
    for (const [n, t] of tensors) {
      if (n.startsWith('layers.')) continue;
      this.weights.set(n, device.tensor('f32', t.shape, t.data, n));
    }
  }

  batchSize(input: ModelInput): number {
    if (!('ids' in input)) throw new ValidationError('mamba_classifier takes token ids: { ids: number[][] }');
    return input.ids.length;
  }

  bucket(input: ModelInput): number {
    if (!('ids' in input)) throw new ValidationError('mamba_classifier takes token ids: { ids: number[][] }');
    const maxPos = this.mambaConfig.max_position ?? 4096;
    let max = 1;
    input.ids.forEach((seq, i) => {
      if (seq.length === 0) throw new ValidationError(`sequence ${i} is empty: every input needs at least one token`);
      if (seq.length > maxPos)
        throw new ValidationError(
          `sequence ${i} has ${seq.length} tokens; this model takes at most max_position = ${maxPos}: truncate it`,
        );
      max = Math.max(max, seq.length);
    });
    return Math.min(SEQ_BUCKETS.find((x) => x >= max) ?? max, maxPos);
  }

  encode(input: ModelInput, T: number): EncodedBatch {
    if (!('ids' in input)) throw new ValidationError('mamba_classifier takes token ids: { ids: number[][] }');
    const n = input.ids.length;
    const ids = new Uint32Array(n * T).fill(this.mambaConfig.pad_token_id ?? 0);
    const lengths = new Uint32Array(n);
    const V = this.mambaConfig.vocab_size;
    input.ids.forEach((seq, i) => {
      if (seq.length > T)
        throw new ValidationError(`sequence ${i} has ${seq.length} tokens, more than the program's ${T}`);
      for (let t = 0; t < seq.length; t++) {
        const id = seq[t];
        if (!Number.isInteger(id) || id < 0 || id >= V)
          throw new ValidationError(`sequence ${i}, position ${t}: token id ${id} is outside [0, ${V}) (vocab_size)`);
        ids[i * T + t] = id;
      }
      lengths[i] = seq.length;
    });
    return { rows: n, data: { ids, lengths } };
  }

  /** y (rows·M, N) = x · W (+ bias) (+ act); `transB` for HF (out, in) weights. */
  private linear(
    b: GraphBuilder,
    x: TRef,
    W: string,
    dims: { M: number; N: number; K: number },
    opts: { transB: boolean; bias?: string; act?: 'tanh' | 'identity'; label: string },
  ): TRef {
    const y = b.scratch(`${opts.label}.out`, dims.M * dims.N);
    const spec = this.cpuLike ? { variant: 'regblock' as const } : { variant: 'tiled' as const };
    const Wt = b.weight(W);
    b.op(
      matmul,
      { a: x, b: Wt, bias: opts.bias ? b.weight(opts.bias) : Wt, c: y },
      (r) => ({ M: r * dims.M, N: dims.N, K: dims.K, batch: 1, strideA: 0, strideB: 0, strideC: 0 }),
      {
        spec: { ...spec, transB: opts.transB, bias: Boolean(opts.bias), act: opts.act ?? 'identity' },
        flopsPerRow: 2 * dims.M * dims.N * dims.K + (opts.bias ? dims.M * dims.N : 0),
        label: opts.label,
      },
    );
    return y;
  }

  program(b: GraphBuilder, T: number): ModelProgram {
    const c = this.mambaConfig;
    const { d, D, N, R, K, eps } = this.dims;
    const C = c.num_classes;
    const h = b.carry('h', T * d);
    const lengths = b.carry('lengths', 1, 'u32');
    const ids = b.input('ids', T, 'u32');
    return {
      stem: () => {
        const table = b.weight('embeddings.weight');
        b.op(
          embedding,
          { ids, table, pos: table, y: b.next(h) },
          (r) => ({ n: r * T, dim: d, vocab: c.vocab_size, seqLen: T, addPosition: 0, idBase: 0 }),
          {
            label: 'embeddings',
          },
        );
      },
      block: (i) => {
        const p = `layers.${i}`;
        const x = b.cur(h);
        const u = b.scratch(`${p}.u`, T * d);
        b.op(rmsNorm, { x, weight: b.weight(`${p}.norm`), y: u }, (r) => ({ rows: r * T, cols: d, eps }), {
          flopsPerRow: 4 * T * d,
          label: `${p}.norm`,
        });
        const xi = this.linear(b, u, `${p}.inX`, { M: T, N: D, K: d }, { transB: true, label: `${p}.in_proj.x` });
        const z = this.linear(b, u, `${p}.inZ`, { M: T, N: D, K: d }, { transB: true, label: `${p}.in_proj.z` });
        const xc = b.scratch(`${p}.conv`, T * D);
        b.op(
          conv1dCausal,
          { x: xi, weight: b.weight(`${p}.convW`), bias: b.weight(`${p}.convB`), y: xc },
          (r) => ({ B: r, T, D, K }),
          { spec: { bias: true, silu: true }, flopsPerRow: T * D * (2 * K + 5), label: `${p}.conv1d` },
        );
        const delta = this.linear(b, xc, `${p}.xDt`, { M: T, N: R, K: D }, { transB: true, label: `${p}.x_proj.dt` });
        const Bm = this.linear(b, xc, `${p}.xB`, { M: T, N, K: D }, { transB: true, label: `${p}.x_proj.B` });
        const Cm = this.linear(b, xc, `${p}.xC`, { M: T, N, K: D }, { transB: true, label: `${p}.x_proj.C` });
        const dpre = this.linear(b, delta, `${p}.dtW`, { M: T, N: D, K: R }, { transB: true, label: `${p}.dt_proj` });
        const y = b.scratch(`${p}.y`, T * D);
        const state = b.scratch(`${p}.ssm_state`, D * N);
        b.op(
          selectiveScan,
          {
            x: xc,
            delta: dpre,
            chan: b.weight(`${p}.scanChan`),
            A_log: b.weight(`${p}.A_log`),
            Bm,
            Cm,
            z,
            lengths: b.cur(lengths),
            y,
            state,
          },
          (r) => ({ B: r, T, D }),
          { spec: { N, gate: true, varlen: true }, flopsPerRow: T * D * (6 * N + 10), label: `${p}.scan` },
        );
        const o = this.linear(b, y, `${p}.outW`, { M: T, N: d, K: D }, { transB: true, label: `${p}.out_proj` });
        b.op(binary, { x, b: o, y: b.next(h) }, (r) => ({ n: r * T * d, period: Math.max(1, r * T * d) }), {
          spec: { op: 'add' },
          flopsPerRow: T * d,
          label: `${p}.residual`,
        });
      },
      exit: (j): ExitHeadOut => {
        const p = `exits.${j}`;
        const pooled = b.scratch(`${p}.pooled`, d);
        b.op(lastTokenRows, { h: b.cur(h), lengths: b.cur(lengths), y: pooled }, (r) => ({ B: r, T, W: d }), {
          label: `${p}.last_token`,
        });
        const zn = b.scratch(`${p}.norm.out`, d);
        b.op(rmsNorm, { x: pooled, weight: b.weight(`${p}.norm.weight`), y: zn }, (r) => ({ rows: r, cols: d, eps }), {
          flopsPerRow: 4 * d,
          label: `${p}.norm`,
        });
        let hh = zn;
        if (c.exits.head === 'pooler') {
          hh = this.linear(
            b,
            zn,
            `${p}.pooler.weight`,
            { M: 1, N: d, K: d },
            { transB: false, bias: `${p}.pooler.bias`, act: 'tanh', label: `${p}.pooler` },
          );
        }
        const logits = this.linear(
          b,
          hh,
          `${p}.classifier.weight`,
          { M: 1, N: C, K: d },
          { transB: false, bias: `${p}.classifier.bias`, label: `${p}.classifier` },
        );
        let gateLogit: TRef | undefined;
        if (c.exits.gate) {
          const g = c.exits.gate_hidden ?? 64;
          const g1 = this.linear(
            b,
            zn,
            `${p}.gate.fc1.weight`,
            { M: 1, N: g, K: d },
            { transB: false, bias: `${p}.gate.fc1.bias`, act: 'tanh', label: `${p}.gate.fc1` },
          );
          gateLogit = this.linear(
            b,
            g1,
            `${p}.gate.fc2.weight`,
            { M: 1, N: 1, K: g },
            { transB: false, bias: `${p}.gate.fc2.bias`, label: `${p}.gate.fc2` },
          );
        }
        return { logits, classes: C, gateLogit, pooled, poolDim: d };
      },
    };
  }

  dispose(): void {
    for (const t of this.weights.values()) t.dispose();
  }
}
