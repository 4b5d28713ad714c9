// The real binary on the shipped checkpoints with a small slice of real data (fetched when missing).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { beforeAll, expect, it } from 'vitest';
import { evalResultSchema } from '../src/schema.js';
import { cli, ensureBuilt, ROOT, tempDir } from './helpers.js';

const dir = tempDir('shipped');
beforeAll(() => ensureBuilt());

it('demo runs on the shipped Fashion-MNIST CNN and real test images, with a trained model’s accuracy', () => {
  const r = cli(['demo', '--limit', '256', '--out', join(dir, 'demo'), '--json']);
  expect(r.code, r.stderr).toBe(0);
  const res = evalResultSchema.parse(JSON.parse(r.stdout));
  expect(res.model.name).toBe('fashion-cnn');
  expect(res.data.name).toBe('fashion-mnist');
  expect(res.data.n).toBe(256);
  expect(res.full.accuracy).toBeGreaterThan(0.75); // chance is 0.10
  expect(res.checks.exitsMatch).toBe(true);
  expect(r.stderr).toContain(res.device.adapter);
  const png = PNG.sync.read(readFileSync(join(dir, 'demo', 'plot.png')));
  expect(png.width).toBeGreaterThan(400);
  expect(png.height).toBeGreaterThan(200);
});

it('inspect validates the shipped checkpoints', () => {
  for (const name of ['fashion-cnn', 'austen-mamba', 'imdb-encoder']) {
    const model = join(ROOT, 'checkpoints', name);
    if (!existsSync(model)) continue; // imdb-encoder ships later than the others
    const r = cli(['inspect', model, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toBeTypeOf('object');
  }
});
