// Where the dataset cache lives: $OFFRAMP_DATA_DIR, else `.data/` at the root of the Offramp checkout this
// package (or the current directory) is in, else a per-user cache ($XDG_CACHE_HOME/offramp or
// ~/.cache/offramp). No dependencies, so the fetch script can check the cache quickly.

import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The command, run at the repository root, that fetches every dataset into the cache. */
export const FETCH_COMMAND = 'pnpm data';

/** The command that fetches datasets outside a checkout (the installed command line). */
export const CLI_FETCH_COMMAND = 'offramp data fetch';

/** Environment variable that moves the cache away from its default folder. */
export const DATA_DIR_ENV = 'OFFRAMP_DATA_DIR';

export interface DataOptions {
  /** Cache folder; default: see `resolveDataDir`. */
  dataDir?: string;
}

/** The root of the Offramp checkout above `start` (pnpm-workspace.yaml beside packages/train), or null. */
function checkoutAbove(start: string): string | null {
  let dir = path.resolve(start);
  for (;;) {
    if (existsSync(path.join(dir, 'pnpm-workspace.yaml')) && existsSync(path.join(dir, 'packages', 'train'))) {
      return dir;
    }
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** The Offramp checkout this package or the current directory is in, or null (an installed package). */
export function checkoutRoot(): string | null {
  return checkoutAbove(path.dirname(fileURLToPath(import.meta.url))) ?? checkoutAbove(process.cwd());
}

/** The per-user cache folder: $XDG_CACHE_HOME/offramp, else ~/.cache/offramp. */
export function userCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg !== undefined && xdg !== '' && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'offramp');
}

/**
 * The cache folder that loaders read and the fetch writes: `override`, else $OFFRAMP_DATA_DIR, else `.data/`
 * at the root of the Offramp checkout, else the per-user cache (`userCacheDir()`).
 */
export function resolveDataDir(override?: string): string {
  if (override !== undefined && override !== '') return path.resolve(override);
  const env = process.env[DATA_DIR_ENV];
  if (env !== undefined && env !== '') return path.resolve(env);
  const root = checkoutRoot();
  return root ? path.join(root, '.data') : userCacheDir();
}

/** Path of `file` in the cache folder of `dataset`. */
export function cachePath(dataset: string, file: string, options?: DataOptions): string {
  return path.join(resolveDataDir(options?.dataDir), dataset, file);
}

/** How to fix a missing or corrupt cache, for error messages. */
export function fixHint(dataset?: string): string {
  const env = process.env[DATA_DIR_ENV];
  const withEnv = env !== undefined && env !== '' ? ` with ${DATA_DIR_ENV}=${env}` : '';
  if (checkoutRoot()) return `run \`${FETCH_COMMAND}\` at the repository root${withEnv} to fetch it`;
  return `run \`${CLI_FETCH_COMMAND}${dataset ? ` ${dataset}` : ''}\`${withEnv} to fetch it`;
}
