// Number formatting and terminal bar charts shared by the commands' tables and reports.

/** Percentage with `digits` decimals, e.g. 0.8734 → '87.34%'. */
export function pct(x: number | null | undefined, digits = 2): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  return `${(100 * x).toFixed(digits)}%`;
}

/** Signed percentage points, e.g. 0.012 → '+1.20 pp'. */
export function pp(x: number | null | undefined, digits = 2): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  const v = 100 * x;
  return `${v > 0 ? '+' : v < 0 ? '−' : ''}${Math.abs(v).toFixed(digits)} pp`;
}

export function fixed(x: number | null | undefined, digits = 2): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  return x.toFixed(digits);
}

/** A compact number: 4 significant digits for thresholds and option values. */
export function short(x: unknown): string {
  if (typeof x === 'number') {
    if (Number.isInteger(x)) return String(x);
    return String(Number(x.toPrecision(4)));
  }
  if (Array.isArray(x)) return `[${x.map(short).join(',')}]`;
  if (x && typeof x === 'object') return JSON.stringify(x);
  return String(x);
}

/** `k=v, k=v` for option objects (numbers shortened). */
export function optionsText(o: Record<string, unknown>): string {
  const entries = Object.entries(o);
  return entries.length ? entries.map(([k, v]) => `${k}=${short(v)}`).join(', ') : '(defaults)';
}

/** FLOPs with an SI prefix: 10683886 → '10.68 MFLOP'. */
export function flops(x: number): string {
  const units = ['', 'k', 'M', 'G', 'T', 'P'];
  let v = x;
  let u = 0;
  while (Math.abs(v) >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v.toFixed(0) : v.toFixed(2)} ${units[u]}FLOP`;
}

/** Bytes with a binary prefix. */
export function bytes(x: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = x;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

export function count(x: number): string {
  return x.toLocaleString('en-US');
}

/** Horizontal bars, one line per entry: `label  ████▌   123 (45.6%)`. */
export function bars(entries: { label: string; value: number }[], width = 30, char = '█'): string[] {
  const total = entries.reduce((a, e) => a + e.value, 0);
  const max = Math.max(1, ...entries.map((e) => e.value));
  const labelW = Math.max(...entries.map((e) => e.label.length));
  const partial = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
  return entries.map((e) => {
    const eighths = Math.round((e.value / max) * width * 8);
    const full = Math.floor(eighths / 8);
    const bar = (char.repeat(full) + (char === '█' ? partial[eighths % 8] : '')).padEnd(width + 1);
    const share = total ? ` (${((100 * e.value) / total).toFixed(1)}%)` : '';
    return `${e.label.padEnd(labelW)}  ${bar}${String(e.value).padStart(6)}${share}`;
  });
}

/** Seconds or milliseconds, readable. */
export function duration(ms: number): string {
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms - m * 60_000) / 1000)} s`;
}
