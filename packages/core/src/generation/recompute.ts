// Deferred K/V recomputation (EE-LLM) for the decoder: a token that exits after block j writes NO keys and
// values for blocks > j at its step (DecoderLM.step with skip 'none', keeping its hidden state at the exit).
// Before the next step of its row, the skipped blocks j+1..L−1 are run on that token from its hidden state
// at j (forwardLayers: the token's real deeper hidden states, attending to the earlier full-depth entries),
// which writes the K/V the token would have written at full depth. So every later token attends to exactly
// the full-depth K/V of every earlier token — unlike CALM propagation, whose entries for the skipped blocks
// come from the exit's hidden state (norm + k/v projections only) and differ.
// Fused (the default, EE-LLM's form): the owed blocks ride in the next step's dispatches — at block b the
// rows are the tokens still running plus the owed positions that skipped b, their hidden states carried
// from where they stopped (DecoderExitOptions.deferred) — so the recomputation costs no dispatches of its
// own; a position still owed when every token of a step leaves early stays owed for the step after.
// Unfused (fused: false): the recomputation runs as its own pass right before the next step (one
// forwardLayers call per exit block among the rows, batched over rows). Both give the same tokens and
// cache; recomputedBlocks counts the cost. Host-driven (one step and one readback per token).
import type { DecoderCache, DecoderExitRule, DecoderLM, DeferredKV } from '../models/decoder-lm.js';
import { checkOptions, hostSampler, type LoopGenerateOptions, type LoopGenerateResult } from './gpu-loop.js';
import { tokenStreamer } from './stream.js';

export interface RecomputeResult extends LoopGenerateResult {
  /** Blocks run again to fill skipped K/V, summed over tokens (included in blocksComputed). */
  recomputedBlocks: number;
  /** Of those, blocks run after the last step to settle what was still owed (fused, with keepCache). */
  settledBlocks: number;
  /** With keepLogits: each step's (B, V) logits (index t: the logits token t was drawn from). */
  logits?: Float32Array[];
  /** With keepCache: the cache, every position's K/V filled (the caller disposes it). */
  cache?: DecoderCache;
}

export async function generateRecompute(
  model: DecoderLM,
  prompts: readonly (readonly number[])[],
  o: Omit<LoopGenerateOptions, 'exit' | 'stepsPerSubmit'> & {
    exit: { rule: DecoderExitRule };
    keepLogits?: boolean;
    keepCache?: boolean;
    /** Recompute inside the next step's dispatches (default true) or as a pass of its own before it. */
    fused?: boolean;
  },
): Promise<RecomputeResult> {
  const { maxLen } = checkOptions(model, prompts, o, 'generateRecompute');
  const sampling = o.sampling ?? {};
  const dev = model.device;
  const { V, L, d } = model;
  const B = prompts.length;
  const stop = new Set(o.stop ?? []);
  const { logits, cache } = await model.prefill(prompts, undefined, maxLen);
  const sampler = hostSampler(dev, B, V, sampling);
  const res: RecomputeResult = {
    tokens: prompts.map(() => []),
    exitBlocks: prompts.map(() => []),
    blocksRun: 0,
    blocksComputed: 0,
    readbacks: 0,
    recomputedBlocks: 0,
    settledBlocks: 0,
    logits: o.keepLogits ? [] : undefined,
  };
  const draw = (lg: Float32Array, step: number) => {
    if (res.logits) res.logits.push(lg.slice());
    res.readbacks++;
    return sampler.draw(lg, step);
  };
  // rows whose last token left early: its hidden state at the exit and the exit block
  let pending: { row: number; pos: number; block: number; h: Float32Array }[] = [];
  const recompute = () => {
    const blocks = [...new Set(pending.map((x) => x.block))];
    for (const j of blocks) {
      const group = pending.filter((x) => x.block === j);
      const h = dev.tensor('f32', [group.length, d]);
      const data = new Float32Array(group.length * d);
      group.forEach((x, i) => {
        data.set(x.h, i * d);
      });
      dev.write(h, data);
      const out = model.forwardLayers(
        h,
        cache,
        group.map((x) => x.row),
        group.map((x) => x.pos),
        j + 1,
        L,
      );
      out.dispose();
      h.dispose();
      res.recomputedBlocks += group.length * (L - 1 - j);
    }
    pending = [];
  };
  // fused: the positions still owed, carried from step to step
  let owed: DeferredKV | null = null;
  const settle = async () => {
    // every owed block, block by block (an owed position attends to the others of its row at each block)
    if (!owed) return;
    const { rows, positions, next } = owed;
    const hs = (await owed.h.read()) as Float32Array;
    owed.h.dispose();
    owed = null;
    for (let b = next[0]; b < L; b++) {
      let n = 0;
      while (n < rows.length && next[n] <= b) n++;
      const h = dev.tensor('f32', [n, d], hs.subarray(0, n * d));
      const out = model.forwardLayers(h, cache, rows.slice(0, n), positions.slice(0, n), b, b + 1);
      hs.set((await out.read()) as Float32Array, 0);
      out.dispose();
      h.dispose();
      res.recomputedBlocks += n;
      res.settledBlocks += n;
    }
  };
  const fused = o.fused ?? true;
  let keepCache = false;
  const flush = tokenStreamer(res.tokens, res.exitBlocks, o.onTokens);
  try {
    const done = new Array(B).fill(false);
    let next = await draw(logits, 0);
    next.forEach((tok, b) => {
      res.tokens[b].push(tok);
      res.exitBlocks[b].push(L - 1);
      if (stop.has(tok)) done[b] = true;
    });
    flush();
    for (let k = 1; k < o.maxNewTokens && done.some((x) => !x); k++) {
      if (!fused) recompute();
      const r = await model.step(
        next,
        cache,
        fused
          ? { rule: o.exit.rule, skip: 'none', deferred: owed }
          : { rule: o.exit.rule, skip: 'none', keepHidden: true },
      );
      res.readbacks++;
      res.blocksComputed += r.blocksRun;
      if (fused) {
        owed?.h.dispose();
        owed = r.deferred ?? null;
        res.recomputedBlocks += r.deferredBlocks ?? 0;
      }
      for (let b = 0; b < B && !fused; b++)
        if (r.exitBlocks[b] < L - 1)
          pending.push({
            row: b,
            pos: cache.lengths[b] - 1,
            block: r.exitBlocks[b],
            h: r.exitHidden!.slice(b * d, (b + 1) * d),
          });
      next = await draw(r.logits, k);
      next.forEach((tok, b) => {
        if (done[b]) return;
        res.tokens[b].push(tok);
        res.exitBlocks[b].push(r.exitBlocks[b]);
        res.blocksRun += r.exitBlocks[b] + 1;
        if (stop.has(tok)) done[b] = true;
      });
      flush();
    }
    if (o.keepCache) {
      recompute();
      await settle();
      res.cache = cache;
      keepCache = true;
    }
    res.blocksComputed += res.recomputedBlocks;
    return res;
  } finally {
    sampler.dispose();
    (owed as DeferredKV | null)?.h.dispose();
    if (!keepCache) cache.dispose();
  }
}
