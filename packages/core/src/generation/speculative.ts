// Lossless self-speculative decoding (LayerSkip / Draft & Verify) for the Llama-style decoder with exits.
// Each round, every live row drafts k_b tokens one at a time with blocks [0, E) and the exit head after
// block E − 1, then all drafted positions of all rows (the row's pending token and its k_b drafts) run blocks
// [E, L) in ONE forwardLayers pass that reuses the draft's keys and values of blocks < E and writes those of
// blocks ≥ E. The full model's logits at the k_b + 1 positions decide:
//   greedy:   accept the longest draft prefix equal to the full model's argmax, then append the full
//             model's argmax at the first mismatch (or after all k_b): the output is token for token the
//             output of plain full-depth greedy decoding;
//   sampling: speculative rejection sampling (accept draft x with probability min(1, p(x)/q(x)); on a
//             rejection draw from norm(max(0, p − q)); after k_b acceptances draw one more from p), so the
//             output is distributed as the full model's (p and q are the full and draft distributions after
//             the same temperature / top-k / top-p).
// Rows advance by different amounts; a row's cache is cut back (setLength) to its accepted positions.
// k_b is fixed or chosen per row per round by an adaptive policy (adaptiveK below).
import { ValidationError } from '../errors.js';
import { scatterRows } from '../kernels/scatter-rows.js';
import type { DecoderCache, DecoderLM } from '../models/decoder-lm.js';
import { argmaxOf, checkSampling, type SamplingOptions } from '../models/sampling.js';
import type { Tensor } from '../runtime/tensor.js';
import { mulberry32 } from '../util/random.js';
import { type TokenSink, tokenStreamer } from './stream.js';

/** Adaptive draft length: per row, k maximising expected tokens per sequential block pass. */
export interface AdaptiveKOptions {
  /** Smallest k (≥ 1, default 1). */
  min?: number;
  /** Largest k (default 8). */
  max?: number;
  /** Decay of the acceptance estimate per round (0 ≤ decay < 1, default 0.7). */
  decay?: number;
  /** Prior acceptance rate before any round (0 < prior < 1, default 0.5; weighs as 2 drafted tokens). */
  prior?: number;
}

export interface SpeculativeOptions {
  maxNewTokens: number;
  /** Exit block the draft reads (E − 1): an early exit of the model; the draft runs blocks [0, E). */
  draftExit: number;
  /** Tokens drafted per round (the starting value when adaptive). */
  k: number;
  /** Change k per row from its running acceptance rate (see adaptiveK). */
  adaptive?: boolean | AdaptiveKOptions;
  sampling?: SamplingOptions;
  /** Token ids that end a sequence (kept in the output). */
  stop?: number[];
  /**
   * Acceptance rule: 'exact' (default; lossless). 'always' accepts every draft — a deliberately wrong rule
   * whose only use is to show that a distribution test can tell it from the exact one.
   */
  acceptance?: 'exact' | 'always';
  /** Return the cache (positions of the prompt and of every output token but the last); the caller disposes. */
  keepCache?: boolean;
  /** Streams each row's tokens after every round (exit block: the full depth, as every kept token is the full model's). */
  onTokens?: TokenSink;
}

export interface SpeculativeRowStats {
  /** Tokens generated (the first comes from the prefill). */
  tokens: number;
  /** Drafted tokens accepted by the verification. */
  accepted: number;
  /** Tokens drafted. */
  drafted: number;
  /** Draft-and-verify rounds. */
  rounds: number;
  /** Blocks run for this row's tokens (draft: E per position; verify: L − E per position), prefill excluded. */
  blocks: number;
  /** Draft length of each round. */
  ks: number[];
}

export interface SpeculativeResult {
  tokens: number[][];
  rows: SpeculativeRowStats[];
  /** Σ accepted / Σ drafted. */
  acceptanceRate: number;
  /** Σ blocks over all rows (prefill excluded). */
  blocks: number;
  /** Blocks per generated token after the first (plain decoding: numLayers). */
  blocksPerToken: number;
  /** With keepCache. */
  cache?: DecoderCache;
}

/** Probabilities sampleToken draws from (temperature, top-k, top-p), over the whole vocabulary. */
export function samplingProbs(
  logits: ArrayLike<number>,
  offset: number,
  V: number,
  o: SamplingOptions,
  out = new Float64Array(V),
): Float64Array {
  out.fill(0);
  const t = o.temperature ?? 0;
  if (t === 0) {
    out[argmaxOf(logits, offset, V)] = 1;
    return out;
  }
  const ids = Array.from({ length: V }, (_, i) => i);
  ids.sort((a, b) => logits[offset + b] - logits[offset + a] || a - b);
  const k = o.topK ? Math.min(o.topK, V) : V;
  const m = logits[offset + ids[0]];
  const w = ids.slice(0, k).map((i) => Math.exp((logits[offset + i] - m) / t));
  const total = w.reduce((a, b) => a + b, 0);
  let keep = k;
  if (o.topP !== undefined && o.topP < 1) {
    let acc = 0;
    const i = w.findIndex((x) => {
      acc += x / total;
      return acc >= o.topP!;
    });
    keep = i < 0 ? k : i + 1;
  }
  let mass = 0;
  for (let i = 0; i < keep; i++) mass += w[i];
  for (let i = 0; i < keep; i++) out[ids[i]] = w[i] / mass;
  return out;
}

/** A draw from probabilities p (summing to 1, or to `total` when given). */
export function drawFrom(p: ArrayLike<number>, rand: () => number, total = 1): number {
  let r = rand() * total;
  let last = -1;
  for (let i = 0; i < p.length; i++) {
    if (p[i] <= 0) continue;
    last = i;
    r -= p[i];
    if (r < 0) return i;
  }
  return last;
}

/**
 * The adaptive rule: with α the row's acceptance estimate (decayed counts of accepted / verified drafts,
 * started at `prior`), a round of k drafts gives (1 − α^{k+1}) / (1 − α) tokens in expectation and costs
 * (k + 1)·E + (L − E) sequential block passes (k + 1 draft passes of E blocks, one verify pass of L − E blocks
 * over all positions at once); k is the value in [min, max] with the most expected tokens per pass.
 */
export function adaptiveK(alpha: number, E: number, L: number, min: number, max: number): number {
  let best = min;
  let bestRate = Number.NEGATIVE_INFINITY;
  const a = Math.min(Math.max(alpha, 0), 1 - 1e-9);
  for (let k = min; k <= max; k++) {
    const rate = (1 - a ** (k + 1)) / (1 - a) / ((k + 1) * E + (L - E));
    if (rate > bestRate + 1e-12) {
      bestRate = rate;
      best = k;
    }
  }
  return best;
}

function checkOptions(model: DecoderLM, prompts: readonly (readonly number[])[], o: SpeculativeOptions) {
  if (prompts.length === 0) throw new ValidationError('speculativeGenerate: no prompts');
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1)
    throw new ValidationError(`speculativeGenerate: maxNewTokens must be a positive integer, got ${o.maxNewTokens}`);
  const early = model.exits.slice(0, -1);
  if (!Number.isInteger(o.draftExit) || !early.includes(o.draftExit))
    throw new ValidationError(
      `speculativeGenerate: draftExit ${o.draftExit} is not an early exit of this model; the draft reads one of its early exits [${early.join(', ')}]${early.length ? '' : ' (the model has none: give it exits)'}`,
    );
  if (!Number.isInteger(o.k) || o.k < 1 || o.k > 64)
    throw new ValidationError(`speculativeGenerate: k must be an integer in [1, 64], got ${o.k}`);
  if (o.acceptance !== undefined && o.acceptance !== 'exact' && o.acceptance !== 'always')
    throw new ValidationError(`speculativeGenerate: acceptance must be 'exact' or 'always', got '${o.acceptance}'`);
  checkSampling(o.sampling ?? {});
  const ad = typeof o.adaptive === 'object' ? o.adaptive : {};
  const min = ad.min ?? 1;
  const max = ad.max ?? 8;
  const decay = ad.decay ?? 0.7;
  const prior = ad.prior ?? 0.5;
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max < min || max > 64)
    throw new ValidationError(`speculativeGenerate: adaptive k needs integers 1 ≤ min ≤ max ≤ 64, got ${min}, ${max}`);
  if (!(decay >= 0 && decay < 1))
    throw new ValidationError(`speculativeGenerate: adaptive decay must be in [0, 1), got ${decay}`);
  if (!(prior > 0 && prior < 1))
    throw new ValidationError(`speculativeGenerate: adaptive prior must be in (0, 1), got ${prior}`);
  return { min, max, decay, prior };
}

/**
 * Self-speculative generation of up to maxNewTokens after each prompt (prompts may differ in length), at
 * batch size prompts.length. Greedy output equals plain full-depth greedy decoding token for token.
 */
export async function speculativeGenerate(
  model: DecoderLM,
  prompts: readonly (readonly number[])[],
  o: SpeculativeOptions,
): Promise<SpeculativeResult> {
  const ad = checkOptions(model, prompts, o);
  const { V, L, d } = model;
  const E = o.draftExit + 1;
  const sampling = o.sampling ?? {};
  const greedy = (sampling.temperature ?? 0) === 0;
  const always = o.acceptance === 'always';
  const rand = mulberry32(sampling.seed ?? 0);
  const stop = new Set(o.stop ?? []);
  const B = prompts.length;
  const maxLen = Math.max(...prompts.map((p) => p.length)) + o.maxNewTokens;
  if (maxLen > model.config.maxPositionEmbeddings)
    throw new ValidationError(
      `speculativeGenerate: the longest prompt plus maxNewTokens is ${maxLen} positions, more than max_position_embeddings ${model.config.maxPositionEmbeddings}`,
    );
  const { logits, cache } = await model.prefill(prompts, undefined, maxLen);
  const device = model.device;
  const owned: Tensor[] = [];
  const own = (t: Tensor) => {
    owned.push(t);
    return t;
  };
  const freeOwned = () => {
    for (const t of owned.splice(0)) t.dispose();
  };
  try {
    const tokens: number[][] = prompts.map(() => []);
    const rows: SpeculativeRowStats[] = prompts.map(() => ({
      tokens: 0,
      accepted: 0,
      drafted: 0,
      rounds: 0,
      blocks: 0,
      ks: [],
    }));
    const done = new Array<boolean>(B).fill(false);
    const pending = new Array<number>(B).fill(0);
    const flush = tokenStreamer(tokens, (_, n) => new Array<number>(n).fill(L - 1), o.onTokens);
    const probs = new Float64Array(V);
    // first token: the prefill's full-depth logits
    for (let b = 0; b < B; b++) {
      const t = greedy ? argmaxOf(logits, b * V, V) : drawFrom(samplingProbs(logits, b * V, V, sampling, probs), rand);
      tokens[b].push(t);
      rows[b].tokens = 1;
      pending[b] = t;
      if (stop.has(t) || o.maxNewTokens === 1) done[b] = true;
    }
    flush();
    // adaptive state: decayed accepted / verified draft counts per row
    const accS = new Float64Array(B).fill(2 * ad.prior);
    const accT = new Float64Array(B).fill(2);
    const kNow = new Int32Array(B).fill(o.k);
    while (done.some((x) => !x)) {
      const live = Array.from({ length: B }, (_, b) => b).filter((b) => !done[b]);
      // per-row draft length: capped so a round never yields more than the tokens still wanted
      const kr = new Map<number, number>();
      for (const b of live) {
        const want = o.maxNewTokens - tokens[b].length;
        const k = o.adaptive ? adaptiveK(accS[b] / accT[b], E, L, ad.min, ad.max) : o.k;
        kNow[b] = k;
        kr.set(b, Math.min(k, want - 1));
      }
      const base = new Map(live.map((b) => [b, cache.lengths[b]]));
      const off = new Map<number, number>();
      let N = 0;
      for (const b of live) {
        off.set(b, N);
        N += kr.get(b)! + 1;
      }
      const drafts = new Map(live.map((b) => [b, [] as number[]]));
      const q = new Map(live.map((b) => [b, [] as Float64Array[]]));
      const hv = own(device.tensor('f32', [N, d], undefined, 'speculative.verifyIn'));
      const kmax = Math.max(...live.map((b) => kr.get(b)!));
      // drafting: pass j feeds each row's j-th input (its pending token, then its drafts) through [0, E)
      for (let j = 0; j <= kmax; j++) {
        const part = live.filter((b) => kr.get(b)! >= j);
        const ids = part.map((b) => (j === 0 ? pending[b] : drafts.get(b)![j - 1]));
        const h0 = own(model.embed(ids));
        const h = own(
          model.forwardLayers(
            h0,
            cache,
            part,
            part.map((b) => base.get(b)! + j),
            0,
            E,
          ),
        );
        device.dispatch(
          scatterRows,
          {
            idx: own(
              device.tensor(
                'u32',
                [part.length],
                part.map((b) => off.get(b)! + j),
              ),
            ),
            x: h,
            y: hv,
          },
          { count: part.length, width: d, dstStride: d, dstOffset: 0 },
        );
        const need = part.filter((b) => j < kr.get(b)!);
        if (need.length === 0) continue;
        const z = (await own(model.exitLogits(h, part.length, o.draftExit)).read()) as Float32Array;
        part.forEach((b, r) => {
          if (j >= kr.get(b)!) return;
          let t: number;
          if (greedy) t = argmaxOf(z, r * V, V);
          else {
            const qd = samplingProbs(z, r * V, V, sampling);
            q.get(b)!.push(qd);
            t = drawFrom(qd, rand);
          }
          drafts.get(b)!.push(t);
        });
      }
      // verification: every drafted position of every row through [E, L) in one pass
      const vRows: number[] = [];
      const vPos: number[] = [];
      for (const b of live) {
        for (let i = 0; i <= kr.get(b)!; i++) {
          vRows.push(b);
          vPos.push(base.get(b)! + i);
        }
      }
      const hl = own(model.forwardLayers(hv, cache, vRows, vPos, E, L));
      const p = (await own(model.exitLogits(hl, N, L - 1)).read()) as Float32Array;
      freeOwned();
      for (const b of live) {
        const k = kr.get(b)!;
        const dr = drafts.get(b)!;
        const o0 = off.get(b)!;
        let a = 0;
        let next = -1;
        for (; a < k; a++) {
          const at = (o0 + a) * V;
          if (always) continue;
          if (greedy) {
            const t = argmaxOf(p, at, V);
            if (t !== dr[a]) {
              next = t;
              break;
            }
          } else {
            const pd = samplingProbs(p, at, V, sampling, probs);
            const qd = q.get(b)![a];
            const x = dr[a];
            if (rand() < Math.min(1, pd[x] / qd[x])) continue;
            let total = 0;
            for (let v = 0; v < V; v++) {
              pd[v] = Math.max(0, pd[v] - qd[v]);
              total += pd[v];
            }
            next = total > 0 ? drawFrom(pd, rand, total) : drawFrom(samplingProbs(p, at, V, sampling), rand);
            break;
          }
        }
        if (next < 0) {
          const at = (o0 + k) * V;
          next = greedy ? argmaxOf(p, at, V) : drawFrom(samplingProbs(p, at, V, sampling, probs), rand);
        }
        const st = rows[b];
        st.rounds++;
        st.drafted += k;
        st.accepted += a;
        st.blocks += (k + 1) * L;
        st.ks.push(k);
        const verified = a < k ? a + 1 : k;
        accS[b] = ad.decay * accS[b] + a;
        accT[b] = ad.decay * accT[b] + verified;
        // new tokens of the round: the accepted drafts, then the full model's token
        const fresh = dr.slice(0, a).concat(next);
        let m = 0;
        for (const t of fresh) {
          tokens[b].push(t);
          m++;
          if (stop.has(t) || tokens[b].length >= o.maxNewTokens) {
            done[b] = true;
            break;
          }
        }
        st.tokens = tokens[b].length;
        // cache: the pending token and the accepted drafts that were inputs of the output's tokens
        cache.setLength(b, base.get(b)! + m);
        pending[b] = next;
      }
      flush();
    }
    const drafted = rows.reduce((s, r) => s + r.drafted, 0);
    const accepted = rows.reduce((s, r) => s + r.accepted, 0);
    const blocks = rows.reduce((s, r) => s + r.blocks, 0);
    const after = rows.reduce((s, r) => s + r.tokens - 1, 0);
    return {
      tokens,
      rows,
      acceptanceRate: drafted ? accepted / drafted : 0,
      blocks,
      blocksPerToken: after ? blocks / after : 0,
      cache: o.keepCache ? cache : undefined,
    };
  } finally {
    freeOwned();
    if (!o.keepCache) cache.dispose();
  }
}

export interface SweepPoint {
  k: number;
  draftExit: number;
  adaptive: boolean;
  tokensPerSecond: number;
  acceptanceRate: number;
  blocksPerToken: number;
}

export interface SweepOptions {
  maxNewTokens: number;
  ks?: number[];
  /** Draft exits to try (default: every early exit of the model). */
  draftExits?: number[];
  /** Also try the adaptive policy at each draft exit (default true). */
  adaptive?: boolean;
  /** Timed runs per point; the median is kept (default 1). */
  repeats?: number;
  stop?: number[];
  /** Called after each point (progress). */
  onPoint?: (p: SweepPoint) => void;
}

/**
 * Measures greedy self-speculative decoding's tokens/s on `prompts` for every (k, draft exit) and returns
 * the points, fastest first. One untimed warm-up run precedes the sweep.
 */
export async function sweepSpeculative(
  model: DecoderLM,
  prompts: readonly (readonly number[])[],
  o: SweepOptions,
): Promise<SweepPoint[]> {
  const ks = o.ks ?? [1, 2, 3, 4, 6];
  const exits = o.draftExits ?? model.exits.slice(0, -1);
  if (exits.length === 0)
    throw new ValidationError('sweepSpeculative: the model has no early exit to draft from; give it exits');
  const repeats = o.repeats ?? 1;
  if (!Number.isInteger(repeats) || repeats < 1)
    throw new ValidationError(`sweepSpeculative: repeats must be a positive integer, got ${repeats}`);
  const base = { maxNewTokens: o.maxNewTokens, stop: o.stop };
  await speculativeGenerate(model, prompts, { ...base, draftExit: exits[0], k: ks[0] });
  const points: SweepPoint[] = [];
  const configs = exits.flatMap((e) => [
    ...ks.map((k) => ({ draftExit: e, k, adaptive: false })),
    ...(o.adaptive === false ? [] : [{ draftExit: e, k: ks[0], adaptive: true }]),
  ]);
  for (const c of configs) {
    const tps: number[] = [];
    let last: SpeculativeResult | undefined;
    for (let r = 0; r < repeats; r++) {
      const t0 = performance.now();
      last = await speculativeGenerate(model, prompts, { ...base, ...c });
      const n = last.tokens.reduce((s, t) => s + t.length, 0);
      tps.push(n / ((performance.now() - t0) / 1000));
    }
    tps.sort((a, b) => a - b);
    const p: SweepPoint = {
      ...c,
      tokensPerSecond: tps[tps.length >> 1],
      acceptanceRate: last!.acceptanceRate,
      blocksPerToken: last!.blocksPerToken,
    };
    o.onPoint?.(p);
    points.push(p);
  }
  return points.sort((a, b) => b.tokensPerSecond - a.tokensPerSecond);
}
