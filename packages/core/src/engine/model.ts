// What the engine needs from a model: how to build its graph for a program (stem, blocks, exit heads), how
// to pick a sequence-length bucket for a batch, and how to turn a batch into per-row input arrays.

import type { ModelConfig } from '../models/config.js';
import type { AnyTypedArray } from '../runtime/dtype.js';
import type { Tensor } from '../runtime/tensor.js';
import type { GraphBuilder, TRef } from './graph.js';

export interface ExitHeadOut {
  logits: TRef;
  classes: number;
  /** One gate/λ logit per row, when the exit has a gate head. */
  gateLogit?: TRef;
  /** The pooled hidden state (rows, poolDim) used for the saturation (cosine) signal. */
  pooled: TRef;
  poolDim: number;
  /**
   * The exit's output is an image (`logits` holds it, NCHW, classes = channels·height·width): the engine
   * writes its no-reference quality score (RBQE, kernel `qualityScore`) into the gate signal, replacing σ(gate).
   */
  image?: { channels: 1 | 3; height: number; width: number };
}

export interface ModelProgram {
  stem(): void;
  block(i: number): void;
  exit(j: number): ExitHeadOut;
}

/**
 * One batch of model inputs: token sequences (encoders) or flat images / feature vectors. An encoder attends to
 * the first `lengths[i]` tokens of row i when `lengths` is given; otherwise, when the model has a
 * `pad_token_id`, to the row up to its last non-padding token (trailing pad ids are padding, as in training);
 * otherwise to the whole row. Padded and unpadded forms of a row give the same outputs.
 */
export type ModelInput =
  | { ids: ArrayLike<number>[]; lengths?: ArrayLike<number> }
  | { features: Float32Array[] | Float32Array };

export interface EncodedBatch {
  rows: number;
  /** Data for `input` tensors and the initial value of `carried` tensors, by name, rows concatenated. */
  data: Record<string, AnyTypedArray>;
}

export interface EarlyExitModel {
  readonly config: ModelConfig;
  readonly numBlocks: number;
  /** Block index of each exit; the last is numBlocks − 1. */
  readonly exitBlocks: readonly number[];
  readonly numClasses: number;
  /** Sequence-length bucket for a batch (1 for non-sequence models). */
  bucket(input: ModelInput): number;
  /** Validates and encodes a batch for a program of sequence length T. */
  encode(input: ModelInput, T: number): EncodedBatch;
  /** Builds the graph for programs of sequence length T. */
  program(b: GraphBuilder, T: number): ModelProgram;
  /** Number of rows in a batch. */
  batchSize(input: ModelInput): number;
  /** Weights on the device, by name (disposed by `dispose`). */
  readonly weights: Map<string, Tensor>;
  dispose(): void;
}
