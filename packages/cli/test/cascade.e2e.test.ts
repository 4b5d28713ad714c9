// End-to-end: `offramp eval` with a cascade spec through the built binary: the JSON document (metrics of the
// combined output, stage shares), the files, a spec path that leaves its folder (exit code 2, the reason), and
// --metrics on a single model.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, ensureBuilt, makeJsonl, makeModel, tempDir } from './helpers.js';

let dir: string;
beforeAll(async () => {
  ensureBuilt();
  dir = tempDir('cascade');
  mkdirSync(join(dir, 'spec'), { recursive: true });
  await makeModel(join(dir, 'spec', 'a'), 3);
  await makeModel(join(dir, 'spec', 'b'), 4);
  await makeModel(join(dir, 'elsewhere'), 5);
  makeJsonl(join(dir, 'data.jsonl'), 60, 11);
  makeJsonl(join(dir, 'ood.jsonl'), 30, 99);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('offramp eval -m cascade.json', () => {
  it('reports the metrics of the combined output as JSON and writes the files', () => {
    const spec = join(dir, 'spec', 'cascade.json');
    writeFileSync(
      spec,
      JSON.stringify({
        offramp_cascade: 1,
        stages: [{ model: 'a' }, { model: 'b' }],
        defer: 'confidence:threshold=0.5',
      }),
    );
    const out = join(dir, 'out');
    const r = cli([
      'eval',
      '-m',
      spec,
      '-d',
      join(dir, 'data.jsonl'),
      '--ood-data',
      join(dir, 'ood.jsonl'),
      '--metrics',
      'all',
      '--device',
      'cpu',
      '--json',
      '-o',
      out,
    ]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.cascade.stages).toEqual([join(dir, 'spec', 'a'), join(dir, 'spec', 'b')]);
    expect(j.data.n).toBe(60);
    expect(j.ood.n).toBe(30);
    const m = j.metrics;
    expect(m.stageShare[0]).toBe(1);
    expect(m.stageShare[1]).toBeGreaterThanOrEqual(0);
    expect(m.stageShare[1]).toBeLessThanOrEqual(1);
    for (const v of [m.selective.aurc, m.selective.misclassificationAuroc, m.ood.auroc, m.calibration.ece])
      expect(v).toBeGreaterThanOrEqual(0);
    expect(m.calibration.bins).toHaveLength(15);
    for (const f of ['metrics.json', 'reliability.svg', 'reliability.png']) expect(existsSync(join(out, f))).toBe(true);
  });

  it('refuses a stage folder outside the spec folder, with exit code 2', () => {
    const spec = join(dir, 'spec', 'escape.json');
    writeFileSync(spec, JSON.stringify({ offramp_cascade: 1, stages: [{ model: '../elsewhere' }] }));
    const r = cli(['eval', '-m', spec, '-d', join(dir, 'data.jsonl'), '--device', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/outside the folder/);
  });

  it('--metrics on a single model, with entropy as the score', () => {
    const r = cli([
      'eval',
      '-m',
      join(dir, 'spec', 'a'),
      '-d',
      join(dir, 'data.jsonl'),
      '--metrics',
      'selective',
      '--score',
      'entropy',
      '--device',
      'cpu',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.metrics.score).toBe('entropy');
    expect(j.metrics.stageShare).toEqual([1]);
    expect(j.metrics.ood).toBeUndefined();
  });
});
