// Command-line options shared by the training scripts, and the repository paths they write to.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { TrainBackend } from './backend.js';
import { RECIPES, type RecipeName } from './recipes.js';

export interface CommonArgs {
  resume: boolean;
  seed?: number;
  epochs?: number;
  batch?: number;
  lr?: number;
  recipe?: RecipeName;
  backend: TrainBackend;
  maxSteps?: number;
  out?: string;
  workDir?: string;
  checkpointEvery?: number;
  /** Use only this many training and held-out rows (smoke runs). */
  limit?: number;
  help: boolean;
}

export const COMMON_HELP = `Options:
  --resume               continue from the work directory's saved state
  --seed N               random seed (initialisation, shuffling, dropout)
  --epochs N             epochs (per stage)
  --batch N              batch size
  --lr X                 peak learning rate
  --recipe NAME          exit-head recipe: ${RECIPES.join(', ')}
  --backend webgpu|cpu   tfjs backend (default webgpu, falls back to cpu)
  --max-steps N          stop each stage after N steps (smoke runs)
  --limit N              use only N training and N held-out rows (smoke runs)
  --out DIR              where the finished model goes
  --work-dir DIR         where resumable state goes
  --checkpoint-every N   save resumable state every N steps (default 200)
  --help                 this text`;

function num(v: string | undefined, name: string, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || (integer && !Number.isInteger(x)) || x < 0) {
    throw new Error(`--${name} must be a ${integer ? 'non-negative integer' : 'non-negative number'}, got '${v}'`);
  }
  return x;
}

/**
 * Parses the common options plus a script's own string options (`extra`, returned in `own`). Unknown options
 * are errors.
 */
export function parseCommonArgs(
  argv: string[],
  extra: string[] = [],
): CommonArgs & { own: Record<string, string | undefined> } {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...Object.fromEntries(extra.map((k) => [k, { type: 'string' as const }])),
      resume: { type: 'boolean', default: false },
      seed: { type: 'string' },
      epochs: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      recipe: { type: 'string' },
      backend: { type: 'string', default: 'webgpu' },
      'max-steps': { type: 'string' },
      limit: { type: 'string' },
      out: { type: 'string' },
      'work-dir': { type: 'string' },
      'checkpoint-every': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const backend = values.backend as string;
  if (backend !== 'webgpu' && backend !== 'cpu')
    throw new Error(`--backend must be 'webgpu' or 'cpu', got '${backend}'`);
  const recipe = values.recipe as string | undefined;
  if (recipe !== undefined && !(RECIPES as readonly string[]).includes(recipe)) {
    throw new Error(`--recipe must be one of ${RECIPES.join(', ')}, got '${recipe}'`);
  }
  return {
    resume: Boolean(values.resume),
    seed: num(values.seed as string | undefined, 'seed', true),
    epochs: num(values.epochs as string | undefined, 'epochs', true),
    batch: num(values.batch as string | undefined, 'batch', true),
    lr: num(values.lr as string | undefined, 'lr', false),
    recipe: recipe as RecipeName | undefined,
    backend,
    maxSteps: num(values['max-steps'] as string | undefined, 'max-steps', true),
    limit: num(values.limit as string | undefined, 'limit', true),
    out: values.out as string | undefined,
    workDir: values['work-dir'] as string | undefined,
    checkpointEvery: num(values['checkpoint-every'] as string | undefined, 'checkpoint-every', true),
    help: Boolean(values.help),
    own: Object.fromEntries(extra.map((k) => [k, (values as Record<string, unknown>)[k] as string | undefined])),
  };
}

/** The repository root: the nearest folder above this file holding pnpm-workspace.yaml. */
export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 10; i++) {
    if (existsSync(join(d, 'pnpm-workspace.yaml'))) return d;
    d = dirname(d);
  }
  return resolve('.');
}

/** Default folders of a named run: the shipped checkpoint and the resumable work state (git-ignored). */
export function runPaths(name: string, args: Pick<CommonArgs, 'out' | 'workDir'>): { outDir: string; workDir: string } {
  const root = repoRoot();
  return {
    outDir: resolve(args.out ?? join(root, 'checkpoints', name)),
    workDir: resolve(args.workDir ?? join(root, '.data', 'runs', name)),
  };
}
