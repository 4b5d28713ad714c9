// Engine benchmark: one encoder classifier (6 blocks, width 256, 4 heads, MLP 1024, sequence 128, batch 32,
// seeded random weights) at full depth in Offramp and in the TensorFlow.js WebGPU backend on the same Dawn
// adapter (outputs compared), and Offramp with a policy that retires half of the live rows after every block,
// in host and device mode, against the ideal time predicted from measured per-block costs.
// Writes bench/results/engine.json. `--profile` adds a per-kernel breakdown of one full-depth batch.
// Exits non-zero only when an output is wrong.
import './dawn-globals.js';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import type { ModelInput } from '../src/engine/model.js';
import { definePolicy, type ExitPolicy, neverExit } from '../src/engine/policy.js';
import { Runner, type RunResult } from '../src/engine/runner.js';
import type { EncoderClassifierConfig } from '../src/models/config.js';
import { buildModel, randomWeights } from '../src/models/index.js';
import { createGpuDevice } from '../src/runtime/create-device.js';
import { mulberry32 } from '../src/util/random.js';
import { profileProgram } from './engine-profile.js';
import { TfjsEncoder } from './engine-tfjs.js';
import { startTfjsWebgpu } from './tfjs-webgpu.js';

const SEED = 20240601;
const BATCH = 32;
const SEQ = 128;
const ROUNDS = Number(process.env.ENGINE_BENCH_ROUNDS ?? 7);
const LOGIT_TOLERANCE = 1e-3;
const TARGET_RATIO = 2.0;
const TARGET_HALVING_SLACK = 0.15;

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
const L = cfg.num_layers;

if (!Number.isInteger(ROUNDS) || ROUNDS < 1)
  throw new Error(`ENGINE_BENCH_ROUNDS must be a positive integer, got ${process.env.ENGINE_BENCH_ROUNDS}`);

/** Retires the live rows whose sample id has bit j set at exit j: with ids 0..31, 32 → 16 → 8 → 4 → 2 → 1 rows. */
const halving = definePolicy((_o: Record<string, never>) => ({
  name: 'halving',
  options: {},
  init: () => null,
  decide: (ctx, s) => Array.from(s.sampleIds, (sid) => ((sid >> ctx.exitIndex) & 1) === 1),
  device: {
    stateSize: 0,
    code: 'fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool { return ((sid >> exit_index) & 1u) == 1u; }',
  },
}));

/** Retires every row at exit `at` (runs of depth at + 1, for the per-block costs). */
const exitAllAt = definePolicy((o: { at: number }) => ({
  name: `exit-all-at-${o.at}`,
  options: { at: o.at },
  init: () => null,
  decide: (ctx, s) => new Uint8Array(s.count).fill(ctx.exitIndex >= o.at ? 1 : 0),
  device: {
    stateSize: 0,
    code: `fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool { return exit_index >= ${o.at}u; }`,
  },
}));

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

const failures: string[] = [];
function check(ok: boolean, what: string): void {
  if (!ok) {
    failures.push(what);
    console.error(`CHECK FAILED: ${what}`);
  }
}

// ---------------------------------------------------------------- setup
const cpuList = cpus();
const loadBefore = loadavg();
const weights = randomWeights(cfg, SEED);
const dev = await createGpuDevice({ backend: 'gpu' });
const model = buildModel(dev, cfg, weights);
const runner = new Runner(dev, model, { maxBatch: BATCH });
const tfInfo = await startTfjsWebgpu();
const tfAdapter = [tfInfo.vendor, tfInfo.architecture, tfInfo.description].filter(Boolean).join(' ');
const tfm = new TfjsEncoder(cfg, weights);

const rand = mulberry32(SEED + 1);
const seqs = Array.from({ length: BATCH }, () =>
  Array.from({ length: SEQ }, () => Math.floor(rand() * cfg.vocab_size)),
);
const inputOf = (r: number): ModelInput => ({ ids: seqs.slice(0, r) });
const flatIds = Int32Array.from(seqs.flat());
const lengths = new Int32Array(BATCH).fill(SEQ);
if (model.bucket(inputOf(BATCH)) !== SEQ) throw new Error(`internal: expected the ${SEQ}-token bucket`);

console.log(`engine benchmark: ${dev.describe()}; TensorFlow.js WebGPU on ${tfAdapter}`);
console.log(
  `${cpuList.length} × ${cpuList[0]?.model ?? 'unknown CPU'}, load ${loadBefore.map((x) => x.toFixed(1)).join(' ')}; ${ROUNDS} timed rounds after a warm-up round`,
);

const run = (r: number, policy: ExitPolicy<any>, mode: 'host' | 'device'): Promise<RunResult> =>
  runner.run(inputOf(r), { policy, mode });

// ---------------------------------------------------------------- correctness (also the warm-up of each path)
const full = await run(BATCH, neverExit(), 'device');
const tfLogits = await tfm.logits(flatIds, lengths, SEQ);
const offLogits = Float32Array.from(full.samples.flatMap((s) => Array.from(s.logits)));
const logitDiff = maxAbsDiff(offLogits, tfLogits);
check(
  logitDiff <= LOGIT_TOLERANCE,
  `Offramp and TensorFlow.js logits differ by ${logitDiff.toExponential(3)} (allowed ${LOGIT_TOLERANCE})`,
);
check(
  full.samples.every((s) => s.exitIndex === L - 1),
  'never-exit run: every sample must leave at the last exit',
);
const halvingHost = await run(BATCH, halving({}), 'host');
const halvingDevice = await run(BATCH, halving({}), 'device');
const expectedExit = (sid: number) => {
  for (let j = 0; j < L - 1; j++) if ((sid >> j) & 1) return j;
  return L - 1;
};
const hostExits = halvingHost.samples.map((s) => s.exitIndex);
const deviceExits = halvingDevice.samples.map((s) => s.exitIndex);
check(
  hostExits.every((e, sid) => e === expectedExit(sid)),
  `halving (host): exits ${hostExits} are not the planned ones`,
);
check(
  deviceExits.every((e, i) => e === hostExits[i]),
  `halving: device-mode exits ${deviceExits} differ from host-mode exits ${hostExits}`,
);
const hvDiff = Math.max(...halvingHost.samples.map((s, i) => maxAbsDiff(s.logits, halvingDevice.samples[i].logits)));
check(hvDiff === 0, `halving: host- and device-mode logits differ by ${hvDiff}`);
const rowsPerBlock = halvingDevice.summary.rowsPerBlock;
check(
  rowsPerBlock.every((r, b) => r === BATCH >> b),
  `halving: rows per block ${rowsPerBlock}, expected ${rowsPerBlock.map((_, b) => BATCH >> b)}`,
);
// the one sample that runs every block must match its full-depth result (batch invariance)
const lastDiff = maxAbsDiff(halvingDevice.samples[0].logits, full.samples[0].logits);
check(lastDiff <= 1e-5, `halving: sample 0 (full depth) differs from the full batch's by ${lastDiff}`);

// ---------------------------------------------------------------- timed configurations
interface Case {
  key: string;
  fn: () => Promise<unknown>;
  ms: number[];
  /** Already run once (by the correctness checks above): no warm-up run needed. */
  warm: boolean;
}
const cases: Case[] = [];
const add = (key: string, fn: () => Promise<unknown>, warm = false) => cases.push({ key, fn, ms: [], warm });
const ROWS = [32, 16, 8, 4, 2, 1];
add('tfjs', () => tfm.logits(flatIds, lengths, SEQ), true);
for (const r of ROWS) add(`full.${r}`, () => run(r, neverExit(), 'device'), r === BATCH);
for (const r of ROWS) add(`depth1.${r}`, () => run(r, exitAllAt({ at: 0 }), 'device'));
add('halving.host', () => run(BATCH, halving({}), 'host'), true);
add('halving.device', () => run(BATCH, halving({}), 'device'), true);
const probe = dev.tensor('f32', [64], undefined, 'bench.probe');
add('readback', async () => {
  await dev.sync();
  await dev.readRange(probe, 0, 1);
});

let readbacks: Record<string, number> = {};
for (let round_ = -1; round_ < ROUNDS; round_++) {
  // rotate the order so that slow drifts of a shared machine hit every case alike
  const order = cases.map((_, i) => cases[(i + Math.max(0, round_)) % cases.length]);
  for (const c of order) {
    if (round_ < 0 && c.warm) continue;
    const t0 = performance.now();
    const res = await c.fn();
    const ms = performance.now() - t0;
    if (round_ >= 0) c.ms.push(ms);
    if (res && typeof res === 'object' && 'summary' in res)
      readbacks = { ...readbacks, [c.key]: (res as RunResult).summary.readbacks };
  }
  if (round_ >= 0) console.log(`round ${round_ + 1}/${ROUNDS} done (load ${loadavg()[0].toFixed(1)})`);
}
const med = Object.fromEntries(cases.map((c) => [c.key, median(c.ms)]));

// Host-mode exit checks where the GPU work is smallest (one row, full depth), host and device runs back to
// back in alternating order: the median of the paired differences is far less noisy than a difference of
// medians on a shared machine.
const PAIRS = Number(process.env.ENGINE_BENCH_PAIRS ?? 15);
const oneRowDiffs: number[] = [];
await run(1, neverExit(), 'host');
for (let i = 0; i < PAIRS; i++) {
  const t: Record<string, number> = {};
  for (const m of i % 2 ? (['device', 'host'] as const) : (['host', 'device'] as const)) {
    const t0 = performance.now();
    await run(1, neverExit(), m);
    t[m] = performance.now() - t0;
  }
  oneRowDiffs.push(t.host - t.device);
}
const hvCase = (k: string) => cases.find((c) => c.key === k)!.ms;
const halvingPairDiffs = hvCase('halving.host').map((h, i) => h - hvCase('halving.device')[i]);

// ---------------------------------------------------------------- derived figures
// Per-block cost at r rows: b(r) = (t_full(r) − t_depth1(r)) / (L − 1), where both runs have the same fixed
// part (input upload, stem, submission, the single readback) and differ by L − 1 blocks with their exit
// heads and row bookkeeping. Fixed part: a(r) = t_full(r) − L·b(r) at each r; a = the median over r (one
// difference of two noisy medians alone can even come out negative on a busy machine).
// Ideal halving = a + Σ_b b(rows entering block b) with rows 32, 16, 8, 4, 2, 1.
const perBlock = Object.fromEntries(ROWS.map((r) => [r, (med[`full.${r}`] - med[`depth1.${r}`]) / (L - 1)]));
const fixedByRows = Object.fromEntries(ROWS.map((r) => [r, med[`full.${r}`] - L * perBlock[r]]));
const fixed = median(Object.values(fixedByRows));
const halvingRows = rowsPerBlock;
const ideal = fixed + halvingRows.reduce((a, r) => a + perBlock[r], 0);
const offrampMs = med[`full.${BATCH}`];
const tfjsMs = med.tfjs;
const ratio = tfjsMs / offrampMs;
const hostMs = med['halving.host'];
const deviceMs = med['halving.device'];
const extraReadbacks = (readbacks['halving.host'] ?? 0) - (readbacks['halving.device'] ?? 0);
const hostOverheadPerBlock = (hostMs - deviceMs) / L;
const pairedOverheadPerBlock = median(halvingPairDiffs) / L;
const oneRowOverheadPerBlock = median(oneRowDiffs) / L;
const devVsIdeal = deviceMs / ideal - 1;

const pad = (s: string, n: number) => s.padEnd(n);
const num = (x: number) => x.toFixed(1).padStart(9);
console.log('\nmedian wall time per batch (ms), from the call to the results on the host');
console.log(`${pad('case', 34)}${'median'.padStart(9)}${'min'.padStart(9)}${'max'.padStart(9)}`);
for (const c of cases)
  console.log(`${pad(c.key, 34)}${num(med[c.key])}${num(Math.min(...c.ms))}${num(Math.max(...c.ms))}`);
console.log('\nper-block cost b(r) = (full(r) − depth1(r)) / 5');
for (const r of ROWS)
  console.log(
    `  r = ${String(r).padStart(2)}: ${perBlock[r].toFixed(1)} ms per block (${(perBlock[r] / r).toFixed(2)} ms per row-block)`,
  );
console.log(
  `  fixed part a = median over r of full(r) − 6·b(r) = ${fixed.toFixed(1)} ms (${ROWS.map((r) => fixedByRows[r].toFixed(0)).join(', ')})`,
);

const ratioOk = ratio >= TARGET_RATIO;
const halvingOk = Math.abs(devVsIdeal) <= TARGET_HALVING_SLACK;
console.log('\nresults');
console.log(`  offramp full depth        ${offrampMs.toFixed(1)} ms`);
console.log(`  tfjs-webgpu full depth    ${tfjsMs.toFixed(1)} ms`);
console.log(
  `  ratio tfjs / offramp      ${ratio.toFixed(2)} (target ≥ ${TARGET_RATIO}: ${ratioOk ? 'met' : 'NOT met'})`,
);
console.log(
  `  halving, device mode      ${deviceMs.toFixed(1)} ms (ideal ${ideal.toFixed(1)} ms, ${(devVsIdeal * 100).toFixed(1)}% off; target within ±15%: ${halvingOk ? 'met' : 'NOT met'})`,
);
console.log(
  `  halving, host mode        ${hostMs.toFixed(1)} ms (${readbacks['halving.host']} readbacks vs ${readbacks['halving.device']})`,
);
console.log(
  `  host-mode exit checks     ${hostOverheadPerBlock.toFixed(1)} ms per block from the medians (${((hostMs - deviceMs) / Math.max(1, extraReadbacks)).toFixed(1)} ms per extra readback), ${pairedOverheadPerBlock.toFixed(1)} ms from paired rounds; at one row, paired: ${oneRowOverheadPerBlock.toFixed(1)} ms per block; a bare readback takes ${med.readback.toFixed(2)} ms`,
);
console.log(`  logits max |Offramp − tfjs| ${logitDiff.toExponential(2)}`);

let profile: Awaited<ReturnType<typeof profileProgram>> | undefined;
if (process.argv.includes('--profile')) {
  profile = await profileProgram(dev, runner, inputOf(BATCH), 3);
  console.log('\nper-kernel time, one full-depth batch of 32 (each op submitted and awaited alone; median of 3)');
  for (const k of profile.byKernel)
    console.log(
      `  ${pad(k.kernel, 30)}${num(k.ms)} ms  ${k.count} ops  ${k.gflops > 0 ? `${k.gflops.toFixed(2)} GFLOP/s` : ''}`,
    );
  console.log(`  ${pad('sum', 30)}${num(profile.totalMs)} ms`);
}

const loadAfter = loadavg();
const out = {
  benchmark: 'engine',
  date: new Date().toISOString(),
  node: process.version,
  cpu: {
    model: cpuList[0]?.model ?? 'unknown',
    count: cpuList.length,
    loadavg_before: loadBefore.map((x) => round(x)),
    loadavg_after: loadAfter.map((x) => round(x)),
  },
  adapter: dev.describe(),
  tfjs_adapter: tfAdapter,
  model: { ...cfg, batch: BATCH, sequence: SEQ, seed: SEED },
  rounds: ROUNDS,
  method: [
    'Wall time from the call to results on the host, median of the timed rounds after one warm-up round; cases interleaved, order rotated each round.',
    'Offramp: Runner.run with the never-exit policy in device mode (one readback); all 6 exit heads run. TensorFlow.js: the same forward with tfjs ops and the last exit head only, timed to logits.data().',
    'Halving policy: at exit j a live row leaves when bit j of its sample id is set (32, 16, 8, 4, 2, 1 rows enter blocks 0..5).',
    'Per-block cost b(r) = (t_full(r) − t_depth1(r)) / 5 from device-mode runs of r rows at full depth and with every row leaving at exit 0; fixed part a = median over r of t_full(r) − 6·b(r); ideal halving = a + Σ_blocks b(rows entering the block).',
    'Host-mode overhead of exit checks per block = (halving_host − halving_device) / 6 (host mode reads the exit signals back after each of the 6 exits: 7 readbacks against 1); also the median of the per-round paired differences / 6, and the median of host − device differences of back-to-back one-row full-depth runs / 6.',
  ],
  offramp_ms: round(offrampMs),
  tfjs_webgpu_ms: round(tfjsMs),
  ratio_vs_tfjs: round(ratio, 3),
  halving_host_ms: round(hostMs),
  halving_device_ms: round(deviceMs),
  halving_ideal_ms: round(ideal),
  halving_device_vs_ideal: round(devVsIdeal, 4),
  host_exit_check_overhead_ms_per_block: round(hostOverheadPerBlock),
  host_exit_check_overhead_ms_per_readback: extraReadbacks > 0 ? round((hostMs - deviceMs) / extraReadbacks) : null,
  host_exit_check_overhead_ms_per_block_paired: round(pairedOverheadPerBlock),
  host_exit_check_overhead_ms_per_block_one_row: round(oneRowOverheadPerBlock),
  one_row_pairs_ms: oneRowDiffs.map((x) => round(x)),
  readback_roundtrip_ms: round(med.readback, 3),
  readbacks: {
    halving_host: readbacks['halving.host'],
    halving_device: readbacks['halving.device'],
    full_device: readbacks[`full.${BATCH}`],
  },
  fixed_ms: round(fixed),
  per_r: ROWS.map((r) => ({
    rows: r,
    full_ms: round(med[`full.${r}`]),
    depth1_ms: round(med[`depth1.${r}`]),
    per_block_ms: round(perBlock[r]),
    fixed_ms: round(fixedByRows[r]),
  })),
  halving_rows_per_block: halvingRows,
  logits_max_abs_diff_vs_tfjs: logitDiff,
  targets: {
    ratio_vs_tfjs: { target: `>= ${TARGET_RATIO}`, met: ratioOk },
    halving_device_vs_ideal: { target: `|x| <= ${TARGET_HALVING_SLACK}`, met: halvingOk },
  },
  samples_ms: Object.fromEntries(cases.map((c) => [c.key, c.ms.map((x) => round(x))])),
  ...(profile ? { profile } : {}),
  correctness_failures: failures,
};
const path = new URL('./results/engine.json', import.meta.url);
writeFileSync(path, `${JSON.stringify(out, null, 2)}\n`);
console.log(`\nwrote ${path.pathname}`);

probe.dispose();
runner.dispose();
model.dispose();
tfm.dispose();
dev.destroy();
if (failures.length) {
  console.error(`${failures.length} correctness check(s) failed`);
  process.exit(1);
}
process.exit(0);
