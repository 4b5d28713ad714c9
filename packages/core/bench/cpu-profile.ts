// Where the segmenting overhead of the ONNX Runtime path goes, on the CPU benchmark's encoder at full depth
// (batch 32 × 128 tokens). Interleaved in each round, the order rotated: the whole model as one session; the
// six segment sessions chained directly (each segment's carried output fed to the next as the same ORT tensor,
// no host work); the same chain with every input copied into a fresh typed array first (what one host copy of
// the carried state per boundary costs); the OrtRunner at full depth (exit signals, policy, bookkeeping), with
// the time outside its session calls; and the chain on one row (per-call fixed cost plus 1/32 of the work).
// Prints medians and the median of per-round ratios. Not part of bench:cpu:
//   tsx --conditions=@offramp/source bench/cpu-profile.ts [rounds]
import { loadavg } from 'node:os';
import type { ModelInput } from '../src/engine/model.js';
import { neverExit } from '../src/engine/policy.js';
import type { EncoderClassifierConfig } from '../src/models/config.js';
import { buildModel, randomWeights } from '../src/models/index.js';
import { createOrtCpu, OrtCpuDevice, type OrtTensor } from '../src/ort/ort-cpu.js';
import { OrtRunner } from '../src/ort/ort-runner.js';
import { captureGraph, type HostWeights, translateWholeModel } from '../src/ort/translate.js';
import { mulberry32 } from '../src/util/random.js';

const ROUNDS = Number(process.argv[2] ?? 8);
const cfg: EncoderClassifierConfig = {
  architecture: 'encoder_classifier',
  vocab_size: 1000,
  max_position: 128,
  hidden_size: 256,
  num_layers: 6,
  num_heads: 4,
  intermediate_size: 1024,
  num_classes: 2,
  exits: { blocks: [0, 1, 2, 3, 4, 5], head: 'linear' },
};
const SEQ = 128;
const BATCH = Number(process.env.PROFILE_BATCH ?? 32);
const ortCpu = await createOrtCpu({
  threads: process.env.PROFILE_THREADS ? Number(process.env.PROFILE_THREADS) : undefined,
});
const dev = new OrtCpuDevice(ortCpu);
const model = buildModel(dev, cfg, randomWeights(cfg, 20240601));
const runner = new OrtRunner(ortCpu, dev, model);
const rand = mulberry32(7);
const input: ModelInput = {
  ids: Array.from({ length: BATCH }, () => Array.from({ length: SEQ }, () => Math.floor(rand() * cfg.vocab_size))),
};
const hw: HostWeights = new Map(
  [...model.weights].map(([k, t]) => [k, { shape: t.shape, data: t.handle as Float32Array }]),
);
const w = translateWholeModel(captureGraph(model, hw, SEQ));
const wholeS = await ortCpu.createSession(w.bytes);
const { segments } = await runner.sessions(SEQ);
const enc = model.encode(input, SEQ);
const mk = (name: string, elem: string, perRow: number, rows: number, copy = false): OrtTensor => {
  const d = enc.data[name];
  let data = elem === 'float32' ? (d as Float32Array) : Int32Array.from(d as ArrayLike<number>);
  data = data.subarray(0, rows * perRow) as typeof data;
  if (copy) data = data.slice();
  return new ortCpu.ort.Tensor(elem === 'float32' ? 'float32' : 'int32', data, [rows, perRow]);
};
const whole = async () => {
  const feeds: Record<string, OrtTensor> = {};
  for (const io of w.inputs) feeds[io.name] = mk(io.name, io.elem, io.perRow, BATCH);
  await wholeS.run(feeds);
};
const chain = async (rows: number, copy: boolean) => {
  const state = new Map<string, OrtTensor>();
  const per: number[] = [];
  for (const seg of segments) {
    const feeds: Record<string, OrtTensor> = {};
    for (const io of seg.tr.inputs) {
      const t = state.get(io.name);
      feeds[io.name] = t
        ? copy
          ? new ortCpu.ort.Tensor(io.elem === 'float32' ? 'float32' : 'int32', t.data.slice(), t.dims)
          : t
        : mk(io.name, io.elem, io.perRow, rows, copy);
    }
    const t0 = performance.now();
    const out = await seg.session.run(feeds);
    per.push(performance.now() - t0);
    for (const c of seg.tr.carried) state.set(c.name, out[c.output]);
  }
  return per;
};
// time inside the runner's session calls, to split its total into ORT time and host time
let inRuns = 0;
const hostMs: number[] = [];
const encodeMs: number[] = [];
for (const seg of segments) {
  const run = seg.session.run.bind(seg.session);
  (seg.session as { run: typeof run }).run = async (feeds, fetches) => {
    const t0 = performance.now();
    const out = await run(feeds, fetches);
    inRuns += performance.now() - t0;
    return out;
  };
}
const runnerRun = async () => {
  inRuns = 0;
  const t0 = performance.now();
  await runner.run(input, { policy: neverExit() });
  hostMs.push(performance.now() - t0 - inRuns);
  const t1 = performance.now();
  model.encode(input, SEQ);
  encodeMs.push(performance.now() - t1);
};
for (let i = 0; i < 2; i++) {
  await whole();
  await chain(BATCH, false);
  await runnerRun();
}
const fns: Record<string, () => Promise<unknown>> = {
  whole,
  chain: () => chain(BATCH, false),
  chainCopy: () => chain(BATCH, true),
  runner: runnerRun,
  chain1row: () => chain(1, false),
};
const ms: Record<string, number[]> = Object.fromEntries(Object.keys(fns).map((k) => [k, []]));
const perSeg: number[][] = [];
const names = Object.keys(fns);
console.log(
  `load ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}; batch ${BATCH}; ${ortCpu.describe()}`,
);
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < names.length; k++) {
    const n = names[(k + r) % names.length];
    const t = performance.now();
    const res = await fns[n]();
    ms[n].push(performance.now() - t);
    if (n === 'chain') perSeg.push(res as number[]);
  }
}
const med = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
for (const n of names)
  console.log(`${n}: median ${med(ms[n]).toFixed(1)} ms (${ms[n].map((x) => x.toFixed(0)).join(' ')})`);
for (const n of ['chain', 'chainCopy', 'runner']) {
  const ratios = ms.whole.map((x, i) => x / ms[n][i]);
  console.log(
    `whole/${n}: median ${med(ratios).toFixed(3)} range ${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)}`,
  );
}
console.log(`per segment (median ms): ${perSeg[0].map((_, s) => med(perSeg.map((p) => p[s])).toFixed(1)).join(' ')}`);
const chainOut = perSeg.map((p, i) => ms.chain[i] - p.reduce((a, b) => a + b, 0));
console.log(`chain: time outside session calls median ${med(chainOut).toFixed(1)} ms`);
console.log(
  `runner: host time outside session calls median ${med(hostMs).toFixed(1)} ms; model.encode ${med(encodeMs).toFixed(1)} ms`,
);
console.log(
  `load after ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`,
);
await runner.dispose();
