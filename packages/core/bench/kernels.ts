// Kernel benchmark: Offramp's matmul, softmax and layerNorm against TensorFlow.js's WebGPU backend, in one
// process on the same Dawn adapter, outputs checked against each other and the TypeScript references.
// Usage: tsx bench/kernels.ts [--runs 9] [--warmup 3] [--min-sample-ms 50] [--only matmul] [--out file]
import './dawn-globals.js'; // first: navigator.gpu and Dawn's globals, before tfjs-backend-webgpu loads
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { layerNorm, matmul, softmax } from '../src/kernels/index.js';
import { selectMatmulSpec } from '../src/kernels/matmul.js';
import { TOLERANCES } from '../src/runtime/conformance.js';
import { createGpuDevice } from '../src/runtime/create-device.js';
import type { GpuDevice } from '../src/runtime/gpu-device.js';
import type { Tensor } from '../src/runtime/tensor.js';
import { mulberry32, randomArray } from '../src/util/random.js';
import { compare, fixed, formatTable, machineInfo, median, type Side, timePair } from './harness.js';
import { startTfjsWebgpu, tf, tfjsSync } from './tfjs-webgpu.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '9' },
    warmup: { type: 'string', default: '3' },
    'min-sample-ms': { type: 'string', default: '50' },
    only: { type: 'string' },
    out: { type: 'string', default: resolve(HERE, 'results/kernels.json') },
  },
});
const runs = Number(args.runs);
const warmup = Number(args.warmup);
const minSampleMs = Number(args['min-sample-ms']);
for (const [name, v, min] of [
  ['--runs', runs, 7],
  ['--warmup', warmup, 1],
  ['--min-sample-ms', minSampleMs, 0],
] as const) {
  if (!Number.isInteger(v) || v < min) {
    console.error(`kernels benchmark: ${name} must be an integer >= ${min}, got '${v}'`);
    process.exit(2);
  }
}

/** What one case prepares: both sides, a correctness check, and cleanup. */
interface Prepared {
  offramp: Side;
  tfjs: Side;
  /** Runs each side once and compares outputs; returns failure messages (empty when correct). */
  check: () => Promise<{ failures: string[]; maxAbsErr: Record<string, number> }>;
  spec?: Record<string, unknown>;
  dispose: () => void;
}
interface Case {
  name: string;
  kind: 'matmul' | 'softmax' | 'layerNorm';
  /** Floating-point operations of one op (matmul 2MNK; softmax 5 per element; layerNorm 8 per element). */
  flops: number;
  /** Bytes an op must at least read and write once (f32). */
  bytes: number;
  prepare: (device: GpuDevice) => Prepared;
}

/** tfjs side: keeps each op's output until the sync, then disposes it. */
function tfjsSide(op: () => tf.Tensor): Side {
  const pending: tf.Tensor[] = [];
  return {
    record: () => {
      pending.push(op());
    },
    sync: async () => {
      await tfjsSync();
      for (const t of pending.splice(0)) t.dispose();
    },
  };
}

function offrampSide(device: GpuDevice, record: () => void): Side {
  return { record, sync: () => device.sync() };
}

/** Evenly spread row indices (first and last included) for the partial matmul reference. */
function sampleRows(rows: number, count: number): number[] {
  const out = new Set<number>();
  for (let i = 0; i < count; i++) out.add(Math.round((i * (rows - 1)) / Math.max(1, count - 1)));
  return [...out];
}

function matmulCase(M: number, K: number, N: number, label: string): Case {
  return {
    name: `matmul ${label}`,
    kind: 'matmul',
    flops: 2 * M * N * K,
    bytes: 4 * (M * K + K * N + M * N),
    prepare: (device) => {
      const rand = mulberry32(M * 7 + K * 13 + N);
      const A = randomArray(M * K, rand);
      const B = randomArray(K * N, rand);
      const spec = selectMatmulSpec(device, M, N, K, false, false);
      const params = { M, N, K, batch: 1, strideA: 0, strideB: 0, strideC: 0 };
      const t: Record<string, Tensor> = {
        a: device.tensor('f32', [M, K], A, 'A'),
        b: device.tensor('f32', [K, N], B, 'B'),
        bias: device.tensor('f32', [N], undefined, 'bias (unused)'),
        c: device.tensor('f32', [M, N], undefined, 'C'),
      };
      const xa = tf.tensor2d(A, [M, K]);
      const xb = tf.tensor2d(B, [K, N]);
      const dispatch = () => device.dispatch(matmul, t, params, spec);
      return {
        spec,
        offramp: offrampSide(device, dispatch),
        tfjs: tfjsSide(() => tf.matMul(xa, xb)),
        check: async () => {
          dispatch();
          const got = await t.c.read();
          const out = tf.matMul(xa, xb);
          const theirs = await out.data();
          out.dispose();
          // Reference on a spread of rows (the full product is too slow in plain TypeScript).
          const rows = sampleRows(M, 12);
          const aSub = new Float32Array(rows.length * K);
          for (const [i, r] of rows.entries()) aSub.set(A.subarray(r * K, (r + 1) * K), i * K);
          const ref = new Float32Array(rows.length * N);
          matmul.reference(
            { a: aSub, b: B, bias: new Float32Array(N), c: ref },
            { ...params, M: rows.length },
            matmul.resolveSpec(spec),
          );
          const pick = (x: ArrayLike<number>) => {
            const o = new Float32Array(rows.length * N);
            rows.forEach((r, i) => {
              for (let n = 0; n < N; n++) o[i * N + n] = x[r * N + n];
            });
            return o;
          };
          return judge(TOLERANCES[matmul.tolerance], got, theirs, ref, pick, `rows ${rows.join(', ')}`);
        },
        dispose: () => {
          for (const x of Object.values(t)) x.dispose();
          xa.dispose();
          xb.dispose();
        },
      };
    },
  };
}

function softmaxCase(rows: number, cols: number, label: string): Case {
  return {
    name: `softmax ${label}`,
    kind: 'softmax',
    flops: 5 * rows * cols,
    bytes: 8 * rows * cols,
    prepare: (device) => {
      const X = randomArray(rows * cols, mulberry32(rows + cols), 4);
      const params = { rows, cols };
      const t = {
        x: device.tensor('f32', [rows, cols], X, 'x'),
        y: device.tensor('f32', [rows, cols], undefined, 'y'),
      };
      const xt = tf.tensor2d(X, [rows, cols]);
      const dispatch = () => device.dispatch(softmax, t, params);
      return {
        offramp: offrampSide(device, dispatch),
        tfjs: tfjsSide(() => tf.softmax(xt)),
        check: async () => {
          dispatch();
          const got = await t.y.read();
          const out = tf.softmax(xt);
          const theirs = await out.data();
          out.dispose();
          const ref = new Float32Array(rows * cols);
          softmax.reference({ x: X, y: ref }, params, {});
          return judge(TOLERANCES[softmax.tolerance], got, theirs, ref, (x) => x, 'all rows');
        },
        dispose: () => {
          t.x.dispose();
          t.y.dispose();
          xt.dispose();
        },
      };
    },
  };
}

function layerNormCase(rows: number, cols: number, label: string): Case {
  const eps = 1e-5;
  return {
    name: `layerNorm ${label}`,
    kind: 'layerNorm',
    flops: 8 * rows * cols,
    bytes: 8 * rows * cols + 8 * cols,
    prepare: (device) => {
      const rand = mulberry32(rows * 3 + cols);
      const X = randomArray(rows * cols, rand, 2);
      const G = randomArray(cols, rand);
      const Bt = randomArray(cols, rand);
      const params = { rows, cols, eps };
      const t = {
        x: device.tensor('f32', [rows, cols], X, 'x'),
        gamma: device.tensor('f32', [cols], G, 'gamma'),
        beta: device.tensor('f32', [cols], Bt, 'beta'),
        y: device.tensor('f32', [rows, cols], undefined, 'y'),
      };
      const xt = tf.tensor2d(X, [rows, cols]);
      const gt = tf.tensor2d(G, [1, cols]);
      const bt = tf.tensor2d(Bt, [1, cols]);
      // What a TensorFlow.js user writes: moments over the last axis, then the fused batchNorm op
      // (mean, variance: (rows, 1); offset, scale: (1, cols); batchNorm wants them of equal rank).
      const tfLayerNorm = () =>
        tf.tidy(() => {
          const { mean, variance } = tf.moments(xt, -1, true);
          return tf.batchNorm(xt, mean, variance, bt, gt, eps);
        });
      const dispatch = () => device.dispatch(layerNorm, t, params);
      return {
        offramp: offrampSide(device, dispatch),
        tfjs: tfjsSide(tfLayerNorm),
        check: async () => {
          dispatch();
          const got = await t.y.read();
          const out = tfLayerNorm();
          const theirs = await out.data();
          out.dispose();
          const ref = new Float32Array(rows * cols);
          layerNorm.reference({ x: X, gamma: G, beta: Bt, y: ref }, params, {});
          return judge(TOLERANCES[layerNorm.tolerance], got, theirs, ref, (x) => x, 'all rows');
        },
        dispose: () => {
          for (const x of Object.values(t)) x.dispose();
          xt.dispose();
          gt.dispose();
          bt.dispose();
        },
      };
    },
  };
}

/** Offramp vs reference, tfjs vs reference (on the reference's rows), and Offramp vs tfjs (everywhere). */
function judge(
  tol: { atol: number; rtol: number },
  ours: ArrayLike<number>,
  theirs: ArrayLike<number>,
  ref: ArrayLike<number>,
  pick: (x: ArrayLike<number>) => ArrayLike<number>,
  where: string,
): { failures: string[]; maxAbsErr: Record<string, number> } {
  const failures: string[] = [];
  const pairs = {
    'offramp vs reference': compare(pick(ours), ref, tol),
    'tfjs vs reference': compare(pick(theirs), ref, tol),
    'offramp vs tfjs': compare(ours, theirs, tol),
  };
  for (const [what, r] of Object.entries(pairs)) {
    if (!r.ok) {
      const b = r.firstBad;
      failures.push(
        `${what} (${what.endsWith('reference') ? where : 'all elements'}): ${b ? `element ${b.index} is ${b.got}, expected ${b.want}` : 'lengths differ'}; allowed |err| <= ${tol.atol} + ${tol.rtol}·|expected|, max abs err ${r.maxAbsErr.toExponential(2)}`,
      );
    }
  }
  return { failures, maxAbsErr: Object.fromEntries(Object.entries(pairs).map(([k, r]) => [k, r.maxAbsErr])) };
}

const CASES: Case[] = [
  matmulCase(512, 512, 512, '512×512×512'),
  matmulCase(1024, 1024, 1024, '1024×1024×1024'),
  matmulCase(4096, 256, 1024, '4096×256×1024'),
  softmaxCase(4096, 1024, '4096×1024'),
  softmaxCase(32 * 4 * 128, 128, '16384×128 (32·4·128 rows)'),
  layerNormCase(4096, 256, '4096×256'),
  layerNormCase(4096, 1024, '4096×1024'),
];
const TARGET_CASE = 'matmul 1024×1024×1024';
const TARGET_RATIO = 1.8;

const cases = CASES.filter((c) => !args.only || c.name.includes(args.only));
if (cases.length === 0) {
  console.error(
    `kernels benchmark: --only '${args.only}' matches no case; cases are: ${CASES.map((c) => c.name).join('; ')}`,
  );
  process.exit(2);
}

const machine = machineInfo();
const tfAdapter = await startTfjsWebgpu();
const device = await createGpuDevice();
const adapter = device.describe();
if (tfAdapter.vendor !== device.adapter.vendor || tfAdapter.architecture !== device.adapter.architecture) {
  console.error(
    `kernels benchmark: tfjs and Offramp are on different adapters (tfjs: ${tfAdapter.vendor} / ${tfAdapter.architecture}; Offramp: ${adapter}); the comparison would be meaningless`,
  );
  process.exit(1);
}
const method =
  `per sample: record the op (reps times back-to-back when one op is shorter than ${minSampleMs} ms, same count on both sides), ` +
  'submit, wait for the GPU queue to finish (Offramp: device.sync(); tfjs: submit its command encoder, then ' +
  'queue.onSubmittedWorkDone()), no readback; ms per op = sample time / reps. ' +
  `${warmup} warm-up samples per side (pipeline compilation, uploads), then ${runs} timed samples per side, ` +
  'alternating sides (A B, B A, ...); median per side. Inputs uniform random, fixed seeds. Correctness: both ' +
  'outputs read back once and compared with each other (all elements) and with the TypeScript reference ' +
  '(all rows; matmul: 12 spread rows) within the conformance tolerance of the kernel.';

console.log(`Offramp kernels vs TensorFlow.js ${tf.version_core} WebGPU backend`);
console.log(`adapter: ${adapter}`);
console.log(
  `machine: ${machine.cpuCount} × ${machine.cpuModel}, ${machine.totalMemGiB} GiB, node ${machine.node}, load average ${machine.loadAverage1m}`,
);
console.log(`method: ${method}\n`);

interface CaseResult {
  offramp_ms: number;
  tfjs_webgpu_ms: number;
  ratio: number;
  gflops: number;
  tfjs_gflops: number;
  offramp_gbps: number;
  reps: number;
  offramp_spec?: Record<string, unknown>;
  samples_ms: { offramp: number[]; tfjs_webgpu: number[] };
  max_abs_err: Record<string, number>;
}
const results: Record<string, CaseResult> = {};
const failures: string[] = [];

for (const c of cases) {
  const p = c.prepare(device);
  try {
    const chk = await p.check();
    if (chk.failures.length) {
      for (const f of chk.failures) failures.push(`${c.name}: ${f}`);
      console.log(`${c.name}: WRONG RESULTS\n  ${chk.failures.join('\n  ')}`);
      continue;
    }
    const t = await timePair(p.offramp, p.tfjs, { warmup, runs, minSampleMs, maxReps: 32 });
    const ours = median(t.a);
    const theirs = median(t.b);
    const r: CaseResult = {
      offramp_ms: round(ours, 3),
      tfjs_webgpu_ms: round(theirs, 3),
      ratio: round(theirs / ours, 3),
      gflops: round(c.flops / ours / 1e6, 3),
      tfjs_gflops: round(c.flops / theirs / 1e6, 3),
      offramp_gbps: round(c.bytes / ours / 1e6, 3),
      reps: t.reps,
      ...(p.spec ? { offramp_spec: p.spec } : {}),
      samples_ms: { offramp: t.a.map((x) => round(x, 3)), tfjs_webgpu: t.b.map((x) => round(x, 3)) },
      max_abs_err: chk.maxAbsErr,
    };
    results[c.name] = r;
    console.log(
      `${c.name}: Offramp ${fixed(ours, 2)} ms, tfjs ${fixed(theirs, 2)} ms, ratio ${fixed(r.ratio, 2)} (reps ${t.reps})`,
    );
  } finally {
    p.dispose();
    await device.sync();
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

console.log(
  `\n${formatTable(
    ['case', 'offramp ms', 'tfjs ms', 'ratio', 'GFLOP/s', 'tfjs GFLOP/s', 'GB/s', 'reps'],
    Object.entries(results).map(([name, r]) => [
      name,
      fixed(r.offramp_ms, 2),
      fixed(r.tfjs_webgpu_ms, 2),
      fixed(r.ratio, 2),
      fixed(r.gflops, 2),
      fixed(r.tfjs_gflops, 2),
      fixed(r.offramp_gbps, 2),
      r.reps,
    ]),
  )}`,
);
console.log('ratio = tfjs ms / Offramp ms (above 1: Offramp is faster); GFLOP/s and GB/s are Offramp’s.');

if (failures.length) {
  console.error(`\nCORRECTNESS FAILURES (${failures.length}); no results written:\n  ${failures.join('\n  ')}`);
  process.exit(1);
}

const target = results[TARGET_CASE];
const slow = Object.entries(results).filter(([, r]) => r.ratio < 1);
const targets = {
  matmul_1024_ratio_min: TARGET_RATIO,
  matmul_1024_ratio: target?.ratio ?? null,
  matmul_1024_met: target ? target.ratio >= TARGET_RATIO : null,
  no_case_below_1: slow.length === 0,
  cases_below_1: slow.map(([n]) => n),
};
console.log('');
if (target) {
  console.log(
    target.ratio >= TARGET_RATIO
      ? `target met: ${TARGET_CASE} ratio ${fixed(target.ratio, 2)} >= ${TARGET_RATIO}`
      : `!!! TARGET MISSED: ${TARGET_CASE} ratio ${fixed(target.ratio, 2)} < ${TARGET_RATIO} !!!`,
  );
}
console.log(
  slow.length === 0
    ? 'target met: no case below ratio 1.0'
    : `!!! TARGET MISSED: ratio below 1.0 for ${slow.map(([n, r]) => `${n} (${fixed(r.ratio, 2)})`).join(', ')} !!!`,
);

const report = {
  benchmark: 'kernels',
  date: new Date().toISOString(),
  adapter,
  tfjs_adapter: `${tfAdapter.vendor} / ${tfAdapter.architecture}`,
  versions: { node: process.version, tfjs_core: tf.version_core },
  machine: { ...machine, loadAverage1mAtEnd: machineInfo().loadAverage1m },
  runs: { warmup, timed: runs, min_sample_ms: minSampleMs },
  method,
  targets,
  cases: results,
};
mkdirSync(dirname(args.out), { recursive: true });
writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
console.log(`\nwrote ${args.out}`);
device.destroy();
