// Reading and writing tokenizer JSON files, with errors that name the file.

import { readFileSync, writeFileSync } from 'node:fs';
import { FormatError } from '@offramp/core';

export function readJsonFile(file: string, what: string): unknown {
  let src: string;
  try {
    src = readFileSync(file, 'utf8');
  } catch (e) {
    throw new FormatError(`${what} file ${file} cannot be read (${(e as Error).message})`, { cause: e });
  }
  try {
    return JSON.parse(src);
  } catch (e) {
    throw new FormatError(`${what} file ${file} is not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

export function writeJsonFile(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value)}\n`);
}
