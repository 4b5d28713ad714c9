// The code-search text forms: identifiers split into words before BPE, so a docstring's words and the code's
// identifiers share tokens, and a model folder's text_form.json read strictly.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildTruncatedGpt2Tokenizer,
  codeWords,
  encodeTexts,
  loadBpeTokenizer,
  readTextForm,
  TEXT_FORM_FILE,
} from './tokenizer.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'offramp-textform-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('codeWords', () => {
  it('splits snake_case, camelCase and acronyms, sets punctuation runs apart and lower-cases', () => {
    expect(codeWords('def read_file(self, path):\n    return self._readAll(path)')).toBe(
      'def read file ( self , path ): return self . read all ( path )',
    );
    expect(codeWords('parseHTTPResponse_v2')).toBe('parse http response v2');
    expect(codeWords('__init__')).toBe('init');
    expect(codeWords('Return the next item.')).toBe('return the next item .');
    expect(codeWords('  ')).toBe('');
  });

  it("gives an identifier the same tokens as the docstring's words", () => {
    const { padId } = buildTruncatedGpt2Tokenizer(path.join(dir, 'tokenizer.json'), 8000);
    const tok = loadBpeTokenizer(path.join(dir, 'tokenizer.json'));
    const [code] = encodeTexts(tok, ['def read_file(path):'], 64, padId, 'words');
    const [doc] = encodeTexts(tok, ['Read file contents.'], 64, padId, 'words');
    const [readFile] = encodeTexts(tok, ['read file'], 64, padId, 'words');
    // " read", " file" appear in both, in order
    const has = (ids: number[], sub: number[]) => ids.some((_, i) => sub.every((x, k) => ids[i + k] === x));
    expect(readFile.length).toBe(2);
    expect(has(code, readFile)).toBe(true);
    expect(has(doc, readFile)).toBe(true);
    // the one-line form keeps the old behaviour: read_file is not the docstring's " read", " file"
    const [old] = encodeTexts(tok, ['def read_file(path):'], 64, padId);
    expect(has(old, readFile)).toBe(false);
  });
});

describe('readTextForm', () => {
  it("reads text_form.json, defaults to 'one-line' without it, and rejects an unknown form", () => {
    const d = mkdtempSync(path.join(dir, 'm-'));
    expect(readTextForm(d)).toBe('one-line');
    writeFileSync(path.join(d, TEXT_FORM_FILE), '{"form":"words"}');
    expect(readTextForm(d)).toBe('words');
    writeFileSync(path.join(d, TEXT_FORM_FILE), '{"form":"snake"}');
    expect(() => readTextForm(d)).toThrow(/"form" is "snake"; allowed: "one-line", "words"/);
  });
});
