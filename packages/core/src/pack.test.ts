// The published tarball of @offramp/core installs and imports in an empty project outside the workspace,
// and runs a kernel there (CPU device: the optional Dawn binding is not installed in this check).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'offramp-pack-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

it('installs from its packed tarball and imports in an empty project', () => {
  if (!existsSync(join(pkgDir, 'dist', 'index.js')))
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: pkgDir });
  execFileSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: pkgDir });
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  expect(tarball).toBeDefined();
  const app = join(work, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--omit=optional', '--no-audit', '--no-fund', '--silent', join(work, tarball!)], {
    cwd: app,
  });
  writeFileSync(
    join(app, 'main.mjs'),
    `import { createDevice, unary, binary, maxProbThreshold, parseSafetensors, writeSafetensors } from '@offramp/core';
import { loadModelDir } from '@offramp/core/node';
const device = await createDevice({ backend: 'cpu' });
const x = device.tensor('f32', [4], [-1, 0, 1, 2]);
const y = device.tensor('f32', [4]);
device.dispatch(unary, { x, y }, { n: 4 }, { op: 'relu' });
const back = parseSafetensors(writeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Float32Array([1.5, -2]) } }));
console.log(JSON.stringify({ relu: Array.from(await y.read()), st: Array.from(back.tensors.get('w').data), policy: maxProbThreshold({ threshold: 0.9 }).name, node: typeof loadModelDir, binary: binary.name }));
`,
  );
  const out = JSON.parse(execFileSync('node', ['main.mjs'], { cwd: app, encoding: 'utf8' }).trim());
  expect(out).toEqual({ relu: [0, 0, 1, 2], st: [1.5, -2], policy: 'max-prob', node: 'function', binary: 'binary' });
}, 300_000);
