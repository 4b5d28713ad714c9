// CPU benchmark: the ONNX Runtime CPU path against one whole-model onnxruntime session (the best a user without
// early exit gets on this CPU) and against Offramp's WebGPU path on the machine's adapter.
//   1. The engine benchmark's encoder (6 blocks, width 256, 4 heads, MLP 1024, batch 32 × 128 tokens, seeded
//      random weights) at full depth: Offramp-on-ORT (6 segments, every exit head run and checked), the whole
//      model as one ORT session, Offramp WebGPU in device mode. Outputs compared. Medians of ROUNDS rounds with
//      the order rotated each round.
//   2. The shipped checkpoints (imdb-encoder, fashion-cnn) on held-out data under the confidence policy at the
//      thresholds docs/results.md chooses, at batch 1 and 64: Offramp-on-ORT with exits against the whole model in
//      one ORT session at full depth. Times on the first CPU_BENCH_N (batch 64) / CPU_BENCH_N1 (batch 1) held-out
//      inputs, medians over rounds, order rotated; accuracy of both on the whole held-out split (batches of 64).
//   3. The decoder (checkpoints/austen-decoder) generating on ORT vs on WebGPU, full depth and with a CALM exit,
//      batch 1 and 8 (bench/cpu-decoder.ts).
// Writes bench/results/cpu.json. Exits non-zero only when an output is wrong.
//
// `--only full-depth [--rounds N]` (N default 30): only the encoder at full depth, Offramp-on-ORT against the
// whole-model session, interleaved in one process (one of each per round, the order alternating), without the
// WebGPU path; reports the median of the per-round speed ratios and their range, and writes
// bench/results/cpu-full-depth.json. On a shared machine the per-round ratio cancels most of the load drift
// that separate medians do not.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EarlyExitModel, ModelInput } from '../src/engine/model.js';
import { type ExitPolicy, maxProbThreshold, neverExit } from '../src/engine/policy.js';
import { Runner } from '../src/engine/runner.js';
import type { EncoderClassifierConfig } from '../src/models/config.js';
import { buildModel, type HostTensor, randomWeights } from '../src/models/index.js';
import { createOrtCpu, type OrtCpu, OrtCpuDevice, type OrtSession } from '../src/ort/ort-cpu.js';
import { captureGraph, type HostWeights, translateWholeModel } from '../src/ort/translate.js';
import { createGpuDevice } from '../src/runtime/create-device.js';
import { CHECKPOINTS, fashionTest, type HeldOut, imdbHeldOut } from '../src/testing-internal/checkpoint-data.js';
import { mulberry32 } from '../src/util/random.js';
import { loadModelDir } from '../src/weights/model-dir.js';
import { benchDecoderOrt } from './cpu-decoder.js';

const argv = process.argv.slice(2);
const argOf = (flag: string): string | undefined => {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
};
const ONLY = argOf('--only');
if (ONLY !== undefined && ONLY !== 'full-depth')
  throw new Error(`--only '${ONLY}' is not a section of this benchmark: the one allowed value is 'full-depth'`);
const roundsArg = argOf('--rounds');
if (roundsArg !== undefined && !(Number.isInteger(Number(roundsArg)) && Number(roundsArg) >= 1))
  throw new Error(`--rounds must be a positive integer, got '${roundsArg}'`);
const ROUNDS = Number(roundsArg ?? process.env.CPU_BENCH_ROUNDS ?? (ONLY ? 30 : 3));
const THREADS = process.env.CPU_BENCH_THREADS ? Number(process.env.CPU_BENCH_THREADS) : undefined;
const N_CHECKPOINT = Number(process.env.CPU_BENCH_N ?? 512);
/** Inputs scored for accuracy (the whole held-out split by default: 10,000 for both checkpoints). */
const N_ACCURACY = Number(process.env.CPU_BENCH_ACCURACY_N ?? 10_000);
const N_BATCH1 = Number(process.env.CPU_BENCH_N1 ?? 128);
const LOGIT_TOLERANCE = 1e-3;
const SEED = 20240601;
const BATCH = 32;
const SEQ = 128;

const cfg: EncoderClassifierConfig = {
  architecture: 'encoder_classifier',
  vocab_size: 1000,
  max_position: SEQ,
  hidden_size: 256,
  num_layers: 6,
  num_heads: 4,
  intermediate_size: 1024,
  num_classes: 2,
  exits: { blocks: [0, 1, 2, 3, 4, 5], head: 'linear' },
};

let failed = false;
function check(ok: boolean, msg: string): void {
  if (!ok) {
    failed = true;
    console.error(`WRONG: ${msg}`);
  }
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
const hostWeights = (m: EarlyExitModel): HostWeights =>
  new Map([...m.weights].map(([k, t]) => [k, { shape: t.shape, data: t.handle as Float32Array }]));

/** The whole model at full depth as one ORT session per sequence bucket (what a user without exits runs). */
class WholeModel {
  private sessions = new Map<
    number,
    Promise<{ s: OrtSession; inputs: { name: string; elem: string; perRow: number }[]; logits: string }>
  >();
  nodes = 0;
  constructor(
    readonly ort: OrtCpu,
    readonly model: EarlyExitModel,
  ) {}
  private session(T: number) {
    let p = this.sessions.get(T);
    if (!p) {
      p = (async () => {
        const w = translateWholeModel(captureGraph(this.model, hostWeights(this.model), T));
        return { s: await this.ort.createSession(w.bytes), inputs: w.inputs, logits: w.logits };
      })();
      this.sessions.set(T, p);
    }
    return p;
  }
  /** Logits (rows × C) of a batch. */
  async logits(input: ModelInput): Promise<Float32Array> {
    const T = this.model.bucket(input);
    const enc = this.model.encode(input, T);
    const { s, inputs, logits } = await this.session(T);
    const feeds: Record<string, any> = {};
    for (const io of inputs) {
      const d = enc.data[io.name];
      const data = io.elem === 'float32' ? (d as Float32Array) : Int32Array.from(d as ArrayLike<number>);
      feeds[io.name] = new this.ort.ort.Tensor(io.elem === 'float32' ? 'float32' : 'int32', data, [
        enc.rows,
        io.perRow,
      ]);
    }
    return (await s.run(feeds))[logits].data as Float32Array;
  }
}

/** Runs `fns` ROUNDS times with the order rotated each round; returns each one's median ms. */
async function rotated(
  fns: Record<string, () => Promise<unknown>>,
): Promise<Record<string, { medianMs: number; ms: number[] }>> {
  const names = Object.keys(fns);
  const ms: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + r) % names.length];
      const t = performance.now();
      await fns[name]();
      ms[name].push(performance.now() - t);
    }
  }
  return Object.fromEntries(names.map((n) => [n, { medianMs: median(ms[n]), ms: ms[n].map((x) => +x.toFixed(2)) }]));
}

function sliceInput(input: ModelInput, rows: number, a: number, b: number): ModelInput {
  if ('ids' in input) return { ids: input.ids.slice(a, b) };
  const f = input.features as Float32Array;
  const w = f.length / rows;
  return { features: f.slice(a * w, b * w) };
}

const cpuList = cpus();
const loadBefore = loadavg();
const ortCpu = await createOrtCpu({ threads: THREADS });
const ortDev = new OrtCpuDevice(ortCpu);
console.log(
  `cpu benchmark: ${cpuList.length} × ${cpuList[0]?.model ?? 'unknown CPU'}, load ${loadBefore.map((x) => x.toFixed(1)).join(' ')}; ${ortCpu.describe()}; ${ROUNDS} timed rounds after ${ONLY ? 'three warm-ups, order alternating' : 'a warm-up, order rotated'}`,
);

// ------------------------------------------------------------------ 1. the engine encoder at full depth
const weights = randomWeights(cfg, SEED);
const om = buildModel(ortDev, cfg, weights);
const ortRunner = new Runner(ortDev, om, { maxBatch: BATCH });
const whole = new WholeModel(ortCpu, om);
if (ONLY === 'full-depth') {
  await fullDepthOnly();
  process.exit(failed ? 1 : 0);
}
const gpu = await createGpuDevice();
const gm = buildModel(gpu, cfg, weights);
const gpuRunner = new Runner(gpu, gm, { maxBatch: BATCH });
const rand = mulberry32(SEED + 1);
const seqs = Array.from({ length: BATCH }, () =>
  Array.from({ length: SEQ }, () => Math.floor(rand() * cfg.vocab_size)),
);
const encInput: ModelInput = { ids: seqs };
const flops = ortRunner.ort ? (await ortRunner.ort.costs(SEQ)).full * BATCH : 0;
// correctness and warm-up
const offOrt = await ortRunner.run(encInput, { policy: neverExit() });
const offGpu = await gpuRunner.run(encInput, { policy: neverExit(), mode: 'device' });
const wholeLogits = await whole.logits(encInput);
const flat = (r: typeof offOrt) => Float32Array.from(r.samples.flatMap((s) => Array.from(s.logits)));
const dWhole = maxAbsDiff(flat(offOrt), wholeLogits);
const dGpu = maxAbsDiff(flat(offOrt), flat(offGpu));
check(dWhole <= LOGIT_TOLERANCE, `Offramp-on-ORT and whole-model ORT logits differ by ${dWhole}`);
check(dGpu <= LOGIT_TOLERANCE, `Offramp-on-ORT and Offramp WebGPU logits differ by ${dGpu}`);
console.log(
  `encoder: logits agree: ORT segments vs whole model ${dWhole.toExponential(2)}, vs WebGPU ${dGpu.toExponential(2)}`,
);
// a second warm-up of the ORT paths (the first timed runs after one warm-up were several times slower)
await ortRunner.run(encInput, { policy: neverExit() });
await whole.logits(encInput);
const enc = await rotated({
  offrampOrt: () => ortRunner.run(encInput, { policy: neverExit() }),
  wholeOrt: () => whole.logits(encInput),
  offrampWebgpu: () => gpuRunner.run(encInput, { policy: neverExit(), mode: 'device' }),
});
const gflops = (ms: number) => flops / ms / 1e6;
const encoderResult = {
  model: '6×256 encoder, 4 heads, MLP 1024, batch 32 × 128 tokens, full depth (6 exit heads run on the ORT path)',
  gflopPerBatch: +(flops / 1e9).toFixed(2),
  logitMaxAbsDiff: { wholeOrt: dWhole, webgpu: dGpu },
  runs: Object.fromEntries(Object.entries(enc).map(([k, v]) => [k, { ...v, gflops: +gflops(v.medianMs).toFixed(1) }])),
  offrampOrtSpeedVsWholeOrt: +(enc.wholeOrt.medianMs / enc.offrampOrt.medianMs).toFixed(3),
  /** whole-model ms / Offramp-on-ORT ms within each round (the two run next to each other). */
  offrampOrtSpeedVsWholeOrtPerRound: (() => {
    const r = enc.wholeOrt.ms.map((w, i) => w / enc.offrampOrt.ms[i]);
    return { median: +median(r).toFixed(3), min: +Math.min(...r).toFixed(3), max: +Math.max(...r).toFixed(3) };
  })(),
  offrampOrtSpeedVsWebgpu: +(enc.offrampWebgpu.medianMs / enc.offrampOrt.medianMs).toFixed(2),
  target: 'Offramp-on-ORT ≥ 0.85× the whole-model session',
};
console.table(
  Object.entries(enc).map(([k, v]) => ({
    runtime: k,
    'ms per batch': v.medianMs.toFixed(1),
    'GFLOP/s': gflops(v.medianMs).toFixed(1),
  })),
);
console.log(
  `Offramp-on-ORT speed vs whole-model ORT: ${encoderResult.offrampOrtSpeedVsWholeOrt}× (target ≥ 0.85); vs Offramp WebGPU: ${encoderResult.offrampOrtSpeedVsWebgpu}×`,
);
ortRunner.dispose();
gpuRunner.dispose();
gm.dispose();

// ------------------------------------------------------------------ 2. checkpoints with exits
const checkpointResults: unknown[] = [];
for (const ck of [
  { name: 'imdb-encoder', threshold: 0.6289, data: (n: number) => imdbHeldOut('imdb-encoder', n) },
  { name: 'fashion-cnn', threshold: 0.2411, data: (n: number) => fashionTest(n) },
]) {
  const held = (await ck.data(Math.max(N_CHECKPOINT, N_ACCURACY))) as HeldOut | string;
  if (typeof held === 'string') {
    console.warn(`skipping ${ck.name}: ${held}`);
    checkpointResults.push({ name: ck.name, skipped: held });
    continue;
  }
  const loaded = await loadModelDir(`${CHECKPOINTS}/${ck.name}`);
  const model = buildModel(ortDev, loaded.config.model, loaded.tensors as unknown as Map<string, HostTensor>);
  const runner = new Runner(ortDev, model, { maxBatch: 64 });
  const wm = new WholeModel(ortCpu, model);
  const policy: ExitPolicy<any> = maxProbThreshold({ threshold: ck.threshold });
  let accuracy: { offrampOrtExits: number; wholeOrtFull: number; inputs: number } | null = null;
  for (const batch of [64, 64, 1]) {
    const scoring: boolean = accuracy === null; // the first pass scores the whole split
    const n: number = scoring ? held.n : batch === 1 ? Math.min(N_BATCH1, held.n) : Math.min(N_CHECKPOINT, held.n);
    const chunks: ModelInput[] = [];
    for (let a = 0; a < n; a += batch) chunks.push(sliceInput(held.input, held.n, a, Math.min(n, a + batch)));
    const exitsRun = async () => {
      const preds: number[] = [];
      const counts: number[] = [];
      let flopsUsed = 0;
      let flopsFull = 0;
      for (const c of chunks) {
        const r = await runner.run(c, { policy });
        for (const s of r.samples) preds.push(s.prediction);
        r.summary.exitCounts.forEach((x, i) => {
          counts[i] = (counts[i] ?? 0) + x;
        });
        flopsUsed += r.summary.flops;
        flopsFull += r.summary.fullDepthFlops;
      }
      return { preds, counts, flopsFraction: flopsUsed / flopsFull };
    };
    const wholeRun = async () => {
      const preds: number[] = [];
      const C = loaded.config.model.num_classes;
      for (const c of chunks) {
        const z = await wm.logits(c);
        for (let i = 0; i < z.length / C; i++) {
          let m = 0;
          for (let d = 1; d < C; d++) if (z[i * C + d] > z[i * C + m]) m = d;
          preds.push(m);
        }
      }
      return { preds };
    };
    const ex = await exitsRun(); // warm-up (and, on the first pass, accuracy)
    const wh = await wholeRun();
    if (!scoring) {
      await exitsRun();
      await wholeRun();
    }
    const acc = (p: number[]) => p.filter((v, i) => v === held.labels[i]).length / p.length;
    if (scoring) {
      accuracy = { offrampOrtExits: acc(ex.preds), wholeOrtFull: acc(wh.preds), inputs: n };
      console.log(
        `${ck.name}: accuracy on ${n} held-out inputs ${(accuracy.offrampOrtExits * 100).toFixed(2)}% with exits (${ex.counts.join('/')}, FLOPs ${(ex.flopsFraction * 100).toFixed(1)}% of full) vs ${(accuracy.wholeOrtFull * 100).toFixed(2)}% at full depth`,
      );
      continue;
    }
    const acc2 = accuracy!;
    const t = await rotated({ offrampOrtExits: exitsRun, wholeOrtFull: wholeRun });
    const row = {
      name: ck.name,
      policy: `confidence threshold=${ck.threshold}`,
      batch,
      inputs: n,
      msPerInput: {
        offrampOrtExits: +(t.offrampOrtExits.medianMs / n).toFixed(4),
        wholeOrtFull: +(t.wholeOrtFull.medianMs / n).toFixed(4),
      },
      roundsMs: { offrampOrtExits: t.offrampOrtExits.ms, wholeOrtFull: t.wholeOrtFull.ms },
      speedup: +(t.wholeOrtFull.medianMs / t.offrampOrtExits.medianMs).toFixed(2),
      accuracy: acc2,
      accuracyDropPoints: +((acc2.wholeOrtFull - acc2.offrampOrtExits) * 100).toFixed(2),
      exitCounts: ex.counts,
      flopsFraction: +ex.flopsFraction.toFixed(4),
      target: '≥ 1.5× at ≤ 1 point accuracy drop',
    };
    checkpointResults.push(row);
    console.log(
      `${ck.name} batch ${batch} (${n} held-out inputs): exits ${ex.counts.join('/')}, FLOPs ${(ex.flopsFraction * 100).toFixed(1)}% of full; ${row.msPerInput.offrampOrtExits} ms/input with exits vs ${row.msPerInput.wholeOrtFull} whole model → ${row.speedup}×; accuracy (${acc2.inputs} inputs) drop ${row.accuracyDropPoints} points`,
    );
  }
  runner.dispose();
}

// ------------------------------------------------------------------ 3. decoder generation
const decoderResult = await benchDecoderOrt(ortCpu, gpu, ROUNDS);
if (decoderResult.failed) failed = true;

const out = {
  benchmark: 'cpu',
  date: new Date().toISOString(),
  machine: { cpus: cpuList.length, model: cpuList[0]?.model, loadBefore, loadAfter: loadavg() },
  ort: ortCpu.describe(),
  webgpuAdapter: gpu.describe(),
  rounds: ROUNDS,
  encoder: encoderResult,
  checkpoints: checkpointResults,
  decoder: decoderResult,
};
const here = dirname(fileURLToPath(import.meta.url));
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'cpu.json'), `${JSON.stringify(out, null, 2)}\n`);
console.log(
  `wrote bench/results/cpu.json (load after: ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')})`,
);
gpu.destroy();
if (failed) process.exit(1);

/** `--only full-depth`: Offramp-on-ORT vs the whole-model session, interleaved, ROUNDS rounds. */
async function fullDepthOnly(): Promise<void> {
  const rand = mulberry32(SEED + 1);
  const input: ModelInput = {
    ids: Array.from({ length: BATCH }, () => Array.from({ length: SEQ }, () => Math.floor(rand() * cfg.vocab_size))),
  };
  const flat = (r: { samples: { logits: Float32Array }[] }) =>
    Float32Array.from(r.samples.flatMap((x) => Array.from(x.logits)));
  const first = await ortRunner.run(input, { policy: neverExit() });
  const d = maxAbsDiff(flat(first), await whole.logits(input));
  check(d <= LOGIT_TOLERANCE, `Offramp-on-ORT and whole-model ORT logits differ by ${d}`);
  for (let i = 0; i < 2; i++) {
    await ortRunner.run(input, { policy: neverExit() });
    await whole.logits(input);
  }
  const ms = { offrampOrt: [] as number[], wholeOrt: [] as number[] };
  const loads: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? (['wholeOrt', 'offrampOrt'] as const) : (['offrampOrt', 'wholeOrt'] as const);
    for (const name of order) {
      const t = performance.now();
      if (name === 'offrampOrt') await ortRunner.run(input, { policy: neverExit() });
      else await whole.logits(input);
      ms[name].push(performance.now() - t);
    }
    loads.push(loadavg()[0]);
  }
  const ratios = ms.wholeOrt.map((w, i) => w / ms.offrampOrt[i]);
  const q = (xs: number[], f: number) =>
    [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(f * xs.length))];
  const result = {
    benchmark: 'cpu --only full-depth',
    date: new Date().toISOString(),
    machine: { cpus: cpuList.length, model: cpuList[0]?.model, loadBefore, loadAfter: loadavg() },
    load1mDuringRounds: { min: Math.min(...loads), median: median(loads), max: Math.max(...loads) },
    ort: ortCpu.describe(),
    model: '6×256 encoder, 4 heads, MLP 1024, batch 32 × 128 tokens, full depth (6 exit heads run on the ORT path)',
    rounds: ROUNDS,
    logitMaxAbsDiff: d,
    medianMs: { offrampOrt: +median(ms.offrampOrt).toFixed(1), wholeOrt: +median(ms.wholeOrt).toFixed(1) },
    roundsMs: {
      offrampOrt: ms.offrampOrt.map((x) => +x.toFixed(1)),
      wholeOrt: ms.wholeOrt.map((x) => +x.toFixed(1)),
    },
    /** whole-model ms / Offramp-on-ORT ms, per round: > 1 means the segmented path was faster. */
    speedRatioPerRound: ratios.map((x) => +x.toFixed(3)),
    speedRatio: {
      median: +median(ratios).toFixed(3),
      min: +Math.min(...ratios).toFixed(3),
      max: +Math.max(...ratios).toFixed(3),
      p25: +q(ratios, 0.25).toFixed(3),
      p75: +q(ratios, 0.75).toFixed(3),
    },
    ratioOfMedians: +(median(ms.wholeOrt) / median(ms.offrampOrt)).toFixed(3),
    target: 'Offramp-on-ORT ≥ 0.85× the whole-model session',
  };
  console.log(
    `full depth, ${ROUNDS} interleaved rounds (load ${result.load1mDuringRounds.min.toFixed(1)}–${result.load1mDuringRounds.max.toFixed(1)}): Offramp-on-ORT ${result.medianMs.offrampOrt} ms, whole model ${result.medianMs.wholeOrt} ms (medians); speed ratio per round median ${result.speedRatio.median}× (range ${result.speedRatio.min}–${result.speedRatio.max}, middle half ${result.speedRatio.p25}–${result.speedRatio.p75}); target ≥ 0.85`,
  );
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'cpu-full-depth.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log('wrote bench/results/cpu-full-depth.json');
}
