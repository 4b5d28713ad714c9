// The accuracy-against-compute plot of an evaluation: a Vega-Lite spec (one line per policy, the Pareto
// frontier over all policies dashed, the full-depth model as a point) rendered to SVG by Vega in Node and
// to PNG by resvg, and an HTML page with the SVG inline.
import { existsSync } from 'node:fs';
import type { EvalResult } from './evaluate.js';

export const PLOT_WIDTH = 640;
export const PLOT_HEIGHT = 400;
/** PNG scale factor over the SVG's CSS pixels. */
export const PNG_SCALE = 2;

interface Row {
  policy: string;
  compute: number;
  accuracy: number;
  spec: string;
  frontier: boolean;
  kind: 'policy' | 'frontier' | 'full depth' | 'reference';
}

export function plotRows(r: EvalResult): Row[] {
  const rows: Row[] = [];
  for (const f of r.policies) {
    for (const p of f.points) {
      if (p.accuracy === null || !Number.isFinite(p.computeFraction)) continue;
      rows.push({
        policy: f.family,
        compute: p.computeFraction,
        accuracy: p.accuracy,
        spec: p.spec,
        frontier: p.frontier,
        kind: p.reference ? 'reference' : 'policy',
      });
    }
  }
  return rows;
}

/** The Vega-Lite specification of the plot. */
export function plotSpec(r: EvalResult): Record<string, unknown> {
  const rows = plotRows(r);
  const frontier = rows.filter((x) => x.frontier).map((x) => ({ ...x, kind: 'frontier' as const }));
  const full =
    r.full.accuracy === null
      ? []
      : [
          {
            policy: 'full depth',
            compute: 1,
            accuracy: r.full.accuracy,
            spec: 'never exit',
            frontier: false,
            kind: 'full depth' as const,
          },
        ];
  const accs = [...rows, ...full].map((x) => x.accuracy);
  const lo = Math.max(0, Math.min(...accs) - 0.02);
  const hi = Math.min(1, Math.max(...accs) + 0.01);
  const minCost = Math.min(1, ...rows.map((x) => x.compute));
  const xScale = { domain: [Math.max(0, Math.floor(minCost * 10) / 10), 1.02], nice: false, zero: false };
  const yScale = { domain: [lo, hi], nice: false, zero: false };
  const x = { field: 'compute', type: 'quantitative', scale: xScale };
  const y = { field: 'accuracy', type: 'quantitative', scale: yScale };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: PLOT_WIDTH,
    height: PLOT_HEIGHT,
    background: 'white',
    padding: 12,
    title: {
      text: `Accuracy against compute: ${r.model.name} on ${r.data.name} (${r.data.n} samples)`,
      subtitle: `each line is one exit policy over its settings; dashed: Pareto frontier over all policies; full depth = ${(100 * (r.full.accuracy ?? 0)).toFixed(2)}%`,
      fontSize: 15,
      subtitleFontSize: 11,
      anchor: 'start',
    },
    config: {
      font: 'DejaVu Sans',
      axis: { labelFontSize: 12, titleFontSize: 13, grid: true, gridColor: '#e6e6e6' },
      legend: { labelFontSize: 12, titleFontSize: 12, orient: 'right' },
      view: { stroke: '#bbbbbb' },
    },
    layer: [
      {
        data: { values: frontier },
        mark: { type: 'line', strokeDash: [6, 4], color: '#333333', strokeWidth: 1.5, interpolate: 'step-after' },
        encoding: { x, y, order: { field: 'compute', type: 'quantitative' } },
      },
      {
        data: { values: rows.filter((x) => x.kind === 'policy') },
        mark: { type: 'line', point: { filled: true, size: 45 }, strokeWidth: 2 },
        encoding: {
          x: {
            ...x,
            title: 'compute (mean FLOPs per sample, fraction of full depth)',
            axis: {
              format: '.0%',
              values: Array.from({ length: 11 }, (_, k) => k / 10).filter((v) => v >= xScale.domain[0] - 1e-9),
            },
          },
          y: { ...y, title: 'accuracy', axis: { format: '.1%' } },
          color: { field: 'policy', type: 'nominal', title: 'policy', scale: { scheme: 'tableau10' } },
          order: { field: 'compute', type: 'quantitative' },
          tooltip: [{ field: 'spec' }, { field: 'accuracy', format: '.4f' }, { field: 'compute', format: '.3f' }],
        },
      },
      {
        data: { values: [...full, ...rows.filter((x) => x.kind === 'reference')] },
        mark: { type: 'point', shape: 'diamond', size: 120, filled: true },
        encoding: {
          x,
          y,
          shape: {
            field: 'policy',
            type: 'nominal',
            title: 'reference',
            scale: { range: ['diamond', 'triangle-up', 'square'] },
          },
          color: { value: '#000000' },
        },
      },
    ],
    resolve: { scale: { color: 'independent', shape: 'independent' } },
  };
}

/** SVG text of the plot. */
export async function renderSvg(r: EvalResult): Promise<string> {
  const vl = await import('vega-lite');
  const vega = await import('vega');
  const compiled = vl.compile(plotSpec(r) as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

const FONT_FILES = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
  '/usr/local/share/fonts/DejaVuSans.ttf',
];

/** PNG bytes of an SVG (white background, PNG_SCALE × its size); `fontsFound` false when no font could be loaded. */
export async function svgToPng(
  svg: string,
): Promise<{ png: Buffer; width: number; height: number; fontsFound: boolean }> {
  const { Resvg } = await import('@resvg/resvg-js');
  const fontFiles = FONT_FILES.filter((f) => existsSync(f));
  const resvg = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: PNG_SCALE },
    font: { loadSystemFonts: true, fontFiles, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  const img = resvg.render();
  return {
    png: img.asPng(),
    width: img.width,
    height: img.height,
    fontsFound: fontFiles.length > 0 || hasSystemFonts(),
  };
}

function hasSystemFonts(): boolean {
  return ['/usr/share/fonts', '/usr/local/share/fonts', '/System/Library/Fonts', 'C:\\Windows\\Fonts'].some((d) =>
    existsSync(d),
  );
}
