// The Mamba LM on the common generation interface (GenerationModel): prefill into a MambaCache, steps with a
// token-level exit rule through MambaLM's 'custom' rule (the gate signal is σ(classifier logit) when exit
// classifiers are given), the freeze / partial skip strategies, and teacher-forced signals at every exit.
import {
  concatSignals,
  type ExitSignalArrays,
  type GenerationExit,
  type GenerationModel,
  type GenerationScore,
  hostExitSignals,
  nllOf,
  ValidationError,
} from '@offramp/core';
import type { ExitClassifiers } from './exit-classifier.js';
import type { MambaCache, MambaLM } from './model.js';

const MAMBA_SKIPS = ['freeze', 'partial'] as const;

export interface MambaGenerationOptions {
  /** Exit classifiers whose σ(logit) is the gate signal (their state lives in each cache). */
  classifiers?: ExitClassifiers;
}

/** MambaLM as a GenerationModel (skip strategies: 'freeze', the default, and 'partial'). */
export function mambaGenerationModel(lm: MambaLM, options: MambaGenerationOptions = {}): GenerationModel<MambaCache> {
  const classifiers = options.classifiers;
  return {
    kind: 'mamba',
    numLayers: lm.numLayers,
    exits: lm.exits,
    vocabSize: lm.V,
    maxSequenceLength: Number.POSITIVE_INFINITY,
    skipStrategies: MAMBA_SKIPS,
    newCache: (batch) => lm.newCache(batch, classifiers),
    prefill: async (prompts, cache) => (await lm.prefill(prompts, { cache })).logits,
    async step(tokens, cache, exit?: GenerationExit) {
      const skip = exit?.skip ?? 'freeze';
      if (!(MAMBA_SKIPS as readonly string[]).includes(skip))
        throw new ValidationError(`mamba step: skip strategy '${skip}' is not one of ${MAMBA_SKIPS.join(', ')}`);
      const r = await lm.step(
        tokens,
        cache,
        exit ? { rule: { kind: 'custom', decide: exit.decide }, skip: skip as 'freeze' | 'partial' } : undefined,
      );
      return { logits: r.logits, exitBlocks: r.exitBlocks, blocksRun: r.blocksRun };
    },
    score: (sequences) => mambaScore(lm, sequences, classifiers),
  };
}

/**
 * Teacher-forced signals at every exit: the sequences (lengths may differ) run token by token at full depth
 * with a rule that records the signals and lets nothing leave. The last exit's signals come from the
 * step's logits (its similarity is NaN: the step keeps no hidden state there).
 */
export async function mambaScore(
  lm: MambaLM,
  sequences: readonly (readonly number[])[],
  classifiers?: ExitClassifiers,
): Promise<GenerationScore> {
  const B = sequences.length;
  if (B === 0) throw new ValidationError('score: no sequences');
  sequences.forEach((q, b) => {
    if (q.length < 2) throw new ValidationError(`score: sequence ${b} has ${q.length} tokens; at least 2 are needed`);
  });
  const E = lm.exits.length;
  const V = lm.V;
  const offsets: number[] = [];
  let count = 0;
  for (const q of sequences) {
    offsets.push(count);
    count += q.length - 1;
  }
  const T = Math.max(...sequences.map((q) => q.length - 1));
  // per exit, per position t: the signals of all rows (rows past their end are dropped below)
  const perStep: ExitSignalArrays[][] = lm.exits.map(() => []);
  const tokenNll = lm.exits.map(() => new Float64Array(count));
  const cache = lm.newCache(B, classifiers);
  try {
    for (let t = 0; t < T; t++) {
      const tokens = sequences.map((q) => (t < q.length - 1 ? q[t] : 0));
      const r = await lm.step(tokens, cache, {
        rule: {
          kind: 'custom',
          decide: (s, ctx) => {
            perStep[lm.exits.indexOf(ctx.block)][t] = s;
            return new Uint8Array(ctx.rows.length);
          },
        },
      });
      perStep[E - 1][t] = hostExitSignals(r.logits, B, V);
      for (let b = 0; b < B; b++) {
        if (t >= sequences[b].length - 1) continue;
        // nll of the early exits needs their logits: recomputed from the final when it is the last exit only
        tokenNll[E - 1][offsets[b] + t] = nllOf(r.logits, b * V, V, sequences[b][t + 1]);
      }
    }
  } finally {
    cache.dispose();
  }
  // reorder (t, b) into sequence-major positions
  const signals = lm.exits.map((_, e) => {
    const rows: ExitSignalArrays[] = [];
    for (let b = 0; b < B; b++) for (let t = 0; t < sequences[b].length - 1; t++) rows.push(rowOf(perStep[e][t], b));
    return concatSignals(rows);
  });
  for (let e = 0; e < E - 1; e++) tokenNll[e].fill(Number.NaN);
  return { exits: lm.exits, count, signals, tokenNll };
}

function rowOf(s: ExitSignalArrays, r: number): ExitSignalArrays {
  const one = <T extends Float32Array | Int32Array>(a: T) => a.subarray(r, r + 1) as T;
  return {
    maxProb: one(s.maxProb),
    entropy: one(s.entropy),
    margin: one(s.margin),
    argmax: one(s.argmax),
    gate: one(s.gate),
    similarity: one(s.similarity),
  };
}
