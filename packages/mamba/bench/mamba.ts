// Mamba benchmark on the GPU device: on the Austen character model, generation tokens/s at full depth and
// with token-level early exit (same prompts, same seeded sampling), prefill throughput and per-token time
// per block; on a mamba-130m-shaped random-weight model (d 768, vocab 50280), per-token decode time against
// its memory-bandwidth floor (weight bytes / bandwidth of a large buffer copy on the adapter).
// Writes bench/results/mamba.json and prints tables.
// Usage: pnpm bench:mamba [-- --layers 24 --runs 7 --new-tokens 32]
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGpuDevice } from '@offramp/core';
import { CharTokenizer, fetchDatasets, isDatasetCached, loadAusten } from '@offramp/train';
import type { MambaConfig } from '../src/config.js';
import { type ExitOptions, MambaLM } from '../src/model.js';
import { loadMambaDir } from '../src/node.js';
import { randomMambaWeights } from '../src/random-weights.js';
import { bandwidthFloor, formatTable, median, timeCases } from './stats.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.resolve(arg('dir', path.join(here, '../../../checkpoints/austen-mamba')));
// recorded relative to the repository (absolute only when outside it), so results do not name this machine's folders
const repoPath = (p: string): string => {
  const rel = path.relative(path.resolve(here, '../../..'), p);
  return rel.startsWith('..') || path.isAbsolute(rel) ? p : rel.split(path.sep).join('/');
};
const RUNS = Number(arg('runs', '7'));
const WARMUP = 1;
const NEW_TOKENS = Number(arg('new-tokens', '32'));
const BIG_LAYERS = Number(arg('layers', '24'));
const BATCH = 4;
const PROMPT = 64;
const PREFILL_T = 256;
for (const [k, v] of Object.entries({ runs: RUNS, 'new-tokens': NEW_TOKENS, layers: BIG_LAYERS }))
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer, got ${v}`);
if (BIG_LAYERS < 2)
  throw new Error(`--layers must be at least 2 (one early exit and the last block), got ${BIG_LAYERS}`);
const load0 = loadavg()[0];
const log = (s: string) => console.log(s);

const device = await createGpuDevice();
log(`adapter: ${device.describe()}`);

// --- Austen character model ---
const loaded = await loadMambaDir(dir);
const cfg = loaded.config;
const exits = cfg.exits ?? [3, 4, 5];
const model = new MambaLM(device, cfg, loaded.tensors, { exits });
const tok = CharTokenizer.load(path.join(dir, 'char-tokenizer.json'));
// the held-out novel: fetched into the data cache first when it is not there (as the CLI does)
if (!isDatasetCached('austen')) {
  console.error('bench:mamba: the Austen corpus is not in the data cache; fetching it');
  const r = await fetchDatasets({
    names: ['austen'],
    onProgress: (e) => e.type === 'fetched' && console.error(`  ${e.summary} (${e.seconds.toFixed(1)} s)`),
  });
  if (r.failed.length) throw new Error(`bench:mamba: fetching the Austen corpus failed: ${r.failed[0].message}`);
}
const held = tok.encode(loadAusten().heldOut.text);
const prompts = Array.from({ length: BATCH }, (_, b) => Array.from(held.subarray(b * 5000, b * 5000 + PROMPT)));
const sampling = { temperature: 0.8, topK: 40, seed: 1 };
// thresholds that keep ≥ 95% top-1 agreement on the held-out streams (bench/results/austen-sweep.json)
const exitCases: Record<string, ExitOptions | undefined> = {
  'full depth': undefined,
  'entropy ≤ 0.5 nats, freeze': { rule: { kind: 'entropy', threshold: 0.5 }, skip: 'freeze' },
  'max prob ≥ 0.35, partial': { rule: { kind: 'maxProb', threshold: 0.35 }, skip: 'partial' },
  'fixed exit after block 3, freeze': { rule: { kind: 'fixed', block: exits[0] }, skip: 'freeze' },
};
const genDepth: Record<string, number> = {};
const genCases: Record<string, () => Promise<void>> = {};
for (const [name, exit] of Object.entries(exitCases)) {
  genCases[name] = async () => {
    const r = await model.generate(prompts, { maxNewTokens: NEW_TOKENS, sampling, exit });
    genDepth[name] = r.depthFraction;
  };
}
genCases.prefill = async () => {
  (await model.prefill(prompts)).cache.dispose();
};
log(`generation: ${BATCH} prompts of ${PROMPT} characters, ${NEW_TOKENS} new tokens each, seeded sampling`);
const genMs = await timeCases(genCases, { warmup: WARMUP, runs: RUNS });
const prefillPromptMs = median(genMs.prefill);
const generation = Object.keys(exitCases).map((name) => {
  const ms = median(genMs[name]);
  const decodeMs = ms - prefillPromptMs;
  return {
    case: name,
    ms_per_generate: ms,
    tokens_per_s: (BATCH * NEW_TOKENS) / (ms / 1e3),
    decode_tokens_per_s: (BATCH * (NEW_TOKENS - 1)) / (decodeMs / 1e3),
    depth_fraction: genDepth[name],
    samples_ms: genMs[name],
  };
});

// prefill throughput: BATCH sequences of PREFILL_T characters
const long = Array.from({ length: BATCH }, (_, b) => Array.from(held.subarray(b * 7000, b * 7000 + PREFILL_T)));
const preMs = await timeCases(
  {
    prefill: async () => {
      (await model.prefill(long)).cache.dispose();
    },
  },
  { warmup: WARMUP, runs: RUNS },
);
const prefill = {
  batch: BATCH,
  length: PREFILL_T,
  ms: median(preMs.prefill),
  tokens_per_s: (BATCH * PREFILL_T) / (median(preMs.prefill) / 1e3),
  samples_ms: preMs.prefill,
};

/** Per-token step time of batch 1 at full depth and with a fixed exit after block `early`; per block = difference / blocks skipped. */
async function perToken(m: MambaLM, L: number, early: number, prompt: number[]) {
  const { cache } = await m.prefill([prompt]);
  try {
    let t = prompt[prompt.length - 1];
    const ms = await timeCases(
      {
        full: async () => {
          await m.step([t], cache);
          t = (t + 1) % m.V;
        },
        early: async () => {
          await m.step([t], cache, { rule: { kind: 'fixed', block: early } });
          t = (t + 1) % m.V;
        },
      },
      { warmup: 2, runs: RUNS },
    );
    const full = median(ms.full);
    const part = median(ms.early);
    return {
      batch: 1,
      full_ms: full,
      early_exit_block: early,
      early_ms: part,
      per_block_ms: (full - part) / (L - 1 - early),
      full_samples_ms: ms.full,
      early_samples_ms: ms.early,
    };
  } finally {
    cache.dispose();
  }
}
const austenStep = await perToken(model, cfg.numLayers, exits[0], prompts[0]);
model.dispose();

// --- mamba-130m-shaped random-weight model ---
const big: MambaConfig = {
  vocabSize: 50280,
  hiddenSize: 768,
  numLayers: BIG_LAYERS,
  stateSize: 16,
  expand: 2,
  intermediateSize: 1536,
  convKernel: 4,
  timeStepRank: 48,
  layerNormEpsilon: 1e-5,
  useBias: false,
  useConvBias: true,
  tieWordEmbeddings: true,
};
log(`mamba-130m-shaped model: ${BIG_LAYERS} layers, random weights`);
const bigWeights = randomMambaWeights(big, { seed: 7 });
let blockBytes = 0;
let embBytes = 0;
for (const [name, t] of bigWeights) {
  const bytes = t.data.length * 4;
  if (name.includes('embedding')) embBytes += bytes;
  else blockBytes += bytes;
}
const bigEarly = Math.floor((BIG_LAYERS - 1) / 2);
const bigModel = MambaLM.fromHF(device, big, bigWeights, { exits: [bigEarly, BIG_LAYERS - 1] });
bigWeights.clear();
const bigStep = await perToken(
  bigModel,
  BIG_LAYERS,
  bigEarly,
  Array.from({ length: 8 }, (_, i) => i + 1),
);
bigModel.dispose();
// a decode step reads every block weight and the tied embedding once (as the LM head; the gather reads one row)
const stepBytes = blockBytes + embBytes;

// copy bandwidth: one large copyBufferToBuffer, timed to completion
const copyBytes = Math.min(128 * 2 ** 20, device.gpu.limits.maxBufferSize);
const src = device.gpu.createBuffer({ size: copyBytes, usage: 0x04 | 0x08 | 0x80 });
const dst = device.gpu.createBuffer({ size: copyBytes, usage: 0x04 | 0x08 | 0x80 });
const copy = async () => {
  const enc = device.gpu.createCommandEncoder();
  enc.copyBufferToBuffer(src, 0, dst, 0, copyBytes);
  device.gpu.queue.submit([enc.finish()]);
  await device.gpu.queue.onSubmittedWorkDone();
};
// and a copy kernel (vec4 per thread, 256 threads per workgroup), which lavapipe spreads over its threads
const kernelCopy = device.gpu.createComputePipeline({
  layout: 'auto',
  compute: {
    module: device.gpu.createShaderModule({
      code: `@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> b: array<vec4<f32>>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let i = g.x + g.y * n.x * 256u;
  if (i < arrayLength(&a)) { b[i] = a[i]; }
}`,
    }),
    entryPoint: 'main',
  },
});
const kBytes = Math.min(copyBytes, device.gpu.limits.maxStorageBufferBindingSize);
const bind = device.gpu.createBindGroup({
  layout: kernelCopy.getBindGroupLayout(0),
  entries: [
    { binding: 0, resource: { buffer: src, size: kBytes } },
    { binding: 1, resource: { buffer: dst, size: kBytes } },
  ],
});
const groups = Math.ceil(kBytes / 16 / 256);
const gx = Math.min(groups, 32768);
const copyKernel = async () => {
  const enc = device.gpu.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(kernelCopy);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(gx, Math.ceil(groups / gx));
  pass.end();
  device.gpu.queue.submit([enc.finish()]);
  await device.gpu.queue.onSubmittedWorkDone();
};
const copyMs = await timeCases({ copy, copyKernel }, { warmup: 2, runs: RUNS });
src.destroy();
dst.destroy();
const floorBuffer = bandwidthFloor(stepBytes, copyBytes, median(copyMs.copy));
const floorKernel = bandwidthFloor(stepBytes, kBytes, median(copyMs.copyKernel));
// the faster copy is the better measure of the bandwidth a kernel can reach (and gives the lower floor)
const floor = floorKernel.gbPerS > floorBuffer.gbPerS ? floorKernel : floorBuffer;
const fullLayersScale = 24 / BIG_LAYERS;
const mamba130m = {
  layers: BIG_LAYERS,
  hidden: 768,
  vocab: 50280,
  weight_bytes_per_step: stepBytes,
  block_weight_bytes: blockBytes,
  embedding_bytes: embBytes,
  step_ms: bigStep.full_ms,
  per_block_ms: bigStep.per_block_ms,
  copy_buffer_to_buffer: {
    bytes: copyBytes,
    ms: median(copyMs.copy),
    gb_per_s: floorBuffer.gbPerS,
    samples_ms: copyMs.copy,
  },
  copy_kernel: {
    bytes: kBytes,
    ms: median(copyMs.copyKernel),
    gb_per_s: floorKernel.gbPerS,
    samples_ms: copyMs.copyKernel,
  },
  bandwidth_gb_per_s: floor.gbPerS,
  floor_ms: floor.floorMs,
  ratio_to_floor: bigStep.full_ms / floor.floorMs,
  // estimate for 24 layers when fewer were run: the step time plus the missing blocks at the measured per-block time
  estimated_24_layer_step_ms:
    BIG_LAYERS === 24 ? bigStep.full_ms : bigStep.full_ms + (24 - BIG_LAYERS) * bigStep.per_block_ms,
  estimated_24_layer_floor_ms:
    BIG_LAYERS === 24 ? floor.floorMs : ((blockBytes * fullLayersScale + embBytes) / (floor.gbPerS * 1e9)) * 1e3,
  step: bigStep,
};

const out = {
  date: new Date().toISOString(),
  machine: {
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    memory_gb: +(totalmem() / 2 ** 30).toFixed(1),
    load_average_1m_start: load0,
    load_average_1m_end: loadavg()[0],
  },
  adapter: device.describe(),
  method: `median of ${RUNS} timed runs after warm-up; cases interleaved with the order rotated each round; wall time from the call until results are on the host`,
  austen: {
    model: repoPath(dir),
    sampling,
    prompts: { batch: BATCH, length: PROMPT, new_tokens: NEW_TOKENS },
    generation,
    prefill_prompt_ms: prefillPromptMs,
    prefill,
    per_token: austenStep,
  },
  mamba130m,
};
const file = path.join(here, 'results/mamba.json');
writeFileSync(file, `${JSON.stringify(out, null, 1)}\n`);
const f = (x: number, d = 1) => x.toFixed(d);
log(`\nAusten character model (${cfg.numLayers} blocks, d ${cfg.hiddenSize}) on ${device.describe()}`);
log(
  formatTable(
    ['generation case', 'ms / generate', 'tokens/s', 'decode tokens/s', 'depth'],
    generation.map((g) => [
      g.case,
      f(g.ms_per_generate),
      f(g.tokens_per_s),
      f(g.decode_tokens_per_s),
      f(g.depth_fraction, 3),
    ]),
  ),
);
log(
  `prefill ${BATCH}×${PREFILL_T}: ${f(prefill.ms)} ms, ${f(prefill.tokens_per_s, 0)} tokens/s; per token (batch 1): ${f(austenStep.full_ms, 2)} ms full, ${f(austenStep.per_block_ms, 3)} ms per block`,
);
log(`\nmamba-130m-shaped random model (${BIG_LAYERS} layers)`);
log(
  formatTable(
    [
      'step ms',
      'per block ms',
      'weight MB',
      'copy GB/s',
      'floor ms',
      'step / floor',
      '24-layer est. ms',
      '24-layer floor ms',
    ],
    [
      [
        f(mamba130m.step_ms),
        f(mamba130m.per_block_ms, 2),
        f(stepBytes / 1e6, 0),
        f(floor.gbPerS, 2),
        f(floor.floorMs, 1),
        f(mamba130m.ratio_to_floor, 1),
        f(mamba130m.estimated_24_layer_step_ms),
        f(mamba130m.estimated_24_layer_floor_ms, 1),
      ],
    ],
  ),
);
log(`\nwrote ${file}`);
device.destroy();
