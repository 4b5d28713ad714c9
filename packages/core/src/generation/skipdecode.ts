// SkipDecode for the decoder: one depth per generation step, shared by the whole batch and non-increasing
// over the steps. Instead of stopping early, a token skips LOWER blocks: it runs the w warm-up blocks
// [0, w), then its hidden state enters block L − h(t) directly and the top h(t) blocks [L − h(t), L) run,
//   h(t) = max(hMin, hMax − ⌊(hMax − hMin)·(t − t0)/(T − t0)⌋)  for t ≥ t0,  hMax before t0,
// t the generation step (1 for the first token fed back), T the last step. The logits come from the last
// block (model.norm + lm_head).
// Keys and values of the skipped blocks [w, L − h(t)) are NOT written for that token. No later token needs
// them: a later step t' ≥ t runs blocks ≥ L − h(t') ≥ L − h(t) (h is non-increasing) plus the warm-up
// blocks, and every block it runs was run — its K/V written — by every earlier token of the row (prompt
// tokens run all blocks). skipPlan checks that invariant on the schedule; the tests also check it on the
// device (cache entries poisoned with NaN: a read of a missing entry would turn the logits into NaN).
// Runs in the device loop (gpu-loop.ts): the schedule is known in advance, so there is no decision at all.
import { ValidationError } from '../errors.js';
import type { DecoderLM } from '../models/decoder-lm.js';
import { type DeviceLoopExtras, deviceLoop, type LoopGenerateOptions, type LoopGenerateResult } from './gpu-loop.js';

export interface SkipDecodeSchedule {
  /** Top blocks run at the start (default L − warmup). */
  hMax?: number;
  /** Top blocks run at the end (≥ 1; default ⌈(L − warmup) / 2⌉). */
  hMin: number;
  /** Warm-up blocks always run at the bottom (default 1). */
  warmup?: number;
  /** Step where the decay starts (default 1). */
  t0?: number;
  /** Step where h reaches hMin (default maxNewTokens − 1). */
  T?: number;
}

/** h(t) of the schedule (top blocks run at generation step t). */
export function skipDepth(t: number, hMin: number, hMax: number, t0: number, T: number): number {
  if (t <= t0) return hMax;
  return Math.max(hMin, hMax - Math.floor(((hMax - hMin) * (t - t0)) / (T - t0)));
}

export interface SkipPlan {
  /** Blocks run at step t (t ≥ 1). */
  blocks: (t: number) => number[];
  hMin: number;
  hMax: number;
  warmup: number;
  t0: number;
  T: number;
}

/** Validates a schedule for an L-block model over steps 1..steps and checks the K/V invariant. */
export function skipPlan(L: number, steps: number, s: SkipDecodeSchedule): SkipPlan {
  const warmup = s.warmup ?? 1;
  if (!Number.isInteger(warmup) || warmup < 0 || warmup >= L)
    throw new ValidationError(`skipdecode: warmup must be an integer in [0, ${L - 1}], got ${s.warmup}`);
  const hMax = s.hMax ?? L - warmup;
  if (!Number.isInteger(s.hMin) || s.hMin < 1 || !Number.isInteger(hMax) || hMax < s.hMin || warmup + hMax > L)
    throw new ValidationError(
      `skipdecode: need integers 1 ≤ hMin ≤ hMax and warmup + hMax ≤ ${L} blocks; got hMin ${s.hMin}, hMax ${hMax}, warmup ${warmup}`,
    );
  const t0 = s.t0 ?? 1;
  const T = s.T ?? Math.max(t0 + 1, steps);
  if (!Number.isInteger(t0) || t0 < 0 || !Number.isInteger(T) || T <= t0)
    throw new ValidationError(`skipdecode: need integers 0 ≤ t0 < T, got t0 ${s.t0}, T ${s.T}`);
  const blocks = (t: number) => {
    const h = skipDepth(t, s.hMin, hMax, t0, T);
    const out: number[] = [];
    for (let l = 0; l < warmup; l++) out.push(l);
    for (let l = L - h; l < L; l++) out.push(l);
    return out;
  };
  // the invariant: every block step t runs was run by every earlier step
  let prev = new Set(Array.from({ length: L }, (_, l) => l)); // the prompt runs all blocks
  for (let t = 1; t <= steps; t++) {
    const b = blocks(t);
    for (const l of b)
      if (!prev.has(l))
        throw new ValidationError(
          `skipdecode: step ${t} runs block ${l}, which an earlier token skipped (the schedule must be non-increasing)`,
        );
    prev = new Set([...prev].filter((l) => b.includes(l)));
  }
  return { blocks, hMin: s.hMin, hMax, warmup, t0, T };
}

/** SkipDecode generation on the device (every row the same blocks at each step). */
export async function generateSkipDecode(
  model: DecoderLM,
  prompts: readonly (readonly number[])[],
  o: Omit<LoopGenerateOptions, 'exit'> & DeviceLoopExtras & { schedule: SkipDecodeSchedule },
): Promise<LoopGenerateResult & { logits?: Float32Array[]; plan: SkipPlan }> {
  if (!o.schedule) throw new ValidationError('skipdecode: a schedule ({ hMin, hMax?, warmup?, t0?, T? }) is required');
  const plan = skipPlan(model.L, Math.max(1, o.maxNewTokens - 1), o.schedule);
  const r = await deviceLoop(model, prompts, { ...o, exit: undefined }, plan.blocks, 'generateSkipDecode');
  return { ...r, plan };
}
