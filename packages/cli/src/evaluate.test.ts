// The measured speed-up's spread and the "within noise" mark, from the wall times of the timed passes.
import { describe, expect, it } from 'vitest';
import { speedupWithSpread } from './evaluate.js';
import { measuredCell } from './report.js';

describe('speedupWithSpread', () => {
  it('median ratio, the range of every full-depth pass over every pass of the run', () => {
    const s = speedupWithSpread([90, 100, 110], [45, 50, 55]);
    expect(s.speedup).toBe(2);
    expect(s.range[0]).toBeCloseTo(90 / 55, 12);
    expect(s.range[1]).toBeCloseTo(110 / 45, 12);
    expect(s.withinNoise).toBe(false);
    // even counts: the mean of the middle two
    expect(speedupWithSpread([100, 120], [50, 70]).speedup).toBeCloseTo(110 / 60, 12);
  });

  it('a range that includes 1.0× is within noise, and so is one wider than twice the gain', () => {
    // ±15% on a shared machine around a 5% gain: [0.89, 1.24] includes 1
    const overlap = speedupWithSpread([95, 105, 115], [92, 100, 107]);
    expect(overlap.range[0]).toBeLessThan(1);
    expect(overlap.withinNoise).toBe(true);
    // above 1 everywhere, 1.15× in [1.04, 1.46]: half-width 0.21 ≥ gain 0.15
    const wide = speedupWithSpread([105, 115, 140], [96, 100, 100.5]);
    expect(wide.range[0]).toBeGreaterThan(1);
    expect(wide.withinNoise).toBe(true);
    // a clear gain with a tight range is not
    expect(speedupWithSpread([100, 101, 102], [50, 51, 52]).withinNoise).toBe(false);
    // one pass: no spread is known
    expect(speedupWithSpread([100], [50]).withinNoise).toBeNull();
  });

  it('tables show the median, the range and the mark', () => {
    const m = {
      mode: 'host' as const,
      wallMs: 100,
      wallMsRange: [92, 107] as [number, number],
      repeats: 3,
      samplesPerSec: 10,
      computeFraction: 0.9,
      exitsMatch: true,
      mismatches: 0,
    };
    expect(measuredCell({ ...m, speedup: 1.05, speedupRange: [0.89, 1.25], withinNoise: true })).toBe(
      '1.05× (0.89–1.25) noise',
    );
    expect(measuredCell({ ...m, speedup: 1.96, speedupRange: [1.92, 2.04], withinNoise: false })).toBe(
      '1.96× (1.92–2.04)',
    );
    expect(measuredCell({ ...m, repeats: 1, speedup: 1.5, speedupRange: [1.5, 1.5], withinNoise: null })).toBe('1.50×');
    expect(measuredCell(null)).toBe('–');
  });
});
