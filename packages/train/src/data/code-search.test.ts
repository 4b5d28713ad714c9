import { describe, expect, it } from 'vitest';
import { type CodePair, langOf, moduleOf, parseCodePairs, splitCodePairs } from './code-search.js';

const row = (path: string, name: string, query: string, refactored = `def f():\n    return ${name}`): CodePair => ({
  path,
  line: 1,
  name,
  query,
  code: `def ${name}():\n    return 1`,
  refactored,
  module: moduleOf(path),
  lang: langOf(path),
});

describe('code-search pairs', () => {
  it('names the split unit by package, else by top-level folder or file', () => {
    expect(moduleOf('email/mime/text.py')).toBe('email');
    expect(moduleOf('os.py')).toBe('os');
    expect(moduleOf('json/__init__.py')).toBe('json');
    // a library package's function: the whole Debian package is one unit
    expect(moduleOf('python3-requests:requests/api.py')).toBe('python3-requests');
    expect(moduleOf('python3-numpy:numpy/linalg/linalg.py')).toBe('python3-numpy');
  });

  it('parses JSON Lines and rejects a row without a query', () => {
    const good = JSON.stringify({ path: 'a.py', line: 3, name: 'g', query: 'Do a thing.', code: 'x', refactored: 'y' });
    const rows = parseCodePairs(`${good}\n`, 'pairs.jsonl');
    expect(rows).toHaveLength(1);
    expect(rows[0].module).toBe('a');
    expect(rows[0].lang).toBe('python');
    const bad = JSON.stringify({ path: 'a.py', line: 3, name: 'g', code: 'x', refactored: 'y' });
    expect(() => parseCodePairs(`${good}\n${bad}\n`, 'pairs.jsonl')).toThrow(/line 2: field "query"/);
  });

  it('dedupes by refactored form, drops short queries, and never puts a module on both sides', () => {
    const rows: CodePair[] = [];
    for (let m = 0; m < 20; m++) {
      for (let k = 0; k <= m % 5; k++) rows.push(row(`mod${m}/x.py`, `fn${m}_${k}`, `Return the thing number ${k}.`));
    }
    rows.push(row('mod3/y.py', 'copy', 'Return a copied thing.', rows[0].refactored)); // same body as rows[0]
    rows.push(row('mod4/y.py', 'short', 'Short.'));
    const s = splitCodePairs(rows, 0.25, 7);
    expect(s.dropped).toEqual({ duplicates: 1, shortQueries: 1 });
    expect(s.train.length + s.test.length).toBe(rows.length - 2);
    const trainMods = new Set(s.train.map((r) => r.module));
    for (const r of s.test) expect(trainMods.has(r.module)).toBe(false);
    expect(s.test.length).toBeGreaterThanOrEqual(0.25 * (rows.length - 2));
    // the split depends only on the rows and the seed
    expect(splitCodePairs(rows, 0.25, 7).testModules).toEqual(s.testModules);
    expect(() => splitCodePairs(rows, 1)).toThrow(/testFraction is 1/);
  });

  it('splits each language on its own: the Python split does not move when JavaScript rows are added', () => {
    const py: CodePair[] = [];
    for (let m = 0; m < 30; m++) py.push(row(`mod${m}/x.py`, `fn${m}`, `Return the thing number ${m}.`));
    const js: CodePair[] = [];
    for (let p = 0; p < 10; p++) {
      for (let k = 0; k < 20; k++) {
        js.push(
          row(
            `npm-pkg${p}:lib/x.js`,
            `js${p}_${k}`,
            `Returns the value number ${k}.`,
            `function f() { return ${p * 100 + k}; }`,
          ),
        );
      }
    }
    const alone = splitCodePairs(py, 0.1, 5);
    const both = splitCodePairs([...py, ...js], 0.1, 5);
    expect(both.test.filter((r) => r.lang === 'python')).toEqual(alone.test);
    const jsTest = both.test.filter((r) => r.lang === 'javascript');
    expect(jsTest.length).toBeGreaterThanOrEqual(0.1 * js.length);
    expect(jsTest.length).toBeLessThan(0.1 * js.length + 20); // one 20-row unit past the share at most
    expect(both.testModules.filter((m) => m.startsWith('npm-')).length).toBeGreaterThan(0);
    expect(both.trainModules.length + both.testModules.length).toBe(40);
  });
});
