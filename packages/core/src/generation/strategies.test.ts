// The strategies entry point: every strategy by name, calm on the device equals calm on the host, recompute
// and calm agree at full depth, and bad names or missing schedules give clear errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDecoderConfig } from '../models/decoder-config.js';
import { DecoderLM } from '../models/decoder-lm.js';
import { randomDecoderWeights } from '../models/decoder-random.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { speculativeGenerate } from './speculative.js';
import { type GenerationStrategy, generateWithStrategy } from './strategies.js';

let device: GpuDevice;
let model: DecoderLM;
beforeAll(async () => {
  device = await createGpuDevice();
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
    offramp: { exits: [1, 2] },
  });
  model = new DecoderLM(device, config, randomDecoderWeights(config, 41));
});
afterAll(() => {
  model?.dispose();
  device?.destroy();
});

const prompts = [
  [1, 2, 3],
  [4, 5],
];
const sampling = { temperature: 0.8, seed: 5 };

describe('generateWithStrategy', () => {
  it('runs every strategy by name with its accounting', async () => {
    const rule = { kind: 'fixed', block: 1 } as const;
    for (const strategy of ['calm', 'recompute', 'skipdecode'] as GenerationStrategy[]) {
      const r = await generateWithStrategy(model, prompts, {
        strategy,
        maxNewTokens: 6,
        sampling,
        exit: { rule },
        schedule: { hMin: 1, hMax: 3, warmup: 1 },
      });
      expect(r.strategy).toBe(strategy);
      expect(r.tokens.map((t) => t.length)).toEqual([6, 6]);
      expect(r.depthFraction).toBeLessThan(1);
      if (strategy !== 'skipdecode') {
        expect(r.exitBlocks.flatMap((e) => e.slice(1)).every((e) => e === 1)).toBe(true);
        expect(r.blocksRun).toBe(2 * 5 * 2);
      }
      // fused recomputation rides in a step that runs deeper: with every token leaving at block 1 none does,
      // so nothing is recomputed during generation (what is owed stays owed)
      if (strategy === 'recompute') expect(r.blocksComputed).toBe(r.blocksRun);
    }
    // unfused: blocks 2 and 3 recomputed for each exited token a later step follows (4 of the 5 per row)
    const unfused = await generateWithStrategy(model, prompts, {
      strategy: 'recompute',
      maxNewTokens: 6,
      sampling,
      exit: { rule },
      fused: false,
    });
    expect(unfused.blocksComputed).toBe(unfused.blocksRun + 2 * 4 * 2);
  });

  it('calm on the device equals calm on the host; recompute equals calm at full depth', async () => {
    const o = { maxNewTokens: 7, sampling, exit: { rule: { kind: 'never' } as const } };
    const dev = await generateWithStrategy(model, prompts, { ...o, strategy: 'calm', stepsPerSubmit: 3 });
    const host = await generateWithStrategy(model, prompts, { ...o, strategy: 'calm', mode: 'host' });
    const rec = await generateWithStrategy(model, prompts, { ...o, strategy: 'recompute' });
    expect(dev.tokens).toEqual(host.tokens);
    expect(rec.tokens).toEqual(host.tokens);
    expect(dev.depthFraction).toBe(1);
  });

  it("streams every strategy: the sink gets each row's tokens in order, in several deliveries, and they add up to the result", async () => {
    const collect = () => {
      const got = prompts.map(() => ({ tokens: [] as number[], exitBlocks: [] as number[], calls: 0 }));
      const sink = (row: number, tokens: readonly number[], exitBlocks: readonly number[]) => {
        expect(tokens.length).toBe(exitBlocks.length);
        expect(tokens.length).toBeGreaterThan(0);
        got[row].tokens.push(...tokens);
        got[row].exitBlocks.push(...exitBlocks);
        got[row].calls++;
      };
      return { got, sink };
    };
    const rule = { kind: 'maxProb', threshold: 0.05 } as const;
    const cases: { name: string; stepsPerSubmit?: number; mode?: 'host'; strategy: GenerationStrategy }[] = [
      { name: 'calm on the device', strategy: 'calm', stepsPerSubmit: 3 },
      { name: 'calm on the host', strategy: 'calm', mode: 'host' },
      { name: 'recompute', strategy: 'recompute' },
      { name: 'skipdecode', strategy: 'skipdecode', stepsPerSubmit: 2 },
    ];
    for (const c of cases) {
      const { got, sink } = collect();
      const r = await generateWithStrategy(model, prompts, {
        strategy: c.strategy,
        maxNewTokens: 9,
        sampling,
        exit: { rule },
        mode: c.mode,
        stepsPerSubmit: c.stepsPerSubmit,
        schedule: { hMin: 1, hMax: 3, warmup: 1 },
        onTokens: sink,
      });
      expect(
        got.map((g) => g.tokens),
        c.name,
      ).toEqual(r.tokens);
      expect(
        got.map((g) => g.exitBlocks),
        c.name,
      ).toEqual(r.exitBlocks);
      // 9 tokens: device loops deliver per readback (ceil(9 / stepsPerSubmit)), host loops per step
      const want = c.stepsPerSubmit ? Math.ceil(9 / c.stepsPerSubmit) : 9;
      for (const g of got) expect(g.calls, c.name).toBe(want);
    }
    const { got, sink } = collect();
    const spec = await speculativeGenerate(model, prompts, {
      maxNewTokens: 9,
      draftExit: 1,
      k: 2,
      sampling,
      onTokens: sink,
    });
    expect(got.map((g) => g.tokens)).toEqual(spec.tokens);
    expect(got.every((g) => g.exitBlocks.every((e) => e === model.L - 1))).toBe(true);
    // the prefill's token, then one delivery per round
    expect(got.map((g) => g.calls)).toEqual(spec.rows.map((r) => 1 + r.rounds));
  });

  it('rejects unknown strategies and a skipdecode without schedule', async () => {
    await expect(
      generateWithStrategy(model, prompts, { strategy: 'fast' as GenerationStrategy, maxNewTokens: 2 }),
    ).rejects.toThrow(/unknown strategy 'fast'/);
    await expect(generateWithStrategy(model, prompts, { strategy: 'skipdecode', maxNewTokens: 2 })).rejects.toThrow(
      /needs a schedule/,
    );
  });
});
