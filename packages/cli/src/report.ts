// What an evaluation prints and writes: a table per policy (frontier marked), the exit-block histogram of
// each policy's chosen point, a summary; results.json, results.csv, report.md, plot.svg / plot.png and a
// self-contained report.html in the output folder.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Table from 'cli-table3';
import type { EvalResult, MeasuredRun, PointResult, PolicyResult } from './evaluate.js';
import { renderSvg, svgToPng } from './plot.js';
import { bars, count, duration, fixed, pct, pp } from './util/format.js';
import type { Colors, Logger } from './util/log.js';

export const HEADERS = [
  '',
  'options',
  'accuracy',
  'Δ vs full',
  'mean exit block',
  'compute',
  'FLOPs ×',
  'measured ×',
  'samples/s',
  'exits = sim',
];

/** An accuracy-drop limit in points, without trailing zeros (0.01 → 1, 0.0025 → 0.25). */
export function ppLimit(maxDrop: number): string {
  return String(Number((100 * maxDrop).toFixed(4)));
}

function speed(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : `${x.toFixed(2)}×`;
}

/**
 * A measured speed-up as a cell: the median, its min–max range over the passes, and 'noise' when the range
 * says the figure is within noise (see MeasuredRun.withinNoise). A single pass shows the figure alone.
 */
export function measuredCell(m: MeasuredRun | null): string {
  if (!m) return '–';
  if (m.repeats < 2) return speed(m.speedup);
  const [lo, hi] = m.speedupRange;
  return `${speed(m.speedup)} (${lo.toFixed(2)}–${hi.toFixed(2)})${m.withinNoise ? ' noise' : ''}`;
}

/** The legend of the measured column. */
function measuredLegend(r: EvalResult): string {
  const n = r.full.repeats;
  return n < 2
    ? `measured × = full-depth wall time / this policy's at batch ${r.batch} (one timed pass each: no spread known, use --repeats 3 or more)`
    : `measured × = full-depth wall time / this policy's at batch ${r.batch}, median of ${n} timed passes with the min–max range of the ratio; noise: the range includes 1.0× or is wider than twice the gain`;
}

/** One table row's cells (plain text). */
export function rowCells(p: PointResult): string[] {
  const m = p.measured;
  const mark = p.reference ? 'ref' : p.frontier ? '★' : p.policyFrontier ? '☆' : '';
  return [
    mark,
    p.label + (p.chosen ? '  ◀ chosen' : ''),
    pct(p.accuracy),
    pp(p.accuracyDrop === null ? null : -p.accuracyDrop),
    fixed(p.meanExitBlock, 2),
    pct(p.computeFraction, 1),
    speed(p.flopsSpeedup),
    measuredCell(m),
    m ? fixed(m.samplesPerSec, 0) : '–',
    !m ? '–' : m.exitsMatch === null ? 'n/a' : m.exitsMatch ? 'yes' : `NO (${m.mismatches})`,
  ];
}

function sortPoints(points: PointResult[]): PointResult[] {
  return [...points].sort((a, b) => a.computeFraction - b.computeFraction || (b.accuracy ?? 0) - (a.accuracy ?? 0));
}

export function chosenOf(f: PolicyResult): PointResult | undefined {
  return f.points.find((p) => p.chosen) ?? f.points.find((p) => p.reference);
}

/** Exit-block histogram lines of one point. */
export function histogramLines(r: EvalResult, p: PointResult): string[] {
  return bars(
    p.exitHistogram.map((v, e) => ({ label: `block ${r.model.exitBlocks[e]}`, value: v })),
    28,
  );
}

export function printEvaluation(r: EvalResult, log: Logger): void {
  const c: Colors = log.c;
  log.info();
  log.info(
    `${c.bold('full depth')}  accuracy ${pct(r.full.accuracy)}, ${fixed(r.full.samplesPerSec, 0)} samples/s at batch ${r.batch} (${r.full.mode} mode, ${duration(r.full.wallMs)} for ${count(r.data.n)} samples${r.full.repeats > 1 ? `: median of ${r.full.repeats} passes, ${duration(r.full.wallMsRange[0])}–${duration(r.full.wallMsRange[1])}` : ''})`,
  );
  for (const f of r.policies) {
    const table = new Table({
      head: HEADERS.map((h) => c.bold(h)),
      style: { head: [], border: [], compact: true },
      colAligns: ['center', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'center'],
    });
    for (const p of sortPoints(f.points)) {
      const cells = rowCells(p);
      if (p.chosen) cells[1] = c.bold(cells[1]);
      if (p.frontier) cells[0] = c.yellow(cells[0]);
      if (p.measured && p.measured.exitsMatch === false) cells[9] = c.red(cells[9]);
      table.push(cells);
    }
    log.info();
    log.info(
      c.bold(c.cyan(`policy ${f.family}`)) + c.dim(`  (${f.points.length} setting${f.points.length === 1 ? '' : 's'})`),
    );
    log.info(table.toString());
    const ch = chosenOf(f);
    if (ch?.exitHistogram.length) {
      log.info(c.dim(`  exits of ${ch.reference ? 'the reference' : 'the chosen setting'} (${ch.label}):`));
      for (const line of histogramLines(r, ch)) log.info(`    ${line}`);
    }
  }
  log.info();
  log.info(
    c.dim(
      `★ on the Pareto frontier over all policies, ☆ on this policy's own frontier; ◀ chosen: the cheapest setting within ${ppLimit(r.maxDrop)} pp of full-depth accuracy; ${measuredLegend(r)}; exits = sim: the real run's exits equal the simulated ones`,
    ),
  );
  log.info();
  const sum = new Table({
    head: ['policy', 'chosen setting', 'accuracy', 'Δ vs full', 'compute', 'FLOPs ×', 'measured ×'].map((h) =>
      c.bold(h),
    ),
    style: { head: [], border: [], compact: true },
  });
  for (const f of r.policies) {
    const p = chosenOf(f);
    if (!p) continue;
    sum.push([
      f.family,
      p.label,
      pct(p.accuracy),
      pp(p.accuracyDrop === null ? null : -p.accuracyDrop),
      pct(p.computeFraction, 1),
      speed(p.flopsSpeedup),
      measuredCell(p.measured),
    ]);
  }
  log.info(c.bold('summary'));
  log.info(sum.toString());
  const fixedLine = fixedExitComparison(r);
  if (fixedLine) log.info(fixedLine);
  for (const s of r.skipped) log.info(c.dim(`policy ${s.policy} skipped: ${s.reason}`));
  if (!r.checks.exitsMatch) log.warn(`real and simulated exits differ for ${r.checks.mismatchedPoints.join(', ')}`);
}

/**
 * One line setting the per-input policies beside the best fixed exit (the static policy's chosen setting):
 * what deciding per input buys at the same accuracy limit. Null when static was not evaluated.
 */
export function fixedExitComparison(r: EvalResult): string | null {
  const stat = r.policies.find((f) => f.family === 'static');
  const fixedPoint = stat?.points.find((p) => p.chosen);
  if (!fixedPoint) return null;
  const others = r.policies
    .filter((f) => f.family !== 'static' && f.family !== 'oracle')
    .map((f) => ({ f, p: f.points.find((p) => p.chosen) }))
    .filter((x): x is { f: PolicyResult; p: PointResult } => Boolean(x.p) && Number.isFinite(x.p!.flopsSpeedup));
  const fmt = (p: PointResult) =>
    `${speed(p.flopsSpeedup)} FLOPs${p.measured ? `, ${measuredCell(p.measured)} measured` : ''}`;
  const best = others.sort((a, b) => b.p.flopsSpeedup - a.p.flopsSpeedup)[0];
  return `best fixed exit within ${ppLimit(r.maxDrop)} pp: ${fixedPoint.label} (${fmt(fixedPoint)})${best ? `; best per-input policy: ${best.f.family} ${best.p.label} (${fmt(best.p)}, ${(best.p.flopsSpeedup / fixedPoint.flopsSpeedup).toFixed(2)}× the fixed exit's FLOPs speed-up)` : ''}`;
}

const CSV_COLUMNS = [
  'policy',
  'spec',
  'options',
  'reference',
  'accuracy',
  'accuracy_drop',
  'agreement',
  'mean_exit_block',
  'compute_fraction',
  'flops_speedup',
  'frontier',
  'policy_frontier',
  'chosen',
  'measured_mode',
  'measured_ms',
  'samples_per_s',
  'measured_speedup',
  'measured_speedup_min',
  'measured_speedup_max',
  'measured_within_noise',
  'measured_repeats',
  'measured_compute_fraction',
  'exits_match',
  'exit_histogram',
];

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s =
    typeof v === 'number'
      ? Number.isFinite(v)
        ? String(v)
        : ''
      : typeof v === 'object'
        ? JSON.stringify(v)
        : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(r: EvalResult): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const f of r.policies) {
    for (const p of f.points) {
      const m = p.measured;
      lines.push(
        [
          f.family,
          p.spec,
          p.options,
          p.reference,
          p.accuracy,
          p.accuracyDrop,
          p.agreement,
          p.meanExitBlock,
          p.computeFraction,
          p.flopsSpeedup,
          p.frontier,
          p.policyFrontier,
          p.chosen,
          m?.mode,
          m?.wallMs,
          m?.samplesPerSec,
          m?.speedup,
          m?.speedupRange[0],
          m?.speedupRange[1],
          m?.withinNoise,
          m?.repeats,
          m?.computeFraction,
          m?.exitsMatch,
          p.exitHistogram.join(' '),
        ]
          .map(csvCell)
          .join(','),
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

function mdEscape(s: string): string {
  return s.replace(/\|/g, '\\|');
}

function setupLines(r: EvalResult): string[] {
  return [
    `- model: \`${r.model.name}\` (${r.model.architecture}), ${r.model.numBlocks} blocks, exits after blocks ${r.model.exitBlocks.join(', ')}, ${count(r.model.parameters)} parameters, ${(r.model.flopsPerSample / 1e6).toFixed(2)} MFLOP per sample at full depth; compute at each exit: ${r.model.costFractions.map((x) => pct(x, 1)).join(', ')}`,
    `- data: ${r.data.name}${r.data.split !== 'file' ? ` (${r.data.split} split)` : ''}, ${count(r.data.n)} of ${count(r.data.available)} samples`,
    `- device: ${r.device.adapter}; batch ${r.batch}`,
    `- full depth: accuracy ${pct(r.full.accuracy)}, ${fixed(r.full.samplesPerSec, 1)} samples/s (${r.full.mode} mode)`,
    `- real runs: ${r.checks.measured} settings re-run for real; exits equal the simulated ones: ${r.checks.exitsMatch ? 'yes' : `**no** (${r.checks.mismatchedPoints.join(', ')})`}`,
  ];
}

export function toMarkdown(r: EvalResult, files: { png?: string; svg?: string }): string {
  const out: string[] = [
    `# Early-exit evaluation: ${r.model.name} on ${r.data.name}`,
    '',
    `${r.date}`,
    '',
    ...setupLines(r),
    '',
  ];
  if (files.png)
    out.push(`![accuracy against compute](${files.png})`, '', `Vector version: [${files.svg}](${files.svg}).`, '');
  out.push(
    '## Summary',
    '',
    `The cheapest setting of each policy within ${ppLimit(r.maxDrop)} points of full-depth accuracy (or the most accurate one, when none is).`,
    '',
  );
  out.push(
    '| policy | chosen setting | accuracy | Δ vs full | compute | FLOPs × | measured × |',
    '|---|---|---:|---:|---:|---:|---:|',
  );
  for (const f of r.policies) {
    const p = chosenOf(f);
    if (!p) continue;
    out.push(
      `| ${mdEscape(f.family)} | ${mdEscape(p.label)} | ${pct(p.accuracy)} | ${pp(p.accuracyDrop === null ? null : -p.accuracyDrop)} | ${pct(p.computeFraction, 1)} | ${speed(p.flopsSpeedup)} | ${measuredCell(p.measured)} |`,
    );
  }
  const fixedLine = fixedExitComparison(r);
  if (fixedLine) out.push('', `${fixedLine[0].toUpperCase()}${fixedLine.slice(1)}.`);
  out.push(
    '',
    '## Policies',
    '',
    `★ on the Pareto frontier over all policies, ☆ on the policy's own frontier. ${measuredLegend(r).replace(/^measured × =/, '"measured ×" is')}; "exits = sim" says whether the real run's exits equal the simulated ones.`,
    '',
  );
  for (const f of r.policies) {
    out.push(
      `### ${mdEscape(f.family)}`,
      '',
      `| ${HEADERS.map(mdEscape).join(' | ')} |`,
      `|${HEADERS.map((_, i) => (i >= 2 && i <= 8 ? '---:' : '---')).join('|')}|`,
    );
    for (const p of sortPoints(f.points)) out.push(`| ${rowCells(p).map(mdEscape).join(' | ')} |`);
    const ch = chosenOf(f);
    if (ch?.exitHistogram.length)
      out.push(
        '',
        `Exit blocks of ${ch.reference ? 'the reference' : 'the chosen setting'} (${mdEscape(ch.label)}):`,
        '',
        '```',
        ...histogramLines(r, ch),
        '```',
      );
    out.push('');
  }
  if (r.skipped.length) out.push('## Skipped', '', ...r.skipped.map((s) => `- ${s.policy}: ${s.reason}`), '');
  out.push(
    '## Method',
    '',
    "1. One full-depth run records every exit head's signals for every sample (the trace).",
    '2. Each policy setting is replayed on the trace exactly as the engine runs it (same batches, same f32 comparisons): accuracy, exits and FLOPs come from this replay.',
    "3. The settings on each policy's frontier (and each chosen one) run again on the engine for real: wall time after one warm-up batch, and the real exits compared with the replay.",
    '',
  );
  return `${out.join('\n')}\n`;
}

function htmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function toHtml(r: EvalResult, svg: string): string {
  const tables = r.policies
    .map((f) => {
      const rows = sortPoints(f.points)
        .map(
          (p) =>
            `<tr${p.chosen ? ' class="chosen"' : ''}>${rowCells(p)
              .map((c, i) => `<td${i >= 2 && i <= 8 ? ' class="n"' : ''}>${htmlEscape(c)}</td>`)
              .join('')}</tr>`,
        )
        .join('\n');
      const ch = chosenOf(f);
      const hist = ch?.exitHistogram.length ? `<pre>${htmlEscape(histogramLines(r, ch).join('\n'))}</pre>` : '';
      return `<h3>${htmlEscape(f.family)}</h3>\n<table><thead><tr>${HEADERS.map((h) => `<th>${htmlEscape(h)}</th>`).join('')}</tr></thead><tbody>\n${rows}\n</tbody></table>\n${hist}`;
    })
    .join('\n');
  const setup = setupLines(r)
    .map(
      (l) =>
        `<li>${htmlEscape(l.slice(2))
          .replace(/`([^`]+)`/g, '<code>$1</code>')
          .replace(/\*\*([^*]+)\*\*/g, '<b>$1</b>')}</li>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${htmlEscape(`${r.model.name} on ${r.data.name}: early-exit evaluation`)}</title>
<style>
body{font-family:system-ui,'DejaVu Sans',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:14px}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}tr.chosen{background:#fff6d5;font-weight:600}
pre{background:#f7f7f7;padding:.6em;font-size:13px}svg{max-width:100%;height:auto}
</style></head><body>
<h1>Early-exit evaluation: ${htmlEscape(r.model.name)} on ${htmlEscape(r.data.name)}</h1>
<p>${htmlEscape(r.date)}</p>
<ul>${setup}</ul>
${svg}
<h2>Policies</h2>
<p>★ on the Pareto frontier over all policies, ☆ on the policy's own frontier; highlighted: the chosen setting (cheapest within ${ppLimit(r.maxDrop)} pp of full-depth accuracy). ${htmlEscape(measuredLegend(r))}.</p>
${tables}
</body></html>
`;
}

export interface WrittenFiles {
  dir: string;
  json: string;
  csv: string;
  markdown: string;
  svg: string;
  png: string;
  html: string;
  pngWidth: number;
  pngHeight: number;
}

/** Writes every result file into `dir` (created); returns their paths. */
export async function writeResults(r: EvalResult, dir: string, log: Logger): Promise<WrittenFiles> {
  const out = resolve(dir);
  mkdirSync(out, { recursive: true });
  const svg = await renderSvg(r);
  const { png, width, height, fontsFound } = await svgToPng(svg);
  if (!fontsFound)
    log.warn('no fonts found for the PNG plot (install fonts-dejavu-core); the SVG and HTML versions have their text');
  const files: WrittenFiles = {
    dir: out,
    json: join(out, 'results.json'),
    csv: join(out, 'results.csv'),
    markdown: join(out, 'report.md'),
    svg: join(out, 'plot.svg'),
    png: join(out, 'plot.png'),
    html: join(out, 'report.html'),
    pngWidth: width,
    pngHeight: height,
  };
  r.files = {
    json: files.json,
    csv: files.csv,
    markdown: files.markdown,
    svg: files.svg,
    png: files.png,
    html: files.html,
  };
  writeFileSync(files.svg, svg);
  writeFileSync(files.png, png);
  writeFileSync(files.csv, toCsv(r));
  writeFileSync(files.markdown, toMarkdown(r, { png: 'plot.png', svg: 'plot.svg' }));
  writeFileSync(files.html, toHtml(r, svg));
  writeFileSync(files.json, `${JSON.stringify(r, null, 2)}\n`);
  return files;
}
