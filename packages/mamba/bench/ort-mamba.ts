// The Mamba LM generating on the CPU: OrtMambaLM (ONNX Runtime CPU EP) against MambaLM on the machine's WebGPU
// adapter (lavapipe where there is no GPU), on checkpoints/austen-mamba, greedy, NEW tokens after each prompt,
// full depth and with a confidence exit (max softmax probability ≥ THRESHOLD, skipped blocks frozen), batch 1
// and 8. Both run the same host loop over GenerationModel (prefill, then a step per token); tokens/s include
// the prefill; medians of ROUNDS rounds, order rotated each round; ORT's tokens and exit blocks are checked
// against WebGPU's. Writes bench/results/ort-mamba.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGpuDevice, createOrtCpu, type GenerationExit, type GenerationModel } from '@offramp/core';
import { mambaGenerationModel } from '../src/generation.js';
import { MambaLM } from '../src/model.js';
import { loadMambaDir } from '../src/node.js';
import { OrtMambaLM } from '../src/ort-mamba.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROUNDS = Number(process.env.ORT_MAMBA_ROUNDS ?? 3);
const NEW = Number(process.env.ORT_MAMBA_NEW ?? 48);
const THRESHOLD = 0.5;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
function argmax(z: Float32Array, o: number, V: number): number {
  let m = 0;
  for (let v = 1; v < V; v++) if (z[o + v] > z[o + m]) m = v;
  return m;
}

async function hostLoop(model: GenerationModel, prompts: number[][], exit?: GenerationExit) {
  const V = model.vocabSize;
  const cache = model.newCache(prompts.length, Math.max(...prompts.map((p) => p.length)) + NEW);
  try {
    let z = await model.prefill(prompts, cache);
    const tokens = prompts.map(() => [] as number[]);
    const exitBlocks = prompts.map(() => [] as number[]);
    let next = prompts.map((_, b) => argmax(z, b * V, V));
    let blocks = 0;
    for (let k = 0; k < NEW; k++) {
      next.forEach((t, b) => {
        tokens[b].push(t);
      });
      if (k === NEW - 1) break;
      const r = await model.step(next, cache, exit);
      blocks += r.blocksRun;
      z = r.logits;
      next = prompts.map((_, b) => argmax(z, b * V, V));
      r.exitBlocks.forEach((e, b) => {
        exitBlocks[b].push(e);
      });
    }
    return { tokens, exitBlocks, depthFraction: blocks / ((NEW - 1) * prompts.length * model.numLayers) };
  } finally {
    cache.dispose();
  }
}

const loaded = await loadMambaDir(path.join(here, '../../../checkpoints/austen-mamba'));
const gpu = await createGpuDevice();
const ortCpu = await createOrtCpu({
  threads: process.env.ORT_MAMBA_THREADS ? Number(process.env.ORT_MAMBA_THREADS) : undefined,
});
const lm = new MambaLM(gpu, loaded.config, loaded.tensors);
const ort = new OrtMambaLM(ortCpu, loaded.config, loaded.tensors, { exits: [...lm.exits] });
const gm = mambaGenerationModel(lm);
const exit: GenerationExit = { decide: (s) => Array.from(s.maxProb, (p) => p >= THRESHOLD), skip: 'freeze' };
const loadBefore = loadavg();
const rows: unknown[] = [];
let failed = false;
for (const batch of [1, 8]) {
  const prompts = Array.from({ length: batch }, (_, b) =>
    Array.from({ length: 16 }, (_, i) => (b * 7 + i * 3 + 1) % loaded.config.vocabSize),
  );
  for (const withExit of [false, true]) {
    const ex = withExit ? exit : undefined;
    const o = await hostLoop(ort, prompts, ex);
    const g = await hostLoop(gm, prompts, ex);
    const same =
      JSON.stringify(o.tokens) === JSON.stringify(g.tokens) &&
      JSON.stringify(o.exitBlocks) === JSON.stringify(g.exitBlocks);
    if (!same) {
      failed = true;
      console.error(`WRONG: batch ${batch} ${withExit ? 'exit' : 'full'}: ORT and WebGPU tokens differ`);
    }
    const runs: Record<string, () => Promise<unknown>> = {
      ort: () => hostLoop(ort, prompts, ex),
      webgpu: () => hostLoop(gm, prompts, ex),
    };
    const names = Object.keys(runs);
    const ms: Record<string, number[]> = { ort: [], webgpu: [] };
    for (let r = 0; r < ROUNDS; r++)
      for (let k = 0; k < names.length; k++) {
        const name = names[(k + r) % names.length];
        const t = performance.now();
        await runs[name]();
        ms[name].push(performance.now() - t);
      }
    const tps = (n: string) => +((batch * NEW) / (median(ms[n]) / 1000)).toFixed(1);
    const row = {
      batch,
      exit: withExit ? `maxProb ≥ ${THRESHOLD}, freeze` : 'none (full depth)',
      tokensPerSec: { ort: tps('ort'), webgpu: tps('webgpu') },
      roundsMs: Object.fromEntries(names.map((n) => [n, ms[n].map((x) => +x.toFixed(1))])),
      ortVsWebgpu: +(tps('ort') / tps('webgpu')).toFixed(2),
      depthFraction: +o.depthFraction.toFixed(3),
      same,
    };
    rows.push(row);
    console.log(
      `mamba batch ${batch}, exit ${row.exit}: tokens/s ORT ${row.tokensPerSec.ort}, WebGPU ${row.tokensPerSec.webgpu} → ${row.ortVsWebgpu}×; depth ${(row.depthFraction * 100).toFixed(1)}%`,
    );
  }
}
const list = cpus();
mkdirSync(path.join(here, 'results'), { recursive: true });
writeFileSync(
  path.join(here, 'results', 'ort-mamba.json'),
  `${JSON.stringify(
    {
      benchmark: 'ort-mamba',
      date: new Date().toISOString(),
      machine: { cpus: list.length, model: list[0]?.model, loadBefore, loadAfter: loadavg() },
      ort: ortCpu.describe(),
      webgpuAdapter: gpu.describe(),
      model: `checkpoints/austen-mamba (${loaded.config.numLayers} blocks, d ${loaded.config.hiddenSize}), greedy, exits [${lm.exits.join(', ')}]`,
      newTokens: NEW,
      rounds: ROUNDS,
      rows,
    },
    null,
    2,
  )}\n`,
);
console.log('wrote bench/results/ort-mamba.json');
lm.dispose();
await ort.dispose();
gpu.destroy();
if (failed) process.exit(1);
