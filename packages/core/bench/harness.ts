// Benchmark helpers: interleaved side-by-side timing with medians, output comparison within a tolerance,
// machine metadata and plain-text tables.
import { cpus, loadavg, totalmem } from 'node:os';

/** One side of a comparison: `record` issues the work for one op, `sync` waits until the GPU has done it. */
export interface Side {
  record: () => void;
  sync: () => Promise<void>;
}

export interface PairTiming {
  /** Milliseconds per op of each timed sample. */
  a: number[];
  b: number[];
  /** Ops recorded back-to-back per sample (before one sync). */
  reps: number;
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};

async function sample(side: Side, reps: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) side.record();
  await side.sync();
  return (performance.now() - t0) / reps;
}

/**
 * Times two sides against each other. After `warmup` untimed samples of each, ops that take less than
 * `minSampleMs` are repeated back-to-back (the same count on both sides) so each sample spans at least
 * that long; then `runs` samples of each side alternate (a b, b a, a b, ...) so that load from other
 * processes falls on both.
 */
export async function timePair(
  a: Side,
  b: Side,
  opts: { warmup: number; runs: number; minSampleMs: number; maxReps: number },
): Promise<PairTiming> {
  const wa: number[] = [];
  const wb: number[] = [];
  for (let i = 0; i < opts.warmup; i++) {
    wa.push(await sample(a, 1));
    wb.push(await sample(b, 1));
  }
  const fastest = Math.max(1e-3, Math.min(median(wa), median(wb)));
  const reps = Math.max(1, Math.min(opts.maxReps, Math.ceil(opts.minSampleMs / fastest)));
  const out: PairTiming = { a: [], b: [], reps };
  for (let i = 0; i < opts.runs; i++) {
    if (i % 2 === 0) {
      out.a.push(await sample(a, reps));
      out.b.push(await sample(b, reps));
    } else {
      out.b.push(await sample(b, reps));
      out.a.push(await sample(a, reps));
    }
  }
  return out;
}

export interface Comparison {
  ok: boolean;
  checked: number;
  maxAbsErr: number;
  firstBad?: { index: number; got: number; want: number };
}

/** |got − want| ≤ atol + rtol·|want| elementwise; NaN must match NaN and infinities must be equal. */
export function compare(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: { atol: number; rtol: number },
): Comparison {
  const r: Comparison = { ok: got.length === want.length, checked: Math.min(got.length, want.length), maxAbsErr: 0 };
  for (let i = 0; i < r.checked; i++) {
    const g = got[i];
    const w = want[i];
    let bad: boolean;
    if (Number.isNaN(g) || Number.isNaN(w)) bad = Number.isNaN(g) !== Number.isNaN(w);
    else if (!Number.isFinite(g) || !Number.isFinite(w)) bad = g !== w;
    else {
      const e = Math.abs(g - w);
      r.maxAbsErr = Math.max(r.maxAbsErr, e);
      bad = e > tol.atol + tol.rtol * Math.abs(w);
    }
    if (bad && r.ok) {
      r.ok = false;
      r.firstBad = { index: i, got: g, want: w };
    }
  }
  return r;
}

export interface MachineInfo {
  cpuCount: number;
  cpuModel: string;
  totalMemGiB: number;
  loadAverage1m: number;
  node: string;
  platform: string;
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  return {
    cpuCount: c.length,
    cpuModel: c[0]?.model?.trim() ?? 'unknown',
    totalMemGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadAverage1m: Math.round(loadavg()[0] * 100) / 100,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** A plain-text table with right-aligned numeric columns. */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, j) => Math.max(...cells.map((r) => r[j].length)));
  const line = (r: string[]) => r.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export const fixed = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
