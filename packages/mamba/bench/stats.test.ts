// Tests of the benchmark helpers: median, interleaved timing order, the bandwidth floor and the table.
import { describe, expect, it } from 'vitest';
import { bandwidthFloor, formatTable, median, timeCases } from './stats.js';

describe('median', () => {
  it('takes the middle of odd and the mean of the two middles of even counts, unsorted input', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
  });
  it('rejects an empty sample', () => {
    expect(() => median([])).toThrow(/no samples/);
  });
});

describe('timeCases', () => {
  it('warms every case up, then runs each `runs` times with the order rotated every round', async () => {
    const calls: string[] = [];
    const cases = {
      a: async () => {
        calls.push('a');
      },
      b: async () => {
        calls.push('b');
      },
      c: async () => {
        calls.push('c');
      },
    };
    const ms = await timeCases(cases, { warmup: 1, runs: 3 });
    expect(calls).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'b', 'c', 'a', 'c', 'a', 'b']);
    for (const k of ['a', 'b', 'c']) {
      expect(ms[k]).toHaveLength(3);
      for (const t of ms[k]) expect(t).toBeGreaterThanOrEqual(0);
    }
  });
});

describe('bandwidthFloor', () => {
  it('counts a copy as read + write and divides the step bytes by that bandwidth', () => {
    // 1 GB copied in 100 ms = 2 GB moved / 0.1 s = 20 GB/s; 500 MB at 20 GB/s = 25 ms
    const r = bandwidthFloor(5e8, 1e9, 100);
    expect(r.gbPerS).toBeCloseTo(20, 10);
    expect(r.floorMs).toBeCloseTo(25, 10);
  });
  it('rejects a zero or negative copy time', () => {
    expect(() => bandwidthFloor(1, 1, 0)).toThrow(/must be positive/);
    expect(() => bandwidthFloor(1, 0, 1)).toThrow(/must be positive/);
  });
});

describe('formatTable', () => {
  it('pads columns to their widest cell under a rule line', () => {
    const t = formatTable(['a', 'bbb'], [['long', 1]]);
    expect(t.split('\n')).toEqual(['a     bbb', '----  ---', 'long  1  ']);
  });
});
