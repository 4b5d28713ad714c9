// BERT-style encoder classifier with exits: token + position embeddings, pre-LN blocks (multi-head
// attention with padding masks, GELU MLP), exit heads on the first token (CLS) after chosen blocks.
// A row's valid length is `lengths[i]` if given, else the row without trailing pad_token_id ids (see
// `validLengths`), so a tokenizer's padded rows and the unpadded ids give the same logits.
//   ids: (B, T) u32, lengths: (B) u32 → h: (B, T, d) → per exit: CLS (B, d) → LN → [pooler] → logits (B, C)

import type { GraphBuilder } from '../engine/graph.js';
import type { EarlyExitModel, EncodedBatch, ModelInput, ModelProgram } from '../engine/model.js';
import { ValidationError } from '../errors.js';
import { attention } from '../kernels/attention.js';
import { embedding } from '../kernels/embedding.js';
import { gatherRows } from '../kernels/gather-rows.js';
import type { Tensor } from '../runtime/tensor.js';
import { addOp, checkExits, exitHead, layerNormOp, linear } from './common.js';
import type { EncoderClassifierConfig } from './config.js';

/** Sequence-length buckets: a program is compiled per bucket. */
export const SEQ_BUCKETS = [8, 16, 32, 64, 128, 256, 512, 1024, 2048];

export class EncoderClassifier implements EarlyExitModel {
  readonly numBlocks: number;
  readonly exitBlocks: readonly number[];
  readonly numClasses: number;

  constructor(
    readonly config: EncoderClassifierConfig,
    readonly weights: Map<string, Tensor>,
  ) {
    this.numBlocks = config.num_layers;
    this.exitBlocks = config.exits.blocks;
    this.numClasses = config.num_classes;
    checkExits(config.exits, config.num_layers);
    if (config.hidden_size % config.num_heads !== 0) {
      throw new ValidationError(`hidden_size ${config.hidden_size} must be divisible by num_heads ${config.num_heads}`);
    }
  }

  batchSize(input: ModelInput): number {
    if (!('ids' in input)) throw new ValidationError('encoder_classifier takes token ids: { ids: number[][] }');
    return input.ids.length;
  }

  /**
   * Tokens row i attends to: `lengths[i]` when given (1 ≤ lengths[i] ≤ the row's length), else the row without
   * its trailing pad_token_id ids (at least the first token) when the model has a pad id, else the whole row.
   */
  validLengths(input: ModelInput): Uint32Array {
    if (!('ids' in input)) throw new ValidationError('encoder_classifier takes token ids: { ids: number[][] }');
    const n = input.ids.length;
    const out = new Uint32Array(n);
    if (input.lengths !== undefined && input.lengths.length !== n) {
      throw new ValidationError(
        `lengths has ${input.lengths.length} entries for ${n} sequences; give one per sequence`,
      );
    }
    const pad = this.config.pad_token_id;
    input.ids.forEach((seq, i) => {
      if (seq.length === 0)
        throw new ValidationError(`sequence ${i} is empty: every input needs at least the first (CLS) token`);
      let len = seq.length;
      if (input.lengths !== undefined) {
        len = input.lengths[i];
        if (!Number.isInteger(len) || len < 1 || len > seq.length) {
          throw new ValidationError(
            `lengths[${i}] is ${len}; expected an integer in [1, ${seq.length}] (the length of sequence ${i})`,
          );
        }
      } else if (pad !== undefined) {
        while (len > 1 && seq[len - 1] === pad) len--;
      }
      out[i] = len;
    });
    return out;
  }

  bucket(input: ModelInput): number {
    const lengths = this.validLengths(input);
    let max = 1;
    lengths.forEach((len, i) => {
      if (len > this.config.max_position) {
        throw new ValidationError(
          `sequence ${i} has ${len} tokens; this model takes at most max_position = ${this.config.max_position}: truncate it`,
        );
      }
      max = Math.max(max, len);
    });
    const b = SEQ_BUCKETS.find((x) => x >= max) ?? max;
    return Math.min(b, this.config.max_position);
  }

  encode(input: ModelInput, T: number): EncodedBatch {
    if (!('ids' in input)) throw new ValidationError('encoder_classifier takes token ids: { ids: number[][] }');
    const n = input.ids.length;
    const ids = new Uint32Array(n * T).fill(this.config.pad_token_id ?? 0);
    const lengths = this.validLengths(input);
    const V = this.config.vocab_size;
    input.ids.forEach((seq, i) => {
      const len = lengths[i];
      if (len > T) throw new ValidationError(`sequence ${i} has ${len} tokens, more than the program's ${T}`);
      for (let t = 0; t < len; t++) {
        const id = seq[t];
        if (!Number.isInteger(id) || id < 0 || id >= V) {
          throw new ValidationError(`sequence ${i}, position ${t}: token id ${id} is outside [0, ${V}) (vocab_size)`);
        }
        ids[i * T + t] = id;
      }
    });
    return { rows: n, data: { ids, lengths } };
  }

  program(b: GraphBuilder, T: number): ModelProgram {
    const c = this.config;
    const d = c.hidden_size;
    const eps = c.layer_norm_eps ?? 1e-5;
    const { h, stem, block } = encoderBackbone(b, T, c);
    return {
      stem,
      block,
      exit: (j) => {
        const p = `exits.${j}`;
        const pooled = b.scratch(`${p}.cls`, d);
        b.op(
          gatherRows,
          { idx: b.identity!, x: b.cur(h), y: pooled },
          (r) => ({ count: r, width: d, srcStride: T * d, srcOffset: 0 }),
          { label: `${p}.cls` },
        );
        const z = layerNormOp(b, pooled, `${p}.ln`, { cols: d, rowsPerSample: 1, eps });
        return exitHead(b, j, z, pooled, d, c.num_classes, c.exits);
      },
    };
  }

  dispose(): void {
    for (const t of this.weights.values()) t.dispose();
  }
}

/** Sizes the encoder's stem and blocks read (the classifier's config, or the embedder's). */
export interface EncoderBackboneConfig {
  hidden_size: number;
  intermediate_size: number;
  num_heads: number;
  layer_norm_eps?: number;
}

/**
 * The encoder's stem (token + position embeddings) and pre-LN blocks on a builder, for programs of sequence
 * length T, with the carried hidden state h (B, T, d) and the valid lengths (B): shared by the classifier and
 * the embedder (embeddings/model.ts).
 */
export function encoderBackbone(b: GraphBuilder, T: number, c: EncoderBackboneConfig) {
  const d = c.hidden_size;
  const ff = c.intermediate_size;
  const H = c.num_heads;
  const eps = c.layer_norm_eps ?? 1e-5;
  const h = b.carry('h', T * d);
  const lengths = b.carry('lengths', 1, 'u32');
  const ids = b.input('ids', T, 'u32');
  const stem = () => {
    // a token table larger than one storage binding runs as one dispatch per row window
    const windows = b.weightRows('embeddings.token.weight', d);
    const pos = b.weight('embeddings.position.weight');
    const out = b.next(h);
    windows.forEach((w, k) => {
      b.op(
        embedding,
        { ids, table: w.ref, pos, y: out },
        (r) => ({ n: r * T, dim: d, vocab: w.rows, seqLen: T, addPosition: 1, idBase: w.rowStart }),
        {
          spec: { chunk: windows.length > 1 },
          flopsPerRow: k === 0 ? T * d : 0,
          label: `embeddings${windows.length > 1 ? `.${k}` : ''}`,
        },
      );
    });
  };
  const block = (i: number) => {
    const p = `blocks.${i}`;
    const x = b.cur(h);
    const t1 = layerNormOp(b, x, `${p}.ln1`, { cols: d, rowsPerSample: T, eps });
    const qkv = linear(b, t1, `${p}.attn.qkv`, { inF: d, outF: 3 * d, rowsPerSample: T });
    const att = b.scratch(`${p}.attn.ctx`, T * d);
    b.op(
      attention,
      { qkv, lengths: b.cur(lengths), out: att },
      (r) => ({ B: r, T, d, heads: H, scale: 1 / Math.sqrt(d / H) }),
      {
        // the head size fixed at build: unrolled per-head loops (3.3× faster at dh 16 on lavapipe)
        spec: { causal: false, headDim4: Math.ceil(d / H / 4) },
        flopsPerRow: 4 * T * T * d + 5 * H * T * T,
        label: `${p}.attn`,
      },
    );
    const o = linear(b, att, `${p}.attn.out`, { inF: d, outF: d, rowsPerSample: T });
    const mid = b.scratch(`${p}.mid`, T * d);
    addOp(b, x, o, mid, T * d, `${p}.residual1`);
    const t4 = layerNormOp(b, mid, `${p}.ln2`, { cols: d, rowsPerSample: T, eps });
    const f1 = linear(b, t4, `${p}.mlp.fc1`, { inF: d, outF: ff, rowsPerSample: T }, 'gelu');
    const f2 = linear(b, f1, `${p}.mlp.fc2`, { inF: ff, outF: d, rowsPerSample: T });
    addOp(b, mid, f2, b.next(h), T * d, `${p}.residual2`);
  };
  return { h, lengths, ids, stem, block };
}
