// Tokenizer files are read bounded: a device, FIFO or directory is refused with a message naming the file,
// never read (a tokenizer named in a model folder could otherwise be /dev/zero and exhaust memory).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CharTokenizer } from './char.js';
import { readJsonFile } from './json.js';

const dir = mkdtempSync(join(tmpdir(), 'offramp-tok-json-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readJsonFile', () => {
  it('refuses /dev/zero, a FIFO and a directory, naming the file and what was expected', () => {
    const zero = join(dir, 'zero.json');
    symlinkSync('/dev/zero', zero);
    expect(() => CharTokenizer.load(zero)).toThrow(
      `${zero} is not a regular file (a device, FIFO or socket); expected a char tokenizer file (JSON) (a regular file)`,
    );
    const fifo = join(dir, 'fifo.json');
    execFileSync('mkfifo', [fifo]);
    expect(() => readJsonFile(fifo, 'word tokenizer')).toThrow(`${fifo} is not a regular file`);
    expect(() => readJsonFile(dir, 'word tokenizer')).toThrow(`${dir} is a directory`);
  });

  it('accepts a byte-order mark and names the file of invalid or too deeply nested JSON', () => {
    const bom = join(dir, 'bom.json');
    writeFileSync(bom, '\uFEFF{"a":1}');
    expect(readJsonFile(bom, 'tokenizer')).toEqual({ a: 1 });
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"a":');
    expect(() => readJsonFile(bad, 'tokenizer')).toThrow(`tokenizer file ${bad} is not valid JSON`);
    writeFileSync(bad, '['.repeat(10_000));
    expect(() => readJsonFile(bad, 'tokenizer')).toThrow(`tokenizer file ${bad} nests arrays/objects more than 256`);
  });
});
