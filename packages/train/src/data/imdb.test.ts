// IMDB reviews from the real cache: 50,000 balanced reviews, the fixed-seed 40,000 / 10,000 split (balanced,
// disjoint, reproducible), and `<br />` removal.

import { describe, expect, it } from 'vitest';
import { IMDB_SPLIT_SEED, loadImdb, loadImdbReviews, stripLineBreakTags } from './imdb.js';
import { stratifiedSplit } from './split.js';

const countLabel = (rows: { label: number }[], label: number) => rows.filter((r) => r.label === label).length;

describe('IMDB', () => {
  const all = loadImdbReviews();
  const split = loadImdb();

  it('has 50,000 reviews, 25,000 per label, with no <br /> left', () => {
    expect(all.length).toBe(50_000);
    expect(countLabel(all, 0)).toBe(25_000);
    expect(countLabel(all, 1)).toBe(25_000);
    expect(all.some((r) => /<br\s*\/?>/i.test(r.text))).toBe(false);
    expect(all.every((r) => r.text.length > 0)).toBe(true);
  });

  it('splits 40,000 / 10,000 with 20,000 / 5,000 per label', () => {
    expect(split.train.length).toBe(40_000);
    expect(split.test.length).toBe(10_000);
    expect(countLabel(split.train, 1)).toBe(20_000);
    expect(countLabel(split.test, 1)).toBe(5_000);
  });

  it('the split is a partition of the reviews and reproducible', () => {
    const sorted = (rows: { text: string; label: number }[]) => rows.map((r) => `${r.label}${r.text}`).sort();
    expect(sorted([...split.train, ...split.test])).toEqual(sorted(all));
    const again = loadImdb();
    expect(again.test.map((r) => r.text)).toEqual(split.test.map((r) => r.text));
    expect(again.train.slice(0, 100).map((r) => r.text)).toEqual(split.train.slice(0, 100).map((r) => r.text));
    expect(IMDB_SPLIT_SEED).toBe(20_240_601);
  });

  it('the training order is shuffled, not grouped by label', () => {
    const firstHundredPositive = countLabel(split.train.slice(0, 100), 1);
    expect(firstHundredPositive).toBeGreaterThan(30);
    expect(firstHundredPositive).toBeLessThan(70);
  });
});

describe('stripLineBreakTags', () => {
  it('replaces <br />, <br/> and <BR> with a space', () => {
    expect(stripLineBreakTags('a<br />b<br/>c<BR>d<br /><br />e')).toBe('a b c d  e');
  });
});

describe('stratifiedSplit', () => {
  it('keeps group shares, depends on the seed, and rejects a bad fraction', () => {
    const items = Array.from({ length: 30 }, (_, i) => ({ i, g: i % 3 === 0 ? 'a' : 'b' }));
    const s1 = stratifiedSplit(items, (x) => x.g, 0.2, 1);
    expect(s1.test.filter((x) => x.g === 'a').length).toBe(2);
    expect(s1.test.filter((x) => x.g === 'b').length).toBe(4);
    expect(stratifiedSplit(items, (x) => x.g, 0.2, 1)).toEqual(s1);
    expect(stratifiedSplit(items, (x) => x.g, 0.2, 2).test).not.toEqual(s1.test);
    expect(() => stratifiedSplit(items, (x) => x.g, 1.5, 1)).toThrow(
      /testFraction is 1.5; expected a number in \[0, 1\]/,
    );
  });
});
