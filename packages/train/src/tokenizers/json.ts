// Reading and writing tokenizer JSON files, with errors that name the file. Reads are bounded: a regular file
// no larger than the data cap (and no longer than the longest string JavaScript holds).

import { constants as bufferConstants } from 'node:buffer';
import { writeFileSync } from 'node:fs';
import { parseJsonText } from '@offramp/core';
import { FILE_LIMITS, readBoundedTextSync } from '@offramp/core/node';

/** Largest tokenizer file read: the data cap, and no longer than the longest string JavaScript holds. */
export const TOKENIZER_MAX_BYTES = Math.min(FILE_LIMITS.data, bufferConstants.MAX_STRING_LENGTH);

/** Reads a JSON file bounded: a regular file within `maxBytes`, BOM accepted, nesting limited. */
export function readJsonFile(file: string, what: string, maxBytes = TOKENIZER_MAX_BYTES): unknown {
  return parseJsonText(readBoundedTextSync(file, { maxBytes, what: `a ${what} file (JSON)` }), `${what} file ${file}`);
}

export function writeJsonFile(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value)}\n`);
}
