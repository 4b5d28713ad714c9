// Reliability diagrams as images: the Vega-Lite spec from @offramp/policies' reliabilitySpec rendered to SVG
// by Vega in Node and to PNG by resvg (as the accuracy-against-compute plot in plot.ts).
import { type ReliabilitySeries, reliabilitySpec } from '@offramp/policies';
import { svgToPng } from './plot.js';

/** SVG text of a reliability diagram of one or more models. */
export async function reliabilitySvg(series: readonly ReliabilitySeries[], title?: string): Promise<string> {
  const vl = await import('vega-lite');
  const vega = await import('vega');
  const compiled = vl.compile(reliabilitySpec(series, { title }) as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** SVG and PNG of a reliability diagram. */
export async function reliabilityImages(
  series: readonly ReliabilitySeries[],
  title?: string,
): Promise<{ svg: string; png: Buffer }> {
  const svg = await reliabilitySvg(series, title);
  const { png } = await svgToPng(svg);
  return { svg, png };
}
