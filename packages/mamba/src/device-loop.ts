// The Mamba LM's decode loop kept on the device, the counterpart of core's decoder loop (generateOnDevice):
// the previous token's embedding is read from a device buffer, every block runs its single-step kernels
// (conv state shift + SSM state update) on all B rows, the exit rule is decided by core's exitDecide kernel
// from core's exitSignals (or from an exit classifier's logit, rule 'classifier'), the next token is drawn by core's sampleTokens and written into the next step's
// input buffer, and N steps are recorded into one command submission with one readback per N tokens.
//
// Rows that exit skip the rest of the step by a per-row ACTIVE MASK (core's maskRows), not by compaction:
// a row that left keeps its hidden state h at the exit through the deeper blocks. The two skip strategies
// of MambaLM.step follow from what happens to the deeper blocks' recurrent state:
//   'freeze'  the block runs on a scratch copy of the state and only the active rows' new state is written
//             back (maskRows over the conv and SSM rows), so a row that left keeps its state there;
//   'partial' the block advances the state of every row: for a row that left, the input is its hidden
//             state at the exit, which is what MambaLM.step's state-only update feeds every deeper block
//             (the state update does not depend on the output path: no z, C, D or out_proj in it).
// Rows that ended (a stop token) are inactive: under 'freeze' their state stays as it was when they ended
// (MambaLM.generate keeps stepping them; their tokens are dropped either way).
// The state copies and the hidden-state mask are recorded only at blocks where a row can be inactive (above
// an exit that may fire; for the state also wherever a row may have ended). The cost of the mask: within a
// step threshold exits save no compute on the device (blocksComputed counts what ran; blocksRun what the
// tokens needed, as the host loop runs it). A fixed exit is known on the host, so its step ends at the
// exit block ('partial': the deeper blocks then get the state-only update of MambaLM.step).
//
// mambaGenerateHostLoop is the same generation with the host-side step (MambaLM.step: compaction, a
// readback per exit, any rule including custom and classifier) and the same device sampler, so both modes
// draw the same tokens.
import {
  checkDecodeLoopOptions,
  dispatchSample,
  EXIT_RULE_CODE,
  exitDecide,
  exitSignals,
  f32Threshold,
  gatherRows,
  hostDecodeLoop,
  hostSampler,
  type LoopGenerateResult,
  maskRows,
  type SamplingOptions,
  SIGNALS_PER_ROW,
  scatterRows,
  stepEnd,
  type Tensor,
  type TokenSink,
  tokenStreamer,
  ValidationError,
} from '@offramp/core';
import { type BlockState, blockStep, Scope } from './block.js';
import type { ExitClassifiers } from './exit-classifier.js';
import type { ExitRule, MambaCache, MambaLM } from './model.js';

export interface MambaLoopOptions {
  maxNewTokens: number;
  /** Greedy by default; temperature / topK / topP / seed as in SamplingOptions (drawn on the device). */
  sampling?: SamplingOptions;
  /** Token ids that end a row (kept in its output). */
  stop?: number[];
  /**
   * Exit rule and skip strategy (default 'freeze'). The device loop takes never, fixed, maxProb and
   * entropy, and classifier (with `classifiers`); custom rules run on the host only (mambaGenerateHostLoop,
   * MambaLM.generate).
   */
  exit?: { rule: ExitRule; skip?: 'freeze' | 'partial' };
  /** Exit classifiers (rule 'classifier'); their state is prefilled with the prompts, as in MambaLM.generate. */
  classifiers?: ExitClassifiers;
  /** Decode steps recorded per command submission, with one readback each (default 8). Device loop only. */
  stepsPerSubmit?: number;
  /** Streams tokens as they become final: after each readback (device loop) or step (host loop). */
  onTokens?: TokenSink;
  /** Return the cache (result.cache, the caller disposes it) instead of disposing it: for state checks. */
  keepCache?: boolean;
}

export interface MambaLoopResult extends LoopGenerateResult {
  /** The recurrent state after the last step, when keepCache is set. */
  cache?: MambaCache;
}

/** Default decode steps per submission (as core's decoder loop). */
export const MAMBA_STEPS_PER_SUBMIT = 8;

const DEVICE_RULES = ['never', 'fixed', 'maxProb', 'entropy', 'classifier'] as const;

/**
 * The least f32 logit g with 1 / (1 + e^−g) ≥ t in float64 (MambaLM.step's classifier test), found by
 * bisection over the ordered f32 values: for every f32 g, g ≥ it exactly when the host test holds.
 */
export function gateLogitThreshold(t: number): number {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const key = (x: number) => {
    f[0] = x;
    return u[0] >= 0x80000000 ? 0xffffffff - u[0] : u[0] + 0x80000000;
  };
  const val = (k: number) => {
    u[0] = k >= 0x80000000 ? k - 0x80000000 : 0xffffffff - k;
    return f[0];
  };
  const pass = (g: number) => 1 / (1 + Math.exp(-g)) >= t;
  let lo = key(Number.NEGATIVE_INFINITY);
  let hi = key(Number.POSITIVE_INFINITY);
  if (pass(val(lo))) return Number.NEGATIVE_INFINITY;
  if (!pass(val(hi))) return Number.NaN; // t > 1: no logit passes (and NaN passes no comparison)
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (pass(val(mid))) hi = mid;
    else lo = mid;
  }
  return val(hi);
}

/**
 * Scratch tensors reused step after step: the i-th f32 request of a step gets the tensor of the i-th request
 * of the first step (same shape). Every step asks for the same tensors in the same order, and the steps are
 * recorded in order into one queue, so a later step's writes come after the earlier step's reads.
 */
class StepScope extends Scope {
  private readonly reuse: Tensor[] = [];
  private next = 0;
  restart(): void {
    this.next = 0;
  }
  override f32(shape: number[], data?: ArrayLike<number>, label?: string): Tensor {
    if (data) return super.f32(shape, data, label);
    const t = this.reuse[this.next];
    if (t && t.shape.length === shape.length && t.shape.every((x, i) => x === Math.max(1, shape[i]))) {
      this.next++;
      return t;
    }
    const x = super.f32(shape, undefined, label);
    this.reuse[this.next++] = x;
    return x;
  }
}

function checkLoopOptions(lm: MambaLM, prompts: readonly (readonly number[])[], o: MambaLoopOptions, what: string) {
  const n = checkDecodeLoopOptions(lm.V, prompts, o, what, MAMBA_STEPS_PER_SUBMIT);
  const skip = o.exit?.skip ?? 'freeze';
  if (skip !== 'freeze' && skip !== 'partial')
    throw new ValidationError(`${what}: skip strategy '${skip}' is not one of freeze, partial`);
  return n;
}

function ruleParams(
  lm: MambaLM,
  rule: ExitRule,
  classifiers: ExitClassifiers | undefined,
  what: string,
): { code: number; threshold: number } {
  const early = lm.exits.slice(0, -1);
  switch (rule.kind) {
    case 'never':
      return { code: EXIT_RULE_CODE.never, threshold: 0 };
    case 'fixed':
      if (!early.includes(rule.block) && rule.block !== lm.L - 1)
        throw new ValidationError(
          `${what}: exit rule 'fixed': block ${rule.block} is not an exit block; exits are [${lm.exits.join(', ')}]`,
        );
      return { code: EXIT_RULE_CODE.fixed, threshold: 0 };
    case 'maxProb':
      if (!(rule.threshold >= 0 && rule.threshold <= 1))
        throw new ValidationError(`${what}: exit rule 'maxProb': threshold must be in [0, 1], got ${rule.threshold}`);
      return { code: EXIT_RULE_CODE.maxProb, threshold: f32Threshold(rule.threshold, false) };
    case 'entropy':
      if (!(rule.threshold >= 0))
        throw new ValidationError(`${what}: exit rule 'entropy': threshold must be ≥ 0 nats, got ${rule.threshold}`);
      return { code: EXIT_RULE_CODE.entropy, threshold: f32Threshold(rule.threshold, true) };
    case 'classifier':
      if (!(rule.threshold >= 0 && rule.threshold <= 1))
        throw new ValidationError(
          `${what}: exit rule 'classifier': threshold must be in [0, 1], got ${rule.threshold}`,
        );
      if (!classifiers)
        throw new ValidationError(`${what}: exit rule 'classifier' needs the exit classifiers: pass { classifiers }`);
      // the decision compares the classifier logit (put in signal 0) with the logit of the threshold
      return { code: EXIT_RULE_CODE.maxProb, threshold: gateLogitThreshold(rule.threshold) };
    default:
      throw new ValidationError(
        `${what}: exit rule '${rule.kind}' runs on the host only (its decision is a TypeScript function); use mambaGenerateHostLoop or MambaLM.generate, or one of ${DEVICE_RULES.join(', ')}`,
      );
  }
}

/** Generation with the whole decode loop on the device (see the file comment). */
export async function mambaGenerateOnDevice(
  lm: MambaLM,
  prompts: readonly (readonly number[])[],
  o: MambaLoopOptions,
): Promise<MambaLoopResult> {
  const what = 'mambaGenerateOnDevice';
  const N = checkLoopOptions(lm, prompts, o, what);
  const rule = o.exit?.rule ?? { kind: 'never' };
  const freeze = (o.exit?.skip ?? 'freeze') === 'freeze';
  const { code, threshold } = ruleParams(lm, rule, o.classifiers, what);
  const gate = rule.kind === 'classifier';
  const sampling = o.sampling ?? {};
  const stop = o.stop ?? [];
  const dev = lm.device;
  const { V, d, L } = lm;
  const { D, N: S, K } = lm.blocks[0].dims;
  const B = prompts.length;
  // exits where the rule may fire before the last block; a fixed exit ends every step at its block
  const early = rule.kind === 'never' || rule.kind === 'fixed' ? [] : lm.exits.slice(0, -1);
  const depth = rule.kind === 'fixed' ? rule.block + 1 : L;
  const { logits, cache } = await lm.prefill(prompts, { classifiers: o.classifiers });
  let keep = false;
  const own = new Scope(dev);
  const s = new StepScope(dev);
  try {
    const identity = Array.from({ length: B }, (_, i) => i);
    const rows = own.u32(identity);
    const keys = own.u32(identity);
    const pos = own.u32(new Array(B).fill(0)); // stepEnd's position counter (unused by a recurrent model)
    const ids = own.u32(new Array(B).fill(0));
    const active = own.u32(new Array(B).fill(1));
    const exitBlock = own.u32(new Array(B).fill(L - 1));
    const done = own.u32(new Array(B).fill(0));
    const sel = own.f32([B, V], logits);
    const tokens = own.u32(new Array(B).fill(0));
    const stopT = own.u32(stop.length ? stop : [0]);
    const out = own.u32(new Array(N * B * 2).fill(0));
    const sig = own.f32([B, SIGNALS_PER_ROW]);
    const dummy = own.f32([4]);
    // freeze: the block runs on a scratch copy of the state; the active rows' new state is copied back
    const scratch = freeze ? { conv: own.f32([B, D, K]), ssm: own.f32([B, D, S]) } : null;
    // a stateful exit classifier's state: advanced for the rows still running at its exit only
    const clsScratch = cache.classifierStates.map((c) =>
      c ? { conv: own.f32([...c.conv.shape]), ssm: own.f32([...c.ssm.shape]) } : null,
    );
    /** Runs `run` on `state`, keeping the state of inactive rows when `masked`. */
    const maskedState = <T>(state: BlockState, tmp: BlockState, masked: boolean, run: (st: BlockState) => T): T => {
      if (!masked) return run(state);
      for (const key of ['conv', 'ssm'] as const) {
        const w = state[key].length / B;
        dev.dispatch(
          gatherRows,
          { idx: rows, x: state[key], y: tmp[key] },
          { count: B, width: w, srcStride: w, srcOffset: 0 },
        );
      }
      const r = run(tmp);
      for (const key of ['conv', 'ssm'] as const)
        dev.dispatch(
          maskRows,
          { live: active, hNew: tmp[key], h: state[key] },
          { rows: B, width: state[key].length / B },
        );
      return r;
    };
    const res: MambaLoopResult = {
      tokens: prompts.map(() => []),
      exitBlocks: prompts.map(() => []),
      blocksRun: 0,
      blocksComputed: 0,
      readbacks: 0,
    };
    const ended = new Array(B).fill(false);
    const flush = tokenStreamer(res.tokens, res.exitBlocks, o.onTokens);
    let k = 0;
    while (k < o.maxNewTokens && ended.some((x) => !x)) {
      const slots = Math.min(N, o.maxNewTokens - k);
      for (let slot = 0; slot < slots; slot++, k++) {
        if (k > 0) {
          // one decode step of all B rows
          s.restart();
          let h = lm.embed(s, ids, B);
          for (let l = 0; l < depth; l++) {
            const state = cache.layers[l];
            // a row can be inactive here once an exit below l may have fired (or, for the state, it ended)
            const exited = early.some((e) => e < l);
            const hn = scratch
              ? maskedState(
                  state,
                  scratch,
                  exited || stop.length > 0,
                  (st) => blockStep(s, lm.blocks[l], h, B, null, st)!,
                )
              : blockStep(s, lm.blocks[l], h, B, null, state)!;
            if (exited) dev.dispatch(maskRows, { live: active, hNew: hn, h }, { rows: B, width: d });
            else h = hn;
            const last = l === depth - 1;
            if (!last && !early.includes(l)) continue;
            const z = lm.logits(s, h, B);
            if (!last && gate) {
              // the classifier of this exit on the rows still running (its state kept for the others)
              const j = early.indexOf(l);
              const c = cache.classifiers!;
              const cs = cache.classifierStates[j];
              const g = cs
                ? maskedState(cs, clsScratch[j]!, exited || stop.length > 0, (st) => c.step(s, j, h, B, null, st))
                : c.step(s, j, h, B, null, null);
              dev.dispatch(
                scatterRows,
                { idx: rows, x: g, y: sig },
                { count: B, width: 1, dstStride: SIGNALS_PER_ROW, dstOffset: 0 },
              );
            } else if (!last && code >= EXIT_RULE_CODE.maxProb)
              dev.dispatch(
                exitSignals,
                { logits: z, gateLogit: dummy, pooled: h, prevPooled: h, signals: sig },
                { rows: B, classes: V, dim: d },
                { gate: false, similarity: false },
              );
            dev.dispatch(
              exitDecide,
              { signals: sig, z, live: active, exitBlock, sel },
              { rows: B, V, block: l, rule: last ? EXIT_RULE_CODE.never : code, threshold, last: last ? 1 : 0 },
            );
          }
          // a fixed exit: every row left at `depth − 1`; 'partial' advances the deeper blocks' state from h
          if (!freeze) for (let l = depth; l < L; l++) blockStep(s, lm.blocks[l], h, B, null, cache.layers[l], true);
        }
        dispatchSample(dev, sel, keys, tokens, B, V, sampling, k);
        dev.dispatch(
          stepEnd,
          { tokens, stop: stopT, exitBlock, live: active, done, pos, ids, out },
          { rows: B, slot, advance: 0, numStop: stop.length, lastBlock: L - 1 },
        );
      }
      const rec = (await out.read()) as Uint32Array;
      res.readbacks++;
      const first = k - slots;
      for (let slot = 0; slot < slots; slot++) {
        for (let b = 0; b < B; b++) {
          const o2 = (slot * B + b) * 2;
          if (rec[o2] === 0xffffffff) continue;
          res.tokens[b].push(rec[o2]);
          res.exitBlocks[b].push(rec[o2 + 1]);
          if (first + slot > 0) {
            res.blocksRun += rec[o2 + 1] + 1;
            res.blocksComputed += depth;
          }
          if (stop.includes(rec[o2])) ended[b] = true;
        }
      }
      flush();
    }
    if (o.keepCache) {
      res.cache = cache;
      keep = true;
    }
    return res;
  } finally {
    s.dispose();
    own.dispose();
    if (!keep) cache.dispose();
  }
}

/**
 * The same generation with the host-side decode step (MambaLM.step: per-row exits by compaction, any rule
 * and skip strategy) and the device sampler keyed as in mambaGenerateOnDevice: one step, one sampling
 * readback per token. Rows that ended are still stepped, as in MambaLM.generate.
 */
export async function mambaGenerateHostLoop(
  lm: MambaLM,
  prompts: readonly (readonly number[])[],
  o: MambaLoopOptions,
): Promise<MambaLoopResult> {
  checkLoopOptions(lm, prompts, o, 'mambaGenerateHostLoop');
  const sampling = o.sampling ?? {};
  const stop = new Set(o.stop ?? []);
  const { V, L } = lm;
  const B = prompts.length;
  const { logits, cache } = await lm.prefill(prompts, { classifiers: o.classifiers });
  const sampler = hostSampler(lm.device, B, V, sampling);
  let keep = false;
  try {
    const res: MambaLoopResult = await hostDecodeLoop({
      B,
      first: logits,
      L,
      draw: (lg, step) => sampler.draw(lg, step),
      step: (next) => lm.step(next, cache, o.exit),
      stop,
      maxNewTokens: o.maxNewTokens,
      onTokens: o.onTokens,
    });
    if (o.keepCache) {
      res.cache = cache;
      keep = true;
    }
    return res;
  } finally {
    sampler.dispose();
    if (!keep) cache.dispose();
  }
}
