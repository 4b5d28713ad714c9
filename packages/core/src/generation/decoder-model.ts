// The Llama-style decoder on the common generation interface: a thin adapter over DecoderLM's public API
// (newCache, prefill, step with a 'custom' exit rule, and a teacher-forced forward layer by layer for
// scoring at every exit).
import { ValidationError } from '../errors.js';
import type { ExitSignalArrays } from '../kernels/exit-signals.js';
import type { DecoderCache, DecoderLM } from '../models/decoder-lm.js';
import type { Tensor } from '../runtime/tensor.js';
import type { GenerationExit, GenerationModel, GenerationScore, GenerationStepResult } from './interface.js';
import { hostExitSignals } from './signals.js';

const DECODER_SKIPS = ['propagate', 'none'] as const;

/** DecoderLM as a GenerationModel (skip strategies: 'propagate' = CALM state propagation, 'none'). */
export function decoderGenerationModel(lm: DecoderLM): GenerationModel<DecoderCache> {
  return {
    kind: 'decoder',
    numLayers: lm.numLayers,
    exits: lm.exits,
    vocabSize: lm.V,
    maxSequenceLength: lm.config.maxPositionEmbeddings,
    skipStrategies: DECODER_SKIPS,
    newCache: (batch, maxLength) => lm.newCache(batch, maxLength),
    prefill: async (prompts, cache) => (await lm.prefill(prompts, cache)).logits,
    async step(tokens, cache, exit?: GenerationExit): Promise<GenerationStepResult> {
      if (!exit) {
        const r = await lm.step(tokens, cache);
        return { logits: r.logits, exitBlocks: r.exitBlocks, blocksRun: r.blocksRun };
      }
      const skip = exit.skip ?? 'propagate';
      if (!(DECODER_SKIPS as readonly string[]).includes(skip))
        throw new ValidationError(
          `decoder step: skip strategy '${skip}' is not one of ${DECODER_SKIPS.join(', ')} (the decoder's)`,
        );
      const r = await lm.step(tokens, cache, {
        rule: {
          kind: 'custom',
          decide: (signals, ctx) => {
            const d = exit.decide(signals, ctx);
            return Array.from({ length: d.length }, (_, i) => Boolean(d[i]));
          },
        },
        skip: skip as 'propagate' | 'none',
      });
      return { logits: r.logits, exitBlocks: r.exitBlocks, blocksRun: r.blocksRun };
    },
    score: (sequences) => decoderScore(lm, sequences),
  };
}

/**
 * Teacher-forced signals at every exit: the sequences run once at full depth (in groups of at most
 * lm.maxTokens positions); similarity at an exit compares its hidden state with the previous exit's (the
 * embedding before the first), as DecoderLM.step does.
 */
export async function decoderScore(lm: DecoderLM, sequences: readonly (readonly number[])[]): Promise<GenerationScore> {
  if (sequences.length === 0) throw new ValidationError('score: no sequences');
  sequences.forEach((q, b) => {
    if (q.length < 2) throw new ValidationError(`score: sequence ${b} has ${q.length} tokens; at least 2 are needed`);
    if (q.length - 1 > lm.maxTokens)
      throw new ValidationError(
        `score: sequence ${b} has ${q.length - 1} scored positions, more than the decoder's ${lm.maxTokens} per call`,
      );
  });
  const E = lm.exits.length;
  const V = lm.V;
  const d = lm.d;
  const count = sequences.reduce((a, q) => a + q.length - 1, 0);
  const parts: ExitSignalArrays[][] = lm.exits.map(() => []);
  const tokenNll = lm.exits.map(() => new Float64Array(count));
  let done = 0;
  for (let a = 0; a < sequences.length; ) {
    // a group of whole sequences within the per-call token cap
    let b = a;
    let n = 0;
    while (b < sequences.length && n + sequences[b].length - 1 <= lm.maxTokens) n += sequences[b++].length - 1;
    const group = sequences.slice(a, b);
    const inputs = group.map((q) => q.slice(0, -1));
    const targets = group.flatMap((q) => q.slice(1));
    const rows = inputs.flatMap((q, r) => q.map(() => r));
    const positions = inputs.flatMap((q) => q.map((_, t) => t));
    const cache = lm.newCache(group.length, Math.max(...inputs.map((q) => q.length)));
    const owned: Tensor[] = [];
    try {
      let h = lm.embed(inputs.flat());
      owned.push(h);
      let prev = (await h.read()) as Float32Array;
      let l = 0;
      for (let e = 0; e < E; e++) {
        const block = lm.exits[e];
        h = lm.forwardLayers(h, cache, rows, positions, l, block + 1);
        owned.push(h);
        l = block + 1;
        const hv = (await h.read()) as Float32Array;
        const zt = lm.exitLogits(h, n, block);
        owned.push(zt);
        const z = (await zt.read()) as Float32Array;
        parts[e].push(hostExitSignals(z, n, V, { h: hv, prev, d }));
        for (let i = 0; i < n; i++) tokenNll[e][done + i] = nllOf(z, i * V, V, targets[i]);
        prev = hv;
      }
    } finally {
      for (const t of new Set(owned)) t.dispose();
      cache.dispose();
    }
    done += n;
    a = b;
  }
  return { exits: lm.exits, count, signals: parts.map(concatSignals), tokenNll };
}

/** −log softmax(z[o..o+V))[target]. */
export function nllOf(z: ArrayLike<number>, o: number, V: number, target: number): number {
  let mx = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < V; v++) mx = Math.max(mx, z[o + v]);
  let se = 0;
  for (let v = 0; v < V; v++) se += Math.exp(z[o + v] - mx);
  return mx + Math.log(se) - z[o + target];
}

/** Signal arrays of several row groups, end to end. */
export function concatSignals(parts: readonly ExitSignalArrays[]): ExitSignalArrays {
  const cat = <T extends Float32Array | Int32Array>(k: keyof ExitSignalArrays, make: (n: number) => T): T => {
    const n = parts.reduce((a, p) => a + p[k].length, 0);
    const out = make(n);
    let o = 0;
    for (const p of parts) {
      out.set(p[k] as never, o);
      o += p[k].length;
    }
    return out;
  };
  const f = (n: number) => new Float32Array(n);
  return {
    maxProb: cat('maxProb', f),
    entropy: cat('entropy', f),
    margin: cat('margin', f),
    argmax: cat('argmax', (n) => new Int32Array(n)),
    gate: cat('gate', f),
    similarity: cat('similarity', f),
  };
}
