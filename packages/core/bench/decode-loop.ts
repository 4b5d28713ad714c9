// Decode-loop benchmark: tokens/s of the device-side decode loop (generateOnDevice, N steps per submission,
// one readback per N tokens) against the host loop (generateHostLoop: DecoderLM.step with host-side exit
// decisions and compaction, one step and one sampling readback per token), side by side in one run on a
// random decoder, at full depth and with maxProb exits (threshold at the median of the first exit's max
// probability, so about half the tokens leave there), batch 1 and 8. Both modes give identical tokens (the
// tests check it; here too). Median of RUNS alternating runs after a warm-up.
// Writes bench/results/decode-loop.json. `pnpm --filter @offramp/core exec tsx bench/decode-loop.ts`
// Options: --runs R, --tokens T, --steps N (comma list, default 1,16), --layers L, --hidden D.
import './dawn-globals.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import {
  generateHostLoop,
  generateOnDevice,
  type LoopGenerateOptions,
  type LoopGenerateResult,
} from '../src/generation/gpu-loop.js';
import { parseDecoderConfig } from '../src/models/decoder-config.js';
import { type DecoderExitRule, DecoderLM } from '../src/models/decoder-lm.js';
import { randomDecoderWeights } from '../src/models/decoder-random.js';
import { createGpuDevice } from '../src/runtime/create-device.js';
import { median } from './harness.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    tokens: { type: 'string', default: '32' },
    steps: { type: 'string', default: '1,16' },
    layers: { type: 'string', default: '8' },
    hidden: { type: 'string', default: '128' },
    out: { type: 'string', default: 'bench/results/decode-loop.json' },
  },
});
const RUNS = Number(values.runs);
const TOKENS = Number(values.tokens);
const STEPS = values.steps.split(',').map(Number);
const L = Number(values.layers);
const D = Number(values.hidden);

const device = await createGpuDevice();
console.log(`adapter: ${device.describe()}; ${cpus().length} CPUs, load ${loadavg()[0].toFixed(2)}`);
const config = parseDecoderConfig({
  hidden_size: D,
  num_hidden_layers: L,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: Math.round((D * 8) / 3),
  vocab_size: 256,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  offramp: { exits: [Math.floor(L / 4), Math.floor(L / 2), Math.floor((3 * L) / 4)] },
});
const model = new DecoderLM(device, config, randomDecoderWeights(config, 5));
const prompt = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (seed * 31 + i * 7) % config.vocabSize);

// calibrate the maxProb threshold: median of the first exit's max probability over a short generation
const seen: number[] = [];
await generateHostLoop(model, [prompt(8, 1), prompt(5, 2)], {
  maxNewTokens: 16,
  exit: {
    rule: {
      kind: 'custom',
      decide: (s, { block }) => {
        if (block === config.exits[0]) seen.push(...s.maxProb);
        return new Array(s.maxProb.length).fill(false);
      },
    },
  },
});
seen.sort((a, b) => a - b);
const threshold = seen[Math.floor(seen.length / 2)];
const rules: Record<string, DecoderExitRule> = {
  'full depth': { kind: 'never' },
  'maxProb exits': { kind: 'maxProb', threshold },
};

const same = (a: LoopGenerateResult, b: LoopGenerateResult) =>
  JSON.stringify([a.tokens, a.exitBlocks]) === JSON.stringify([b.tokens, b.exitBlocks]);

const rows = [];
for (const B of [1, 8]) {
  const prompts = Array.from({ length: B }, (_, b) => prompt(4 + (b % 5), b + 3));
  for (const [ruleName, rule] of Object.entries(rules)) {
    const o: LoopGenerateOptions = { maxNewTokens: TOKENS, sampling: { temperature: 0.8, seed: 9 }, exit: { rule } };
    const variants: { name: string; run: () => Promise<LoopGenerateResult>; ms: number[] }[] = [
      { name: 'host', run: () => generateHostLoop(model, prompts, o), ms: [] },
      ...STEPS.map((N) => ({
        name: `device N=${N}`,
        run: () => generateOnDevice(model, prompts, { ...o, stepsPerSubmit: N }),
        ms: [] as number[],
      })),
    ];
    const outs: LoopGenerateResult[] = [];
    for (const v of variants) outs.push(await v.run()); // warm-up (pipelines)
    const identical = outs.every((r) => same(r, outs[0]));
    for (let r = 0; r < RUNS; r++) {
      const order = r % 2 ? [...variants].reverse() : variants;
      for (const v of order) {
        const t0 = performance.now();
        await v.run();
        v.ms.push(performance.now() - t0);
      }
    }
    const tokens = outs[0].tokens.reduce((a, t) => a + t.length, 0);
    const host = median(variants[0].ms);
    const depth = outs[0].blocksRun / Math.max(1, (tokens - B) * L);
    for (const v of variants) {
      const ms = median(v.ms);
      const row = {
        batch: B,
        rule: ruleName,
        mode: v.name,
        tokens,
        median_ms: ms,
        tokens_per_s: (tokens / ms) * 1000,
        speedup_vs_host: host / ms,
        depth_fraction: depth,
        identical_to_host: identical,
        runs_ms: v.ms,
      };
      rows.push(row);
      console.log(
        `B=${B} ${ruleName.padEnd(14)} ${v.name.padEnd(12)} ${row.tokens_per_s.toFixed(1).padStart(8)} tok/s  ×${row.speedup_vs_host.toFixed(2)} vs host  depth ${depth.toFixed(2)}  identical ${identical}`,
      );
    }
  }
}
mkdirSync('bench/results', { recursive: true });
writeFileSync(
  values.out,
  `${JSON.stringify(
    {
      bench: 'decode-loop',
      adapter: device.describe(),
      cpus: cpus().length,
      load: loadavg()[0],
      model: { layers: L, hidden: D, heads: 4, kvHeads: 2, vocab: config.vocabSize, exits: config.exits },
      maxNewTokens: TOKENS,
      runs: RUNS,
      maxProbThreshold: threshold,
      rows,
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${values.out}`);
model.dispose();
device.destroy();
