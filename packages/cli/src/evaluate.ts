// The evaluation behind `offramp eval` and `offramp demo`: one full-depth run records every exit's signals
// (the trace), each policy is evaluated over a grid offline by exact replay (simulate), and the chosen
// operating points run again for real to measure wall-clock time, with a check that the real exits equal
// the simulated ones.
import { readFileSync } from 'node:fs';
import type { Backend, Device, EarlyExitModel, ExitPolicy, ModelInput, Runner, RunResult } from '@offramp/core';
import type { Trace } from '@offramp/policies';
import { type DataRequest, type EvalData, loadEvalData } from './data.js';
import { asUsage, RuntimeError, UsageError } from './errors.js';
import { type LoadedClassifier, loadClassifier } from './model.js';
import { builtinSpec, type OperatingPoint, type PolicyRequest, parsePolicyList, pointLabel } from './policies.js';
import type { Logger } from './util/log.js';

export type MeasureMode = 'frontier' | 'chosen' | 'all' | 'none';
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
  wallMs: number;
  samplesPerSec: number;
  /** Full-depth wall time / this run's wall time, same batch size. */
  speedup: number;
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
    wallMs: number;
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
}

/**
 * Loads a classifier and its data, builds the device and runner, says what runs where, and records the
 * full-depth trace (calibrate and trace share this). Call `close()` when done with the runner.
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
    const trace = await recordTraceChunked(runner, data, o.batch, log);
    return { loaded, data, device, model, runner, trace, close };
  } catch (e) {
    close();
    throw e;
  }
}

/** Records the trace chunk by chunk (like the runner's own chunks) with a progress bar. */
export async function recordTraceChunked(runner: Runner, data: EvalData, batch: number, log: Logger): Promise<Trace> {
  const { recordTrace } = await import('@offramp/policies');
  const bar = log.progress('full-depth trace', data.n);
  let trace: Trace | null = null;
  try {
    for (const [a, b] of chunks(data.n, batch)) {
      const t = await recordTrace(runner, sliceInput(data.input, data.n, a, b), data.labels.subarray(a, b));
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
  wallMs: number;
  exits: Int32Array;
  mode: 'host' | 'device';
  flops: number;
  fullDepthFlops: number;
  meanExitBlock: number;
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
    wallMs: walls[Math.floor(walls.length / 2)],
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

/**
 * Reads a trace file and checks it belongs to this model and data (exits, classes, cost fractions, sample
 * count, labels); a trace without labels takes the data's.
 */
function loadMatchingTrace(
  file: string,
  info: { numExits: number; numClasses: number; exitBlocks: readonly number[]; costFractions: number[] },
  data: EvalData,
  parse: typeof import('@offramp/policies').parseTraceFile,
  log: Logger,
): Trace {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new RuntimeError(
      `--trace: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(text, file);
  } catch (e) {
    throw new UsageError(`--trace: ${(e as Error).message}`);
  }
  const { trace, meta } = parsed;
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

/** Runs the whole evaluation. */
export async function runEvaluation(cfg: EvalConfig): Promise<EvalResult> {
  const log = cfg.log;
  const c = log.c;
  const t0 = performance.now();
  if (!Number.isInteger(cfg.batch) || cfg.batch < 1 || cfg.batch > 4096)
    throw new UsageError(`--batch must be an integer in [1, 4096], got ${cfg.batch}`);
  // policies first: a typo fails before anything heavy
  const reqs = await parsePolicyList(cfg.policies);
  const core = await import('@offramp/core');
  const P = await import('@offramp/policies');
  const loaded: LoadedClassifier = await loadClassifier(cfg.model);
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
    log,
  });

  let device: Device;
  try {
    device = await core.createDevice({ backend: cfg.device });
  } catch (e) {
    throw new RuntimeError(`no ${cfg.device === 'gpu' ? 'GPU' : ''} device: ${(e as Error).message}`, { cause: e });
  }
  let model: EarlyExitModel | null = null;
  let runner: Runner | null = null;
  try {
    model = core.buildModel(device, loaded.envelope.model, loaded.tensors);
    runner = new core.Runner(device, model, { maxBatch: cfg.batch });
    if (cfg.mode === 'device' && device.kind !== 'gpu')
      throw new UsageError(`--mode device needs a GPU; this run is on ${device.describe()}: use --mode host or auto`);
    const T = model.bucket(sliceInput(data.input, data.n, 0, Math.min(data.n, cfg.batch)));
    const costs = runner.costs(T);
    const E = model.exitBlocks.length;
    const info = {
      batchSize: cfg.batch,
      numExits: E,
      numClasses: model.numClasses,
      exitBlocks: model.exitBlocks,
      costFractions: costs.atExit.map((f) => f / costs.full),
    };
    // model-dependent option checks (class count, exit count) before the long runs
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
    const loadMs = performance.now() - t0;
    log.info(`${c.bold('device')}   ${device.describe()}`);
    log.info(
      `${c.bold('model')}    ${loaded.name}: ${loaded.envelope.model.architecture}, ${model.numBlocks} blocks, exits after blocks ${model.exitBlocks.join(', ')}, ${model.numClasses} classes`,
    );
    log.info(
      `${c.bold('data')}     ${data.name}${data.split !== 'file' ? ` (${data.split})` : ''}: ${data.n} of ${data.available} samples, batch ${cfg.batch}`,
    );

    const tTrace = performance.now();
    const trace = cfg.traceFile
      ? loadMatchingTrace(cfg.traceFile, info, data, P.parseTraceFile, log)
      : await recordTraceChunked(runner, data, cfg.batch, log);
    const traceMs = performance.now() - tTrace;

    const tSweep = performance.now();
    const skipped: EvalResult['skipped'] = [];
    const points = await operatingPoints(reqs, trace, Boolean(loaded.envelope.model.exits.gate), cfg, skipped);
    if (!points.length)
      throw new UsageError(
        `none of the policies applies to this model: ${skipped.map((s) => `${s.policy} (${s.reason})`).join('; ')}`,
      );
    const labelled = true;
    const fullAcc = trace.samples.reduce((a, s) => a + (s.finalPrediction === s.label ? 1 : 0), 0) / data.n;
    const families = new Map<string, PolicyResult>();
    const sims = new Map<PointResult, Int32Array | null>();
    const makers = new Map<PointResult, () => ExitPolicy<any>>();
    for (const p of points) {
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
      sims.set(pr, sim ? sim.exits : null);
      makers.set(pr, p.make);
      const source =
        reqs.find((r) =>
          r.kind === 'sweep' || r.kind === 'builtin' ? r.name === p.family : p.family.startsWith(r.name),
        )?.kind ?? 'builtin';
      if (!families.has(p.family)) families.set(p.family, { family: p.family, source, points: [] });
      families.get(p.family)!.points.push(pr);
    }
    const sweepMs = performance.now() - tSweep;

    // full-depth baseline at this batch size, then the operating points that need real runs
    const tMeasure = performance.now();
    const full = await realRun(
      runner,
      data,
      cfg.batch,
      () => core.neverExit(),
      cfg.mode === 'auto' ? 'auto' : cfg.mode,
      cfg.repeats,
      'full depth',
      log,
    );
    const fullRes = {
      accuracy: fullAcc,
      wallMs: full.wallMs,
      samplesPerSec: data.n / (full.wallMs / 1000),
      mode: full.mode,
      meanExitBlock: full.meanExitBlock,
    };

    // logits-only policies are run for real first: their metrics come from that run
    for (const fam of families.values()) {
      for (const pr of fam.points) {
        if (pr.simulated) continue;
        const r = await realRun(runner, data, cfg.batch, makers.get(pr)!, cfg.mode, cfg.repeats, pr.family, log);
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
        pr.measured = {
          mode: r.mode,
          wallMs: r.wallMs,
          samplesPerSec: data.n / (r.wallMs / 1000),
          speedup: full.wallMs / r.wallMs,
          computeFraction: r.flops / r.fullDepthFlops,
          exitsMatch: null,
          mismatches: 0,
        };
      }
    }
    // frontiers and chosen points
    const quality = (p: PointResult) => (labelled ? (p.accuracy as number) : p.agreement);
    const deployable = [...families.values()].flatMap((f) => f.points.filter((p) => !p.reference));
    for (const p of P.paretoFrontier(deployable, { cost: (x) => x.computeFraction, quality })) p.frontier = true;
    for (const fam of families.values()) {
      const pts = fam.points.filter((p) => !p.reference);
      for (const p of P.paretoFrontier(pts, { cost: (x) => x.computeFraction, quality })) p.policyFrontier = true;
      const drop = (p: PointResult) => (labelled ? (p.accuracyDrop as number) : 1 - p.agreement);
      const ok = pts.filter((p) => drop(p) <= cfg.maxDrop + 1e-12);
      const pick = ok.length
        ? ok.sort((a, b) => a.computeFraction - b.computeFraction || quality(b) - quality(a))[0]
        : pts.sort((a, b) => drop(a) - drop(b) || a.computeFraction - b.computeFraction)[0];
      if (pick) pick.chosen = true;
    }
    const toMeasure = deployable.filter(
      (p) =>
        p.simulated &&
        (cfg.measure === 'all' ||
          (cfg.measure === 'frontier' && (p.policyFrontier || p.chosen)) ||
          (cfg.measure === 'chosen' && p.chosen)),
    );
    const mismatched: string[] = [];
    let k = 0;
    for (const pr of toMeasure) {
      k++;
      const r = await realRun(
        runner,
        data,
        cfg.batch,
        makers.get(pr)!,
        cfg.mode,
        cfg.repeats,
        `${pr.family} ${k}/${toMeasure.length}`,
        log,
      );
      const simExits = sims.get(pr)!;
      let mismatches = 0;
      for (let i = 0; i < data.n; i++) if (r.exits[i] !== simExits[i]) mismatches++;
      if (mismatches) mismatched.push(pr.spec);
      pr.measured = {
        mode: r.mode,
        wallMs: r.wallMs,
        samplesPerSec: data.n / (r.wallMs / 1000),
        speedup: full.wallMs / r.wallMs,
        computeFraction: r.flops / r.fullDepthFlops,
        exitsMatch: mismatches === 0,
        mismatches,
      };
    }
    const measureMs = performance.now() - tMeasure;
    const result: EvalResult = {
      command: 'eval',
      version: 1,
      date: new Date().toISOString(),
      model: {
        dir: loaded.dir,
        name: loaded.name,
        architecture: loaded.envelope.model.architecture,
        numBlocks: model.numBlocks,
        exitBlocks: [...model.exitBlocks],
        numClasses: model.numClasses,
        parameters: loaded.parameters,
        flopsPerSample: costs.full,
        costFractions: info.costFractions,
      },
      data: {
        name: data.name,
        split: data.split,
        n: data.n,
        available: data.available,
        labelled,
        classNames: data.classNames,
      },
      device: { kind: device.kind === 'gpu' ? 'gpu' : 'cpu', adapter: device.describe() },
      batch: cfg.batch,
      maxDrop: cfg.maxDrop,
      full: fullRes,
      policies: [...families.values()],
      skipped,
      checks: { measured: toMeasure.length, exitsMatch: mismatched.length === 0, mismatchedPoints: mismatched },
      timings: { loadMs, traceMs, sweepMs, measureMs, totalMs: performance.now() - t0 },
    };
    return result;
  } finally {
    runner?.dispose();
    model?.dispose();
    device.destroy();
  }
}
