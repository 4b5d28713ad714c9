// The JavaScript extractor (Babel) on small inline sources: which function forms become pairs, how a JSDoc
// block's description and query are read, what is skipped, the refactored form, the package paths and units,
// and the loader reading the Python and JavaScript files together. No network: packages are folders made here.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { langOf, loadCodeSearch, moduleOf, parseCodePairs } from './code-search.js';
import {
  CODE_SEARCH_JS_FILE,
  CODE_SEARCH_NPM_PACKAGES,
  extractJsFunctions,
  extractJsPackage,
  isBoilerplate,
  isMinified,
  jsdocDescription,
  jsdocQuery,
  listJsFiles,
  npmName,
  npmUnit,
  packageLicense,
} from './code-search-js.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'offramp-js-extract-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The comment's value as the parser gives it: the text between `/*` and `*\/`. */
const value = (block: string) => block.slice(2, -2);

describe('JSDoc descriptions and queries', () => {
  it('takes the text before the first tag, with the gutters stripped', () => {
    const c = value(`/**
     * Adds two numbers.
     *   Indented continuation.
     * @param {number} a the first
     * @returns {number} the sum
     */`);
    expect(jsdocDescription(c)).toBe('Adds two numbers.\n  Indented continuation.');
  });

  it('reads one-line blocks, {@link} tags and @description when the untagged text is empty', () => {
    expect(jsdocDescription(value('/** Returns the {@link Map} of {@link Foo#bar|bars}. */'))).toBe(
      'Returns the Map of bars.',
    );
    const tagged = value(`/**
     * @name addDays
     * @summary Add days to a date.
     * @description
     * Add the specified number of days to the given date.
     *
     * @param date - the date
     */`);
    expect(jsdocDescription(tagged)).toBe('Add the specified number of days to the given date.');
    expect(jsdocDescription(value('/**\n * @name x\n * @summary Only a summary here.\n */'))).toBe(
      'Only a summary here.',
    );
    expect(jsdocDescription(value('/**\n * @private\n * @param {string} s\n */'))).toBe('');
  });

  it('makes the query from the first paragraph on one line, cut after its first sentence', () => {
    expect(jsdocQuery('Parses a date\nfrom a string. Accepts ISO 8601.\n\nSecond paragraph.')).toBe(
      'Parses a date from a string.',
    );
    expect(jsdocQuery('\n\nNo full stop here\n\nMore.')).toBe('No full stop here');
    // "e.g." has no space after its last dot inside the word, so only ". " cuts
    expect(jsdocQuery('Version 1.2.3 of the thing. More.')).toBe('Version 1.2.3 of the thing.');
  });

  it('recognises boilerplate descriptions', () => {
    for (const q of [
      'Module dependencies.',
      'TODO',
      'TODO: fix this',
      'Expose',
      'private',
      'eslint-disable-line',
      '---',
    ]) {
      expect(isBoilerplate(q), q).toBe(true);
    }
    expect(isBoilerplate('Returns the module dependencies of a chunk.')).toBe(false);
  });
});

const FORMS = `
/** Declared function: adds one. */
function inc(n) {
  return n + 1;
}

/** Exported declaration, doubled. */
export function double(x) {
  return x * 2;
}

/** Function expression in a variable. */
var half = function (x) {
  return x / 2;
};

/** Arrow in a const, with an expression body. */
const square = (x) => x * x;

/** Assigned to a property of exports. */
exports.negate = function (x) {
  return -x;
};

const api = {
  /** Object method shorthand. */
  greet(name) {
    return 'hi ' + name;
  },
  /** Object property holding a function. */
  bye: function (name) {
    return 'bye ' + name;
  },
};

class Box {
  /** Builds a box of the given width. */
  constructor(w) {
    this.w = w;
  }

  /**
   * Class method: the area of the box.
   *
   * Longer text that is not the query.
   * @returns {number}
   */
  area() {
    // the box is square
    return this.w * this.w;
  }

  /** Static factory of an empty box. */
  static empty() {
    return new Box(0);
  }

  /** Getter of the width in pixels. */
  get px() {
    return this.w + 'px';
  }

  /** Private helper method of the box. */
  #check() {
    return this.w >= 0;
  }

  /** Class field holding an arrow. */
  grow = (d) => {
    this.w += d;
  };
}
`;

describe('extractJsFunctions', () => {
  it('finds every function form with a JSDoc description', () => {
    const rows = extractJsFunctions(FORMS, 'npm-demo:lib/forms.js');
    expect(rows.map((r) => r.name)).toEqual([
      'inc',
      'double',
      'half',
      'square',
      'negate',
      'greet',
      'bye',
      'constructor',
      'area',
      'empty',
      'px',
      '#check',
      'grow',
    ]);
    const by = Object.fromEntries(rows.map((r) => [r.name, r]));
    expect(by.inc.query).toBe('Declared function: adds one.');
    expect(by.inc.line).toBe(3);
    expect(by.inc.code).toBe('function inc(n) {\n  return n + 1;\n}');
    // an exported declaration: its JSDoc sits on the export, the code is the declaration
    expect(by.double.code).toBe('function double(x) {\n  return x * 2;\n}');
    expect(by.half.code).toBe('var half = function (x) {\n  return x / 2;\n};');
    expect(by.square.code).toBe('const square = (x) => x * x;');
    expect(by.square.refactored).toBe('const f = v0 => v0 * v0;');
    expect(by.negate.code).toBe('exports.negate = function (x) {\n  return -x;\n};');
    // methods: from the name to the end, re-indented to column 0, comments inside kept
    expect(by.greet.code).toBe("greet(name) {\n  return 'hi ' + name;\n}");
    expect(by.bye.code).toBe("bye: function (name) {\n  return 'bye ' + name;\n}");
    expect(by.area.query).toBe('Class method: the area of the box.');
    expect(by.area.code).toBe('area() {\n  // the box is square\n  return this.w * this.w;\n}');
    expect(by.area.refactored).toBe('function f() {\n  return this.w * this.w;\n}');
    expect(by.empty.code).toBe('static empty() {\n  return new Box(0);\n}');
    expect(by.px.code).toBe("get px() {\n  return this.w + 'px';\n}");
    expect(by.grow.code).toBe('grow = (d) => {\n  this.w += d;\n};');
    for (const r of rows) expect(r.path).toBe('npm-demo:lib/forms.js');
  });

  it('skips functions without JSDoc, with a tag-only or boilerplate JSDoc, with an empty body or too long', () => {
    const src = `
// A line comment is not JSDoc.
function a(x) { return x; }

/* A plain block comment is not JSDoc either. */
function b(x) { return x; }

/**
 * @private
 * @param {number} x
 */
function c(x) { return x; }

/** Module dependencies. */
var d = function () { return require('x'); };

/** Does nothing at all here. */
function e() {}

/*** A banner, not JSDoc. ***/
function g(x) { return x; }

/** Something too long to keep. */
function h() {
  ${'x++;\n'.repeat(2100)}
}

/** Kept: the one documented function. */
function k(x) { return x + 1; }
`;
    expect(extractJsFunctions(src, 'a.js').map((r) => r.name)).toEqual(['k']);
  });

  it('returns nothing for a file that does not parse', () => {
    expect(extractJsFunctions('/** Broken. */ function (', 'broken.js')).toEqual([]);
  });

  it('refactors: named f, parameters and declared names v0, v1, … in order, comments and layout gone', () => {
    const one = `
/** Sums the even numbers of a list. */
function sumEven(list, start = 0) {
  // running total
  let total = start;
  for (const item of list) {
    if (item % 2 === 0) total += item; // even
  }
  function log(msg) { console.log(msg); }
  log("done");
  return total;
}`;
    const two = `
/**
 * A differently worded description.
 */
function addEvens(xs,init=0){let acc=init
  for(const x of xs){if(x%2===0)acc+=x}
  function say(m){console.log(m)}
  say('done')
  return acc}`;
    const [a] = extractJsFunctions(one, 'one.js');
    const [b] = extractJsFunctions(two, 'two.js');
    expect(a.refactored).toBe(
      [
        'function f(v0, v1 = 0) {',
        '  let v2 = v1;',
        '  for (const v3 of v0) {',
        '    if (v3 % 2 === 0) v2 += v3;',
        '  }',
        '  function v4(v5) {',
        '    console.log(v5);',
        '  }',
        '  v4("done");',
        '  return v2;',
        '}',
      ].join('\n'),
    );
    expect(a.refactored).not.toMatch(/running total|even\b/);
    expect(b.refactored).toBe(a.refactored);
    // the code keeps its comments and layout
    expect(a.code).toContain('// running total');
  });

  it('renames safely when the source already uses names like v0', () => {
    const [r] = extractJsFunctions(
      '/** Swaps the names around. */\nfunction s(v1, v0) { const x = v1 - v0; return x; }',
      's.js',
    );
    expect(r.refactored).toBe('function f(v0, v1) {\n  const v2 = v0 - v1;\n  return v2;\n}');
  });
});

describe('package files, paths and units', () => {
  it('detects minified files by their mean line length', () => {
    expect(isMinified(`${'a=1;'.repeat(100)}\n`)).toBe(true);
    expect(isMinified('function f() {\n  return 1;\n}\n')).toBe(false);
  });

  it('lists source files: no tests, node_modules, .min.js, big files, dist beside src, or module copies', () => {
    const root = path.join(work, 'pkg-files');
    for (const d of ['src/util', 'test', 'node_modules/x', 'dist', 'docs', '__tests__']) {
      mkdirSync(path.join(root, d), { recursive: true });
    }
    const f = '/** A function. */\nfunction a(x) { return x; }\n';
    for (const p of [
      'src/index.js',
      'src/util/a.js',
      'src/util/a.cjs',
      'src/util/b.mjs',
      'test/a.js',
      '__tests__/a.js',
      'node_modules/x/a.js',
      'dist/bundle.js',
      'docs/doc.js',
      'src/lib.min.js',
      'src/types.d.ts',
      'index.js',
    ]) {
      writeFileSync(path.join(root, p), f);
    }
    writeFileSync(path.join(root, 'src/huge.js'), `// ${'x'.repeat(600 * 1024)}\n`);
    expect(listJsFiles(root)).toEqual(['docs/doc.js', 'index.js', 'src/index.js', 'src/util/a.js', 'src/util/b.mjs']);
    expect(listJsFiles(root, ['src'], ['src/util/b.mjs'])).toEqual(['src/index.js', 'src/util/a.js']);
    expect(listJsFiles(root, undefined, ['docs', 'index.js'])).toEqual([
      'src/index.js',
      'src/util/a.js',
      'src/util/b.mjs',
    ]);
  });

  it('names paths npm-NAME:rel/path.js, scoped packages included, and the unit is the package', () => {
    expect(npmName('lodash@4.18.1')).toBe('lodash');
    expect(npmName('@scope/name@1.2.3')).toBe('@scope/name');
    expect(npmUnit('@scope/name')).toBe('npm-@scope/name');
    const root = path.join(work, 'scoped');
    mkdirSync(path.join(root, 'lib'), { recursive: true });
    writeFileSync(
      path.join(root, 'lib/x.js'),
      '/** Returns the answer to everything. */\nexport const answer = () => 42;\n',
    );
    writeFileSync(
      path.join(root, 'min.js'),
      `/** Minified code here. */ function m(){return 1};${' var a=1;'.repeat(400)}\n`,
    );
    writeFileSync(path.join(root, 'LICENSE'), 'MIT License\n');
    const rows = extractJsPackage(root, '@scope/name');
    expect(rows.map((r) => r.path)).toEqual(['npm-@scope/name:lib/x.js']);
    const [pair] = parseCodePairs(`${JSON.stringify(rows[0])}\n`, CODE_SEARCH_JS_FILE);
    expect(pair.module).toBe('npm-@scope/name');
    expect(moduleOf('npm-lodash:chunk.js')).toBe('npm-lodash');
    expect(pair.lang).toBe('javascript');
    expect(langOf('python3-requests:requests/api.py')).toBe('python');
    expect(langOf('email/utils.py')).toBe('python');
    expect(packageLicense(root)).toBe('MIT License\n');
  });

  it('pins every package to an exact version', () => {
    expect(CODE_SEARCH_NPM_PACKAGES.length).toBeGreaterThanOrEqual(25);
    for (const spec of CODE_SEARCH_NPM_PACKAGES) expect(spec).toMatch(/^(@[\w.-]+\/)?[\w.-]+@\d+\.\d+\.\d+$/);
  });
});

describe('loadCodeSearch', () => {
  it('reads pairs.jsonl then pairs-js.jsonl and splits them together', () => {
    const dataDir = path.join(work, 'cache');
    mkdirSync(path.join(dataDir, 'code-search'), { recursive: true });
    const row = (p: string, name: string, refactored: string) =>
      JSON.stringify({
        path: p,
        line: 1,
        name,
        query: `Return the value of ${name}.`,
        code: `code ${name}`,
        refactored,
      });
    const py: string[] = [];
    const js: string[] = [];
    for (let i = 0; i < 20; i++) py.push(row(`python3-p${i % 4}:m/x.py`, `py${i}`, `def f():\n    return ${i}`));
    for (let i = 0; i < 20; i++)
      js.push(row(`npm-${i % 2 ? '@s/' : ''}j${i % 4}:x.js`, `js${i}`, `function f() {\n  return ${i};\n}`));
    // a JavaScript function whose refactored form equals a Python one's: a near-duplicate across files
    js.push(row('npm-j0:y.js', 'dup', 'def f():\n    return 3'));
    writeFileSync(path.join(dataDir, 'code-search', 'pairs.jsonl'), `${py.join('\n')}\n`);
    writeFileSync(path.join(dataDir, 'code-search', CODE_SEARCH_JS_FILE), `${js.join('\n')}\n`);
    const s = loadCodeSearch({ dataDir, testFraction: 0.2, seed: 3 });
    expect(s.extracted).toBe(41);
    expect(s.dropped.duplicates).toBe(1);
    const all = [...s.train, ...s.test];
    expect(all).toHaveLength(40);
    expect(all.filter((r) => r.lang === 'javascript')).toHaveLength(20);
    expect(new Set(all.filter((r) => r.lang === 'javascript').map((r) => r.module))).toEqual(
      new Set(['npm-j0', 'npm-@s/j1', 'npm-j2', 'npm-@s/j3']),
    );
    // Python rows come first in file order
    expect(s.train.concat(s.test).some((r) => r.lang === 'python')).toBe(true);
    const trainUnits = new Set(s.train.map((r) => r.module));
    for (const r of s.test) expect(trainUnits.has(r.module)).toBe(false);
    // without the JavaScript file the cache is incomplete
    rmSync(path.join(dataDir, 'code-search', CODE_SEARCH_JS_FILE));
    expect(() => loadCodeSearch({ dataDir })).toThrow(/pairs-js\.jsonl does not exist/);
  });
});
