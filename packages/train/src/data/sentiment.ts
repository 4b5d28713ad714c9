// UCI sentiment-labelled sentences: 1,000 short sentences each from Amazon, IMDB and Yelp reviews, 500 per label,
// with a fixed-seed 80/20 split stratified by source and label.

import { cachePath, corruptFile, type DataOptions, readCacheFile } from './cache.js';
import type { TextExample, TextSplit } from './imdb.js';
import { stratifiedSplit } from './split.js';

export const SENTIMENT_SOURCES = ['amazon', 'imdb', 'yelp'] as const;
export type SentimentSource = (typeof SENTIMENT_SOURCES)[number];

export interface SentimentExample extends TextExample {
  source: SentimentSource;
}

export const SENTIMENT_SPLIT_SEED = 20_240_602;
export const SENTIMENT_TEST_FRACTION = 0.2;
export const SENTIMENT_PER_SOURCE = 1000;

function loadSource(source: SentimentSource, options?: DataOptions): SentimentExample[] {
  const name = `${source}.json`;
  const file = cachePath('sentiment', name, options);
  let rows: unknown;
  try {
    rows = JSON.parse(readCacheFile('sentiment', name, options).toString('utf8'));
  } catch (e) {
    if (e instanceof SyntaxError) throw corruptFile(file, `not valid JSON (${e.message})`, e);
    throw e;
  }
  if (!Array.isArray(rows)) throw corruptFile(file, 'expected a JSON array of {text, class} sentences');
  const out: SentimentExample[] = [];
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as { text?: unknown; class?: unknown } | null;
    // The source files end with one empty placeholder entry {"text": "", "class": null}: drop it.
    if (i === rows.length - 1 && r !== null && r.text === '' && r.class === null) continue;
    if (r === null || typeof r !== 'object' || typeof r.text !== 'string' || r.text.trim() === '') {
      throw corruptFile(file, `entry ${i} is ${JSON.stringify(r)?.slice(0, 80)}; expected a non-empty text`);
    }
    if (r.class !== 0 && r.class !== 1) {
      throw corruptFile(file, `entry ${i} has class ${JSON.stringify(r.class)}; expected 0 or 1`);
    }
    out.push({ text: r.text, label: r.class, source });
  }
  if (out.length !== SENTIMENT_PER_SOURCE) {
    throw corruptFile(file, `${out.length} sentences; expected ${SENTIMENT_PER_SOURCE}`);
  }
  return out;
}

/** All 3,000 sentences (Amazon, IMDB, Yelp in that order) and a 2,400 / 600 split stratified by source and label. */
export function loadSentiment(options?: DataOptions): TextSplit<SentimentExample> & { all: SentimentExample[] } {
  const all = SENTIMENT_SOURCES.flatMap((s) => loadSource(s, options));
  const split = stratifiedSplit(all, (r) => `${r.source}:${r.label}`, SENTIMENT_TEST_FRACTION, SENTIMENT_SPLIT_SEED);
  return { ...split, all };
}
