// Reading and writing tokenizer JSON files, with errors that name the file. Reads are bounded: a regular file
// no larger than the data cap (and no longer than the longest string JavaScript holds).

import { constants as bufferConstants } from 'node:buffer';
import { writeFileSync } from 'node:fs';
import { FormatError } from '@offramp/core';
import { FILE_LIMITS, readBoundedTextSync } from '@offramp/core/node';

export const TOKENIZER_MAX_BYTES = Math.min(FILE_LIMITS.data, bufferConstants.MAX_STRING_LENGTH);

export function readJsonFile(file: string, what: string, maxBytes = TOKENIZER_MAX_BYTES): unknown {
  const src = readBoundedTextSync(file, { maxBytes, what: `a ${what} JSON file` });
  try {
    return JSON.parse(src);
  } catch (e) {
    const why = JSON.stringify((e as Error).message)
      .slice(1, -1)
      .slice(0, 120);
    throw new FormatError(`${what} file ${file} is not valid JSON (${why})`, { cause: e });
  }
}

export function writeJsonFile(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value)}\n`);
}
