// Token-level policies on a random decoder: the adapter decides as the policy's host loop (runLoop, the
// classification path) does on the signals each step recorded, for every built-in per-token policy, CALM's
// decaying threshold and a definePolicy plugin; the common generation loop reproduces DecoderLM.generate.
import {
  createGpuDevice,
  DecoderLM,
  decoderGenerationModel,
  definePolicy,
  type ExitPolicy,
  type ExitSignalArrays,
  type GenerationModel,
  type GenerationStepResult,
  type GpuDevice,
  hostExitSignals,
  parseDecoderConfig,
  randomDecoderWeights,
} from '@offramp/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLoop, type SampleSignals } from '../loop.js';
import { createPolicy } from '../registry.js';
import { decaying, decayingThreshold } from './decaying.js';
import { generateTokens } from './generate.js';

let device: GpuDevice;
let lm: DecoderLM;
let model: GenerationModel;
const V = 29;
beforeAll(async () => {
  device = await createGpuDevice();
  const config = parseDecoderConfig({
    hidden_size: 32,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    intermediate_size: 48,
    vocab_size: V,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    offramp: { exits: [0, 1, 2] },
  });
  lm = new DecoderLM(device, config, randomDecoderWeights(config, 7));
  model = decoderGenerationModel(lm);
});
afterAll(() => {
  lm?.dispose();
  device?.destroy();
});

interface Call {
  block: number;
  rows: number[];
  signals: ExitSignalArrays;
  decided: boolean[];
}
interface StepLog {
  calls: Call[];
  result: GenerationStepResult;
}

/** The model with every step's rule calls recorded. */
export function recording(m: GenerationModel): { model: GenerationModel; log: StepLog[] } {
  const log: StepLog[] = [];
  const copy = (s: ExitSignalArrays): ExitSignalArrays => ({
    maxProb: s.maxProb.slice(),
    entropy: s.entropy.slice(),
    margin: s.margin.slice(),
    argmax: s.argmax.slice(),
    gate: s.gate.slice(),
    similarity: s.similarity.slice(),
  });
  return {
    log,
    model: {
      ...m,
      async step(tokens, cache, exit) {
        const calls: Call[] = [];
        const wrapped = exit && {
          ...exit,
          decide: (s: ExitSignalArrays, ctx: { block: number; rows: readonly number[] }) => {
            const d = exit.decide(s, ctx);
            calls.push({ block: ctx.block, rows: [...ctx.rows], signals: copy(s), decided: Array.from(d, Boolean) });
            return d;
          },
        };
        const result = await m.step(tokens, cache, wrapped);
        log.push({ calls, result });
        return result;
      },
    },
  };
}

/** Replays each recorded step through runLoop (the classification host loop) with a fresh policy. */
export function replayExitBlocks(
  m: GenerationModel,
  log: readonly StepLog[],
  fresh: (tokenIndex: number) => ExitPolicy<any>,
): Int32Array[] {
  const E = m.exits.length;
  return log.map(({ calls, result }, k) => {
    const B = result.exitBlocks.length;
    const nan = () => new Array(E).fill(Number.NaN);
    const samples: SampleSignals[] = Array.from({ length: B }, () => ({
      maxProb: nan(),
      entropy: nan(),
      margin: nan(),
      argmax: nan(),
      gate: nan(),
      similarity: nan(),
    }));
    for (const c of calls) {
      const e = m.exits.indexOf(c.block);
      c.rows.forEach((b, i) => {
        for (const f of ['maxProb', 'entropy', 'margin', 'argmax', 'gate', 'similarity'] as const)
          (samples[b][f] as number[])[e] = c.signals[f][i];
      });
    }
    const last = hostExitSignals(result.logits, B, m.vocabSize);
    for (let b = 0; b < B; b++)
      for (const f of ['maxProb', 'entropy', 'margin', 'argmax', 'gate', 'similarity'] as const)
        (samples[b][f] as number[])[E - 1] = last[f][b];
    const shape = {
      numExits: E,
      numClasses: m.vocabSize,
      numBlocks: m.numLayers,
      exitBlocks: m.exits,
      costFractions: m.exits.map((b) => (b + 1) / m.numLayers),
    };
    const { exits } = runLoop(fresh(k + 1), shape, samples);
    return Int32Array.from(exits, (e) => m.exits[e]);
  });
}

const prompts = [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10], [11]];

/** The q-quantile of a signal at exit e over teacher-forced random text. */
async function quantileOf(signal: 'maxProb' | 'entropy' | 'margin' | 'similarity', e: number, q: number) {
  const seqs = Array.from({ length: 4 }, (_, i) => Array.from({ length: 12 }, (_, t) => (i * 7 + t * 5) % V));
  const sc = await model.score(seqs);
  const xs = Array.from(sc.signals[e][signal]).sort((a, b) => a - b);
  return xs[Math.floor(q * (xs.length - 1))];
}

describe('token-level exit policies', () => {
  it('every built-in per-token policy decides as its classification host loop does on the recorded signals', async () => {
    const mp = await quantileOf('maxProb', 1, 0.5);
    const en = await quantileOf('entropy', 1, 0.5);
    const mg = await quantileOf('margin', 0, 0.6);
    const sim = await quantileOf('similarity', 1, 0.5);
    const specs: [string, Record<string, unknown>][] = [
      ['confidence', { threshold: Math.min(1, mp) }],
      ['entropy', { threshold: en }],
      ['margin', { threshold: mg }],
      ['saturation', { threshold: sim }],
      ['patience', { patience: 1 }],
      ['budget', { target: 0.6, mode: 'batch', threshold: Math.min(1, mp) }],
    ];
    for (const [name, options] of specs) {
      const rec = recording(model);
      const r = await generateTokens(rec.model, prompts, {
        maxNewTokens: 10,
        policy: createPolicy(name, options),
      });
      const replay = replayExitBlocks(model, rec.log, () => createPolicy(name, options));
      expect(rec.log).toHaveLength(9);
      rec.log.forEach((s, k) => {
        expect(Array.from(s.result.exitBlocks), `${name} step ${k}`).toEqual(Array.from(replay[k]));
        // the generation loop reports the same exit blocks
        r.exitBlocks.forEach((bs, b) => {
          if (bs.length > k + 1) expect(bs[k + 1]).toBe(s.result.exitBlocks[b]);
        });
      });
      const all = rec.log.flatMap((s) => Array.from(s.result.exitBlocks));
      // a real mix: some tokens leave early, some run to full depth (patience 1 on random models may not)
      if (name !== 'patience') {
        expect(
          all.some((b) => b < 3),
          name,
        ).toBe(true);
        expect(
          all.some((b) => b === 3),
          name,
        ).toBe(true);
      }
    }
  });

  it('patience counts over the exits of one token and starts over at the next', async () => {
    // patience 2 with 3 early exits: only rows whose argmax agrees at exits 0, 1, 2 leave at block 2
    const rec = recording(model);
    await generateTokens(rec.model, prompts, { maxNewTokens: 8, policy: createPolicy('patience', { patience: 2 }) });
    for (const { calls, result } of rec.log) {
      const byRow = new Map<number, number[]>();
      for (const c of calls)
        c.rows.forEach((b, i) => {
          byRow.set(b, [...(byRow.get(b) ?? []), c.signals.argmax[i]]);
        });
      for (const [b, am] of byRow) {
        const leaves = am.length === 3 && am[0] === am[1] && am[1] === am[2];
        expect(result.exitBlocks[b]).toBe(leaves ? 2 : 3);
      }
    }
  });

  it("CALM's decaying threshold lowers λ_t over the tokens and decides on it", async () => {
    const lambda = 0.9;
    const tau = 4;
    const N = 12;
    expect(decayingThreshold(lambda, tau, 0, N)).toBeCloseTo(0.9 * 0.9 + 0.1, 6);
    expect(decayingThreshold(lambda, tau, N, N)).toBeCloseTo(0.81 + 0.1 * Math.exp(-4), 6);
    // a base λ so that the decay crosses the recorded confidences
    const mp = await quantileOf('maxProb', 1, 0.5);
    const base = Math.max(0, (mp - 0.1 * Math.exp(-2)) / 0.9);
    const rec = recording(model);
    await generateTokens(rec.model, prompts, { maxNewTokens: N, policy: decaying({ threshold: base, tau }) });
    const replay = replayExitBlocks(model, rec.log, (k) =>
      createPolicy('confidence', {
        threshold: decayingThreshold(base, tau, k, N),
      }),
    );
    rec.log.forEach((s, k) => {
      expect(Array.from(s.result.exitBlocks), `token ${k + 1}`).toEqual(Array.from(replay[k]));
    });
    const early = rec.log.map((s) => Array.from(s.result.exitBlocks).filter((b) => b < 3).length);
    // later tokens leave at least as easily on average: the second half exits no less than the first
    const half = Math.floor(early.length / 2);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(early.slice(half))).toBeGreaterThanOrEqual(mean(early.slice(0, half)) - 1);
  });

  it('a plugin policy made with definePolicy works in generation', async () => {
    const calls: number[] = [];
    const evenArgmax = definePolicy({
      name: 'even-argmax',
      defaults: { minProb: 0 },
      create: (o) => ({
        name: 'even-argmax',
        needs: ['argmax', 'maxProb'],
        init: () => ({ seen: 0 }),
        decide: (ctx, s, st: { seen: number }) => {
          st.seen++;
          calls.push(ctx.exitIndex);
          return Array.from({ length: s.count }, (_, r) => s.argmax[r] % 2 === 0 && s.maxProb[r] >= o.minProb);
        },
      }),
    });
    const rec = recording(model);
    const r = await generateTokens(rec.model, prompts, { maxNewTokens: 8, policy: evenArgmax({ minProb: 0 }) });
    const replay = replayExitBlocks(model, rec.log, () => evenArgmax({ minProb: 0 }));
    rec.log.forEach((s, k) => {
      expect(Array.from(s.result.exitBlocks)).toEqual(Array.from(replay[k]));
    });
    expect(calls.length).toBeGreaterThan(0);
    for (const c of rec.log.flatMap((s) => s.calls))
      c.rows.forEach((_, i) => {
        expect(c.decided[i]).toBe(c.signals.argmax[i] % 2 === 0);
      });
    expect(r.depthFraction).toBeLessThan(1);
  });

  it('a policy that needs raw logits is refused with a clear message', async () => {
    const p: ExitPolicy<null> = {
      name: 'needs-logits',
      needs: ['logits'],
      init: () => null,
      decide: (_c, s) => new Uint8Array(s.count),
    };
    await expect(generateTokens(model, prompts, { maxNewTokens: 3, policy: p })).rejects.toThrow(/raw logits/);
    await expect(generateTokens(model, prompts, { maxNewTokens: 3, skip: 'freeze' })).rejects.toThrow(
      /propagate, none/,
    );
  });

  it("generateTokens reproduces DecoderLM.generate (full depth, the model's own maxProb rule, sampling)", async () => {
    const mp = await quantileOf('maxProb', 1, 0.5);
    for (const sampling of [{}, { temperature: 0.8, topK: 10, seed: 3 }]) {
      const own = await lm.generate(prompts, { maxNewTokens: 9, sampling });
      const ours = await generateTokens(model, prompts, { maxNewTokens: 9, sampling });
      expect(ours.tokens).toEqual(own.tokens);
      expect(ours.exitBlocks).toEqual(own.exitBlocks);
      const ownExit = await lm.generate(prompts, {
        maxNewTokens: 9,
        sampling,
        exit: { rule: { kind: 'maxProb', threshold: Math.fround(mp) } },
      });
      const oursExit = await generateTokens(model, prompts, {
        maxNewTokens: 9,
        sampling,
        policy: createPolicy('confidence', { threshold: Math.fround(mp) }),
      });
      expect(oursExit.tokens).toEqual(ownExit.tokens);
      expect(oursExit.exitBlocks).toEqual(ownExit.exitBlocks);
      expect(oursExit.depthFraction).toBeCloseTo(ownExit.depthFraction, 12);
      expect(ownExit.exitBlocks.flat().some((b) => b < 3)).toBe(true);
    }
  });

  it("teacher-forced score matches DecoderLM.score's per-exit NLL", async () => {
    const seqs = [
      [1, 5, 9, 2, 7, 3],
      [4, 4, 8, 1],
    ];
    const ours = await model.score(seqs);
    const own = await lm.score(seqs);
    expect(ours.count).toBe(own.count);
    ours.tokenNll.forEach((xs, e) => {
      xs.forEach((x, i) => {
        expect(x).toBeCloseTo(own.tokenNll[e][i], 4);
      });
      // the signals' max probability is that of the argmax token
      for (let i = 0; i < ours.count; i++) expect(ours.signals[e].maxProb[i]).toBeGreaterThan(0);
    });
  });
});

describe("budget's controller over tokens", () => {
  it('moves τ between tokens by the mean cost of each step, as its update rule says', async () => {
    const p = createPolicy('budget', { target: 0.5, threshold: 0.99, gain: 0.5 }) as ExitPolicy & {
      threshold: number;
    };
    const taus: number[] = [];
    const rec = recording(model);
    await generateTokens(rec.model, prompts, {
      maxNewTokens: 6,
      policy: p,
      onToken: () => taus.push(p.threshold),
    });
    // after token k's step, τ ← clamp(τ + 0.5·(0.5 − mean cost of that step))
    let tau = Math.fround(0.99);
    rec.log.forEach((s, k) => {
      const mean = Array.from(s.result.exitBlocks).reduce((a, b) => a + (b + 1) / 4, 0) / prompts.length;
      tau = Math.fround(Math.min(1, Math.max(0, tau + 0.5 * (0.5 - mean))));
      expect(taus[k + 1]).toBeCloseTo(tau, 6);
    });
    expect(taus[taus.length - 1]).toBeLessThan(0.99);
  });
});
