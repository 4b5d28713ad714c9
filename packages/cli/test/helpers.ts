// Shared by the end-to-end tests: builds dist/ when stale (this package and the workspace packages it
// imports), writes small models and data sets into temp folders, and runs the real binary.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type MlpClassifierConfig, mulberry32, randomWeights } from '@offramp/core';
import { saveModelDir } from '@offramp/core/node';

export const CLI_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = resolve(CLI_DIR, '../..');
export const BIN = join(CLI_DIR, 'dist', 'bin.js');
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');

function newest(dir: string): number {
  let t = 0;
  if (!existsSync(dir)) return t;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p));
    else t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

/** Builds a package's dist/ with tsc when any source or config is newer than the build. */
function buildIfStale(pkgDir: string, entry: string): void {
  const out = join(pkgDir, 'dist', entry);
  const src = Math.max(
    newest(join(pkgDir, 'src')),
    statSync(join(pkgDir, 'package.json')).mtimeMs,
    statSync(join(pkgDir, 'tsconfig.build.json')).mtimeMs,
  );
  if (existsSync(out) && statSync(out).mtimeMs >= src) return;
  execFileSync(TSC, ['-p', 'tsconfig.build.json'], { cwd: pkgDir, stdio: 'pipe' });
}

let built = false;
/** dist/ of core, policies, train, mamba, server and this package, built when stale. */
export function ensureBuilt(): void {
  if (built) return;
  for (const p of ['core', 'policies', 'train', 'mamba', 'server']) {
    try {
      buildIfStale(join(ROOT, 'packages', p), 'index.js');
    } catch (e) {
      // a type error elsewhere still emits JavaScript; only a missing output is fatal
      if (!existsSync(join(ROOT, 'packages', p, 'dist', 'index.js'))) throw e;
    }
  }
  buildIfStale(CLI_DIR, 'bin.js');
  built = true;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/bin.js ARGS` (no colours, not a TTY). */
export function cli(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? CLI_DIR,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '', ...options.env },
    timeout: 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function tempDir(name: string): string {
  const d = join(tmpdir(), `offramp-cli-test-${name}-${process.pid}-${Date.now()}`);
  mkdirSync(d, { recursive: true });
  return d;
}

export const MLP: MlpClassifierConfig = {
  architecture: 'mlp_classifier',
  input_size: 16,
  hidden_size: 24,
  num_layers: 4,
  num_classes: 4,
  exits: { blocks: [0, 1, 2, 3], head: 'linear' },
};

/** A small MLP classifier with seeded random weights, saved as a model directory. */
export async function makeModel(dir: string, seed = 3): Promise<string> {
  await saveModelDir(dir, { offramp_format: 1, model: MLP, meta: { dataset: 'synthetic' } }, randomWeights(MLP, seed));
  return dir;
}

/** Rows of {image, label}: label = quadrant with the largest sum, plus noise (a learnable-looking task). */
export function makeRows(n: number, seed = 11): { image: number[]; label: number }[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const image = Array.from({ length: MLP.input_size }, () => Number(rand().toFixed(4)));
    const sums = [0, 1, 2, 3].map((q) => image.slice(q * 4, q * 4 + 4).reduce((a, b) => a + b, 0));
    return { image, label: sums.indexOf(Math.max(...sums)) };
  });
}

export function makeJsonl(file: string, n: number, seed = 11): string {
  writeFileSync(
    file,
    `${makeRows(n, seed)
      .map((r) => JSON.stringify(r))
      .join('\n')}\n`,
  );
  return file;
}
