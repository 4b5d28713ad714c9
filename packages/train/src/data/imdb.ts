// IMDB movie reviews (50,000, 25,000 per label) with a fixed-seed stratified 40,000 / 10,000 train/test split.
// Line breaks written as `<br />` in the reviews become spaces.

import { cachePath, corruptFile, type DataOptions, readCacheFile } from './cache.js';
import { stratifiedSplit } from './split.js';

export interface TextExample {
  text: string;
  /** Class index: for sentiment data 0 = negative, 1 = positive. */
  label: number;
}

export interface TextSplit<T extends TextExample = TextExample> {
  train: T[];
  test: T[];
}

/** Seed of the IMDB train/test split. Changing it changes every result measured on the split. */
export const IMDB_SPLIT_SEED = 20_240_601;
/** Share of each label that goes to the test split (5,000 of 25,000). */
export const IMDB_TEST_FRACTION = 0.2;
export const IMDB_FILE = 'reviews.json';
export const IMDB_SIZE = 50_000;
export const SENTIMENT_CLASS_NAMES: readonly string[] = ['negative', 'positive'];

/** Replaces HTML line breaks (`<br />`, `<br/>`, `<br>`) with a space. */
export function stripLineBreakTags(text: string): string {
  return text.replace(/<br\s*\/?>/gi, ' ');
}

/** Every review, in file order, as { text, label } (0 = negative, 1 = positive). */
export function loadImdbReviews(options?: DataOptions): TextExample[] {
  const file = cachePath('imdb', IMDB_FILE, options);
  let rows: unknown;
  try {
    rows = JSON.parse(readCacheFile('imdb', IMDB_FILE, options).toString('utf8'));
  } catch (e) {
    if (e instanceof SyntaxError) throw corruptFile(file, `not valid JSON (${e.message})`, e);
    throw e;
  }
  if (!Array.isArray(rows)) throw corruptFile(file, 'expected a JSON array of {t, s} reviews');
  if (rows.length !== IMDB_SIZE) throw corruptFile(file, `${rows.length} reviews; expected ${IMDB_SIZE}`);
  const out: TextExample[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as { t?: unknown; s?: unknown } | null;
    if (r === null || typeof r !== 'object' || typeof r.t !== 'string' || (r.s !== 0 && r.s !== 1)) {
      throw corruptFile(file, `review ${i} is ${JSON.stringify(r)?.slice(0, 80)}; expected {t: string, s: 0 | 1}`);
    }
    out[i] = { text: stripLineBreakTags(r.t), label: r.s };
  }
  return out;
}

/**
 * IMDB reviews split 40,000 / 10,000 (20,000 / 5,000 per label) with IMDB_SPLIT_SEED. The original split of the
 * data set is not recorded in the source, so this one is the project's own.
 */
export function loadImdb(options?: DataOptions): TextSplit {
  return stratifiedSplit(loadImdbReviews(options), (r) => String(r.label), IMDB_TEST_FRACTION, IMDB_SPLIT_SEED);
}
