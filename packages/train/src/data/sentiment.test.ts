// UCI sentiment sentences from the real cache: 3 × 1,000 sentences, 500 per label per source, the empty last
// entry dropped, and the stratified 2,400 / 600 split.

import { describe, expect, it } from 'vitest';
import { loadSentiment, SENTIMENT_SOURCES } from './sentiment.js';

describe('sentiment sentences', () => {
  const s = loadSentiment();

  it('has 1,000 non-empty sentences per source, 500 per label', () => {
    expect(s.all.length).toBe(3000);
    for (const source of SENTIMENT_SOURCES) {
      const rows = s.all.filter((r) => r.source === source);
      expect(rows.length).toBe(1000);
      expect(rows.filter((r) => r.label === 1).length).toBe(500);
    }
    expect(s.all.every((r) => r.text.trim().length > 0 && (r.label === 0 || r.label === 1))).toBe(true);
  });

  it('splits 2,400 / 600 with 100 test sentences per source and label', () => {
    expect(s.train.length).toBe(2400);
    expect(s.test.length).toBe(600);
    for (const source of SENTIMENT_SOURCES) {
      for (const label of [0, 1]) {
        expect(s.test.filter((r) => r.source === source && r.label === label).length).toBe(100);
      }
    }
    const testSet = new Set(s.test);
    expect(s.train.some((r) => testSet.has(r))).toBe(false);
  });
});
