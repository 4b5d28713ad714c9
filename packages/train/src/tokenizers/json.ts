// Reading and writing tokenizer JSON files, with errors that name the file.

import { writeFileSync } from 'node:fs';
import { parseJsonText } from '@offramp/core';
import { readBoundedTextSync } from '@offramp/core/node';

/** Largest tokenizer file read (a large BPE tokenizer.json is tens of MB). */
export const TOKENIZER_MAX_BYTES = 256 * 1024 * 1024;

/** Reads a JSON file bounded: a regular file within TOKENIZER_MAX_BYTES, BOM accepted, nesting limited. */
export function readJsonFile(file: string, what: string): unknown {
  return parseJsonText(
    readBoundedTextSync(file, { maxBytes: TOKENIZER_MAX_BYTES, what: `a ${what} file (JSON)` }),
    `${what} file ${file}`,
  );
}

export function writeJsonFile(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value)}\n`);
}
