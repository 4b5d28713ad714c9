// King James Bible: every verse of the dump written by the fetch script (one `Ge1:1 In the beginning...` line
// per verse), parsed into references and text.

import { cachePath, corruptFile, type DataOptions, readCacheFile } from './cache.js';

export interface Verse {
  /** Reference as written in the source, e.g. 'Ge1:1', '1Sa3:10'. */
  ref: string;
  /** Book abbreviation, e.g. 'Ge', '1Sa', 'Rev'. */
  book: string;
  chapter: number;
  verse: number;
  text: string;
}

export interface KjvCorpus {
  verses: Verse[];
  /** Book abbreviations in canonical order (66). */
  books: string[];
  /** Verse texts (without references) joined with '\n'. */
  text: string;
}

export const KJV_FILE = 'kjv.txt';
export const KJV_VERSES = 31_102;
export const KJV_BOOKS = 66;

const LINE = /^([1-3]?[A-Za-z]+)(\d+):(\d+) (\S.*)$/;

/** Parses the verse dump; `source` names it in errors. */
export function parseKjv(dump: string, source: string): KjvCorpus {
  const lines = dump.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const verses: Verse[] = new Array(lines.length);
  const books: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = LINE.exec(lines[i]);
    if (m === null) {
      throw corruptFile(source, `line ${i + 1} is ${JSON.stringify(lines[i].slice(0, 60))}; expected "Book1:1 text"`);
    }
    const [, book, chapter, verse, text] = m;
    if (books[books.length - 1] !== book) {
      if (books.includes(book)) throw corruptFile(source, `line ${i + 1}: book ${book} appears twice, out of order`);
      books.push(book);
    }
    verses[i] = { ref: `${book}${chapter}:${verse}`, book, chapter: Number(chapter), verse: Number(verse), text };
  }
  if (verses.length !== KJV_VERSES || books.length !== KJV_BOOKS) {
    throw corruptFile(
      source,
      `${verses.length} verses in ${books.length} books; expected ${KJV_VERSES} in ${KJV_BOOKS}`,
    );
  }
  return { verses, books, text: verses.map((v) => v.text).join('\n') };
}

/** The King James Bible, 31,102 verses in 66 books. */
export function loadKjv(options?: DataOptions): KjvCorpus {
  const bytes = readCacheFile('kjv', KJV_FILE, options);
  return parseKjv(bytes.toString('utf8'), cachePath('kjv', KJV_FILE, options));
}
