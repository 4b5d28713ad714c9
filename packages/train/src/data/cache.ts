// Reading files from the dataset cache, and the errors for a missing or corrupt cache file, which name the file
// and the command that fixes it.

import { existsSync, readFileSync } from 'node:fs';
import { FormatError, OfframpError } from '@offramp/core';
import { cachePath, type DataOptions, fixHint } from './paths.js';

export * from './paths.js';

/** A dataset file that is not in the cache. */
export class DataNotFoundError extends OfframpError {}

/** Reads a cache file, or throws DataNotFoundError naming the file and the fix. */
export function readCacheFile(dataset: string, file: string, options?: DataOptions): Buffer {
  const p = cachePath(dataset, file, options);
  if (!existsSync(p)) {
    throw new DataNotFoundError(`${dataset}: cache file ${p} does not exist; ${fixHint(dataset)}`);
  }
  return readFileSync(p);
}

/** The error for a cache file whose contents are wrong: names the file, the problem and the fix. */
export function corruptFile(file: string, problem: string, cause?: unknown): FormatError {
  return new FormatError(`${file}: ${problem}; delete the file and ${fixHint()} again`, { cause });
}
