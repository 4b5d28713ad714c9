// King James Bible from the real cache: 31,102 verses in 66 books, first and last verses, and the parser's errors.

import { statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cachePath } from './cache.js';
import { loadKjv, parseKjv } from './kjv.js';

describe('KJV', () => {
  const k = loadKjv();

  it('has 31,102 verses in 66 books, about 4.4 MB', () => {
    expect(k.verses.length).toBe(31_102);
    expect(k.books.length).toBe(66);
    expect(k.books[0]).toBe('Ge');
    expect(k.books[65]).toBe('Rev');
    const bytes = statSync(cachePath('kjv', 'kjv.txt')).size;
    expect(bytes).toBeGreaterThan(4_300_000);
    expect(bytes).toBeLessThan(4_500_000);
  });

  it('parses references and text', () => {
    expect(k.verses[0]).toEqual({
      ref: 'Ge1:1',
      book: 'Ge',
      chapter: 1,
      verse: 1,
      text: 'In the beginning God created the heaven and the earth.',
    });
    const last = k.verses[k.verses.length - 1];
    expect([last.book, last.chapter, last.verse]).toEqual(['Rev', 22, 21]);
    const psalms = k.verses.filter((v) => v.book === 'Psa');
    expect(Math.max(...psalms.map((v) => v.chapter))).toBe(150);
    expect(k.text.split('\n').length).toBe(31_102);
    expect(k.text.startsWith('In the beginning God created')).toBe(true);
  });

  it('rejects a malformed line, naming the line', () => {
    expect(() => parseKjv('Ge1:1 In the beginning\nnot a verse\n', 'kjv.txt')).toThrow(
      /kjv.txt: line 2 is "not a verse"; expected "Book1:1 text"/,
    );
    expect(() => parseKjv('Ge1:1 a\n', 'kjv.txt')).toThrow(/1 verses in 1 books; expected 31102 in 66/);
  });
});
