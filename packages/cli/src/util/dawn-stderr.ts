// Dawn's adapter-limit notices. On lavapipe (and some other Vulkan drivers) every first requestAdapter makes
// dawn.node print, from native code straight to file descriptor 2,
//   Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.
//   Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.
// (dawn::WarningLog in Dawn's Limits.cpp: unconditional, no toggle, instance flag or device option turns it
// off, and Node cannot redirect a native fd 2). So the `offramp` binary runs the command in a child process
// whose stderr passes through this filter, which drops exactly those lines and forwards everything else as
// it comes (progress bars included). OFFRAMP_DAWN_WARNINGS=1 shows them.
import { spawn } from 'node:child_process';

/** One whole line of the notice (no newline). Anything else, even a near miss, is forwarded. */
export const DAWN_LIMIT_WARNING =
  /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?$/;
const PREFIX = 'Warning: maxDynamic';

/** The child runs the command itself; its stderr is read by the parent's filter. */
export const FILTERED_CHILD_ENV = 'OFFRAMP_STDERR_FILTERED';
const TTY_ENV = 'OFFRAMP_STDERR_TTY';
const COLUMNS_ENV = 'OFFRAMP_STDERR_COLUMNS';

/**
 * A stream filter that drops the Dawn notices line by line. Text is forwarded as soon as it cannot be the
 * start of a notice; only a partial line that still could be one is held back until its newline (or end).
 */
export function dawnWarningFilter(write: (text: string) => void): { push(chunk: string): void; end(): void } {
  let pending = '';
  let atLineStart = true;
  return {
    push(chunk) {
      const text = pending + chunk;
      pending = '';
      let out = '';
      let start = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        const line = text.slice(start, nl);
        if (!(atLineStart && DAWN_LIMIT_WARNING.test(line))) out += text.slice(start, nl + 1);
        start = nl + 1;
        atLineStart = true;
      }
      const tail = text.slice(start);
      if (tail && atLineStart && (PREFIX.startsWith(tail) || tail.startsWith(PREFIX))) pending = tail;
      else if (tail) {
        out += tail;
        atLineStart = false;
      }
      if (out) write(out);
    },
    end() {
      if (pending) write(pending);
      pending = '';
    },
  };
}

/** In the child: make stderr look like the terminal the parent has (progress bars, colours under --json). */
export function adoptParentTerminal(): void {
  if (process.env[TTY_ENV] !== '1') return;
  Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
  const columns = Number(process.env[COLUMNS_ENV]);
  if (columns > 0) Object.defineProperty(process.stderr, 'columns', { value: columns, configurable: true });
}

/** Whether this process should run the command through a filtered child. */
export function wantsFilteredChild(): boolean {
  return process.env[FILTERED_CHILD_ENV] !== '1' && process.env.OFFRAMP_DAWN_WARNINGS !== '1';
}

/**
 * Runs this same script again (same Node flags and arguments) with stderr piped through the filter; resolves
 * with the child's exit code, or re-raises the signal that ended it.
 */
export function runFilteredChild(): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env, [FILTERED_CHILD_ENV]: '1' };
  if (process.stderr.isTTY) {
    env[TTY_ENV] = '1';
    if (process.stderr.columns) env[COLUMNS_ENV] = String(process.stderr.columns);
  }
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'pipe'],
    env,
  });
  const filter = dawnWarningFilter((t) => process.stderr.write(t));
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => filter.push(chunk));
  // a terminal's Ctrl-C reaches both processes; other signals are passed on, and the parent waits
  const forward = (sig: NodeJS.Signals) => () => {
    if (child.exitCode === null) child.kill(sig);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const handlers = signals.map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      filter.end();
      for (const [s, h] of handlers) process.off(s, h);
      if (signal) process.kill(process.pid, signal);
      resolve(code ?? 1);
    });
  });
}
