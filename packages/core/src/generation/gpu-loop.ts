// The decoder's decode loop kept on the device: the previous token's embedding is read from a device
// buffer, the blocks run, the exit rule is evaluated by a kernel from the exit signals, the next token is
// sampled on the device and written into the next step's input buffer, and N steps are recorded into one
// command submission with one readback per N tokens (the tokens and their exit blocks).
//
// Rows that exit skip the rest of the step by a per-row ACTIVE MASK, not by compaction: a masked row keeps
// its hidden state (maskRows), so the keys and values it writes at the blocks above its exit come from its
// hidden state at the exit — exactly CALM state propagation, with no separate propagation pass. Why a
// mask: decode batches are small (the dispatches are sized by B either way, and on a GPU a step of 1–8 rows
// costs about the same as the same step with fewer rows), the loop needs no row bookkeeping per step, and
// the propagation comes for free. Every block's K/V (input norm, k/v projection, cache write) runs on all B
// rows; in the blocks after the first exit where the rule can fire, the heavy rest of a block (query
// projection, attention over the cache, o_proj, the MLP matmuls) and the LM head are GATED (live-gate.ts):
// indirect dispatches whose workgroup counts a tiny kernel writes after each exit decision — the full grid
// if any row of the step is still live, 0 otherwise (the light element-wise dispatches between them run
// regardless, on whatever the gated ones left; a masked row's state is kept by maskRows). So a step whose
// rows have all left stops computing (blocksComputed counts the gated-off blocks as not computed), while a
// step with one live row still runs its blocks on all B rows.
//
// generateHostLoop is the same generation with the host-side step (DecoderLM.step: compaction, a readback
// per exit, any rule including custom) and the same device sampler, so both modes draw the same tokens.
import { ValidationError } from '../errors.js';
import { EXIT_RULE_CODE, exitDecide, maskRows, stepEnd } from '../kernels/decode-step.js';
import { exitSignals, SIGNALS_PER_ROW } from '../kernels/exit-signals.js';
import { gatherRows } from '../kernels/gather-rows.js';
import { sampleTokens } from '../kernels/sample.js';
import { scatterRows } from '../kernels/scatter-rows.js';
import type { DecoderCache, DecoderExitRule, DecoderLM, DispatchFn } from '../models/decoder-lm.js';
import { checkSampling, type SamplingOptions } from '../models/sampling.js';
import { isSoftwareAdapter } from '../ort/ort-cpu.js';
import type { Device } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { LiveGate } from './live-gate.js';
import { type TokenSink, tokenStreamer } from './stream.js';

export interface LoopGenerateOptions {
  maxNewTokens: number;
  /** Greedy by default; temperature / topK / topP / seed as in SamplingOptions (drawn on the device). */
  sampling?: SamplingOptions;
  /** Token ids that end a row (kept in its output). */
  stop?: number[];
  /** Exit rule (custom rules run on the host only: generateHostLoop). Skipped blocks: CALM propagation. */
  exit?: { rule: DecoderExitRule };
  /** Decode steps recorded per command submission, with one readback each (default 8). Device loop only. */
  stepsPerSubmit?: number;
  /** Streams tokens as they become final: after each readback (device loop) or step (host loop). */
  onTokens?: TokenSink;
  /**
   * Device loop: skip a block's query / attention / o_proj / MLP matmuls and the LM head once no row of the
   * step is live (indirect dispatch). Default: on, except on a software GPU adapter (lavapipe, SwiftShader),
   * where an indirect dispatch costs more than the work it skips (measured in bench:generate).
   */
  gate?: boolean;
}

export interface LoopGenerateResult {
  tokens: number[][];
  /** Exit block of each new token (the first comes from the prefill: full depth). */
  exitBlocks: number[][];
  /** Blocks the generated tokens after the first needed: Σ (exit block + 1). */
  blocksRun: number;
  /**
   * Blocks actually run on the device for them, per row (the device loop runs a step's blocks on every row
   * up to the deepest exit among its rows; blocks gated off count as not computed, though their K/V
   * projections still run).
   */
  blocksComputed: number;
  /** Readbacks of the decode loop (prefill excluded). */
  readbacks: number;
}

/** Default decode steps per submission. */
export const DEFAULT_STEPS_PER_SUBMIT = 8;

/** f32 threshold t' with (x ≥ t ⟺ x ≥ t') for every f32 x (or with ≤ when `below`). */
export function f32Threshold(t: number, below: boolean): number {
  const f = Math.fround(t);
  if (f === t || !Number.isFinite(t)) return f;
  if (below ? f < t : f > t) return f;
  return nextF32(f, below ? -1 : 1);
}

/** The adjacent f32 of a finite f32 in direction dir (±1). */
function nextF32(f: number, dir: number): number {
  const buf = new Float32Array([f]);
  const u = new Uint32Array(buf.buffer);
  if (f === 0) {
    u[0] = 1;
    return dir > 0 ? buf[0] : -buf[0];
  }
  u[0] += f > 0 === dir > 0 ? 1 : -1;
  return buf[0];
}

function ruleParams(rule: DecoderExitRule): { code: number; threshold: number } {
  switch (rule.kind) {
    case 'never':
      return { code: EXIT_RULE_CODE.never, threshold: 0 };
    case 'fixed':
      return { code: EXIT_RULE_CODE.fixed, threshold: 0 };
    case 'entropy':
      return { code: EXIT_RULE_CODE.entropy, threshold: f32Threshold(rule.threshold, true) };
    case 'maxProb':
    case 'margin':
    case 'saturation':
      return { code: EXIT_RULE_CODE[rule.kind], threshold: f32Threshold(rule.threshold, false) };
    default:
      throw new ValidationError(
        `generateOnDevice: exit rule '${rule.kind}' runs on the host only (its decision is a TypeScript function); use generateHostLoop or DecoderLM.generate, or one of never, fixed, maxProb, entropy, margin, saturation`,
      );
  }
}

/**
 * The checks every decode loop makes of its options (the decoder's and the Mamba LM's): prompts given,
 * maxNewTokens, stepsPerSubmit, sampling and stop tokens inside the vocabulary. Returns the steps per submission.
 */
export function checkDecodeLoopOptions(
  V: number,
  prompts: readonly (readonly number[])[],
  o: { maxNewTokens: number; stepsPerSubmit?: number; sampling?: SamplingOptions; stop?: readonly number[] },
  what: string,
  defaultSteps = DEFAULT_STEPS_PER_SUBMIT,
): number {
  if (prompts.length === 0) throw new ValidationError(`${what}: no prompts`);
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1)
    throw new ValidationError(`${what}: maxNewTokens must be a positive integer, got ${o.maxNewTokens}`);
  const n = o.stepsPerSubmit ?? defaultSteps;
  if (!Number.isInteger(n) || n < 1 || n > 1024)
    throw new ValidationError(`${what}: stepsPerSubmit must be an integer in [1, 1024], got ${o.stepsPerSubmit}`);
  checkSampling(o.sampling ?? {});
  for (const t of o.stop ?? [])
    if (!Number.isInteger(t) || t < 0 || t >= V)
      throw new ValidationError(`${what}: stop token ${t} is outside [0, ${V}) (vocab_size)`);
  return n;
}

export function checkOptions(
  model: DecoderLM,
  prompts: readonly (readonly number[])[],
  o: LoopGenerateOptions,
  what: string,
) {
  const n = checkDecodeLoopOptions(model.V, prompts, o, what);
  const maxLen = Math.max(...prompts.map((p) => p.length)) + o.maxNewTokens;
  if (maxLen > model.config.maxPositionEmbeddings)
    throw new ValidationError(
      `${what}: the longest prompt plus maxNewTokens is ${maxLen} positions, more than max_position_embeddings ${model.config.maxPositionEmbeddings}`,
    );
  return { steps: n, maxLen };
}

/**
 * The device sampler driven from the host, for loops whose logits come back to the host each step: draw(lg,
 * step) writes the (B, V) logits, samples row r keyed by (seed, r, step) and reads the B tokens back (the
 * same draws as the device loop's).
 */
export function hostSampler(dev: Device, B: number, V: number, sampling: SamplingOptions) {
  const keys = dev.tensor(
    'u32',
    [B],
    Array.from({ length: B }, (_, i) => i),
  );
  const tokens = dev.tensor('u32', [B]);
  const z = dev.tensor('f32', [B, V]);
  return {
    async draw(lg: Float32Array, step: number): Promise<number[]> {
      dev.write(z, lg);
      dispatchSample(dev, z, keys, tokens, B, V, sampling, step);
      return Array.from((await tokens.read()) as Uint32Array);
    },
    dispose(): void {
      keys.dispose();
      tokens.dispose();
      z.dispose();
    },
  };
}

/** Dispatches the sampler: tokens[r] from logits row r, keyed by (seed, keys[r], step). */
export function dispatchSample(
  device: Device,
  logits: Tensor,
  keys: Tensor,
  tokens: Tensor,
  rows: number,
  V: number,
  sampling: SamplingOptions,
  step: number,
): void {
  device.dispatch(
    sampleTokens,
    { logits, keys, tokens },
    {
      rows,
      V,
      temperature: sampling.temperature ?? 0,
      topK: sampling.topK ?? 0,
      topP: sampling.topP ?? 1,
      seed: (sampling.seed ?? 0) >>> 0,
      step,
    },
  );
}

/** Generation with the whole decode loop on the device (see the file comment). */
export async function generateOnDevice(
  model: DecoderLM,
  prompts: readonly (readonly number[])[],
  o: LoopGenerateOptions,
): Promise<LoopGenerateResult> {
  const all = Array.from({ length: model.L }, (_, l) => l);
  return deviceLoop(model, prompts, o, () => all, 'generateOnDevice');
}

export interface DeviceLoopExtras {
  /** Also keep the (B, V) logits each token was drawn from (a second readback per chunk; for tests). */
  recordLogits?: boolean;
  /** Fill the cache with NaN before the prefill, so a read of a never-written entry shows (for tests). */
  poisonCache?: boolean;
  /**
   * Return the cache (the caller disposes it), its lengths set to the positions of the tokens fed to the
   * model: each prompt and its generated tokens but the last (for tests).
   */
  keepCache?: boolean;
}

/**
 * The device loop with the blocks of decode step k (k ≥ 1) given by `blocks(k)` (increasing; the last
 * block must be among them): what SkipDecode uses. Exit rules apply at the early exits among them.
 */
export async function deviceLoop(
  model: DecoderLM,
  prompts: readonly (readonly number[])[],
  o: LoopGenerateOptions & DeviceLoopExtras,
  blocks: (k: number) => readonly number[],
  what: string,
): Promise<LoopGenerateResult & { logits?: Float32Array[]; cache?: DecoderCache }> {
  const { steps: N, maxLen } = checkOptions(model, prompts, o, what);
  const rule = o.exit?.rule ?? { kind: 'never' };
  const I = model.internals();
  I.checkRule(rule);
  const { code, threshold } = ruleParams(rule);
  const sampling = o.sampling ?? {};
  const stop = o.stop ?? [];
  const dev = model.device;
  const { V, d, L } = model;
  const B = prompts.length;
  const early = rule.kind === 'never' ? [] : model.exits.slice(0, -1);
  let pre: DecoderCache | undefined;
  if (o.poisonCache) {
    pre = model.newCache(B, maxLen);
    const nan = new Float32Array(pre.k[0].length).fill(Number.NaN);
    for (const x of [...pre.k, ...pre.v]) dev.write(x, nan);
  }
  const { logits, cache } = await model.prefill(prompts, pre, maxLen);
  const own: Tensor[] = [];
  let gate: LiveGate | null = null;
  let keepCache = false;
  const t = (dtype: 'u32' | 'f32', n: number, data?: ArrayLike<number>) => {
    const x = dev.tensor(dtype, [Math.max(1, n)], data);
    own.push(x);
    return x;
  };
  try {
    const identity = Array.from({ length: B }, (_, i) => i);
    const rows = t('u32', B, identity);
    const keys = t('u32', B, identity);
    const pos = t(
      'u32',
      B,
      prompts.map((p) => p.length),
    );
    const ids = t('u32', B);
    const active = t('u32', B, new Array(B).fill(1));
    // blocks up to the first exit where the rule can fire always run (every row is live there): only the
    // blocks after it are gated, each after an exit decision has updated the gate
    const gateFrom =
      rule.kind === 'fixed' ? rule.block + 1 : rule.kind === 'never' || early.length === 0 ? L : early[0] + 1;
    const gateOn = o.gate ?? (dev.kind === 'cpu' || !isSoftwareAdapter(dev.adapter));
    if (gateOn && gateFrom < L && LiveGate.supported(dev)) gate = new LiveGate(dev, active, B);
    const gated = (l: number): DispatchFn | undefined => (gate && l >= gateFrom ? gate.run : undefined);
    const exitBlock = t('u32', B, new Array(B).fill(L - 1));
    const done = t('u32', B, new Array(B).fill(0));
    const sel = t('f32', B * V, logits);
    const tokens = t('u32', B);
    const stopT = t('u32', stop.length, stop.length ? stop : [0]);
    const out = t('u32', N * B * 2);
    const sig = t('f32', B * SIGNALS_PER_ROW);
    const logRec = o.recordLogits ? t('f32', N * B * V) : null;
    const res: LoopGenerateResult & { logits?: Float32Array[]; cache?: DecoderCache } = {
      tokens: prompts.map(() => []),
      exitBlocks: prompts.map(() => []),
      blocksRun: 0,
      blocksComputed: 0,
      readbacks: 0,
      logits: logRec ? [] : undefined,
    };
    const ended = new Array(B).fill(false);
    const flush = tokenStreamer(res.tokens, res.exitBlocks, o.onTokens);
    let k = 0;
    while (k < o.maxNewTokens && ended.some((x) => !x)) {
      const s = I.scope();
      try {
        const slots = Math.min(N, o.maxNewTokens - k);
        for (let slot = 0; slot < slots; slot++, k++) {
          if (k > 0) {
            // one decode step of all B rows
            const h = I.embedIds(s, ids, B);
            let prev = h;
            if (rule.kind === 'saturation') {
              prev = s.f32([B, d]);
              dev.dispatch(
                gatherRows,
                { idx: rows, x: h, y: prev },
                { count: B, width: d, srcStride: d, srcOffset: 0 },
              );
            }
            const run = blocks(k);
            if (run[run.length - 1] !== L - 1)
              throw new ValidationError(`${what}: step ${k} does not run the last block ${L - 1}`);
            for (const l of run) {
              const hn = I.layer(s, l, h, B, rows, pos, cache, gated(l));
              dev.dispatch(maskRows, { live: active, hNew: hn, h }, { rows: B, width: d });
              const last = l === L - 1;
              if (!last && !early.includes(l)) continue;
              if (!last && rule.kind === 'fixed' && rule.block !== l) continue;
              const z = I.exitLogits(s, h, B, l, gated(l));
              if (!last && code >= EXIT_RULE_CODE.maxProb) {
                dev.dispatch(
                  exitSignals,
                  { logits: z, gateLogit: I.dummy, pooled: h, prevPooled: prev, signals: sig },
                  { rows: B, classes: V, dim: d },
                  { gate: false, similarity: true },
                );
              }
              dev.dispatch(
                exitDecide,
                { signals: sig, z, live: active, exitBlock, sel },
                { rows: B, V, block: l, rule: last ? EXIT_RULE_CODE.never : code, threshold, last: last ? 1 : 0 },
              );
              if (!last && rule.kind === 'saturation')
                dev.dispatch(
                  gatherRows,
                  { idx: rows, x: h, y: prev },
                  { count: B, width: d, srcStride: d, srcOffset: 0 },
                );
              if (!last) gate?.update();
            }
          }
          if (logRec)
            dev.dispatch(
              scatterRows,
              { idx: rows, x: sel, y: logRec },
              { count: B, width: V, dstStride: V, dstOffset: slot * B * V },
            );
          dispatchSample(dev, sel, keys, tokens, B, V, sampling, k);
          dev.dispatch(
            stepEnd,
            { tokens, stop: stopT, exitBlock, live: active, done, pos, ids, out },
            { rows: B, slot, advance: k > 0 ? 1 : 0, numStop: stop.length, lastBlock: L - 1 },
          );
        }
        const rec = (await out.read()) as Uint32Array;
        res.readbacks++;
        const first = k - slots;
        if (logRec) {
          const lr = (await logRec.read()) as Float32Array;
          for (let slot = 0; slot < slots; slot++) res.logits!.push(lr.slice(slot * B * V, (slot + 1) * B * V));
        }
        for (let slot = 0; slot < slots; slot++) {
          // the step's blocks ran on every row up to the deepest exit among its rows (all, ungated)
          let deepest = -1;
          for (let b = 0; b < B; b++)
            if (rec[(slot * B + b) * 2] !== 0xffffffff) deepest = Math.max(deepest, rec[(slot * B + b) * 2 + 1]);
          if (!gate) deepest = L - 1;
          for (let b = 0; b < B; b++) {
            const o2 = (slot * B + b) * 2;
            if (rec[o2] === 0xffffffff) continue;
            res.tokens[b].push(rec[o2]);
            res.exitBlocks[b].push(rec[o2 + 1]);
            if (first + slot > 0) {
              const run = blocks(first + slot);
              res.blocksRun += run.filter((l) => l <= rec[o2 + 1]).length;
              res.blocksComputed += run.filter((l) => l <= deepest).length;
            }
            if (stop.includes(rec[o2])) ended[b] = true;
          }
        }
        flush();
      } finally {
        s.dispose();
      }
    }
    if (o.keepCache) {
      prompts.forEach((p, b) => {
        cache.lengths[b] = p.length + res.tokens[b].length - 1;
      });
      res.cache = cache;
      keepCache = true;
    }
    return res;
  } finally {
    for (const x of own) x.dispose();
    gate?.dispose();
    if (!keepCache) cache.dispose();
  }
}

/**
 * The same generation with the host-side decode step (DecoderLM.step: per-row exits by compaction, any
 * rule) and the device sampler keyed as in generateOnDevice: one step, one sampling readback per token.
 */
export async function generateHostLoop(
  model: DecoderLM,
  prompts: readonly (readonly number[])[],
  o: LoopGenerateOptions & Pick<DeviceLoopExtras, 'keepCache'>,
): Promise<LoopGenerateResult & { cache?: DecoderCache }> {
  const { maxLen } = checkOptions(model, prompts, o, 'generateHostLoop');
  const sampling = o.sampling ?? {};
  const stop = new Set(o.stop ?? []);
  const dev = model.device;
  const { V, L } = model;
  const B = prompts.length;
  const { logits, cache } = await model.prefill(prompts, undefined, maxLen);
  const sampler = hostSampler(dev, B, V, sampling);
  let keepCache = false;
  try {
    const res: LoopGenerateResult & { cache?: DecoderCache } = await hostDecodeLoop({
      B,
      first: logits,
      L,
      draw: (lg, step) => sampler.draw(lg, step),
      step: (next) => model.step(next, cache, o.exit ? { rule: o.exit.rule } : undefined),
      stop,
      maxNewTokens: o.maxNewTokens,
      onTokens: o.onTokens,
    });
    if (o.keepCache) {
      // as the device loop's: the positions of the tokens fed while the row was not done
      prompts.forEach((p, b) => {
        cache.lengths[b] = p.length + res.tokens[b].length - 1;
      });
      res.cache = cache;
      keepCache = true;
    }
    return res;
  } finally {
    sampler.dispose();
    if (!keepCache) cache.dispose();
  }
}

/** One step of a host-driven decode loop: each row's logits at its exit, its exit block, blocks run in all. */
export interface HostLoopStep {
  logits: Float32Array;
  exitBlocks: ArrayLike<number>;
  blocksRun: number;
}

/**
 * The token bookkeeping every host-driven decode loop shares (the decoder's and the Mamba LM's): draws the
 * first token from the prefill's logits (full depth), then steps until maxNewTokens or every row has drawn a
 * stop token, counting readbacks (one per step and one per draw), blocks run and streaming through onTokens.
 * The caller owns the sampler and the cache.
 */
export async function hostDecodeLoop(a: {
  /** Rows of the batch. */
  B: number;
  /** The prefill's logits (B, V). */
  first: Float32Array;
  /** Blocks of the model (the prefill's tokens are counted as exits at block L − 1). */
  L: number;
  draw: (logits: Float32Array, step: number) => Promise<number[]>;
  step: (next: number[], k: number) => Promise<HostLoopStep>;
  stop: ReadonlySet<number>;
  maxNewTokens: number;
  onTokens?: TokenSink;
}): Promise<LoopGenerateResult> {
  const res: LoopGenerateResult = {
    tokens: Array.from({ length: a.B }, () => []),
    exitBlocks: Array.from({ length: a.B }, () => []),
    blocksRun: 0,
    blocksComputed: 0,
    readbacks: 0,
  };
  const draw = (lg: Float32Array, step: number) => {
    res.readbacks++;
    return a.draw(lg, step);
  };
  const flush = tokenStreamer(res.tokens, res.exitBlocks, a.onTokens);
  const done = new Array(a.B).fill(false);
  let next = await draw(a.first, 0);
  next.forEach((tok, b) => {
    res.tokens[b].push(tok);
    res.exitBlocks[b].push(a.L - 1);
    if (a.stop.has(tok)) done[b] = true;
  });
  flush();
  for (let k = 1; k < a.maxNewTokens && done.some((x) => !x); k++) {
    const r = await a.step(next, k);
    res.readbacks++;
    next = await draw(r.logits, k);
    next.forEach((tok, b) => {
      if (done[b]) return;
      res.tokens[b].push(tok);
      res.exitBlocks[b].push(r.exitBlocks[b]);
      res.blocksRun += r.exitBlocks[b] + 1;
      if (a.stop.has(tok)) done[b] = true;
    });
    res.blocksComputed += r.blocksRun;
    flush();
  }
  return res;
}
