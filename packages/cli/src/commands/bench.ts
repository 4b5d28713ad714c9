// `offramp bench`: runs the benchmark programs of an Offramp checkout (`pnpm bench:kernels`,
// `pnpm bench:engine`: packages/core/bench/*.ts through tsx) and prints the summary of the results they
// write to packages/core/bench/results/*.json.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Table from 'cli-table3';
import { RuntimeError, UsageError } from '../errors.js';
import { fixed } from '../util/format.js';
import type { Logger } from '../util/log.js';
import { didYouMean } from '../util/suggest.js';
import { workspaceRoot } from '../util/workspace.js';

export const BENCHMARKS = ['kernels', 'engine'] as const;
export type Benchmark = (typeof BENCHMARKS)[number];

export interface BenchOptions {
  run: boolean;
  resultsDir?: string;
}

function resultsDirOf(o: BenchOptions): string {
  if (o.resultsDir) return o.resultsDir;
  const root = workspaceRoot();
  if (!root)
    throw new RuntimeError(
      'offramp bench runs the benchmark programs of an Offramp checkout (packages/core/bench); run it inside one, or pass --results DIR with kernels.json / engine.json',
    );
  return join(root, 'packages', 'core', 'bench', 'results');
}

function runScript(root: string, which: Benchmark, log: Logger): Promise<void> {
  return new Promise((res, rej) => {
    log.info(log.c.bold(`running pnpm bench:${which} (this takes a while) ...`));
    // the programs' own output goes to stderr when stdout carries JSON
    const child = spawn('pnpm', [`bench:${which}`], {
      cwd: root,
      stdio: ['ignore', log.json ? 'pipe' : 'inherit', 'inherit'],
    });
    child.stdout?.pipe(process.stderr);
    child.on('error', (e) =>
      rej(new RuntimeError(`could not start pnpm bench:${which}: ${e.message} (is pnpm installed?)`)),
    );
    child.on('close', (code) =>
      code === 0 ? res() : rej(new RuntimeError(`pnpm bench:${which} exited with code ${code}`)),
    );
  });
}

export interface BenchSummary {
  benchmark: Benchmark;
  file: string;
  date?: string;
  adapter?: string;
  rows: { name: string; value: string }[];
  cases?: { name: string; offramp_ms: number; tfjs_webgpu_ms: number; ratio: number; gflops?: number }[];
  targets?: Record<string, unknown>;
}

/** The readable summary of one results file. */
export function summarize(which: Benchmark, file: string): BenchSummary {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new RuntimeError(`${file} is not valid JSON: ${(e as Error).message}; run \`offramp bench ${which}\` again`);
  }
  const out: BenchSummary = {
    benchmark: which,
    file,
    date: j.date as string,
    adapter: j.adapter as string,
    rows: [],
    targets: j.targets as Record<string, unknown>,
  };
  const ms = (k: string) => (typeof j[k] === 'number' ? `${fixed(j[k] as number, 1)} ms` : undefined);
  if (which === 'engine') {
    const add = (name: string, v: string | undefined) => v !== undefined && out.rows.push({ name, value: v });
    add('Offramp, full depth (device mode)', ms('offramp_ms'));
    add('TensorFlow.js WebGPU, same forward', ms('tfjs_webgpu_ms'));
    add(
      'ratio (tfjs / Offramp)',
      typeof j.ratio_vs_tfjs === 'number' ? `${fixed(j.ratio_vs_tfjs as number, 2)}×` : undefined,
    );
    add('halving policy, host mode', ms('halving_host_ms'));
    add('halving policy, device mode', ms('halving_device_ms'));
    add('halving policy, ideal', ms('halving_ideal_ms'));
    add(
      'device mode vs ideal',
      typeof j.halving_device_vs_ideal === 'number'
        ? `${fixed(100 * (j.halving_device_vs_ideal as number), 1)}%`
        : undefined,
    );
    add('host exit check overhead per block', ms('host_exit_check_overhead_ms_per_block'));
    add('readback round trip', ms('readback_roundtrip_ms'));
    if (j.model && typeof j.model === 'object') {
      const m = j.model as Record<string, unknown>;
      out.rows.unshift({
        name: 'model',
        value: `${m.architecture}, ${m.num_layers} blocks, width ${m.hidden_size}, batch ${m.batch}, sequence ${m.sequence}`,
      });
    }
  } else {
    const cases = (j.cases ?? {}) as Record<string, Record<string, number>>;
    out.cases = Object.entries(cases).map(([name, c]) => ({
      name,
      offramp_ms: c.offramp_ms,
      tfjs_webgpu_ms: c.tfjs_webgpu_ms,
      ratio: c.ratio,
      gflops: c.gflops,
    }));
  }
  return out;
}

export async function benchCommand(which: string[], o: BenchOptions, log: Logger) {
  const list = (which.length ? which : [...BENCHMARKS]) as Benchmark[];
  for (const w of list)
    if (!(BENCHMARKS as readonly string[]).includes(w))
      throw new UsageError(`unknown benchmark '${w}'${didYouMean(w, BENCHMARKS)}: use ${BENCHMARKS.join(' or ')}`);
  const dir = resultsDirOf(o);
  if (o.run) {
    const root = workspaceRoot();
    if (!root)
      throw new RuntimeError(
        'running the benchmarks needs an Offramp checkout (packages/core/bench); use --no-run to print saved results',
      );
    for (const w of list) await runScript(root, w, log);
  }
  const c = log.c;
  const summaries: BenchSummary[] = [];
  for (const w of list) {
    const file = join(dir, `${w}.json`);
    if (!existsSync(file)) {
      throw new RuntimeError(
        `${file} does not exist: run \`offramp bench ${w}\` (or \`pnpm bench:${w}\` at the repository root) to produce it`,
      );
    }
    const s = summarize(w, file);
    summaries.push(s);
    log.info();
    log.info(c.bold(c.cyan(`${w} benchmark`)) + c.dim(`  ${s.date ?? ''}  ${s.adapter ?? ''}`));
    if (s.rows.length) {
      const t = new Table({ style: { head: [], border: [] } });
      for (const r of s.rows) t.push([r.name, r.value]);
      log.info(t.toString());
    }
    if (s.cases?.length) {
      const t = new Table({
        head: ['case', 'Offramp ms', 'tfjs ms', 'ratio', 'GFLOP/s'].map((h) => c.bold(h)),
        style: { head: [], border: [] },
        colAligns: ['left', 'right', 'right', 'right', 'right'],
      });
      for (const x of s.cases)
        t.push([
          x.name,
          fixed(x.offramp_ms, 2),
          fixed(x.tfjs_webgpu_ms, 2),
          `${fixed(x.ratio, 2)}×`,
          fixed(x.gflops, 2),
        ]);
      log.info(t.toString());
    }
    if (s.targets) {
      for (const [k, v] of Object.entries(s.targets)) {
        const met =
          v && typeof v === 'object' && 'met' in v
            ? (v as { met: unknown }).met
            : typeof v === 'boolean'
              ? v
              : undefined;
        if (met === undefined) continue;
        log.info(
          `  target ${k}: ${met ? c.green('met') : c.red('missed')}${v && typeof v === 'object' && 'target' in v ? ` (${(v as { target: unknown }).target})` : ''}`,
        );
      }
    }
    log.info(c.dim(`  from ${file}`));
  }
  const out = { command: 'bench', results: summaries };
  log.result(out);
  return out;
}
