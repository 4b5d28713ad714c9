// Decoder generation on the CPU: OrtDecoderLM (ONNX Runtime CPU EP) against DecoderLM on the machine's WebGPU
// adapter (lavapipe where there is no GPU), on checkpoints/austen-decoder, greedy, NEW tokens after each prompt,
// full depth and with a CALM exit (max softmax probability ≥ THRESHOLD, skipped blocks by state propagation),
// batch 1 and 8. Runtimes: 'ort' and 'webgpuHost' run the same host loop over GenerationModel (prefill, then a
// step per token with the exit rule at every early exit); 'webgpuDevice' is the decoder's device loop
// (generateOnDevice: exits decided on the device, one readback per 8 steps), the fastest WebGPU form. Tokens
// per second include the prefill; medians of ROUNDS rounds, order rotated each round; ORT's tokens and exit
// blocks are checked against the WebGPU host loop's. Run alone (`tsx bench/cpu-decoder.ts`: writes
// bench/results/cpu-decoder.json) or from bench/cpu.ts (its `decoder` section).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decoderGenerationModel } from '../src/generation/decoder-model.js';
import { generateOnDevice } from '../src/generation/gpu-loop.js';
import type { GenerationExit, GenerationModel } from '../src/generation/interface.js';
import { DecoderLM } from '../src/models/decoder-lm.js';
import type { OrtCpu } from '../src/ort/ort-cpu.js';
import { createOrtCpu } from '../src/ort/ort-cpu.js';
import { OrtDecoderLM } from '../src/ort/ort-decoder.js';
import { createGpuDevice } from '../src/runtime/create-device.js';
import type { GpuDevice } from '../src/runtime/gpu-device.js';
import { CHECKPOINTS } from '../src/testing-internal/checkpoint-data.js';
import { loadDecoderDir } from '../src/weights/decoder-dir.js';

const NEW = Number(process.env.CPU_BENCH_DECODER_NEW ?? 48);
const THRESHOLD = Number(process.env.CPU_BENCH_DECODER_THRESHOLD ?? 0.5);
const PROMPTS = [
  'It is a truth universally',
  'Mr. Darcy was',
  'She was not',
  'The evening passed',
  'Elizabeth could not',
  'My dear Mr. Bennet',
  'They walked on',
  'Her sister had',
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function argmax(z: Float32Array, o: number, V: number): number {
  let m = 0;
  for (let v = 1; v < V; v++) if (z[o + v] > z[o + m]) m = v;
  return m;
}

/** Greedy generation through GenerationModel: prefill, then one step per token. */
async function hostLoop(model: GenerationModel, prompts: number[][], exit?: GenerationExit) {
  const V = model.vocabSize;
  const cache = model.newCache(prompts.length, Math.max(...prompts.map((p) => p.length)) + NEW);
  try {
    let z = await model.prefill(prompts, cache);
    const tokens = prompts.map(() => [] as number[]);
    const exitBlocks = prompts.map(() => [] as number[]);
    let next = prompts.map((_, b) => argmax(z, b * V, V));
    next.forEach((t, b) => {
      tokens[b].push(t);
      exitBlocks[b].push(model.numLayers - 1);
    });
    let blocks = 0;
    for (let k = 1; k < NEW; k++) {
      const r = await model.step(next, cache, exit);
      blocks += r.blocksRun;
      z = r.logits;
      next = prompts.map((_, b) => argmax(z, b * V, V));
      next.forEach((t, b) => {
        tokens[b].push(t);
        exitBlocks[b].push(r.exitBlocks[b]);
      });
    }
    return { tokens, exitBlocks, depthFraction: blocks / ((NEW - 1) * prompts.length * model.numLayers) };
  } finally {
    cache.dispose();
  }
}

export interface DecoderBenchRow {
  batch: number;
  exit: string;
  tokensPerSec: Record<string, number>;
  roundsMs: Record<string, number[]>;
  ortVsBestWebgpu: number;
  depthFraction: number;
  sameAsWebgpuHost: boolean;
}

/** The decoder rows of the CPU benchmark. */
export async function benchDecoderOrt(
  ortCpu: OrtCpu,
  gpu: GpuDevice,
  rounds: number,
): Promise<{ model: string; newTokens: number; threshold: number; rows: DecoderBenchRow[]; failed: boolean }> {
  const loaded = await loadDecoderDir(join(CHECKPOINTS, 'austen-decoder'));
  const tok = loaded.tokenizer!;
  const lm = new DecoderLM(gpu, loaded.config, loaded.tensors);
  const ort = new OrtDecoderLM(ortCpu, loaded.config, loaded.tensors);
  const gm = decoderGenerationModel(lm);
  const exit: GenerationExit = { decide: (s) => Array.from(s.maxProb, (p) => p >= THRESHOLD) };
  const rows: DecoderBenchRow[] = [];
  let failed = false;
  for (const batch of [1, 8]) {
    const prompts = PROMPTS.slice(0, batch).map((p) => tok.encode(p));
    for (const withExit of [false, true]) {
      const ex = withExit ? exit : undefined;
      const runs: Record<string, () => Promise<{ tokens: number[][]; exitBlocks: number[][] }>> = {
        ort: () => hostLoop(ort, prompts, ex),
        webgpuHost: () => hostLoop(gm, prompts, ex),
        webgpuDevice: () =>
          generateOnDevice(lm, prompts, {
            maxNewTokens: NEW,
            exit: withExit ? { rule: { kind: 'maxProb', threshold: THRESHOLD } } : undefined,
          }),
      };
      // warm-up: sessions and pipelines built; outputs compared
      const o = await hostLoop(ort, prompts, ex);
      const g = await hostLoop(gm, prompts, ex);
      await runs.webgpuDevice();
      const same =
        JSON.stringify(o.tokens) === JSON.stringify(g.tokens) &&
        JSON.stringify(o.exitBlocks) === JSON.stringify(g.exitBlocks);
      if (!same) {
        failed = true;
        console.error(`WRONG: decoder batch ${batch} ${withExit ? 'exit' : 'full'}: ORT and WebGPU tokens differ`);
      }
      const names = Object.keys(runs);
      const ms: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
      for (let r = 0; r < rounds; r++)
        for (let k = 0; k < names.length; k++) {
          const name = names[(k + r) % names.length];
          const t = performance.now();
          await runs[name]();
          ms[name].push(performance.now() - t);
        }
      const tps = Object.fromEntries(names.map((n) => [n, +((batch * NEW) / (median(ms[n]) / 1000)).toFixed(1)]));
      const row: DecoderBenchRow = {
        batch,
        exit: withExit ? `CALM maxProb ≥ ${THRESHOLD}, propagation` : 'none (full depth)',
        tokensPerSec: tps,
        roundsMs: Object.fromEntries(names.map((n) => [n, ms[n].map((x) => +x.toFixed(1))])),
        ortVsBestWebgpu: +(tps.ort / Math.max(tps.webgpuHost, tps.webgpuDevice)).toFixed(2),
        depthFraction: +o.depthFraction.toFixed(3),
        sameAsWebgpuHost: same,
      };
      rows.push(row);
      console.log(
        `decoder batch ${batch}, exit ${row.exit}: tokens/s ORT ${tps.ort}, WebGPU host loop ${tps.webgpuHost}, WebGPU device loop ${tps.webgpuDevice} → ORT ${row.ortVsBestWebgpu}× the faster WebGPU; depth ${(row.depthFraction * 100).toFixed(1)}%`,
      );
    }
  }
  lm.dispose();
  await ort.dispose();
  return {
    model: `checkpoints/austen-decoder (${loaded.config.numLayers} blocks, width ${loaded.config.hiddenSize}, GQA ${loaded.config.numHeads}:${loaded.config.numKvHeads}, vocab ${loaded.config.vocabSize}), greedy`,
    newTokens: NEW,
    threshold: THRESHOLD,
    rows,
    failed,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rounds = Number(process.env.CPU_BENCH_ROUNDS ?? 3);
  const threads = process.env.CPU_BENCH_THREADS ? Number(process.env.CPU_BENCH_THREADS) : undefined;
  const loadBefore = loadavg();
  const ortCpu = await createOrtCpu({ threads });
  const gpu = await createGpuDevice();
  const r = await benchDecoderOrt(ortCpu, gpu, rounds);
  const list = cpus();
  const out = {
    benchmark: 'cpu-decoder',
    date: new Date().toISOString(),
    machine: { cpus: list.length, model: list[0]?.model, loadBefore, loadAfter: loadavg() },
    ort: ortCpu.describe(),
    webgpuAdapter: gpu.describe(),
    rounds,
    decoder: r,
  };
  const here = dirname(fileURLToPath(import.meta.url));
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, 'results', 'cpu-decoder.json'), `${JSON.stringify(out, null, 2)}\n`);
  console.log('wrote bench/results/cpu-decoder.json');
  gpu.destroy();
  if (r.failed) process.exit(1);
}
