import { describe, expect, it } from 'vitest';
import { Bm25, dotScores, dynamicExit, metricsFromRanks, pairedBootstrapMrr, rankOf, top2 } from './retrieval.js';

describe('retrieval helpers', () => {
  it('ranks pessimistically on ties and computes recall and MRR', () => {
    expect(rankOf([0.1, 0.9, 0.5], 1)).toBe(1);
    expect(rankOf([0.5, 0.9, 0.5], 0)).toBe(3);
    const m = metricsFromRanks([1, 2, 11, 1]);
    expect(m.recallAt1).toBe(0.5);
    expect(m.recallAt10).toBe(0.75);
    expect(m.mrr).toBeCloseTo((1 + 0.5 + 1 / 11 + 1) / 4, 12);
    expect(top2([3, 1, 7, 5])).toEqual([7, 5]);
    expect(Array.from(dotScores(Float32Array.of(1, 0), Float32Array.of(0.5, 2, -1, 3), 2))).toEqual([0.5, -1]);
  });

  it('BM25 matches a hand computation on a tiny corpus', () => {
    const docs = [[1, 2, 2], [3], [1, 3, 4, 5]];
    const bm = new Bm25(docs);
    const s = bm.scores([2, 9]);
    // only doc 0 has token 2: idf = ln(1 + (3 − 1 + 0.5)/(1 + 0.5)); avg length 8/3
    const idf = Math.log(1 + 2.5 / 1.5);
    const expected = (idf * 2 * 2.2) / (2 + 1.2 * (1 - 0.75 + (0.75 * 3) / (8 / 3)));
    expect(s[0]).toBeCloseTo(expected, 12);
    expect(s[1]).toBe(0);
    expect(s[2]).toBe(0);
  });

  it('dynamic exit stops at the first confident exit and charges what ran', () => {
    // two queries, two exits: query 0 is confident at exit 0 (margin 0.5), query 1 only at exit 1
    const scores = [
      [Float64Array.of(0.9, 0.4), Float64Array.of(0.5, 0.45)],
      [Float64Array.of(0.8, 0.1), Float64Array.of(0.2, 0.9)],
    ];
    const p = dynamicExit(scores, [0, 1], 0.3, [10, 30], 1);
    expect(p.exitShare).toEqual([0.5, 0.5]);
    expect(p.metrics.recallAt1).toBe(1);
    expect(p.flops).toBe((10 + 1 + 30 + 2) / 2);
    // a threshold above every margin sends both to the last exit
    expect(dynamicExit(scores, [0, 1], 2, [10, 30], 1).exitShare).toEqual([0, 1]);
  });

  it('paired bootstrap: the observed MRR difference, an interval around it, excluding 0 only for a real gap', () => {
    const n = 400;
    const b = Array.from({ length: n }, (_, i) => 1 + (i % 7));
    const better = b.map((r, i) => (i % 2 === 0 ? 1 : r)); // half the queries improved to rank 1
    const g = pairedBootstrapMrr(better, b, 1000, 3);
    expect(g.diff).toBeCloseTo(metricsFromRanks(better).mrr - metricsFromRanks(b).mrr, 12);
    expect(g.lo).toBeGreaterThan(0);
    expect(g.lo).toBeLessThanOrEqual(g.diff);
    expect(g.hi).toBeGreaterThanOrEqual(g.diff);
    // the same system against a shuffled copy of itself: no real difference, the interval spans 0
    const shuffled = [...b].reverse();
    const same = pairedBootstrapMrr(shuffled, b, 1000, 3);
    expect(same.lo).toBeLessThan(0);
    expect(same.hi).toBeGreaterThan(0);
    expect(pairedBootstrapMrr(better, b, 1000, 3)).toEqual(g); // seeded
    expect(() => pairedBootstrapMrr([1], [1, 2])).toThrow(/equal/);
  });
});
