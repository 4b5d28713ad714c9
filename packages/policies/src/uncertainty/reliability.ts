// A reliability diagram as a Vega-Lite specification: per confidence bin, the accuracy (bars) against the
// diagonal of perfect calibration, and the bin's mean confidence (points); several models side by side.
// Rendering to SVG/PNG is left to the caller (the CLI renders with Vega and resvg).
import type { Reliability } from './ece.js';

export interface ReliabilitySeries {
  name: string;
  reliability: Reliability;
}

export function reliabilitySpec(
  series: readonly ReliabilitySeries[],
  options: { title?: string; width?: number; height?: number } = {},
): Record<string, unknown> {
  const width = options.width ?? 300;
  const height = options.height ?? 300;
  const rows = series.flatMap((s) =>
    s.reliability.bins
      .filter((b) => b.count > 0)
      .map((b) => ({
        model: `${s.name} (ECE ${(100 * s.reliability.ece).toFixed(2)}%)`,
        lo: b.lo,
        hi: b.hi,
        accuracy: b.accuracy,
        confidence: b.confidence,
        count: b.count,
      })),
  );
  const axis = { scale: { domain: [0, 1] }, type: 'quantitative' as const };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    padding: 12,
    title: { text: options.title ?? 'Reliability diagram', anchor: 'start', fontSize: 14 },
    config: { font: 'DejaVu Sans', axis: { grid: true, gridColor: '#e6e6e6' }, view: { stroke: '#bbbbbb' } },
    data: { values: rows },
    facet: { field: 'model', type: 'nominal', title: null },
    columns: Math.min(3, Math.max(1, series.length)),
    spec: {
      width,
      height,
      layer: [
        {
          mark: { type: 'bar', color: '#4c78a8', opacity: 0.8, stroke: '#ffffff' },
          encoding: {
            x: { field: 'lo', ...axis, title: 'confidence' },
            x2: { field: 'hi' },
            y: { field: 'accuracy', ...axis, title: 'accuracy in the bin' },
            y2: { datum: 0 },
            tooltip: [{ field: 'count' }, { field: 'accuracy', format: '.3f' }, { field: 'confidence', format: '.3f' }],
          },
        },
        {
          mark: { type: 'point', filled: true, color: '#e45756', size: 30 },
          encoding: { x: { field: 'confidence', ...axis }, y: { field: 'confidence', ...axis } },
        },
        {
          data: { values: [{ a: 0 }, { a: 1 }] },
          mark: { type: 'line', strokeDash: [4, 4], color: '#333333' },
          encoding: { x: { field: 'a', ...axis }, y: { field: 'a', ...axis } },
        },
      ],
    },
  };
}
