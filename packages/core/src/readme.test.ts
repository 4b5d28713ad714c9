// The README's TypeScript examples run as written (the one that loads a checkpoint folder runs against a
// model saved to a temporary folder).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import type { CnnClassifierConfig } from './models/config.js';
import { randomWeights } from './models/index.js';
import { saveModelDir } from './weights/model-dir.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const blocks = [...readFileSync(join(pkg, 'README.md'), 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
const tmp = mkdtempSync(join(tmpdir(), 'offramp-readme-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

it('has examples', () => expect(blocks.length).toBeGreaterThanOrEqual(3));

it.each(blocks.map((code, i) => ({ i, code })))('example $i runs', async ({ i, code }) => {
  let src = code;
  if (src.includes('checkpoints/fashion-cnn')) {
    const cfg: CnnClassifierConfig = {
      architecture: 'cnn_classifier',
      image_size: 28,
      in_channels: 1,
      stem_channels: 4,
      channels: [8, 8],
      strides: [2, 2],
      num_classes: 10,
      exits: { blocks: [0, 1], head: 'linear' },
    };
    const dir = join(tmp, 'model');
    await saveModelDir(dir, { offramp_format: 1, model: cfg }, randomWeights(cfg, 1));
    src = src.replace('checkpoints/fashion-cnn', dir);
  }
  const file = join(pkg, `.readme-example-${i}.mts`);
  writeFileSync(file, `${src}\nconsole.log('example ok');\n`);
  try {
    const out = execFileSync('npx', ['tsx', '--conditions=@offramp/source', file], {
      cwd: pkg,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(out).toContain('example ok');
  } finally {
    rmSync(file, { force: true });
  }
});
