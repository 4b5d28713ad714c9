// Merges several results files of bench/kernels.ts (separate runs) into one: per case, the median over
// runs of each run's medians, and the per-run figures; prints a Markdown table of the merged figures.
// Usage: tsx bench/merge-kernel-runs.ts --out results/kernels.json run1.json run2.json run3.json
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fixed, median } from './harness.js';

interface RunCase {
  offramp_ms: number;
  tfjs_webgpu_ms: number;
  ratio: number;
  gflops: number;
  tfjs_gflops: number;
  offramp_gbps: number;
  offramp_spec?: Record<string, unknown>;
}
interface RunFile {
  benchmark: string;
  date: string;
  adapter: string;
  tfjs_adapter: string;
  versions: Record<string, string>;
  machine: Record<string, unknown>;
  runs: Record<string, number>;
  method: string;
  targets: { matmul_1024_ratio_min: number };
  cases: Record<string, RunCase>;
}

const { values, positionals } = parseArgs({ options: { out: { type: 'string' } }, allowPositionals: true });
if (positionals.length < 2 || !values.out) {
  console.error('usage: tsx bench/merge-kernel-runs.ts --out <merged.json> <run1.json> <run2.json> [...]');
  process.exit(2);
}
const files = positionals.map((f) => {
  const r = JSON.parse(readFileSync(f, 'utf8')) as RunFile;
  if (r.benchmark !== 'kernels' || typeof r.cases !== 'object') {
    console.error(`${f}: not a results file of bench/kernels.ts (benchmark is '${r.benchmark}')`);
    process.exit(2);
  }
  return r;
});
const adapters = new Set(files.map((f) => f.adapter));
if (adapters.size > 1) {
  console.error(`the runs were made on different adapters (${[...adapters].join('; ')}); not merging`);
  process.exit(2);
}

const names = Object.keys(files[0].cases).filter((n) => files.every((f) => f.cases[n]));
const cases: Record<string, unknown> = {};
const rows: string[] = [];
const below1: string[] = [];
const targetCase = 'matmul 1024×1024×1024';
const targetMin = files[0].targets.matmul_1024_ratio_min;
for (const n of names) {
  const per = files.map((f) => f.cases[n]);
  const ours = median(per.map((c) => c.offramp_ms));
  const theirs = median(per.map((c) => c.tfjs_webgpu_ms));
  const ratio = median(per.map((c) => c.ratio));
  const gflops = median(per.map((c) => c.gflops));
  cases[n] = {
    offramp_ms: ours,
    tfjs_webgpu_ms: theirs,
    ratio,
    gflops,
    tfjs_gflops: median(per.map((c) => c.tfjs_gflops)),
    offramp_gbps: median(per.map((c) => c.offramp_gbps)),
    ...(per[0].offramp_spec ? { offramp_spec: per[0].offramp_spec } : {}),
    per_run: {
      offramp_ms: per.map((c) => c.offramp_ms),
      tfjs_webgpu_ms: per.map((c) => c.tfjs_webgpu_ms),
      ratio: per.map((c) => c.ratio),
    },
  };
  if (ratio < 1) below1.push(n);
  rows.push(
    `| ${n} | ${fixed(ours, 1)} | ${fixed(theirs, 1)} | **${fixed(ratio, 2)}** (${per.map((c) => fixed(c.ratio, 2)).join(', ')}) | ${fixed(gflops, 2)} |`,
  );
}
const target = cases[targetCase] as { ratio: number } | undefined;
const merged = {
  benchmark: 'kernels',
  merged_runs: files.length,
  date: files[files.length - 1].date,
  dates: files.map((f) => f.date),
  adapter: files[0].adapter,
  tfjs_adapter: files[0].tfjs_adapter,
  versions: files[0].versions,
  machine: files[0].machine,
  load_average_1m: files.map((f) => f.machine.loadAverage1m),
  runs: files[0].runs,
  method: `${files[0].method} Merged: per case, the median over ${files.length} separate runs of each run's median (ratio: median of the per-run ratios).`,
  targets: {
    matmul_1024_ratio_min: targetMin,
    matmul_1024_ratio: target?.ratio ?? null,
    matmul_1024_met: target ? target.ratio >= targetMin : null,
    no_case_below_1: below1.length === 0,
    cases_below_1: below1,
  },
  cases,
};
writeFileSync(values.out, `${JSON.stringify(merged, null, 2)}\n`);
console.log(
  '| case | Offramp ms | tfjs ms | ratio (per run) | Offramp GFLOP/s |\n|---|---:|---:|---:|---:|\n' + rows.join('\n'),
);
console.log(
  `\nmatmul 1024³ ratio ${target ? fixed(target.ratio, 2) : 'n/a'} (target ≥ ${targetMin}); cases below 1.0: ${below1.length ? below1.join(', ') : 'none'}`,
);
console.log(`wrote ${values.out}`);
