// Where the dataset cache lives: `.data/` at the workspace root, or $OFFRAMP_DATA_DIR. No dependencies, so the
// fetch script can check the cache quickly.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The command, run at the repository root, that fetches every dataset into the cache. */
export const FETCH_COMMAND = 'pnpm data';

/** Environment variable that moves the cache away from `.data/` at the workspace root. */
export const DATA_DIR_ENV = 'OFFRAMP_DATA_DIR';

export interface DataOptions {
  /** Cache folder; default: $OFFRAMP_DATA_DIR, else `.data/` at the workspace root, else `./.data`. */
  dataDir?: string;
}

/** The cache folder that loaders read and the fetch script writes. */
export function resolveDataDir(override?: string): string {
  if (override !== undefined && override !== '') return path.resolve(override);
  const env = process.env[DATA_DIR_ENV];
  if (env !== undefined && env !== '') return path.resolve(env);
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'pnpm-workspace.yaml'))) return path.join(dir, '.data');
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return path.resolve('.data');
}

/** Path of `file` in the cache folder of `dataset`. */
export function cachePath(dataset: string, file: string, options?: DataOptions): string {
  return path.join(resolveDataDir(options?.dataDir), dataset, file);
}

/** How to fix a missing or corrupt cache, for error messages. */
export function fixHint(): string {
  const env = process.env[DATA_DIR_ENV];
  const withEnv = env !== undefined && env !== '' ? ` with ${DATA_DIR_ENV}=${env}` : '';
  return `run \`${FETCH_COMMAND}\` at the repository root${withEnv} to fetch it`;
}
