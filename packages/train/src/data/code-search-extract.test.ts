// The extractor (Python's ast, run as the fetch runs it) on a small fixture tree: which functions become pairs,
// the docstring removed from the code, the summary sentence, the refactored form, and skipped test folders.
// Python comes from PATH, else from Debian's python3.11-minimal fetched with apt-get download + dpkg-deb -x.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseCodePairs, runExtractor } from './code-search.js';

let work: string;
let python: { bin: string; env: NodeJS.ProcessEnv };

function debianPython(dir: string): { bin: string; env: NodeJS.ProcessEnv } {
  for (const pkg of ['python3.11-minimal', 'libpython3.11-minimal', 'libpython3.11-stdlib']) {
    const dl = spawnSync('apt-get', ['download', pkg], { cwd: dir, encoding: 'utf8' });
    if (dl.status !== 0) throw new Error(`apt-get download ${pkg} failed: ${dl.stderr}`);
    const deb = readdirSync(dir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'))!;
    const ex = spawnSync('dpkg-deb', ['-x', path.join(dir, deb), path.join(dir, 'root')], { encoding: 'utf8' });
    if (ex.status !== 0) throw new Error(`dpkg-deb -x ${deb} failed: ${ex.stderr}`);
  }
  return {
    bin: path.join(dir, 'root/usr/bin/python3.11'),
    env: { ...process.env, PYTHONHOME: path.join(dir, 'root/usr') },
  };
}

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'offramp-extract-'));
  const probe = spawnSync('python3', ['-c', 'import ast; print(1)'], { encoding: 'utf8' });
  python = probe.status === 0 ? { bin: 'python3', env: process.env } : debianPython(work);
  const lib = path.join(work, 'lib');
  mkdirSync(path.join(lib, 'pkg'), { recursive: true });
  mkdirSync(path.join(lib, 'tests'), { recursive: true });
  writeFileSync(
    path.join(lib, 'pkg', 'util.py'),
    [
      'import os',
      '',
      'def file_size(path, follow=True):',
      '    """Return the size of a file in bytes. Follows links unless told not to.',
      '',
      '    More text that is not the summary.',
      '    """',
      '    # stat the path',
      '    st = os.stat(path) if follow else os.lstat(path)',
      '    return st.st_size',
      '',
      'def no_doc(x):',
      '    return x',
      '',
      'def only_doc():',
      '    """Nothing but a docstring."""',
      '',
      'class Box:',
      '    @property',
      '    def width(self):',
      '        """The width of the box."""',
      '        w = self._w',
      '        return w',
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(lib, 'tests', 'test_x.py'), 'def t():\n    """Skipped: a test folder."""\n    return 1\n');
  mkdirSync(path.join(lib, 'pkg', '_vendor'), { recursive: true });
  writeFileSync(
    path.join(lib, 'pkg', '_vendor', 'other.py'),
    'def v():\n    """Skipped: a vendored copy of another project."""\n    return 1\n',
  );
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

it('extracts functions with a docstring and a body (test and vendored folders skipped), without the docstring, with their refactored form', () => {
  const out = runExtractor(python.bin, python.env, path.join(work, 'lib'), work);
  const rows = parseCodePairs(out, 'extractor output');
  expect(rows.map((r) => `${r.path}:${r.name}`)).toEqual(['pkg/util.py:file_size', 'pkg/util.py:width']);
  const [fs, w] = rows;
  expect(fs.module).toBe('pkg');
  expect(fs.line).toBe(3);
  expect(fs.query).toBe('Return the size of a file in bytes.');
  expect(fs.code).toBe(
    'def file_size(path, follow=True):\n    # stat the path\n    st = os.stat(path) if follow else os.lstat(path)\n    return st.st_size',
  );
  expect(fs.refactored).toBe(
    'def f(v0, v1=True):\n    v2 = os.stat(v0) if v1 else os.lstat(v0)\n    return v2.st_size',
  );
  // a method: re-indented to column 0, its decorator left out of the code and the refactored form
  expect(w.code).toBe('def width(self):\n    w = self._w\n    return w');
  expect(w.refactored).toBe('def f(self):\n    v0 = self._w\n    return v0');
});

it('puts a package prefix before every path when given one, and the prefix names the split unit', () => {
  const out = runExtractor(python.bin, python.env, path.join(work, 'lib'), work, 'python3-pkg');
  const rows = parseCodePairs(out, 'extractor output');
  expect(rows.map((r) => `${r.path}:${r.name}`)).toEqual([
    'python3-pkg:pkg/util.py:file_size',
    'python3-pkg:pkg/util.py:width',
  ]);
  expect(rows.every((r) => r.module === 'python3-pkg')).toBe(true);
});
