// Text-to-code and code-to-code retrieval pairs mined from the Python standard library that Debian ships
// (libpython3.11-minimal + libpython3.11-stdlib, fetched with apt-get download + dpkg-deb -x) and Debian's
// python3-* library packages, plus JSDoc-commented functions from npm packages (code-search-js.ts). Python's own
// `ast` module (code-search-extract.ts) extracts every function or method with a docstring: the query is the
// docstring's summary sentence, the document the function without its docstring, and the refactored form (names
// renamed, comments and layout normalised) the code-to-code partner. The loader reads both languages' files,
// dedupes near-identical bodies (equal refactored forms) and splits by unit (top-level module or package), so no
// unit is in both train and test.

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mulberry32, ValidationError } from '@offramp/core';
import { corruptFile, type DataOptions, readCacheFile } from './cache.js';
import { EXTRACT_PY } from './code-search-extract.js';
import { CODE_SEARCH_JS_FILE, type ExtractedPair } from './code-search-js.js';
import { shuffleInPlace } from './split.js';

export const CODE_SEARCH_FILE = 'pairs.jsonl';
export const CODE_SEARCH_LICENSE_FILE = 'LICENSE-python.txt';
/** The Debian packages the sources come from (the interpreter package runs the extraction when needed). */
export const CODE_SEARCH_DEBS = ['libpython3.11-minimal', 'libpython3.11-stdlib'] as const;
export const CODE_SEARCH_INTERPRETER_DEB = 'python3.11-minimal';
/**
 * Debian packages of Python libraries whose functions are added to the standard library's (their
 * `usr/lib/python3/dist-packages` trees; vendored copies of other projects left out). Each is one split unit.
 * Chosen for docstring-rich, mostly pure-Python code across domains; together about 45 MB of .deb files.
 */
export const CODE_SEARCH_PY_DEBS = [
  'python3-aiohttp',
  'python3-astropy',
  'python3-attr',
  'python3-babel',
  'python3-biopython',
  'python3-click',
  'python3-cryptography',
  'python3-dask',
  'python3-dateutil',
  'python3-distlib',
  'python3-django',
  'python3-docutils',
  'python3-flask',
  'python3-future',
  'python3-hypothesis',
  'python3-ipython',
  'python3-jedi',
  'python3-jinja2',
  'python3-matplotlib',
  'python3-mpmath',
  'python3-networkx',
  'python3-nltk',
  'python3-numpy',
  'python3-openpyxl',
  'python3-pandas',
  'python3-paramiko',
  'python3-paste',
  'python3-pygments',
  'python3-pyparsing',
  'python3-rdflib',
  'python3-reportlab',
  'python3-requests',
  'python3-rich',
  'python3-setuptools',
  'python3-sklearn',
  'python3-sqlalchemy',
  'python3-statsmodels',
  'python3-tornado',
  'python3-twisted',
  'python3-urllib3',
  'python3-werkzeug',
  'python3-xarray',
] as const;
/** The copyright files of CODE_SEARCH_PY_DEBS, one after another, each under a header naming its package. */
export const CODE_SEARCH_PACKAGE_LICENSES_FILE = 'LICENSES-packages.txt';
export const CODE_SEARCH_SPLIT_SEED = 20261202;
/** Share of the rows whose units go to the test side (5 %: about 4,400 pairs, enough to rank among). */
export const CODE_SEARCH_TEST_FRACTION = 0.05;
/** Queries shorter than this many words say too little to retrieve by. */
export const MIN_QUERY_WORDS = 3;

/** The language of a pair, from its path: `npm-NAME:…` paths are JavaScript, all others Python. */
export type CodeLang = 'python' | 'javascript';

/** One extracted function with its split unit and language. */
export interface CodePair extends ExtractedPair {
  /** Top-level module or package: the split unit. */
  module: string;
  /** Derived from the path (not stored in the files). */
  lang: CodeLang;
}

export interface CodeSearchSplit {
  train: CodePair[];
  test: CodePair[];
  trainModules: string[];
  testModules: string[];
  /** Rows dropped as near-duplicates (same refactored form as an earlier row) and for short queries. */
  dropped: { duplicates: number; shortQueries: number };
  /** Rows in the files before filtering. */
  extracted: number;
}

/** The language of a path: JavaScript for an npm package's file (`npm-NAME:rel/path.js`), else Python. */
export function langOf(p: string): CodeLang {
  return p.startsWith('npm-') && p.indexOf(':') > 0 ? 'javascript' : 'python';
}

/**
 * The split unit of a path: the package for a library's function (the part before the first colon:
 * `python3-requests:requests/api.py` → `python3-requests`, `npm-@babel/core:lib/x.js` → `npm-@babel/core`), else
 * (the standard library) its first folder, or the file name without `.py`.
 */
export function moduleOf(p: string): string {
  const colon = p.indexOf(':');
  if (colon > 0) return p.slice(0, colon);
  const first = p.split('/')[0];
  return first.endsWith('.py') ? first.slice(0, -3) : first;
}

/** Parses the JSON Lines written by the extractor; `source` names the file in errors. */
export function parseCodePairs(text: string, source: string): CodePair[] {
  const out: CodePair[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] === '') continue;
    let o: unknown;
    try {
      o = JSON.parse(lines[i]);
    } catch (e) {
      throw corruptFile(source, `line ${i + 1} is not JSON`, e);
    }
    const r = o as Record<string, unknown>;
    for (const k of ['path', 'name', 'query', 'code', 'refactored']) {
      if (typeof r[k] !== 'string' || (r[k] as string).length === 0) {
        throw corruptFile(source, `line ${i + 1}: field "${k}" must be a non-empty string`);
      }
    }
    if (!Number.isInteger(r.line) || (r.line as number) < 1) {
      throw corruptFile(source, `line ${i + 1}: field "line" must be a positive integer`);
    }
    const p = r.path as string;
    out.push({
      path: p,
      line: r.line as number,
      name: r.name as string,
      query: r.query as string,
      code: r.code as string,
      refactored: r.refactored as string,
      module: moduleOf(p),
      lang: langOf(p),
    });
  }
  return out;
}

/**
 * Dedupes (the first of rows with equal refactored forms is kept, across languages), drops queries under
 * MIN_QUERY_WORDS words, and splits by unit, each language on its own: a language's units in a seeded random
 * order go to test until it holds `testFraction` of that language's rows (so the Python split is the same with or
 * without the JavaScript rows, and each language is tested on its share). Both halves keep file order.
 */
export function splitCodePairs(
  rows: readonly CodePair[],
  testFraction = CODE_SEARCH_TEST_FRACTION,
  seed = CODE_SEARCH_SPLIT_SEED,
): CodeSearchSplit {
  if (!(testFraction > 0 && testFraction < 1)) {
    throw new ValidationError(`testFraction is ${testFraction}; expected a number in (0, 1)`);
  }
  const seen = new Set<string>();
  let duplicates = 0;
  let shortQueries = 0;
  const kept: CodePair[] = [];
  for (const r of rows) {
    if (r.query.split(/\s+/).filter(Boolean).length < MIN_QUERY_WORDS) {
      shortQueries++;
      continue;
    }
    if (seen.has(r.refactored)) {
      duplicates++;
      continue;
    }
    seen.add(r.refactored);
    kept.push(r);
  }
  const test = new Set<string>();
  const all: string[] = [];
  for (const lang of ['python', 'javascript'] as const) {
    const count = new Map<string, number>();
    let total = 0;
    for (const r of kept) {
      if (r.lang !== lang) continue;
      count.set(r.module, (count.get(r.module) ?? 0) + 1);
      total++;
    }
    const modules = shuffleInPlace([...count.keys()].sort(), mulberry32(seed));
    all.push(...modules);
    let n = 0;
    for (const m of modules) {
      if (n >= testFraction * total) break;
      test.add(m);
      n += count.get(m)!;
    }
  }
  return {
    train: kept.filter((r) => !test.has(r.module)),
    test: kept.filter((r) => test.has(r.module)),
    trainModules: all.filter((m) => !test.has(m)).sort(),
    testModules: [...test].sort(),
    dropped: { duplicates, shortQueries },
    extracted: rows.length,
  };
}

/**
 * Loads the cached pairs, Python's (pairs.jsonl) then JavaScript's (pairs-js.jsonl), and splits them together
 * (see splitCodePairs).
 */
export function loadCodeSearch(options?: DataOptions & { testFraction?: number; seed?: number }): CodeSearchSplit {
  const rows: CodePair[] = [];
  for (const file of [CODE_SEARCH_FILE, CODE_SEARCH_JS_FILE]) {
    rows.push(...parseCodePairs(readCacheFile('code-search', file, options).toString('utf8'), file));
  }
  return splitCodePairs(rows, options?.testFraction, options?.seed);
}

/**
 * Runs the extractor over `root` with `python` (argv[0] and an environment); returns the JSON Lines. `prefix`
 * (a package name) is put before every path as `prefix:path`.
 */
export function runExtractor(
  python: string,
  env: NodeJS.ProcessEnv,
  root: string,
  work: string,
  prefix?: string,
): string {
  const script = path.join(work, 'extract.py');
  writeFileSync(script, EXTRACT_PY);
  const r = spawnSync(python, prefix ? [script, root, prefix] : [script, root], {
    encoding: 'utf8',
    env,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw new Error(`${python} could not start: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${python} ${script} failed (exit ${r.status}): ${r.stderr.slice(-600)}`);
  return r.stdout;
}

type ExtractDeb = (pkg: string, work: string) => string;
type Step = <T>(what: string, run: () => T) => T;

/**
 * Writes pairs.jsonl and the Python licence into `dir`. The Python sources are Debian's; the extractor runs on
 * Debian's own python3.11 interpreter extracted beside them (so the ast is the same on every machine), or on
 * `python3` from PATH when the extracted interpreter cannot start.
 */
export function fetchCodeSearch(dir: string, step: Step, tempDir: () => string, extractDeb: ExtractDeb): void {
  const work = tempDir();
  const roots = CODE_SEARCH_DEBS.map((pkg) =>
    step(`apt-get download ${pkg} + dpkg-deb -x`, () => extractDeb(pkg, work)),
  );
  const interp = step(`apt-get download ${CODE_SEARCH_INTERPRETER_DEB} + dpkg-deb -x`, () =>
    extractDeb(CODE_SEARCH_INTERPRETER_DEB, work),
  );
  // one library folder: the minimal package's modules and the stdlib package's, side by side
  const lib = path.join(work, 'lib');
  step('merging the two library folders', () => {
    for (const root of roots) {
      const src = path.join(root, 'usr/lib/python3.11');
      if (!existsSync(src)) throw new Error(`${src} is missing from the extracted package`);
      const cp = spawnSync('cp', ['-a', `${src}/.`, lib], { encoding: 'utf8' });
      if (cp.status !== 0) throw new Error(`copying ${src} failed: ${cp.stderr}`);
    }
  });
  const home = path.join(work, 'home');
  step('merging the interpreter with its library', () => {
    spawnSync('mkdir', ['-p', path.join(home, 'usr/lib')]);
    const ln = spawnSync('cp', ['-as', lib, path.join(home, 'usr/lib/python3.11')], { encoding: 'utf8' });
    if (ln.status !== 0) throw new Error(`linking the library failed: ${ln.stderr}`);
  });
  const pairs = step('extracting functions with docstrings (python ast)', () => {
    const env = { ...process.env, PYTHONHOME: path.join(home, 'usr'), PYTHONDONTWRITEBYTECODE: '1' };
    try {
      return runExtractor(path.join(interp, 'usr/bin/python3.11'), env, lib, work);
    } catch (first) {
      try {
        const { PYTHONHOME: _, ...plain } = process.env;
        return runExtractor('python3', { ...plain, PYTHONDONTWRITEBYTECODE: '1' }, lib, work);
      } catch (second) {
        throw new Error(
          `no Python interpreter could run the extractor: Debian's python3.11 (${(first as Error).message}); python3 on PATH (${(second as Error).message}). Fix: \`sudo apt-get install python3\`, then fetch again`,
        );
      }
    }
  });
  const parts = [pairs];
  const licences: string[] = [];
  for (const pkg of CODE_SEARCH_PY_DEBS) {
    const root = step(`apt-get download ${pkg} + dpkg-deb -x`, () => extractDeb(pkg, work));
    const tree = path.join(root, 'usr/lib/python3/dist-packages');
    if (!existsSync(tree)) throw new Error(`${tree} is missing from the extracted package ${pkg}`);
    parts.push(
      step(`extracting ${pkg}`, () => {
        const env = { ...process.env, PYTHONHOME: path.join(home, 'usr'), PYTHONDONTWRITEBYTECODE: '1' };
        try {
          return runExtractor(path.join(interp, 'usr/bin/python3.11'), env, tree, work, pkg);
        } catch {
          const { PYTHONHOME: _, ...plain } = process.env;
          return runExtractor('python3', { ...plain, PYTHONDONTWRITEBYTECODE: '1' }, tree, work, pkg);
        }
      }),
    );
    const copyright = path.join(root, 'usr/share/doc', pkg, 'copyright');
    licences.push(
      `==== ${pkg} ====\n${existsSync(copyright) ? readFileSync(copyright, 'utf8') : '(no copyright file in the package)\n'}`,
    );
    rmSync(root, { recursive: true, force: true });
  }
  writeFileSync(path.join(dir, CODE_SEARCH_FILE), parts.join(''));
  copyFileSync(path.join(lib, 'LICENSE.txt'), path.join(dir, CODE_SEARCH_LICENSE_FILE));
  writeFileSync(path.join(dir, CODE_SEARCH_PACKAGE_LICENSES_FILE), licences.join('\n'));
}
