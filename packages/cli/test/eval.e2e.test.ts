// End-to-end: `offramp eval` and `offramp demo` through the built binary on a small MLP and a JSONL slice:
// the JSON schema, the table, the result files (the PNG decodes at the SVG's size × 2), the real-vs-
// simulated exit check, and the FLOPs-based numbers against a direct run of the engine.
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildModel, createDevice, Runner } from '@offramp/core';
import { loadModelDir } from '@offramp/core/node';
import { createPolicy, policyFromJson } from '@offramp/policies';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evalResultSchema } from '../src/schema.js';
import { pct } from '../src/util/format.js';
import { cli, ensureBuilt, makeJsonl, makeModel, makeRows, tempDir } from './helpers.js';

const N = 150;
const BATCH = 32;
let dir: string;
let model: string;
let data: string;
let json: ReturnType<typeof evalResultSchema.parse>;
let jsonRun: ReturnType<typeof cli>;

beforeAll(async () => {
  ensureBuilt();
  dir = tempDir('eval');
  model = await makeModel(join(dir, 'mlp'));
  data = makeJsonl(join(dir, 'data.jsonl'), N);
  jsonRun = cli([
    'eval',
    '--model',
    model,
    '--data',
    data,
    '--policies',
    'confidence,entropy,patience,static,oracle',
    '--batch',
    String(BATCH),
    '--measure',
    'all',
    '--out',
    join(dir, 'out'),
    '--json',
  ]);
  if (jsonRun.code === 0) json = evalResultSchema.parse(JSON.parse(jsonRun.stdout));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('offramp eval --json', () => {
  it('exits 0 and prints JSON matching the schema on stdout, the tables on stderr', () => {
    expect(jsonRun.stderr).not.toMatch(/error/i);
    expect(jsonRun.code).toBe(0);
    expect(json.data).toMatchObject({ n: N, split: 'file' });
    expect(json.batch).toBe(BATCH);
    expect(json.policies.map((p) => p.family)).toEqual(['confidence', 'entropy', 'patience', 'static', 'oracle']);
    expect(jsonRun.stderr).toContain('policy confidence');
    expect(jsonRun.stderr).toContain('mean exit block');
    expect(jsonRun.stderr).toMatch(/adapter|device/);
  });

  it('re-runs every setting for real and the real exits equal the simulated ones', () => {
    expect(json.checks.exitsMatch).toBe(true);
    const pts = json.policies.flatMap((f) => f.points.filter((p) => !p.reference));
    expect(json.checks.measured).toBe(pts.length);
    for (const p of pts) {
      expect(p.measured, p.spec).not.toBeNull();
      expect(p.measured!.exitsMatch).toBe(true);
      // the engine's own FLOPs accounting of the real run equals the replay's
      expect(p.measured!.computeFraction).toBeCloseTo(p.computeFraction, 12);
    }
  });

  it('marks a Pareto frontier and one chosen setting per policy', () => {
    const deployable = json.policies.flatMap((f) => f.points.filter((p) => !p.reference));
    const frontier = deployable.filter((p) => p.frontier).sort((a, b) => a.computeFraction - b.computeFraction);
    expect(frontier.length).toBeGreaterThan(0);
    // frontier: accuracy strictly rises with cost, and no point beats a frontier point on both
    for (let i = 1; i < frontier.length; i++) expect(frontier[i].accuracy!).toBeGreaterThan(frontier[i - 1].accuracy!);
    for (const f of frontier)
      for (const p of deployable)
        expect(p.computeFraction <= f.computeFraction && p.accuracy! > f.accuracy!).toBe(false);
    for (const f of json.policies.filter((x) => x.family !== 'oracle'))
      expect(f.points.filter((p) => p.chosen)).toHaveLength(1);
    // static exits give one point per exit with their cost fractions
    const st = json.policies.find((p) => p.family === 'static')!;
    expect(st.points).toHaveLength(json.model.costFractions.length);
    for (const [e, p] of st.points.entries()) expect(p.computeFraction).toBeCloseTo(json.model.costFractions[e], 12);
  });

  it('writes results.json, results.csv, report.md, report.html and a plot as SVG and PNG', () => {
    const out = join(dir, 'out');
    for (const f of ['results.json', 'results.csv', 'report.md', 'report.html', 'plot.svg', 'plot.png']) {
      expect(existsSync(join(out, f)), f).toBe(true);
      expect(statSync(join(out, f)).size, f).toBeGreaterThan(100);
    }
    expect(evalResultSchema.parse(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'))).policies).toHaveLength(
      5,
    );
    const csv = readFileSync(join(out, 'results.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toMatch(/^policy,spec,options,/);
    expect(csv).toHaveLength(1 + json.policies.reduce((a, f) => a + f.points.length, 0));
    const svg = readFileSync(join(out, 'plot.svg'), 'utf8');
    const w = Number(/<svg[^>]*\swidth="([\d.]+)"/.exec(svg)![1]);
    const h = Number(/<svg[^>]*\sheight="([\d.]+)"/.exec(svg)![1]);
    expect(svg).toContain('compute (mean FLOPs per sample, fraction of full depth)');
    expect(svg).toContain('accuracy');
    for (const fam of ['confidence', 'entropy', 'patience', 'static']) expect(svg).toContain(`>${fam}<`);
    const png = PNG.sync.read(readFileSync(join(out, 'plot.png')));
    expect(png.width).toBe(Math.round(w * 2));
    expect(png.height).toBe(Math.round(h * 2));
    // not blank: some dark pixels (axes, text, lines)
    let dark = 0;
    for (let i = 0; i < png.data.length; i += 4)
      if (png.data[i] < 100 && png.data[i + 1] < 100 && png.data[i + 2] < 100) dark++;
    expect(dark).toBeGreaterThan(1000);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toContain('![accuracy against compute](plot.png)');
    expect(md).toContain('### confidence');
    expect(md).toMatch(/block 3 +█*/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|src="http/);
  });

  it('FLOPs, exits and accuracy equal a direct run of the engine with the same policies', async () => {
    const { config, tensors } = await loadModelDir(model);
    const device = await createDevice();
    const m = buildModel(device, config.model, tensors as never);
    const runner = new Runner(device, m, { maxBatch: BATCH });
    const rows = makeRows(N);
    const features = new Float32Array(N * 16);
    for (const [i, r] of rows.entries()) features.set(r.image, i * 16);
    try {
      expect(json.model.flopsPerSample).toBe(runner.costs(1).full);
      for (const f of json.policies.filter((x) => x.family !== 'oracle')) {
        for (const p of f.points) {
          const policy = createPolicy(f.family, p.options);
          const r = await runner.run({ features }, { policy });
          expect(r.summary.flops / r.summary.fullDepthFlops, p.spec).toBeCloseTo(p.computeFraction, 12);
          expect(r.summary.exitCounts, p.spec).toEqual(p.exitHistogram);
          expect(r.summary.meanExitBlock).toBeCloseTo(p.meanExitBlock, 12);
          const acc = r.samples.filter((s, i) => s.prediction === rows[i].label).length / N;
          expect(acc, p.spec).toBeCloseTo(p.accuracy!, 12);
        }
      }
      const full = await runner.run(
        { features },
        { policy: policyFromJson({ offramp_policy: 1, name: 'static', options: { exit: 3 } }) },
      );
      expect(full.samples.filter((s, i) => s.prediction === rows[i].label).length / N).toBeCloseTo(
        json.full.accuracy!,
        12,
      );
    } finally {
      runner.dispose();
      m.dispose();
      device.destroy();
    }
  });
});

describe('offramp eval (text output)', () => {
  it('prints a table per policy whose numbers are those of the JSON, and where the files went', () => {
    const out = join(dir, 'out-text');
    const r = cli([
      'eval',
      '-m',
      model,
      '-d',
      data,
      '-p',
      'confidence',
      '-p',
      'entropy',
      '-b',
      String(BATCH),
      '--measure',
      'none',
      '-o',
      out,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('policy confidence');
    expect(r.stdout).toContain('policy entropy');
    expect(r.stdout).toContain('◀ chosen');
    expect(r.stdout).toContain('★');
    expect(r.stdout).toMatch(/block 0 +[█▏▎▍▌▋▊▉ ]+\d+ \(/);
    expect(r.stdout).toContain(join(out, 'plot.png'));
    const res = evalResultSchema.parse(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')));
    for (const f of res.policies) for (const p of f.points) expect(r.stdout).toContain(pct(p.accuracy));
    expect(r.stdout).toContain(`full depth  accuracy ${pct(res.full.accuracy)}`);
    // no progress bars or escape codes when not a terminal
    expect(r.stdout + r.stderr).not.toContain('\u001b[');
    // nothing at all on stderr: Dawn's native notes on the adapter's limits are filtered out by the binary
    expect(r.stderr).toBe('');
  });

  it('-q leaves stderr empty on the GPU: no Dawn adapter-limit notices, while real errors still show', () => {
    const args = ['eval', '-m', model, '-d', data, '-p', 'confidence', '--measure', 'none', '-q', '--device', 'gpu'];
    const r = cli([...args, '-o', join(dir, 'out-quiet')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toContain('artificially reduced');
    expect(r.stderr).toBe('');
    const bad = cli([...args, '-b', '0', '-o', join(dir, 'out-quiet')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--batch');
  });

  it('runs on the CPU device too, with the same exits as on the default device', () => {
    const r = cli([
      'eval',
      '-m',
      model,
      '-d',
      data,
      '-p',
      'confidence',
      '--device',
      'cpu',
      '-b',
      '50',
      '--limit',
      '100',
      '--measure',
      'chosen',
      '-o',
      join(dir, 'out-cpu'),
      '--json',
    ]);
    expect(r.code).toBe(0);
    const res = evalResultSchema.parse(JSON.parse(r.stdout));
    expect(res.device.kind).toBe('cpu');
    expect(res.data.n).toBe(100);
    expect(res.checks.exitsMatch).toBe(true);
    const g = json.policies[0].points;
    expect(res.policies[0].points.length).toBeGreaterThan(1);
    expect(g.length).toBeGreaterThan(1);
  });
});

describe('offramp demo', () => {
  it('runs on a given model and data and says which adapter it used', () => {
    const r = cli([
      'demo',
      '--model',
      model,
      '--data',
      data,
      '--limit',
      '64',
      '--batch',
      '32',
      '--out',
      join(dir, 'demo'),
      '--json',
    ]);
    expect(r.code).toBe(0);
    const res = evalResultSchema.parse(JSON.parse(r.stdout));
    expect(res.command).toBe('demo');
    expect(res.data.n).toBe(64);
    expect(r.stderr).toContain(res.device.adapter);
    expect(r.stderr).toContain(join(dir, 'demo', 'plot.png'));
  });
});
