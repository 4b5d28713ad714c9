// The device-side decode loop against the host loop (DecoderLM.step with compaction and host-side exit
// decisions, same device sampler): identical tokens and exit blocks for greedy and seeded sampling, with
// the fixed, maxProb, entropy, saturation and never rules, batch 1 and 8, N = 1, 4, 16 steps per
// submission, with the dispatch gate (indirect dispatch off when no row is live) and without; the KV cache
// equals the host loop's; blocksComputed counts the blocks up to each step's deepest exit (gated) or all;
// one submission and one readback per N tokens; full-depth greedy tokens equal the float64 reference's argmax.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDecoderConfig } from '../models/decoder-config.js';
import { type DecoderExitRule, DecoderLM } from '../models/decoder-lm.js';
import { randomDecoderWeights } from '../models/decoder-random.js';
import { DecoderReference } from '../models/decoder-reference.js';
import { argmaxOf, type SamplingOptions } from '../models/sampling.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { deviceLoop, f32Threshold, generateHostLoop, generateOnDevice, type LoopGenerateOptions } from './gpu-loop.js';

let device: GpuDevice;
let model: DecoderLM;
let w: ReturnType<typeof randomDecoderWeights>;
const config = parseDecoderConfig({
  hidden_size: 32,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 48,
  vocab_size: 29,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  offramp: { exits: [0, 1, 2] },
});
let maxProbT = 0.5;
let entropyT = 1;
let saturationT = 0.5;

beforeAll(async () => {
  device = await createGpuDevice();
  w = randomDecoderWeights(config, 17);
  model = new DecoderLM(device, config, w);
  // a maxProb threshold at the median of the first exit's signal, so exits are mixed
  // (entropy likewise, at the second exit)
  const seen: number[] = [];
  const ent: number[] = [];
  const sim: number[] = [];
  await generateHostLoop(model, PROMPTS.slice(0, 4), {
    maxNewTokens: 6,
    exit: {
      rule: {
        kind: 'custom',
        decide: (s, { block }) => {
          if (block === 0) seen.push(...s.maxProb);
          if (block === 1) ent.push(...s.entropy);
          sim.push(...s.similarity);
          return new Array(s.maxProb.length).fill(false);
        },
      },
    },
  });
  const mid = (x: number[]) => x.sort((a, b) => a - b)[Math.floor(x.length / 2)];
  maxProbT = mid(seen);
  entropyT = mid(ent);
  // saturation is tested at every exit: its threshold at the 90th percentile over the three
  saturationT = sim.sort((a, b) => a - b)[Math.floor(sim.length * 0.9)];
});
afterAll(() => {
  model?.dispose();
  device?.destroy();
});

function tokens(n: number, seed: number): number[] {
  let x = seed;
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % config.vocabSize;
  });
}
const PROMPTS = [3, 1, 6, 2, 5, 4, 7, 2].map((n, i) => tokens(n, 100 + i));
const all = () => Array.from({ length: config.numLayers }, (_, l) => l);

const RULES: Record<string, () => DecoderExitRule> = {
  never: () => ({ kind: 'never' }),
  fixed: () => ({ kind: 'fixed', block: 1 }),
  maxProb: () => ({ kind: 'maxProb', threshold: maxProbT }),
  entropy: () => ({ kind: 'entropy', threshold: entropyT }),
  saturation: () => ({ kind: 'saturation', threshold: saturationT }),
};

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0;
  let mx = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    mx = Math.max(mx, Math.abs(b[i]));
  }
  return err / mx;
}

/** Blocks a gated device loop computes: per step, every row of it up to the step's deepest exit. */
function gatedBlocks(exitBlocks: number[][]): number {
  let total = 0;
  for (let t = 1; t < Math.max(...exitBlocks.map((e) => e.length)); t++) {
    const rows = exitBlocks.filter((e) => e.length > t);
    total += rows.length * (Math.max(...rows.map((e) => e[t])) + 1);
  }
  return total;
}
const SAMPLINGS: Record<string, SamplingOptions> = {
  greedy: {},
  seeded: { temperature: 0.9, topK: 12, topP: 0.95, seed: 77 },
};

describe('generateOnDevice equals the host loop', () => {
  const combos: [string, string, number][] = [];
  for (const s of Object.keys(SAMPLINGS))
    for (const r of Object.keys(RULES)) for (const b of [1, 8]) combos.push([s, r, b]);
  it.each(combos)('%s sampling, %s rule, batch %i, N = 1, 4, 16, gated and not', async (s, r, B) => {
    const o: LoopGenerateOptions = {
      maxNewTokens: 10,
      sampling: SAMPLINGS[s],
      exit: { rule: RULES[r]() },
      stop: s === 'seeded' ? [3] : undefined,
    };
    const prompts = PROMPTS.slice(0, B);
    const host = await generateHostLoop(model, prompts, { ...o, keepCache: true });
    if (r !== 'never' && r !== 'fixed' && B === 8) {
      const early = host.exitBlocks.flat().filter((e) => e < config.numLayers - 1).length;
      expect(early, 'some tokens exit early').toBeGreaterThan(0);
      expect(early, 'some tokens run to full depth').toBeLessThan(host.exitBlocks.flat().length - B);
    }
    if (r === 'fixed') for (const e of host.exitBlocks) expect(e.slice(1).every((x) => x === 1)).toBe(true);
    const L = config.numLayers;
    const later = host.tokens.reduce((a, t) => a + t.length - 1, 0);
    for (const N of [1, 4, 16]) {
      const dev = await deviceLoop(
        model,
        prompts,
        { ...o, stepsPerSubmit: N, keepCache: N === 4, gate: true },
        all,
        'test',
      );
      expect(dev.tokens, `N ${N} tokens`).toEqual(host.tokens);
      expect(dev.exitBlocks, `N ${N} exit blocks`).toEqual(host.exitBlocks);
      expect(dev.blocksRun).toBe(host.blocksRun);
      expect(dev.readbacks).toBe(Math.ceil(10 / N));
      expect(dev.blocksComputed, 'gated-off blocks are not computed').toBe(gatedBlocks(host.exitBlocks));
      if (B === 1) expect(dev.blocksComputed).toBe(host.blocksComputed);
      if (dev.cache) {
        // the device loop's masked rows write at the blocks above their exit what CALM propagation writes
        for (let b = 0; b < B; b++) {
          expect(dev.cache.length(b)).toBe(host.cache!.length(b));
          for (let l = 0; l < L; l++) {
            const x = await dev.cache.readRow(l, b);
            const y = await host.cache!.readRow(l, b);
            expect(relErr(x.k, y.k), `row ${b} layer ${l} keys`).toBeLessThan(1e-5);
            expect(relErr(x.v, y.v), `row ${b} layer ${l} values`).toBeLessThan(1e-5);
          }
        }
        dev.cache.dispose();
      }
    }
    host.cache!.dispose();
    const ungated = await generateOnDevice(model, prompts, { ...o, stepsPerSubmit: 4, gate: false });
    expect(ungated.tokens).toEqual(host.tokens);
    expect(ungated.exitBlocks).toEqual(host.exitBlocks);
    expect(ungated.blocksComputed, 'ungated: every block of every step').toBe(later * L);
  });
});

describe('generateOnDevice', () => {
  it('records N steps into one submission: one submit and one readback per N tokens', async () => {
    const prompts = PROMPTS.slice(0, 3);
    const queue = device.gpu.queue;
    const submit = queue.submit.bind(queue);
    let submits = 0;
    queue.submit = (cbs: Iterable<GPUCommandBuffer>) => {
      submits++;
      return submit(cbs);
    };
    try {
      const c0 = submits;
      (await model.prefill(prompts, undefined, 20)).cache.dispose();
      const prefillSubmits = submits - c0;
      const c1 = submits;
      const r = await generateOnDevice(model, prompts, {
        maxNewTokens: 13,
        stepsPerSubmit: 4,
        exit: { rule: { kind: 'maxProb', threshold: maxProbT } },
      });
      expect(r.readbacks).toBe(4);
      expect(submits - c1 - prefillSubmits).toBe(4);
      expect(r.tokens.every((t) => t.length === 13)).toBe(true);
    } finally {
      queue.submit = submit;
    }
  });

  it('full-depth greedy tokens equal the float64 reference argmax', async () => {
    const ref = new DecoderReference(config, w);
    const prompts = PROMPTS.slice(0, 3);
    const r = await generateOnDevice(model, prompts, { maxNewTokens: 6, stepsPerSubmit: 4 });
    prompts.forEach((p, b) => {
      const cache = ref.newCache();
      let z: Float64Array | undefined;
      for (const id of p) z = ref.token(cache, id).logits.get(config.numLayers - 1);
      for (const tok of r.tokens[b]) {
        expect(tok).toBe(argmaxOf(z!));
        z = ref.token(cache, tok).logits.get(config.numLayers - 1);
      }
    });
  });

  it('stop tokens end a row (kept in its output), the others go on', async () => {
    const prompts = PROMPTS.slice(0, 8);
    const o = { maxNewTokens: 12, sampling: SAMPLINGS.seeded, stepsPerSubmit: 5 };
    const free = await generateOnDevice(model, prompts, o);
    const stopTok = free.tokens[0][3];
    const r = await generateOnDevice(model, prompts, { ...o, stop: [stopTok] });
    free.tokens.forEach((t, b) => {
      const i = t.indexOf(stopTok);
      expect(r.tokens[b]).toEqual(i < 0 ? t : t.slice(0, i + 1));
    });
  });

  it('rejects custom rules and bad options with clear errors', async () => {
    await expect(
      generateOnDevice(model, [[1]], {
        maxNewTokens: 2,
        exit: { rule: { kind: 'custom', decide: () => [true] } },
      }),
    ).rejects.toThrow(/host only/);
    await expect(generateOnDevice(model, [[1]], { maxNewTokens: 2, stepsPerSubmit: 0 })).rejects.toThrow(
      /stepsPerSubmit/,
    );
    await expect(generateOnDevice(model, [[1]], { maxNewTokens: 2, stop: [99] })).rejects.toThrow(/stop token 99/);
  });

  it('f32 thresholds keep the host comparison exact', () => {
    for (const t of [0.1, 0.3, 1 / 3, 0.5, 2.7, 1e-8]) {
      const up = f32Threshold(t, false);
      const down = f32Threshold(t, true);
      expect(up).toBeGreaterThanOrEqual(t);
      expect(down).toBeLessThanOrEqual(t);
      expect(Math.fround(up)).toBe(up);
      expect(Math.fround(down)).toBe(down);
      // nothing representable strictly between
      const f = new Float32Array([up]);
      new Uint32Array(f.buffer)[0] -= 1;
      expect(f[0]).toBeLessThan(t);
    }
  });
});
