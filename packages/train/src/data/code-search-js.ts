// The JavaScript half of the code-search pairs: JSDoc-commented functions from published npm packages (their
// tarballs fetched with `npm pack`, unpacked with `tar`, nothing installed), parsed with @babel/parser. Every
// function declaration, function or arrow expression assigned to a variable or property, and class or object
// method with a leading `/** … */` block whose description is not empty gives one row in the same format as the
// Python extractor's: the query is the description's first sentence, the code the function without its JSDoc
// block, and the refactored form the function re-printed by @babel/generator without comments, named f, its
// parameters and the names it declares renamed v0, v1, … (scope-aware, with @babel/traverse).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import generate from '@babel/generator';
import { type ParserOptions, type ParserPlugin, parse } from '@babel/parser';
import traverse, { type Binding, type NodePath, type Scope } from '@babel/traverse';
import * as t from '@babel/types';

/**
 * The npm packages (exact versions) whose JSDoc-commented functions are extracted; each is one split unit,
 * `npm-NAME`. Chosen for readable, commented source in the published tarball (not minified, not bundled).
 */
export const CODE_SEARCH_NPM_PACKAGES = [
  'async@3.2.6',
  'axios@1.21.1',
  'cheerio@1.2.0',
  'commander@14.0.3',
  'crypto-js@4.2.0',
  'date-fns@4.4.0',
  'eslint@10.16.0',
  'express@5.3.0',
  'graphql@16.15.0',
  'highlight.js@11.12.0',
  'jsdom@29.1.1',
  'jszip@3.10.2',
  'koa@3.3.0',
  'less@4.9.1',
  'lodash@4.18.1',
  'luxon@3.7.2',
  'mathjs@15.2.0',
  'mocha@12.0.3',
  'mongoose@9.12.1',
  'node-forge@1.4.4',
  'ol@10.11.0',
  'sinon@22.1.0',
  'socket.io@4.8.4',
  'three@0.187.0',
  'webpack@5.113.0',
  'winston@3.19.0',
  'ws@8.23.1',
] as const;

/**
 * For packages whose tarball holds several copies of the same code (a source folder beside built ones or a
 * bundle), the folders that are read (`dirs`, relative to the package root) or the folders and files skipped
 * (`skip`); other packages
 * are read whole.
 */
export const CODE_SEARCH_NPM_DIRS: Readonly<Record<string, { dirs?: readonly string[]; skip?: readonly string[] }>> = {
  async: { skip: ['dist'] },
  axios: { dirs: ['lib'] },
  cheerio: { dirs: ['dist/esm'] },
  'crypto-js': { skip: ['docs', 'crypto-js.js'] },
  'date-fns': { skip: ['locale', 'cdn.js'] },
  eslint: { dirs: ['lib'] },
  'highlight.js': { dirs: ['lib'] },
  jszip: { dirs: ['lib'] },
  less: { dirs: ['lib'] },
  lodash: { skip: ['core.js'] },
  luxon: { dirs: ['src'] },
  mathjs: { dirs: ['lib/esm'] },
  mocha: { dirs: ['lib'] },
  mongoose: { dirs: ['lib'] },
  'node-forge': { dirs: ['lib'] },
  sinon: { dirs: ['lib'] },
  'socket.io': { dirs: ['dist'] },
  three: { dirs: ['src'] },
  webpack: { dirs: ['lib'] },
  winston: { dirs: ['lib'] },
};

export const CODE_SEARCH_JS_FILE = 'pairs-js.jsonl';
/** The licence files of CODE_SEARCH_NPM_PACKAGES, one after another, each under a header naming its package. */
export const CODE_SEARCH_NPM_LICENSES_FILE = 'LICENSES-npm.txt';
/** Files larger than this are generated or bundled, not source. */
export const MAX_JS_FILE_BYTES = 512 * 1024;
/** A file whose lines are longer than this on average is minified. */
export const MAX_MEAN_LINE_LENGTH = 200;
/** Functions whose code is longer than this many characters are left out. */
export const MAX_JS_CODE_CHARS = 8000;

const SKIP_DIRS = new Set(['test', 'tests', '__tests__', 'node_modules', '__mocks__', 'fixtures', 'benchmark']);
const JS_EXT = /\.(c|m)?js$/;

/** One extracted function as the extractors write it (a line of pairs.jsonl or pairs-js.jsonl), either language. */
export interface ExtractedPair {
  /**
   * Source file relative to the library folder, e.g. 'email/utils.py'; a package's file is prefixed with the
   * package (`python3-requests:requests/api.py`, `npm-lodash:chunk.js`, `npm-@scope/name:lib/x.js`).
   */
  path: string;
  line: number;
  name: string;
  /** The docstring's or JSDoc block's summary sentence. */
  query: string;
  /** The function's source without its docstring or JSDoc block. */
  code: string;
  /** The same function re-printed without comments, named f, parameters and locals renamed v0, v1, ... */
  refactored: string;
}

/** One extracted JavaScript function, as written to pairs-js.jsonl. */
export type JsRow = ExtractedPair;

/** The split unit and path prefix of an npm package: `npm-lodash`, `npm-@babel/core`. */
export function npmUnit(name: string): string {
  return `npm-${name}`;
}

/** The package name of a `name@version` spec (scoped names keep their `@scope/`). */
export function npmName(spec: string): string {
  const at = spec.lastIndexOf('@');
  return at > 0 ? spec.slice(0, at) : spec;
}

/**
 * The description of a JSDoc block (the comment's text between `/*` and `*\/`, as the parser gives it): the
 * text before the first line that starts with an `@tag`, with the `*` gutters stripped, `{@link x}` and
 * `{@link x|text}` written as their text, and surrounding blank lines trimmed. A block whose untagged text is
 * empty is described by its `@description` (or `@desc`) tag, else its `@summary` tag, when it has one.
 */
export function jsdocDescription(comment: string): string {
  const lines = comment.replace(/^\*/, '').split('\n');
  const free: string[] = [];
  const tags: { tag: string; lines: string[] }[] = [];
  for (const raw of lines) {
    const line = raw.replace(/^\s*\*(?!\/) ?/, '').replace(/\s+$/, '');
    const m = /^\s*@(\w+)\s?(.*)$/.exec(line);
    if (m) tags.push({ tag: m[1], lines: [m[2]] });
    else if (tags.length) tags[tags.length - 1].lines.push(line);
    else free.push(line);
  }
  const clean = (ls: string[]) =>
    ls
      .join('\n')
      .replace(/\{@(?:link|linkcode|linkplain)\s+([^}|\s]+)(?:[|\s]\s*([^}]*))?\}/g, (_, target, label) =>
        (label || target).trim(),
      )
      .trim();
  const text = clean(free);
  if (text) return text;
  for (const want of [['description', 'desc'], ['summary']]) {
    const tag = tags.find((t) => want.includes(t.tag));
    if (tag && clean(tag.lines)) return clean(tag.lines);
  }
  return '';
}

/** The description's first paragraph on one line, cut after its first sentence (`". "`). */
export function jsdocQuery(description: string): string {
  const para: string[] = [];
  for (const line of description.split('\n')) {
    if (!line.trim()) {
      if (para.length) break;
      continue;
    }
    para.push(line.trim());
  }
  const text = para.join(' ').replace(/\s+/g, ' ');
  const cut = text.indexOf('. ');
  return cut >= 0 ? text.slice(0, cut + 1) : text;
}

const BOILERPLATE = new Set([
  'module dependencies',
  'module exports',
  'expose',
  'exports',
  'todo',
  'fixme',
  'private',
  'internal',
  'deprecated',
  'constructor',
  'noop',
  'no-op',
  'helpers',
  'helper',
  'utils',
  'inheritdoc',
]);

/** True for queries that say nothing about the function (`Module dependencies.`, `TODO`, `@private`). */
export function isBoilerplate(query: string): boolean {
  const q = query
    .toLowerCase()
    .replace(/[.:!]+$/, '')
    .trim();
  if (BOILERPLATE.has(q)) return true;
  if (/^(todo|fixme|xxx)\b/.test(q)) return true;
  if (/^(eslint|jshint|jscs|istanbul|global|@license|copyright|c8|prettier-ignore)\b/.test(q)) return true;
  return !/[a-z]/i.test(q);
}

/** True for minified source: lines longer than MAX_MEAN_LINE_LENGTH characters on average. */
export function isMinified(source: string): boolean {
  const lines = source.split('\n').filter((l) => l.trim());
  if (!lines.length) return false;
  return source.length / lines.length > MAX_MEAN_LINE_LENGTH;
}

function parseJs(source: string): t.File | null {
  const base: ParserOptions = {
    sourceType: 'unambiguous',
    allowReturnOutsideFunction: true,
    allowImportExportEverywhere: true,
    allowAwaitOutsideFunction: true,
    allowSuperOutsideMethod: true,
    allowUndeclaredExports: true,
    attachComment: true,
  };
  const tries: ParserPlugin[][] = [['jsx'], [], ['flow', 'jsx']];
  for (const plugins of tries) {
    try {
      return parse(source, { ...base, plugins });
    } catch {
      // try the next set of plugins
    }
  }
  return null;
}

type Fn =
  | t.FunctionDeclaration
  | t.FunctionExpression
  | t.ArrowFunctionExpression
  | t.ObjectMethod
  | t.ClassMethod
  | t.ClassPrivateMethod;

interface Candidate {
  /** The node whose leading comments hold the JSDoc. */
  holder: t.Node;
  /** The node whose source is the code (from after the JSDoc to its end). */
  span: t.Node;
  fn: Fn;
  name: string;
}

function keyName(key: t.Node, source: string): string {
  if (t.isIdentifier(key)) return key.name;
  if (t.isStringLiteral(key)) return key.value;
  if (t.isNumericLiteral(key)) return String(key.value);
  if (t.isPrivateName(key)) return `#${key.id.name}`;
  return source.slice(key.start ?? 0, key.end ?? 0);
}

function isFnExpr(n: t.Node | null | undefined): n is t.FunctionExpression | t.ArrowFunctionExpression {
  return t.isFunctionExpression(n) || t.isArrowFunctionExpression(n);
}

/** The function forms a JSDoc block can document, found under `node` (which may be wrapped in an export). */
function candidate(node: t.Node, source: string): Candidate | null {
  if (t.isFunctionDeclaration(node)) {
    return { holder: node, span: node, fn: node, name: node.id?.name ?? 'default' };
  }
  if (t.isVariableDeclaration(node) && node.declarations.length === 1) {
    const d = node.declarations[0];
    if (t.isIdentifier(d.id) && isFnExpr(d.init)) return { holder: node, span: node, fn: d.init, name: d.id.name };
    return null;
  }
  if (t.isExpressionStatement(node) && t.isAssignmentExpression(node.expression)) {
    const { left, right } = node.expression;
    if (!isFnExpr(right)) return null;
    let name: string | null = null;
    if (t.isIdentifier(left)) name = left.name;
    else if (t.isMemberExpression(left)) name = keyName(left.property, source);
    if (t.isFunctionExpression(right) && right.id && (name === 'exports' || name === null)) name = right.id.name;
    return name ? { holder: node, span: node, fn: right, name } : null;
  }
  if (t.isObjectMethod(node) || t.isClassMethod(node) || t.isClassPrivateMethod(node)) {
    if (node.kind === 'constructor') return { holder: node, span: node, fn: node, name: 'constructor' };
    return { holder: node, span: node, fn: node, name: keyName(node.key, source) };
  }
  if ((t.isObjectProperty(node) || t.isClassProperty(node) || t.isClassPrivateProperty(node)) && isFnExpr(node.value)) {
    return { holder: node, span: node, fn: node.value, name: keyName(node.key, source) };
  }
  return null;
}

function forEachNode(
  node: t.Node,
  visit: (n: t.Node, parent: t.Node | null) => void,
  parent: t.Node | null = null,
): void {
  visit(node, parent);
  for (const key of Object.keys(node)) {
    if (key === 'leadingComments' || key === 'trailingComments' || key === 'innerComments' || key === 'loc') continue;
    if (key === 'extra' || key === 'start' || key === 'end' || key === 'range') continue;
    const v = (node as unknown as Record<string, unknown>)[key];
    if (Array.isArray(v)) {
      for (const c of v)
        if (c && typeof c === 'object' && typeof (c as t.Node).type === 'string') forEachNode(c, visit, node);
    } else if (v && typeof v === 'object' && typeof (v as t.Node).type === 'string') {
      forEachNode(v as t.Node, visit, node);
    }
  }
}

/** The last leading comment of a node when it is a JSDoc block (`/** … *\/`). */
function jsdocOf(node: t.Node): t.Comment | null {
  const c = node.leadingComments;
  if (!c?.length) return null;
  const last = c[c.length - 1];
  return last.type === 'CommentBlock' && last.value.startsWith('*') && !last.value.startsWith('**') ? last : null;
}

/** Source lines from `start` to `end`, re-indented to column 0 (by the indentation of the first line). */
function reindent(source: string, start: number, end: number): string {
  const lineStart = source.lastIndexOf('\n', start - 1) + 1;
  const indent = source.slice(lineStart, start).match(/^[ \t]*/)![0].length;
  const lines = source.slice(start, end).split('\n');
  return lines
    .map((l, i) => (i === 0 ? l : l.slice(0, indent).trim() === '' ? l.slice(Math.min(indent, l.length)) : l))
    .join('\n')
    .replace(/\s+$/, '');
}

function stripExtra(node: t.Node): void {
  forEachNode(node, (n) => {
    const e = (n as { extra?: Record<string, unknown> }).extra;
    if (e) (n as { extra?: Record<string, unknown> }).extra = e.parenthesized ? { parenthesized: true } : undefined;
  });
}

/**
 * The refactored form of a function: re-printed without comments (string quotes and number spellings
 * normalised), named f, its parameters and the local names it declares (in nested scopes too) renamed v0, v1,
 * … in order of appearance. Functions and methods become `function f(…) {…}`; arrows `const f = (…) => …;`.
 */
export function refactorFunction(fn: Fn): string {
  const params = fn.params.map((p) => t.cloneNode(p, true, false)) as t.FunctionDeclaration['params'];
  const body = t.cloneNode(fn.body, true, false);
  let decl: t.Statement;
  if (t.isArrowFunctionExpression(fn)) {
    decl = t.variableDeclaration('const', [
      t.variableDeclarator(t.identifier('f'), t.arrowFunctionExpression(params, body, fn.async)),
    ]);
  } else {
    decl = t.functionDeclaration(t.identifier('f'), params, body as t.BlockStatement, fn.generator, fn.async);
  }
  stripExtra(decl);
  const file = t.file(t.program([decl]));
  traverse(file, {
    Program(prog) {
      const top = prog.get('body.0') as NodePath;
      const fnPath = (
        top.isVariableDeclaration() ? (top.get('declarations.0.init') as NodePath) : top
      ) as NodePath<t.Function>;
      const scopes = new Set<Scope>([fnPath.scope]);
      fnPath.traverse({
        enter(p) {
          scopes.add(p.scope);
        },
      });
      const bindings: Binding[] = [];
      for (const s of scopes) for (const b of Object.values(s.bindings)) bindings.push(b);
      const pos = (b: Binding) =>
        b.identifier.loc ? b.identifier.loc.start.line * 1e6 + b.identifier.loc.start.column : 0;
      bindings.sort((a, b) => pos(a) - pos(b));
      // rename through unique temporaries first, so a new name never meets an old one
      const temp = bindings.map((b, i) => {
        const name = `__offramp_tmp_${i}`;
        b.scope.rename(b.identifier.name, name);
        return name;
      });
      temp.forEach((name, i) => {
        bindings[i].scope.rename(name, `v${i}`);
      });
      prog.stop();
    },
  });
  return generate(file, { comments: false }).code;
}

/** The functions with a JSDoc description in one file's source; `rel` is the path written in the rows. */
export function extractJsFunctions(source: string, rel: string): JsRow[] {
  const ast = parseJs(source);
  if (!ast) return [];
  const rows: JsRow[] = [];
  const seen = new Set<t.Node>();
  forEachNode(ast.program, (node, parent) => {
    const c = candidate(node, source);
    if (!c) return;
    // an exported declaration carries its JSDoc on the export
    let doc = jsdocOf(c.holder);
    if (!doc && parent && (t.isExportNamedDeclaration(parent) || t.isExportDefaultDeclaration(parent))) {
      doc = jsdocOf(parent);
    }
    if (!doc || seen.has(c.fn)) return;
    seen.add(c.fn);
    const description = jsdocDescription(doc.value);
    const query = jsdocQuery(description);
    if (!query || isBoilerplate(query)) return;
    const body = c.fn.body;
    if (t.isBlockStatement(body) && body.body.length === 0) return;
    const code = reindent(source, c.span.start!, c.span.end!);
    if (code.length > MAX_JS_CODE_CHARS) return;
    let refactored: string;
    try {
      refactored = refactorFunction(c.fn);
    } catch {
      return;
    }
    rows.push({ path: rel, line: c.span.loc!.start.line, name: c.name, query, code, refactored });
  });
  return rows;
}

/**
 * The JavaScript source files of an unpacked package, in path order, relative to `root`: `.js`, `.mjs` and
 * `.cjs` files outside test and node_modules folders, without `.min.js` files, files over MAX_JS_FILE_BYTES
 * and `dist` folders beside a `src` or `lib` folder; a `.cjs` or `.mjs` file beside a `.js` file of the same name
 * is a copy and left out. `dirs` (relative to root) limits the walk; folders and files in `skip` are left out.
 */
export function listJsFiles(root: string, dirs?: readonly string[], skip: readonly string[] = []): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    const entries = readdirSync(dir, { withFileTypes: true });
    const names = new Set(entries.map((e) => e.name));
    const hasSource = names.has('src') || names.has('lib');
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (SKIP_DIRS.has(e.name) || (e.name === 'dist' && hasSource)) continue;
        if (skip.includes(path.relative(root, full).split(path.sep).join('/'))) continue;
        walk(full);
      } else if (e.isFile() && JS_EXT.test(e.name) && !e.name.endsWith('.min.js')) {
        if (!e.name.endsWith('.js') && names.has(e.name.replace(JS_EXT, '.js'))) continue;
        if (statSync(full).size > MAX_JS_FILE_BYTES) continue;
        if (skip.includes(path.relative(root, full).split(path.sep).join('/'))) continue;
        out.push(path.relative(root, full).split(path.sep).join('/'));
      }
    }
  };
  for (const d of dirs ?? ['.']) {
    const start = path.join(root, d);
    if (existsSync(start)) walk(start);
  }
  return out.sort();
}

/** The rows of one unpacked package (`root` holds its package.json); paths are written `npm-NAME:rel/path.js`. */
export function extractJsPackage(root: string, name: string): JsRow[] {
  const rows: JsRow[] = [];
  for (const rel of listJsFiles(root, CODE_SEARCH_NPM_DIRS[name]?.dirs, CODE_SEARCH_NPM_DIRS[name]?.skip)) {
    const source = readFileSync(path.join(root, rel), 'utf8');
    if (isMinified(source)) continue;
    rows.push(...extractJsFunctions(source, `${npmUnit(name)}:${rel}`));
  }
  return rows;
}

/** The licence text of an unpacked package: its LICENSE/LICENCE/COPYING file(s), else what package.json says. */
export function packageLicense(root: string): string {
  const files = readdirSync(root)
    .filter((f) => /^(licen[cs]e|copying)([.-].*)?$/i.test(f))
    .sort();
  if (files.length) return files.map((f) => readFileSync(path.join(root, f), 'utf8')).join('\n');
  try {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { license?: unknown };
    return `(no licence file in the package; package.json says: ${JSON.stringify(pkg.license ?? null)})\n`;
  } catch {
    return '(no licence file in the package)\n';
  }
}

/** `npm pack SPEC` into `work` and `tar -xzf` of the tarball; returns the unpacked package root. */
export function packNpm(spec: string, work: string): string {
  const dir = path.join(work, spec.replace(/[@/]/g, '_'));
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('npm', ['pack', spec, '--pack-destination', dir, '--silent'], {
    cwd: dir,
    encoding: 'utf8',
  });
  if (r.error) throw new Error(`npm could not start (${r.error.message}); install Node.js with npm, then fetch again`);
  if (r.status !== 0) {
    throw new Error(
      `\`npm pack ${spec}\` failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-4).join(' ')}`,
    );
  }
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (!tgz) throw new Error(`\`npm pack ${spec}\` wrote no .tgz file in ${dir}`);
  const out = path.join(dir, 'x');
  mkdirSync(out);
  const x = spawnSync('tar', ['-xzf', path.join(dir, tgz), '-C', out], { encoding: 'utf8' });
  if (x.status !== 0) throw new Error(`\`tar -xzf ${tgz}\` failed (exit ${x.status}): ${x.stderr}`);
  // npm tarballs hold one folder, usually `package/`
  const top = readdirSync(out);
  return top.length === 1 ? path.join(out, top[0]) : out;
}

type Step = <T>(what: string, run: () => T) => T;

/** Writes pairs-js.jsonl and LICENSES-npm.txt into `dir`: every package of CODE_SEARCH_NPM_PACKAGES, in order. */
export function fetchCodeSearchJs(dir: string, step: Step, tempDir: () => string): void {
  const work = tempDir();
  const parts: string[] = [];
  const licences: string[] = [];
  for (const spec of CODE_SEARCH_NPM_PACKAGES) {
    const name = npmName(spec);
    const root = step(`npm pack ${spec} + tar -xzf`, () => packNpm(spec, work));
    const rows = step(`extracting ${spec} (babel)`, () => extractJsPackage(root, name));
    for (const r of rows) parts.push(`${JSON.stringify(r)}\n`);
    licences.push(`==== ${npmUnit(name)} (${spec}) ====\n${packageLicense(root)}`);
    rmSync(path.join(work, spec.replace(/[@/]/g, '_')), { recursive: true, force: true });
  }
  writeFileSync(path.join(dir, CODE_SEARCH_JS_FILE), parts.join(''));
  writeFileSync(path.join(dir, CODE_SEARCH_NPM_LICENSES_FILE), licences.join('\n'));
}
