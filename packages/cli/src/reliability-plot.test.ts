// The reliability diagram renders to an SVG holding one bar per non-empty bin and to a PNG of that size.
import { reliability } from '@offramp/policies';
import { describe, expect, it } from 'vitest';
import { reliabilityImages } from './reliability-plot.js';

describe('reliability diagram', () => {
  it('renders SVG and PNG', async () => {
    const r = reliability([0.95, 0.91, 0.55, 0.35, 0.72], [1, 1, 0, 1, 1], 10);
    const { svg, png } = await reliabilityImages([{ name: 'toy', reliability: r }], 'toy diagram');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('toy diagram');
    // one bar per non-empty bin (0.3, 0.5, 0.7, 0.9), as tall as its accuracy (the plot is 300 px high)
    const bars = [...svg.matchAll(/aria-roledescription="bar" d="M[\d.]+,([\d.]+)h[\d.]+v([\d.]+)/g)];
    expect(bars).toHaveLength(r.bins.filter((b) => b.count > 0).length);
    expect(bars.map((m) => Math.round(Number(m[2])))).toEqual([300, 0, 300, 300]);
    expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
    expect(png.readUInt32BE(16)).toBeGreaterThan(300); // width in pixels
  });
});
