// One host generation loop for every GenerationModel (decoder, Mamba): prefill at full depth, then one step
// per token with the token-level exit rule of any exit policy, host sampling (greedy, temperature, top-k,
// top-p, seeded: the same draws as the models' own generate), stop tokens, and a per-token callback for
// streaming.
import {
  checkSampling,
  type ExitPolicy,
  type GenerationCache,
  type GenerationExit,
  type GenerationModel,
  mulberry32,
  type SamplingOptions,
  sampleToken,
  ValidationError,
} from '@offramp/core';
import { TokenExitRule } from './adapter.js';

export interface GenerateTokensOptions {
  maxNewTokens: number;
  /** The exit policy, run per token (absent: full depth). */
  policy?: ExitPolicy<any>;
  /** Or a ready-made rule (e.g. a model-specific one); not with `policy`. */
  exit?: GenerationExit;
  /** Skip strategy of the model (decoder: 'propagate' | 'none'; Mamba: 'freeze' | 'partial'). */
  skip?: string;
  sampling?: SamplingOptions;
  /** Token ids that end a sequence (kept in the output). */
  stop?: readonly number[];
  /** Called after each generated position with the new token and exit block of every row still going. */
  onToken?: (event: TokenEvent) => void;
}

export interface TokenEvent {
  /** 0-based index of the generated position. */
  index: number;
  /** Rows that got a token at this position, with the token and the block it left from. */
  rows: { row: number; token: number; exitBlock: number }[];
}

export interface GenerateTokensResult {
  tokens: number[][];
  /** Exit block of each new token (the first comes from the prefill: full depth). */
  exitBlocks: number[][];
  /** Mean fraction of the blocks run per step after the first (1 = no early exit). */
  depthFraction: number;
  blocksRun: number;
  /** The policy's decisions, as a rule (absent without a policy). */
  rule?: TokenExitRule;
}

/** Generates up to maxNewTokens after each prompt with token-level exits decided by `policy`. */
export async function generateTokens<C extends GenerationCache>(
  model: GenerationModel<C>,
  prompts: readonly (readonly number[])[],
  o: GenerateTokensOptions,
): Promise<GenerateTokensResult> {
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1)
    throw new ValidationError(`generate: maxNewTokens must be a positive integer, got ${o.maxNewTokens}`);
  if (prompts.length === 0) throw new ValidationError('generate: no prompts');
  if (o.policy && o.exit) throw new ValidationError('generate: give a policy or an exit rule, not both');
  if (o.skip !== undefined && !model.skipStrategies.includes(o.skip))
    throw new ValidationError(
      `generate: skip strategy '${o.skip}' is not one of this ${model.kind} model's: ${model.skipStrategies.join(', ')}`,
    );
  const sampling = o.sampling ?? {};
  checkSampling(sampling);
  const rand = mulberry32(sampling.seed ?? 0);
  const stop = new Set(o.stop ?? []);
  const B = prompts.length;
  const V = model.vocabSize;
  const maxLen = Math.max(...prompts.map((p) => p.length)) + o.maxNewTokens;
  if (maxLen > model.maxSequenceLength)
    throw new ValidationError(
      `generate: the longest prompt plus maxNewTokens is ${maxLen} positions, more than this model's ${model.maxSequenceLength}`,
    );
  const rule = o.policy ? new TokenExitRule(o.policy, model, { batch: B, maxNewTokens: o.maxNewTokens }) : undefined;
  const exit: GenerationExit | undefined = rule
    ? { decide: rule.decide, skip: o.skip }
    : o.exit
      ? { ...o.exit, skip: o.exit.skip ?? o.skip }
      : undefined;
  const cache = model.newCache(B, maxLen);
  try {
    const logits = await model.prefill(prompts, cache);
    const tokens: number[][] = prompts.map(() => []);
    const exitBlocks: number[][] = prompts.map(() => []);
    const done = new Array(B).fill(false);
    const L = model.numLayers;
    const emit = (index: number, next: number[], blocks: ArrayLike<number>) => {
      const rows: TokenEvent['rows'] = [];
      next.forEach((t, b) => {
        if (done[b]) return;
        tokens[b].push(t);
        exitBlocks[b].push(blocks[b]);
        rows.push({ row: b, token: t, exitBlock: blocks[b] });
        if (stop.has(t)) done[b] = true;
      });
      o.onToken?.({ index, rows });
    };
    let next = prompts.map((_, b) => sampleToken(logits, b * V, V, sampling, rand));
    emit(
      0,
      next,
      next.map(() => L - 1),
    );
    let blocks = 0;
    let steps = 0;
    for (let k = 1; k < o.maxNewTokens && done.some((x) => !x); k++) {
      rule?.beginToken(k);
      const r = await model.step(next, cache, exit);
      rule?.endToken(r.exitBlocks);
      blocks += r.blocksRun;
      steps += B;
      next = next.map((_, b) => sampleToken(r.logits, b * V, V, sampling, rand));
      emit(k, next, r.exitBlocks);
    }
    return { tokens, exitBlocks, depthFraction: steps ? blocks / (steps * L) : 1, blocksRun: blocks, rule };
  } finally {
    cache.dispose();
  }
}
