// Shared by the process tests: builds the CLI's dist/ when stale, starts `offramp serve` as a real process
// (in its own process group, so that a kill reaches the server and the CLI wrapper around it), finds free
// ports and reads Prometheus counters.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SERVER_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = resolve(SERVER_DIR, '../..');
export const CLI_BIN = join(ROOT, 'packages', 'cli', 'dist', 'bin.js');
export const CHECKPOINTS = join(ROOT, 'checkpoints');
export const DEPLOY = join(ROOT, 'deploy');
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');

function newest(dir: string): number {
  let t = 0;
  if (!existsSync(dir)) return t;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

let built = false;
/** dist/ of the packages `offramp serve` runs on, built with tsc when a source is newer than the build. */
export function ensureCliBuilt(): void {
  if (built) return;
  for (const [p, entry] of [
    ['core', 'index.js'],
    ['policies', 'index.js'],
    ['train', 'index.js'],
    ['mamba', 'index.js'],
    ['server', 'index.js'],
    ['cli', 'bin.js'],
  ] as const) {
    const dir = join(ROOT, 'packages', p);
    const out = join(dir, 'dist', entry);
    const src = Math.max(newest(join(dir, 'src')), statSync(join(dir, 'tsconfig.build.json')).mtimeMs);
    if (existsSync(out) && statSync(out).mtimeMs >= src) continue;
    try {
      execFileSync(TSC, ['-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'pipe' });
    } catch (e) {
      // a type error elsewhere still emits JavaScript; only a missing output is fatal
      if (!existsSync(out)) throw e;
    }
  }
  built = true;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createNetServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      if (!addr || typeof addr === 'string') return rej(new Error('no port'));
      s.close(() => res(addr.port));
    });
  });
}

export interface Spawned {
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output: () => string;
  /** Resolves with the exit code (or the signal) once the process has exited. */
  exited: Promise<number | NodeJS.Signals | null>;
  /** Sends a signal to the process group (the CLI and the server process it runs). */
  kill: (signal?: NodeJS.Signals) => void;
}

/** Spawns a command in its own process group and collects its output. */
export function spawnGroup(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Spawned {
  const child = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | NodeJS.Signals | null>((r) =>
    child.on('exit', (code, signal) => r(code ?? signal)),
  );
  return {
    child,
    output: () => out,
    exited,
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // already gone
      }
    },
  };
}

export interface Replica extends Spawned {
  url: string;
  port: number;
}

/** Starts `offramp serve ARGS --port PORT` from the built CLI and waits for its "offramp server on" line. */
export async function startServe(args: string[], port: number, timeoutMs = 60_000): Promise<Replica> {
  ensureCliBuilt();
  const p = spawnGroup(process.execPath, [CLI_BIN, 'serve', ...args, '--port', String(port)], { LOG_LEVEL: 'warn' });
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const m = /offramp server on (http:\/\/[\d.]+:(\d+))/.exec(p.output());
    if (m) return { ...p, url: m[1], port: Number(m[2]) };
    if (p.child.exitCode !== null || p.child.signalCode !== null)
      throw new Error(`offramp serve exited before listening:\n${p.output()}`);
    if (Date.now() > deadline) {
      p.kill();
      throw new Error(`offramp serve did not listen within ${timeoutMs} ms:\n${p.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until `probe` resolves true (polled every `everyMs`), or throws after `timeoutMs` with `what`. */
export async function waitFor(probe: () => Promise<boolean>, what: string, timeoutMs = 30_000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** The value of one sample of a Prometheus text exposition (0 when absent), matched by name and labels. */
export function promValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[3]);
  }
  return total;
}

/** Successful classify requests a replica has answered, from its own /metrics. */
export async function classifyCount(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return promValue(text, 'offramp_http_requests_total', { route: '/v1/classify', status: '200' });
}

/** haproxy on PATH or in the sbin folders Debian installs it in; a clear error when it is not installed. */
export function findHaproxy(): string {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    const p = join(d, 'haproxy');
    if (d && existsSync(p)) return p;
  }
  throw new Error(
    'haproxy is not installed: this test runs two server replicas behind a real HAProxy. Install it ' +
      '(Debian: `apt-get install -y haproxy`, which scripts/bootstrap.sh does when it is missing) and run again.',
  );
}

/**
 * Sends `body` to `url + path` until it is answered 200 (at most `timeoutMs`). With a cold Mesa shader cache
 * (a fresh machine or container) the first request to a model compiles its pipelines, which on a loaded
 * software adapter can outlast the server's 30 s request timeout (503); later requests are fast.
 */
export async function warmUp(url: string, path: string, body: unknown, timeoutMs = 240_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    last = `${res.status} ${(await res.text()).slice(0, 300)}`;
    if (res.status === 200) return;
    if (res.status !== 503) break;
  }
  throw new Error(`warm-up ${path} did not answer 200: ${last}`);
}
