// The common interface of language models with token-level exits (the Llama-style decoder, the Mamba LM):
// a cache of per-sequence state, a full-depth prefill of prompts, a decode step with a per-row exit rule that
// sees the exit signals of the live rows at every early exit, and teacher-forced scoring at every exit. One
// generation loop (and one calibration, one CLI) drives every model through it.
import type { ExitSignalArrays } from '../kernels/exit-signals.js';

/** Per-sequence state of a generation model for `batch` rows. */
export interface GenerationCache {
  readonly batch: number;
  dispose(): void;
}

/**
 * A token-level exit rule: given the signals of the live rows at early exit block `block` (rows listed by
 * their cache row, in the order of the signal arrays), which rows leave now. Called once per early exit
 * per step, in block order, with the rows that have not left yet.
 */
export type TokenExitDecide = (
  signals: ExitSignalArrays,
  ctx: { block: number; rows: readonly number[] },
) => ArrayLike<boolean | number>;

export interface GenerationExit {
  decide: TokenExitDecide;
  /**
   * What happens to the blocks an exited token skips; the model's own names (decoder: 'propagate' or
   * 'none'; Mamba: 'freeze' or 'partial'). Default: the model's default (see skipStrategies[0]).
   */
  skip?: string;
}

export interface GenerationStepResult {
  /** (B, V) logits of each row at the exit it left from. */
  logits: Float32Array;
  /** Block after which each row left (numLayers − 1 = full depth). */
  exitBlocks: Int32Array;
  /** Blocks run, summed over rows. */
  blocksRun: number;
}

/** Teacher-forced scoring at every exit (the full model's run, nothing exits). */
export interface GenerationScore {
  /** Exit blocks, in order (the last is numLayers − 1). */
  exits: readonly number[];
  /** Scored positions: Σ (length − 1) over the sequences, sequence after sequence. */
  count: number;
  /** Per exit: the signals of every scored position (similarity: with the previous exit's hidden state). */
  signals: ExitSignalArrays[];
  /** Per exit: −log p(next token) of every scored position (NaN where the model does not give it: Mamba's early exits). */
  tokenNll: Float64Array[];
}

export interface GenerationModel<C extends GenerationCache = GenerationCache> {
  /** 'decoder' or 'mamba' (or another model's name). */
  readonly kind: string;
  readonly numLayers: number;
  /** Exit blocks, increasing; the last is numLayers − 1. */
  readonly exits: readonly number[];
  readonly vocabSize: number;
  /** Longest sequence (prompt + new tokens) one cache row holds (Infinity for recurrent state). */
  readonly maxSequenceLength: number;
  /** Skip strategies `step` accepts, the default first. */
  readonly skipStrategies: readonly string[];
  /** An empty cache for `batch` rows of at most `maxLength` positions. */
  newCache(batch: number, maxLength: number): C;
  /** Full-depth prefill of prompts (different lengths) into an empty cache: each prompt's last logits (B, V). */
  prefill(prompts: readonly (readonly number[])[], cache: C): Promise<Float32Array>;
  /** One token per row at the row's next position, with an optional token-level exit rule. */
  step(tokens: readonly number[], cache: C, exit?: GenerationExit): Promise<GenerationStepResult>;
  /** Teacher-forced signals at every exit for sequences of length ≥ 2. */
  score(sequences: readonly (readonly number[])[]): Promise<GenerationScore>;
}
