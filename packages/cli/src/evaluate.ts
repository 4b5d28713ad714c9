// The evaluation behind `offramp eval` and `offramp demo`: one full-depth run records every exit's signals
// (the trace), each policy is evaluated over a grid offline by exact replay (simulate), and the chosen
// operating points run again for real to measure wall-clock time, with a check that the real exits equal
// the simulated ones.
import type { Backend, Device, EarlyExitModel, ExitPolicy, ModelInput, Runner, RunResult } from '@offramp/core';
import type { Trace } from '@offramp/policies';
import { type DataRequest, type EvalData, loadEvalData } from './data.js';
import { asUsage, RuntimeError, UsageError } from './errors.js';
import { dataSha256, weightsSha256 } from './fingerprint.js';
import { type LoadedClassifier, loadClassifier } from './model.js';
import { builtinSpec, type OperatingPoint, type PolicyRequest, parsePolicyList, pointLabel } from './policies.js';
import type { Logger } from './util/log.js';

type Policies = typeof import('@offramp/policies');

/**
 * Which settings run for real: each policy's frontier and chosen setting, the chosen ones, every one, none,
 * or 'compare': the best fixed exit (static's chosen setting) and the chosen setting with the largest FLOPs
 * speed-up among the per-input policies.
 */
export type MeasureMode = 'frontier' | 'chosen' | 'all' | 'none' | 'compare';
export const MEASURE_MODES: readonly MeasureMode[] = ['frontier', 'chosen', 'all', 'none', 'compare'];
export type ModeOption = 'auto' | 'host' | 'device';

export interface EvalConfig {
  model: string;
  /** Dataset name or file; default: the model's own dataset (from its meta). */
  data?: string;
  split?: DataRequest['split'];
  limit?: number;
  offset?: number;
  fetch?: boolean;
  policies?: string[];
  /** A finer grid per swept policy. */
  sweep?: boolean;
  /** Thresholds per swept threshold policy (default 8, 24 with sweep). */
  gridSize?: number;
  batch: number;
  device: Backend;
  mode: ModeOption;
  measure: MeasureMode;
  repeats: number;
  /** Accuracy drop (disagreement without labels) allowed for each policy's chosen point. */
  maxDrop: number;
  /** A trace file written by `offramp trace` for this model and data: used instead of recording the trace. */
  traceFile?: string;
  log: Logger;
}

export interface MeasuredRun {
  mode: 'host' | 'device';
  /** Median wall time over the timed passes. */
  wallMs: number;
  /** Fastest and slowest pass. */
  wallMsRange: [number, number];
  /** Timed passes (--repeats). */
  repeats: number;
  samplesPerSec: number;
  /** Full-depth wall time / this run's wall time (medians), same batch size. */
  speedup: number;
  /**
   * The speed-up's spread: slowest full-depth pass / fastest pass of this run, fastest full-depth pass /
   * slowest pass of this run (every ratio of a full-depth pass to a pass of this run lies inside).
   */
  speedupRange: [number, number];
  /**
   * The measured speed-up is within noise: its range includes 1.0×, or is wider than twice the gain
   * (half-width ≥ |speedup − 1|). Null with a single pass (no spread known).
   */
  withinNoise: boolean | null;
  /** Compute fraction from the engine's own FLOPs accounting of this run. */
  computeFraction: number;
  /** Real exits equal the simulated ones (null: not simulated). */
  exitsMatch: boolean | null;
  mismatches: number;
}

export interface PointResult {
  family: string;
  label: string;
  spec: string;
  options: Record<string, unknown>;
  reference: boolean;
  simulated: boolean;
  accuracy: number | null;
  accuracyDrop: number | null;
  agreement: number;
  meanExitBlock: number;
  /** Mean FLOPs / full-depth FLOPs. */
  computeFraction: number;
  /** 1 / computeFraction. */
  flopsSpeedup: number;
  /** Samples leaving at each exit. */
  exitHistogram: number[];
  policyFrontier: boolean;
  frontier: boolean;
  chosen: boolean;
  measured: MeasuredRun | null;
}

export interface PolicyResult {
  family: string;
  source: PolicyRequest['kind'];
  points: PointResult[];
}

export interface EvalResult {
  command: string;
  version: 1;
  date: string;
  model: {
    dir: string;
    name: string;
    architecture: string;
    numBlocks: number;
    exitBlocks: number[];
    numClasses: number;
    parameters: number;
    flopsPerSample: number;
    costFractions: number[];
  };
  data: { name: string; split: string; n: number; available: number; labelled: boolean; classNames: string[] };
  device: { kind: 'gpu' | 'cpu'; adapter: string };
  batch: number;
  maxDrop: number;
  full: {
    accuracy: number | null;
    /** Median wall time over the timed passes. */
    wallMs: number;
    wallMsRange: [number, number];
    repeats: number;
    samplesPerSec: number;
    mode: 'host' | 'device';
    meanExitBlock: number;
  };
  policies: PolicyResult[];
  skipped: { policy: string; reason: string }[];
  checks: { measured: number; exitsMatch: boolean; mismatchedPoints: string[] };
  timings: { loadMs: number; traceMs: number; sweepMs: number; measureMs: number; totalMs: number };
  files?: Record<string, string>;
}

function sliceInput(input: ModelInput, n: number, a: number, b: number): ModelInput {
  if ('ids' in input) return { ids: input.ids.slice(a, b) };
  const f = input.features;
  if (Array.isArray(f)) return { features: f.slice(a, b) };
  const w = f.length / n;
  return { features: f.subarray(a * w, b * w) };
}

function chunks(n: number, batch: number): [number, number][] {
  const out: [number, number][] = [];
  for (let a = 0; a < n; a += batch) out.push([a, Math.min(n, a + batch)]);
  return out;
}

export interface TraceRequest {
  model: string;
  data?: string;
  split: 'train' | 'test';
  limit?: number;
  offset?: number;
  fetch?: boolean;
  batch: number;
  device: Backend;
  /** Record every exit's logits too. */
  logits?: boolean;
}

/**
 * Loads a classifier and its data, builds the device and runner, says what runs where, and records the
 * full-depth trace with the hashes of the weights and data it came from (calibrate and trace share this).
 * Call `close()` when done with the runner.
 */
export async function traceSession(o: TraceRequest, log: Logger) {
  const core = await import('@offramp/core');
  const loaded = await loadClassifier(o.model);
  const { datasetOfModel } = await import('./data.js');
  const spec = o.data ?? datasetOfModel(loaded.envelope);
  if (!spec) throw new UsageError('--data is required: the model names no dataset I know');
  const data = await loadEvalData(loaded.envelope, loaded.dir, {
    spec,
    split: o.split,
    limit: o.limit,
    offset: o.offset,
    fetch: o.fetch,
    log,
  });
  const device = await core.createDevice({ backend: o.device });
  const model = core.buildModel(device, loaded.envelope.model, loaded.tensors);
  const runner = new core.Runner(device, model, { maxBatch: o.batch });
  const close = () => {
    runner.dispose();
    model.dispose();
    device.destroy();
  };
  log.info(`${log.c.bold('device')}   ${device.describe()}`);
  log.info(
    `${log.c.bold('data')}     ${data.name}${data.split !== 'file' ? ` (${data.split})` : ''}: ${data.n} samples`,
  );
  try {
    const trace = await recordTraceChunked(runner, data, o.batch, log, { logits: o.logits });
    const fingerprint = {
      weightsSha256: await weightsSha256(loaded.dir),
      dataSha256: dataSha256(data.input, data.labels, data.n),
    };
    return { loaded, data, device, model, runner, trace, fingerprint, close };
  } catch (e) {
    close();
    throw e;
  }
}

/** Records the trace chunk by chunk (like the runner's own chunks) with a progress bar. */
export async function recordTraceChunked(
  runner: Runner,
  data: EvalData,
  batch: number,
  log: Logger,
  options: { logits?: boolean } = {},
): Promise<Trace> {
  const { recordTrace } = await import('@offramp/policies');
  const bar = log.progress('full-depth trace', data.n);
  let trace: Trace | null = null;
  try {
    for (const [a, b] of chunks(data.n, batch)) {
      const t = await recordTrace(runner, sliceInput(data.input, data.n, a, b), data.labels.subarray(a, b), options);
      if (!trace) trace = t;
      else trace.samples.push(...t.samples);
      bar.tick(b - a);
    }
  } finally {
    bar.stop();
  }
  return trace!;
}

interface RealRun {
  /** Median over the passes. */
  wallMs: number;
  /** Every pass's wall time, ascending. */
  walls: number[];
  exits: Int32Array;
  mode: 'host' | 'device';
  flops: number;
  fullDepthFlops: number;
  meanExitBlock: number;
}

/** Median of ascending values (mean of the middle two for an even count). */
function median(sorted: number[]): number {
  const m = sorted.length >> 1;
  return sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
}

/**
 * A speed-up with its spread, from the full-depth passes and a run's passes (each ascending): the median
 * ratio, the range every ratio of a full-depth pass to a pass of the run lies in, and whether that range
 * says the figure is within noise (it includes 1.0×, or its half-width is at least the gain |speedup − 1|).
 */
export function speedupWithSpread(
  full: number[],
  run: number[],
): { speedup: number; range: [number, number]; withinNoise: boolean | null } {
  const speedup = median(full) / median(run);
  const lo = full[0] / run[run.length - 1];
  const hi = full[full.length - 1] / run[0];
  const withinNoise =
    full.length < 2 || run.length < 2 ? null : (lo <= 1 && hi >= 1) || (hi - lo) / 2 >= Math.abs(speedup - 1);
  return { speedup, range: [lo, hi], withinNoise };
}

/** Runs every chunk for real and times it: a warm-up chunk first (pipelines), then `repeats` timed passes. */
async function realRun(
  runner: Runner,
  data: EvalData,
  batch: number,
  make: () => ExitPolicy<any>,
  mode: ModeOption,
  repeats: number,
  label: string,
  log: Logger,
): Promise<RealRun> {
  const parts = chunks(data.n, batch);
  const first = parts[0];
  await runner.run(sliceInput(data.input, data.n, first[0], first[1]), { policy: make(), mode });
  const walls: number[] = [];
  let last: RunResult[] = [];
  const bar = log.progress(label.slice(0, 24), data.n * repeats);
  try {
    for (let r = 0; r < repeats; r++) {
      const results: RunResult[] = [];
      let wall = 0;
      for (const [a, b] of parts) {
        const input = sliceInput(data.input, data.n, a, b);
        const policy = make();
        const t0 = performance.now();
        results.push(await runner.run(input, { policy, mode }));
        wall += performance.now() - t0;
        bar.tick(b - a);
      }
      walls.push(wall);
      last = results;
    }
  } finally {
    bar.stop();
  }
  walls.sort((x, y) => x - y);
  const exits = new Int32Array(data.n);
  let k = 0;
  let flops = 0;
  let full = 0;
  let blocks = 0;
  for (const r of last) {
    for (const s of r.samples) exits[k++] = s.exitIndex;
    flops += r.summary.flops;
    full += r.summary.fullDepthFlops;
    blocks += r.summary.meanExitBlock * r.summary.batchSize;
  }
  return {
    wallMs: median(walls),
    walls,
    exits,
    mode: last[0].summary.mode,
    flops,
    fullDepthFlops: full,
    meanExitBlock: blocks / data.n,
  };
}

const THRESHOLD_POLICIES = new Set(['confidence', 'entropy', 'margin', 'saturation', 'gate', 'quality']);

/** Expands the requests into operating points for this model and trace. */
async function operatingPoints(
  reqs: PolicyRequest[],
  trace: Trace,
  hasGate: boolean,
  cfg: EvalConfig,
  skipped: EvalResult['skipped'],
): Promise<OperatingPoint[]> {
  const P = await import('@offramp/policies');
  const out: OperatingPoint[] = [];
  const E = trace.numExits;
  const K = cfg.gridSize ?? (cfg.sweep ? 24 : 8);
  const allNaN = (k: 'gate' | 'similarity') =>
    trace.samples.every((s) => s[k].slice(0, E - 1).every((v) => Number.isNaN(v)));
  const builtin = (
    family: string,
    name: string,
    options: Record<string, unknown>,
    reference = false,
  ): OperatingPoint => ({
    family,
    label: pointLabel(options),
    options,
    spec: builtinSpec(name, options),
    make: () => P.createPolicy(name, options),
    reference,
  });
  for (const r of reqs) {
    if (r.kind === 'sweep') {
      const n = r.name;
      if ((n === 'gate' || n === 'ponder' || n === 'quality') && (!hasGate || allNaN('gate'))) {
        skipped.push({
          policy: n,
          reason: 'the model has no gate heads (exits.gate is off), so the gate signal is missing',
        });
        continue;
      }
      if (n === 'saturation' && allNaN('similarity')) {
        skipped.push({ policy: n, reason: 'the similarity signal is missing at every exit but the last' });
        continue;
      }
      if (E < 2 && n !== 'static' && n !== 'oracle') {
        skipped.push({ policy: n, reason: 'the model has a single exit: nothing to decide' });
        continue;
      }
      if (THRESHOLD_POLICIES.has(n)) {
        const rule = P.thresholdRule(n, trace);
        for (const t of P.candidateThresholds(trace, rule, K)) out.push(builtin(n, n, { threshold: t }));
      } else if (n === 'patience') {
        const max = Math.max(1, E - 1);
        for (let t = 1; t <= max; t++) out.push(builtin(n, n, { patience: t }));
        if (cfg.sweep)
          for (const delta of [0.02, 0.05, 0.1, 0.2])
            for (let t = 1; t <= max; t++) out.push(builtin(n, n, { patience: t, mode: 'regression', delta }));
      } else if (n === 'ponder') {
        const qs = cfg.sweep ? [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95] : [0.1, 0.3, 0.5, 0.7, 0.9];
        for (const q of qs) out.push(builtin(n, n, { q }));
      } else if (n === 'budget') {
        const lo = trace.costFractions[0];
        const steps = cfg.sweep ? 10 : 5;
        for (let k = 0; k <= steps; k++) {
          const target = Number((lo + ((1 - lo) * k) / steps).toFixed(4));
          out.push(builtin(n, n, { target: Math.min(1, Math.max(target, 1e-4)), mode: 'batch' }));
        }
      } else if (n === 'static') {
        for (let e = 0; e < E; e++) out.push(builtin(n, n, { exit: e }));
      } else if (n === 'oracle') {
        out.push({
          family: 'oracle',
          label: 'final predictions known',
          options: {},
          spec: 'oracle',
          make: () => P.createPolicy('static', { exit: E - 1 }),
          reference: true,
        });
      } else {
        throw new UsageError(`policy '${n}' has no default sweep`);
      }
    } else if (r.kind === 'builtin') {
      out.push(builtin(r.name, r.name, r.options));
    } else if (r.kind === 'file') {
      const file = { offramp_policy: 1, name: r.name, options: r.options };
      // the file's options with the policy's defaults filled in, as built-ins show theirs
      const shown = { ...((P.policyFromJson(file).options as Record<string, unknown> | undefined) ?? r.options) };
      out.push({
        family: `${r.name} (file)`,
        label: pointLabel(shown),
        options: shown,
        spec: `file:${r.path}`,
        make: () => P.policyFromJson(file),
      });
    } else {
      // a plugin's points show the options it resolved (defaults filled in), swept over its declared grid
      // when it was named without options
      for (const given of r.grid ?? [r.options]) {
        const shown = r.grid ? { ...(r.factory(given).options ?? given) } : r.resolved;
        out.push({
          family: `${r.name} (${r.module})`,
          label: pointLabel(shown),
          options: shown,
          spec: `module:${r.module}${Object.keys(shown).length ? `:${builtinSpec('', shown).slice(1)}` : ''}`,
          make: () => r.factory(given),
        });
      }
    }
  }
  return out;
}

const shortSha = (h: string) => `${h.slice(0, 12)}…`;

/**
 * Reads a trace file (bounded, BOM allowed) and checks it belongs to this model and data: exits, classes,
 * cost fractions, sample count, labels, and the SHA-256 of the weights and of the data slice it was recorded
 * with (a version-1 file has none: a warning says it cannot be checked). A trace without labels takes the
 * data's.
 */
async function loadMatchingTrace(
  P: Policies,
  file: string,
  info: ModelInfo,
  loaded: LoadedClassifier,
  data: EvalData,
  log: Logger,
): Promise<Trace> {
  let parsed: Awaited<ReturnType<Policies['readTraceFile']>>;
  try {
    parsed = await P.readTraceFile(file);
  } catch (e) {
    throw new UsageError(`--trace: ${(e as Error).message}`, { cause: e });
  }
  const { trace, meta, version, fingerprint } = parsed;
  const bad = (what: string) => {
    throw new UsageError(`--trace ${file} does not belong to this run: ${what}; record it again with offramp trace`);
  };
  if (trace.numExits !== info.numExits || trace.exitBlocks.some((b, i) => b !== info.exitBlocks[i]))
    bad(`it has exits after blocks [${trace.exitBlocks.join(', ')}], the model [${info.exitBlocks.join(', ')}]`);
  if (trace.numClasses !== info.numClasses) bad(`it has ${trace.numClasses} classes, the model ${info.numClasses}`);
  if (trace.costFractions.some((f, i) => Math.abs(f - info.costFractions[i]) > 1e-6))
    bad(
      `its cost fractions [${trace.costFractions.map((f) => f.toFixed(4)).join(', ')}] differ from the model's [${info.costFractions.map((f) => f.toFixed(4)).join(', ')}]`,
    );
  if (trace.samples.length !== data.n)
    bad(`it holds ${trace.samples.length} samples, the data ${data.n} (use the same --limit and --offset)`);
  if (fingerprint.weightsSha256) {
    const actual = await weightsSha256(loaded.dir);
    if (actual !== fingerprint.weightsSha256)
      throw new UsageError(
        `trace ${file} was recorded with other weights (sha ${shortSha(fingerprint.weightsSha256)} ≠ ${shortSha(actual)} of ${loaded.dir}); record it again with offramp trace`,
      );
  }
  if (fingerprint.dataSha256) {
    const actual = dataSha256(data.input, data.labels, data.n);
    if (actual !== fingerprint.dataSha256)
      throw new UsageError(
        `trace ${file} was recorded on other data (sha ${shortSha(fingerprint.dataSha256)} ≠ ${shortSha(actual)} of the ${data.n} inputs and labels of ${data.name}${data.split !== 'file' ? ` (${data.split})` : ''}); use the same --data, --split, --limit and --offset, or record it again with offramp trace`,
      );
  }
  if (!fingerprint.weightsSha256 || !fingerprint.dataSha256) {
    const missing =
      !fingerprint.weightsSha256 && !fingerprint.dataSha256
        ? 'weights and data'
        : !fingerprint.weightsSha256
          ? 'weights'
          : 'data';
    log.warn(
      `--trace ${file} ${version === 1 ? 'is a version-1 trace file: it carries' : 'carries'} no hash of the ${missing} it was recorded with, so it cannot be checked against this model and data (only its shape and labels are); record it again with offramp trace to have it checked`,
    );
  }
  trace.samples.forEach((s, i) => {
    if (s.label === undefined) s.label = data.labels[i];
    else if (s.label !== data.labels[i])
      bad(`sample ${i} has label ${s.label} in the trace but ${data.labels[i]} in the data`);
  });
  log.info(
    `${log.c.bold('trace')}    ${file}${meta.created ? ` (recorded ${String(meta.created)})` : ''}: not recorded again`,
  );
  return trace;
}

// ---------------------------------------------------------------------------------------------------------
// The pipeline, stage by stage. Each stage takes and returns plain values; runEvaluation reads top to bottom.

/** Checks the plain options and parses the policy list (a typo fails before anything heavy). */
async function checkConfig(cfg: EvalConfig): Promise<PolicyRequest[]> {
  if (!Number.isInteger(cfg.batch) || cfg.batch < 1 || cfg.batch > 4096)
    throw new UsageError(`--batch must be an integer in [1, 4096], got ${cfg.batch}`);
  if (!Number.isInteger(cfg.repeats) || cfg.repeats < 1 || cfg.repeats > 100)
    throw new UsageError(`--repeats must be an integer in [1, 100], got ${cfg.repeats}`);
  return parsePolicyList(cfg.policies);
}

/** Loads the model directory and the data slice it is evaluated on. */
async function loadModelAndData(cfg: EvalConfig): Promise<{ loaded: LoadedClassifier; data: EvalData }> {
  const loaded = await loadClassifier(cfg.model);
  const { datasetOfModel } = await import('./data.js');
  const dataSpec = cfg.data ?? datasetOfModel(loaded.envelope);
  if (!dataSpec)
    throw new UsageError(
      `--data is required: the model's config.json names no dataset I know (use fashion-mnist, mnist, imdb, sentiment, or a .jsonl / .csv file)`,
    );
  const data = await loadEvalData(loaded.envelope, loaded.dir, {
    spec: dataSpec,
    split: cfg.split,
    limit: cfg.limit,
    offset: cfg.offset,
    fetch: cfg.fetch,
    log: cfg.log,
  });
  return { loaded, data };
}

/** The model's shape as the policies and the trace see it. */
interface ModelInfo {
  batchSize: number;
  numExits: number;
  numClasses: number;
  exitBlocks: readonly number[];
  costFractions: number[];
  /** FLOPs per sample at full depth. */
  flopsPerSample: number;
}

interface Engine {
  device: Device;
  model: EarlyExitModel;
  runner: Runner;
  info: ModelInfo;
  close(): void;
}

/** Creates the device, builds the model and its runner, and computes the cost of each exit. */
async function openEngine(
  core: typeof import('@offramp/core'),
  loaded: LoadedClassifier,
  data: EvalData,
  cfg: EvalConfig,
): Promise<Engine> {
  let device: Device;
  try {
    device = await core.createDevice({ backend: cfg.device });
  } catch (e) {
    throw new RuntimeError(`no ${cfg.device === 'gpu' ? 'GPU' : ''} device: ${(e as Error).message}`, { cause: e });
  }
  let model: EarlyExitModel | null = null;
  let runner: Runner | null = null;
  const close = () => {
    runner?.dispose();
    model?.dispose();
    device.destroy();
  };
  try {
    model = core.buildModel(device, loaded.envelope.model, loaded.tensors);
    runner = new core.Runner(device, model, { maxBatch: cfg.batch });
    if (cfg.mode === 'device' && device.kind !== 'gpu')
      throw new UsageError(`--mode device needs a GPU; this run is on ${device.describe()}: use --mode host or auto`);
    const costs = runner.costs(model.bucket(sliceInput(data.input, data.n, 0, Math.min(data.n, cfg.batch))));
    const info: ModelInfo = {
      batchSize: cfg.batch,
      numExits: model.exitBlocks.length,
      numClasses: model.numClasses,
      exitBlocks: model.exitBlocks,
      costFractions: costs.atExit.map((f) => f / costs.full),
      flopsPerSample: costs.full,
    };
    return { device, model, runner, info, close };
  } catch (e) {
    close();
    throw e;
  }
}

/** Model-dependent option checks (class count, exit count) of the fixed settings, before the long runs. */
function checkPolicyOptions(P: Policies, reqs: PolicyRequest[], info: ModelInfo): void {
  for (const r of reqs) {
    if (r.kind === 'sweep') continue;
    const make =
      r.kind === 'module'
        ? () => r.factory(r.grid?.[0] ?? r.options)
        : r.kind === 'file'
          ? () => P.policyFromJson({ offramp_policy: 1, name: r.name, options: r.options })
          : () => P.createPolicy(r.name, r.options);
    try {
      make().init(info);
    } catch (e) {
      throw asUsage(e, `policy ${r.text}`);
    }
  }
}

function describeRun(log: Logger, engine: Engine, loaded: LoadedClassifier, data: EvalData, batch: number): void {
  const c = log.c;
  const { device, model } = engine;
  log.info(`${c.bold('device')}   ${device.describe()}`);
  log.info(
    `${c.bold('model')}    ${loaded.name}: ${loaded.envelope.model.architecture}, ${model.numBlocks} blocks, exits after blocks ${model.exitBlocks.join(', ')}, ${model.numClasses} classes`,
  );
  log.info(
    `${c.bold('data')}     ${data.name}${data.split !== 'file' ? ` (${data.split})` : ''}: ${data.n} of ${data.available} samples, batch ${batch}`,
  );
}

/** One operating point's results, with what is needed to run it for real later. */
interface SweptPoint {
  result: PointResult;
  make: () => ExitPolicy<any>;
  /** Simulated exits (null: not simulated, the policy needs logits). */
  simExits: Int32Array | null;
}

interface Sweep {
  families: PolicyResult[];
  points: SweptPoint[];
  skipped: EvalResult['skipped'];
}

/** Expands the policies into operating points and replays each over the trace (exact offline simulation). */
async function sweepPolicies(
  P: Policies,
  reqs: PolicyRequest[],
  trace: Trace,
  hasGate: boolean,
  cfg: EvalConfig,
): Promise<Sweep> {
  const skipped: EvalResult['skipped'] = [];
  const ops = await operatingPoints(reqs, trace, hasGate, cfg, skipped);
  if (!ops.length)
    throw new UsageError(
      `none of the policies applies to this model: ${skipped.map((s) => `${s.policy} (${s.reason})`).join('; ')}`,
    );
  const families = new Map<string, PolicyResult>();
  const points: SweptPoint[] = [];
  for (const p of ops) {
    let sim: ReturnType<typeof P.simulate> | null = null;
    let simulated = true;
    try {
      if (p.family === 'oracle') sim = P.oracleExits(trace);
      else {
        const policy = p.make();
        if (policy.needs?.includes('logits')) simulated = false;
        else sim = P.simulate(policy, trace, { maxBatch: cfg.batch });
      }
    } catch (e) {
      throw asUsage(e, `policy ${p.spec}`);
    }
    const pr: PointResult = {
      family: p.family,
      label: p.label,
      spec: p.spec,
      options: p.options,
      reference: Boolean(p.reference),
      simulated,
      accuracy: sim ? sim.accuracy : null,
      accuracyDrop: sim ? sim.accuracyDrop : null,
      agreement: sim ? sim.agreement : Number.NaN,
      meanExitBlock: sim ? sim.meanExitBlock : Number.NaN,
      computeFraction: sim ? sim.meanCost : Number.NaN,
      flopsSpeedup: sim ? 1 / sim.meanCost : Number.NaN,
      exitHistogram: sim ? sim.exitHistogram : [],
      policyFrontier: false,
      frontier: false,
      chosen: false,
      measured: null,
    };
    points.push({ result: pr, make: p.make, simExits: sim ? sim.exits : null });
    const source =
      reqs.find((r) => (r.kind === 'sweep' || r.kind === 'builtin' ? r.name === p.family : p.family.startsWith(r.name)))
        ?.kind ?? 'builtin';
    if (!families.has(p.family)) families.set(p.family, { family: p.family, source, points: [] });
    families.get(p.family)!.points.push(pr);
  }
  return { families: [...families.values()], points, skipped };
}

/** A real run's timing and compute, as reported in the results. */
function measuredRun(r: RealRun, full: RealRun, n: number, mismatches: number | null): MeasuredRun {
  const s = speedupWithSpread(full.walls, r.walls);
  return {
    mode: r.mode,
    wallMs: r.wallMs,
    wallMsRange: [r.walls[0], r.walls[r.walls.length - 1]],
    repeats: r.walls.length,
    samplesPerSec: n / (r.wallMs / 1000),
    speedup: s.speedup,
    speedupRange: s.range,
    withinNoise: s.withinNoise,
    computeFraction: r.flops / r.fullDepthFlops,
    exitsMatch: mismatches === null ? null : mismatches === 0,
    mismatches: mismatches ?? 0,
  };
}

/** Policies that need logits cannot be replayed from the trace: they run for real and take their metrics from that run. */
async function runLogitsPolicies(
  P: Policies,
  sweep: Sweep,
  trace: Trace,
  run: (make: () => ExitPolicy<any>, label: string) => Promise<RealRun>,
  full: RealRun,
  n: number,
): Promise<void> {
  for (const p of sweep.points) {
    const pr = p.result;
    if (pr.simulated) continue;
    const r = await run(p.make, pr.family);
    const s = P.summarize(trace, r.exits);
    Object.assign(pr, {
      accuracy: s.accuracy,
      accuracyDrop: s.accuracyDrop,
      agreement: s.agreement,
      meanExitBlock: s.meanExitBlock,
      computeFraction: s.meanCost,
      flopsSpeedup: 1 / s.meanCost,
      exitHistogram: s.exitHistogram,
    });
    pr.measured = measuredRun(r, full, n, null);
  }
}

/**
 * Marks the Pareto frontier over every deployable point and per policy, and each policy's chosen point: the
 * cheapest within `maxDrop` of full depth (or the one with the smallest drop when none is).
 */
function choosePoints(P: Policies, families: PolicyResult[], maxDrop: number): PointResult[] {
  const quality = (p: PointResult) => p.accuracy as number;
  const drop = (p: PointResult) => p.accuracyDrop as number;
  const deployable = families.flatMap((f) => f.points.filter((p) => !p.reference));
  for (const p of P.paretoFrontier(deployable, { cost: (x) => x.computeFraction, quality })) p.frontier = true;
  for (const fam of families) {
    const pts = fam.points.filter((p) => !p.reference);
    for (const p of P.paretoFrontier(pts, { cost: (x) => x.computeFraction, quality })) p.policyFrontier = true;
    const ok = pts.filter((p) => drop(p) <= maxDrop + 1e-12);
    const pick = ok.length
      ? ok.sort((a, b) => a.computeFraction - b.computeFraction || quality(b) - quality(a))[0]
      : pts.sort((a, b) => drop(a) - drop(b) || a.computeFraction - b.computeFraction)[0];
    if (pick) pick.chosen = true;
  }
  return deployable;
}

/** The simulated points `--measure` asks for. */
function pointsToMeasure(sweep: Sweep, measure: MeasureMode): SweptPoint[] {
  const runnable = sweep.points.filter(({ result: p }) => !p.reference && p.simulated);
  if (measure === 'compare') {
    const chosen = runnable.filter(({ result: p }) => p.chosen);
    const fixedExit = chosen.find(({ result: p }) => p.family === 'static');
    const perInput = chosen
      .filter(({ result: p }) => p.family !== 'static')
      .sort((a, b) => b.result.flopsSpeedup - a.result.flopsSpeedup)[0];
    return [perInput, fixedExit].filter((p): p is SweptPoint => p !== undefined);
  }
  return runnable.filter(
    ({ result: p }) =>
      measure === 'all' ||
      (measure === 'frontier' && (p.policyFrontier || p.chosen)) ||
      (measure === 'chosen' && p.chosen),
  );
}

/** Runs the chosen points for real, times them and checks their exits against the simulated ones. */
async function measurePoints(
  toMeasure: SweptPoint[],
  run: (make: () => ExitPolicy<any>, label: string) => Promise<RealRun>,
  full: RealRun,
  n: number,
): Promise<string[]> {
  const mismatched: string[] = [];
  let k = 0;
  for (const p of toMeasure) {
    k++;
    const pr = p.result;
    const r = await run(p.make, `${pr.family} ${k}/${toMeasure.length}`);
    let mismatches = 0;
    for (let i = 0; i < n; i++) if (r.exits[i] !== p.simExits![i]) mismatches++;
    if (mismatches) mismatched.push(pr.spec);
    pr.measured = measuredRun(r, full, n, mismatches);
  }
  return mismatched;
}

/** The result document (results.json, --json) from what the stages returned. */
function assembleResult(
  stages: {
    cfg: EvalConfig;
    loaded: LoadedClassifier;
    data: EvalData;
    engine: Engine;
    trace: Trace;
    full: RealRun;
    sweep: Sweep;
    toMeasure: SweptPoint[];
    mismatched: string[];
  },
  timings: EvalResult['timings'],
): EvalResult {
  const { cfg, loaded, data, engine, trace, full, sweep, toMeasure, mismatched } = stages;
  const info = engine.info;
  return {
    command: 'eval',
    version: 1,
    date: new Date().toISOString(),
    model: {
      dir: loaded.dir,
      name: loaded.name,
      architecture: loaded.envelope.model.architecture,
      numBlocks: engine.model.numBlocks,
      exitBlocks: [...info.exitBlocks],
      numClasses: info.numClasses,
      parameters: loaded.parameters,
      flopsPerSample: info.flopsPerSample,
      costFractions: info.costFractions,
    },
    data: {
      name: data.name,
      split: data.split,
      n: data.n,
      available: data.available,
      labelled: true,
      classNames: data.classNames,
    },
    device: { kind: engine.device.kind === 'gpu' ? 'gpu' : 'cpu', adapter: engine.device.describe() },
    batch: cfg.batch,
    maxDrop: cfg.maxDrop,
    full: {
      accuracy: trace.samples.reduce((a, s) => a + (s.finalPrediction === s.label ? 1 : 0), 0) / data.n,
      wallMs: full.wallMs,
      wallMsRange: [full.walls[0], full.walls[full.walls.length - 1]],
      repeats: full.walls.length,
      samplesPerSec: data.n / (full.wallMs / 1000),
      mode: full.mode,
      meanExitBlock: full.meanExitBlock,
    },
    policies: sweep.families,
    skipped: sweep.skipped,
    checks: { measured: toMeasure.length, exitsMatch: mismatched.length === 0, mismatchedPoints: mismatched },
    timings,
  };
}

/** Runs the whole evaluation: load, trace, sweep, choose, real runs, result. */
export async function runEvaluation(cfg: EvalConfig): Promise<EvalResult> {
  const log = cfg.log;
  const t0 = performance.now();
  const reqs = await checkConfig(cfg);
  const core = await import('@offramp/core');
  const P = await import('@offramp/policies');
  const { loaded, data } = await loadModelAndData(cfg);
  const engine = await openEngine(core, loaded, data, cfg);
  try {
    const { runner, info } = engine;
    checkPolicyOptions(P, reqs, info);
    const loadMs = performance.now() - t0;
    describeRun(log, engine, loaded, data, cfg.batch);

    const tTrace = performance.now();
    const trace = cfg.traceFile
      ? await loadMatchingTrace(P, cfg.traceFile, info, loaded, data, log)
      : await recordTraceChunked(runner, data, cfg.batch, log);
    const traceMs = performance.now() - tTrace;

    const tSweep = performance.now();
    const sweep = await sweepPolicies(P, reqs, trace, Boolean(loaded.envelope.model.exits.gate), cfg);
    const sweepMs = performance.now() - tSweep;

    // full-depth baseline at this batch size, then the operating points that need real runs
    const tMeasure = performance.now();
    const run = (make: () => ExitPolicy<any>, label: string) =>
      realRun(runner, data, cfg.batch, make, cfg.mode, cfg.repeats, label, log);
    const full = await run(() => core.neverExit(), 'full depth');
    await runLogitsPolicies(P, sweep, trace, run, full, data.n);
    choosePoints(P, sweep.families, cfg.maxDrop);
    const toMeasure = pointsToMeasure(sweep, cfg.measure);
    const mismatched = await measurePoints(toMeasure, run, full, data.n);
    const measureMs = performance.now() - tMeasure;

    return assembleResult(
      { cfg, loaded, data, engine, trace, full, sweep, toMeasure, mismatched },
      {
        loadMs,
        traceMs,
        sweepMs,
        measureMs,
        totalMs: performance.now() - t0,
      },
    );
  } finally {
    engine.close();
  }
}
