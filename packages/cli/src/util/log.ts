// Output of a command: human text on stdout (on stderr when --json puts machine output on stdout), warnings
// on stderr, colours only on a terminal (NO_COLOR / --no-color turn them off), and progress bars with an
// ETA on stderr only when stderr is a terminal.
import cliProgress from 'cli-progress';
import pc from 'picocolors';

export type Colors = ReturnType<typeof pc.createColors>;

export interface LoggerOptions {
  json?: boolean;
  quiet?: boolean;
  color?: boolean;
  /** Progress bars (default: stderr is a TTY and not quiet). */
  progress?: boolean;
}

export interface ProgressBar {
  tick(n?: number): void;
  stop(): void;
}

export class Logger {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly c: Colors;
  private readonly showProgress: boolean;
  private active: cliProgress.SingleBar | null = null;

  constructor(o: LoggerOptions = {}) {
    this.json = o.json ?? false;
    this.quiet = o.quiet ?? false;
    const colorOk =
      o.color ?? (!process.env.NO_COLOR && (process.env.FORCE_COLOR ? true : Boolean(this.textStream().isTTY)));
    this.c = pc.createColors(colorOk);
    this.showProgress = o.progress ?? (Boolean(process.stderr.isTTY) && !this.quiet);
  }

  private textStream(): NodeJS.WriteStream {
    return this.json ? process.stderr : process.stdout;
  }

  /** Human-readable output (stdout, or stderr under --json); nothing under --quiet. */
  info(text = ''): void {
    if (this.quiet) return;
    this.clearBar();
    this.textStream().write(`${text}\n`);
  }

  /** Part of a line, no newline (streamed tokens). */
  write(text: string): void {
    if (this.quiet) return;
    this.textStream().write(text);
  }

  /** Always on stderr, even under --quiet. */
  warn(text: string): void {
    this.clearBar();
    process.stderr.write(`${this.c.yellow('warning:')} ${text}\n`);
  }

  /** The machine-readable result: JSON on stdout, under --json only. */
  result(value: unknown): void {
    if (this.json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** A progress bar with an ETA on stderr (a no-op when stderr is not a terminal). */
  progress(label: string, total: number, unit = 'samples'): ProgressBar {
    if (!this.showProgress || total <= 0) return { tick() {}, stop() {} };
    this.clearBar();
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: `${label.padEnd(24)} {bar} {percentage}% | {value}/{total} ${unit} | ETA {eta_formatted}`,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 20,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    this.active = bar;
    let value = 0;
    return {
      tick: (n = 1) => {
        value += n;
        bar.update(Math.min(value, total));
      },
      stop: () => {
        bar.stop();
        if (this.active === bar) this.active = null;
      },
    };
  }

  private clearBar(): void {
    if (this.active) {
      this.active.stop();
      this.active = null;
    }
  }
}
