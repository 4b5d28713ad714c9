// Training progress output: a self-updating line with loss, accuracy, speed and ETA on a terminal; on a pipe
// or log file, one plain line at most every `everySeconds` (quiet), plus every message passed to `line`.

export interface ProgressOptions {
  /** Where lines go (default process.stderr). */
  stream?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  /** Minimum seconds between two plain lines when the stream is not a terminal (default 60). */
  everySeconds?: number;
  /** Force terminal (true) or plain (false) output. */
  tty?: boolean;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}

export class Progress {
  private readonly stream: { write(s: string): unknown };
  private readonly tty: boolean;
  private readonly every: number;
  private lastPlain = 0;
  private pending = false;

  constructor(options: ProgressOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? Boolean((this.stream as { isTTY?: boolean }).isTTY);
    this.every = (options.everySeconds ?? 60) * 1000;
  }

  /** A permanent message line. */
  line(text: string): void {
    if (this.pending) this.stream.write('\n');
    this.pending = false;
    this.stream.write(`${text}\n`);
  }

  /**
   * Step progress: `done` of `total` steps of the current stage, `rate` in steps/s, extra fields such as
   * loss and accuracy already formatted.
   */
  step(label: string, done: number, total: number, rate: number, fields: Record<string, string>): void {
    const eta = rate > 0 ? formatDuration((total - done) / rate) : '?';
    const parts = Object.entries(fields).map(([k, v]) => `${k} ${v}`);
    const text = `${label} ${done}/${total} ${parts.join(' ')} ${rate > 0 ? (1 / rate).toFixed(2) : '?'} s/step ETA ${eta}`;
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${text}`);
      this.pending = true;
      return;
    }
    const now = Date.now();
    if (now - this.lastPlain >= this.every || done === total) {
      this.lastPlain = now;
      this.stream.write(`${text}\n`);
    }
  }
}
