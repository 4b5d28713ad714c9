// Character tokenizer: vocabulary from the real Austen training novels, stable ids, round trips on the held-out
// novel, the unknown id, and JSON save/load with validation.

import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAusten } from '../data/austen.js';
import { CharTokenizer } from './char.js';

describe('CharTokenizer', () => {
  const { train, heldOut, novels } = loadAusten();

  it('on Austen: 81 characters + unknown, round trip of the held-out novel', () => {
    const tok = CharTokenizer.fromCorpus(novels.map((n) => n.text));
    expect(tok.vocabSize).toBe(82);
    const ids = tok.encode(heldOut.text);
    expect(ids.length).toBe(heldOut.text.length);
    expect(ids.includes(CharTokenizer.UNK_ID)).toBe(false);
    expect(tok.decode(ids)).toBe(heldOut.text);
  });

  it('characters missing from the training novels map to the unknown id', () => {
    const tok = CharTokenizer.fromCorpus(train.map((n) => n.text));
    const ids = tok.encode(heldOut.text);
    const unknown = [...heldOut.text].filter((c) => !tok.chars.includes(c));
    expect(ids.filter((i) => i === CharTokenizer.UNK_ID).length).toBe(unknown.length);
  });

  it('ids follow code-point order whatever the corpus order, astral characters included', () => {
    const a = CharTokenizer.fromCorpus(['cab', '😀é']);
    const b = CharTokenizer.fromCorpus('é😀bca');
    expect(a.chars).toEqual(['a', 'b', 'c', 'é', '😀']);
    expect(b.toJSON()).toEqual(a.toJSON());
    expect(Array.from(a.encode('a😀z'))).toEqual([1, 5, 0]);
    expect(a.decode([1, 5, 0])).toBe('a😀\uFFFD');
    expect(() => a.decode([6])).toThrow('decode: ids[0] is 6; expected an integer in [0, 6)');
  });

  it('saves and loads JSON; rejects bad JSON', () => {
    const tok = CharTokenizer.fromCorpus(train[0].text);
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'char-')), 'char.json');
    tok.save(file);
    const back = CharTokenizer.load(file);
    expect(back.chars).toEqual(tok.chars);
    expect(Array.from(back.encode(heldOut.text.slice(0, 2000)))).toEqual(
      Array.from(tok.encode(heldOut.text.slice(0, 2000))),
    );
    expect(() => CharTokenizer.fromJSON({ type: 'char', version: 1, chars: ['b', 'a'] })).toThrow(
      /chars\[1\] is out of code-point order/,
    );
    expect(() => CharTokenizer.fromJSON({ type: 'char', version: 1, chars: ['ab'] })).toThrow(
      /chars\[0\] is "ab"; expected one character/,
    );
    expect(() => CharTokenizer.fromJSON({ type: 'word' })).toThrow(/expected \{type: 'char'/);
  });
});
