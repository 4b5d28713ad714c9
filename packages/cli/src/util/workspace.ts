// Where things are: the Offramp workspace root (the folder with pnpm-workspace.yaml above the current
// directory or above this package), the shipped checkpoints (the checkout's checkpoints/, else the installed
// @offramp/models package), and the benchmark programs.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkpointsDir as packagedCheckpointsDir } from '@offramp/models';

function findUp(start: string): string | null {
  let d = resolve(start);
  for (;;) {
    if (existsSync(join(d, 'pnpm-workspace.yaml')) && existsSync(join(d, 'packages', 'core'))) return d;
    const up = dirname(d);
    if (up === d) return null;
    d = up;
  }
}

/** The Offramp workspace root, or null outside a checkout. */
export function workspaceRoot(): string | null {
  return findUp(process.cwd()) ?? findUp(dirname(fileURLToPath(import.meta.url)));
}

/** The shipped models, in the order they appear. */
export const SHIPPED_MODELS = ['fashion-cnn', 'imdb-encoder', 'imdb-ponder', 'imdb-gates', 'austen-mamba'] as const;

/**
 * The shipped checkpoints: checkpoints/ of the checkout when there is one (retrained models included), else
 * the folder of the installed @offramp/models package. May not exist.
 */
export function checkpointsDir(): string | null {
  const root = workspaceRoot();
  if (root && existsSync(join(root, 'checkpoints'))) return join(root, 'checkpoints');
  return packagedCheckpointsDir();
}
