// Small helpers for the Mamba benchmark: medians, interleaved timing of several cases, the memory-bandwidth
// floor of a decode step, and a plain-text table.

export const median = (xs: readonly number[]): number => {
  if (xs.length === 0) throw new Error('median: no samples; time at least one run');
  const s = [...xs].sort((x, y) => x - y);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};

/**
 * Times each case `warmup` times untimed, then `runs` times with the cases interleaved and their order
 * rotated every round (so that load from other processes falls on all of them); milliseconds per run.
 */
export async function timeCases(
  cases: Record<string, () => Promise<void>>,
  o: { warmup: number; runs: number },
): Promise<Record<string, number[]>> {
  const names = Object.keys(cases);
  for (let i = 0; i < o.warmup; i++) for (const n of names) await cases[n]();
  const out: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < o.runs; r++) {
    for (let k = 0; k < names.length; k++) {
      const n = names[(k + r) % names.length];
      const t0 = performance.now();
      await cases[n]();
      out[n].push(performance.now() - t0);
    }
  }
  return out;
}

/**
 * Memory-bandwidth floor of a step that must read `bytes` once, given a copy of `copyBytes` that took
 * `copyMs` (a copy reads and writes each byte: bandwidth = 2·copyBytes / time). Returns GB/s and ms.
 */
export function bandwidthFloor(bytes: number, copyBytes: number, copyMs: number): { gbPerS: number; floorMs: number } {
  if (!(copyMs > 0) || !(copyBytes > 0))
    throw new Error(`bandwidthFloor: copy of ${copyBytes} bytes in ${copyMs} ms; both must be positive`);
  const gbPerS = (2 * copyBytes) / (copyMs * 1e-3) / 1e9;
  return { gbPerS, floorMs: (bytes / (gbPerS * 1e9)) * 1e3 };
}

export function formatTable(header: string[], rows: (string | number)[][]): string {
  const all = [header, ...rows.map((r) => r.map(String))];
  const w = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i])).join('  ');
  return [line(all[0]), line(w.map((n) => '-'.repeat(n))), ...all.slice(1).map(line)].join('\n');
}
