// Policies named on the command line: built-ins by name (swept over a grid) or with options
// (`entropy:threshold=0.3`, one point), calibrated policy files (`file:entropy.policy.json`), and
// third-party plugin packages by module name (`module:offramp-policy-x:opt=1`, or `@scope/pkg`, `./local.js`,
// a plugin's folder `./my-policy`); a plugin named without options is swept over the grid it declares.
// Unknown names suggest the nearest built-in; bad options name the policy, the option and the allowed range.
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type ExitPolicy, type SweepGrid, sweepOptions } from '@offramp/core';
import { FILE_LIMITS, readBoundedTextSync } from '@offramp/core/node';
import { RuntimeError, UsageError } from './errors.js';
import { optionsText, short } from './util/format.js';
import { didYouMean, nearest } from './util/suggest.js';

export type PolicyFactory = ((options: any) => ExitPolicy<any>) & { sweep?: SweepGrid };

/** A policy as given on the command line, checked but not yet expanded into points. */
export type PolicyRequest =
  | { kind: 'sweep'; text: string; name: string }
  | { kind: 'builtin'; text: string; name: string; options: Record<string, unknown> }
  | {
      kind: 'file';
      text: string;
      path: string;
      name: string;
      options: Record<string, unknown>;
      calibration?: Record<string, unknown>;
    }
  | {
      kind: 'module';
      text: string;
      module: string;
      name: string;
      factory: PolicyFactory;
      /** The options as given. */
      options: Record<string, unknown>;
      /** The options the policy reports, defaults filled in (what tables show). */
      resolved: Record<string, unknown>;
      /** Named without options and declaring a sweep grid: the option sets to sweep. */
      grid?: Record<string, unknown>[];
    };

/** The built-ins `all` expands to, and those used when no --policies is given. */
export const ALL_POLICIES = [
  'confidence',
  'entropy',
  'margin',
  'saturation',
  'patience',
  'gate',
  'ponder',
  'budget',
  'static',
  'oracle',
] as const;
export const DEFAULT_POLICIES = [
  'confidence',
  'entropy',
  'margin',
  'saturation',
  'patience',
  'gate',
  'ponder',
  'static',
  'oracle',
] as const;
/** Built-ins that can be swept without further options. */
export const SWEEPABLE = new Set<string>([...ALL_POLICIES, 'quality']);

/**
 * Splits `--policies` values: commas separate policies, except that `key=value` pieces after a `name:...`
 * spec belong to it (`entropy:threshold=0.3,confidence` is two policies; `x:a=1,b=2` is one).
 */
export function splitPolicyList(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    let depth = 0;
    let cur = '';
    const pieces: string[] = [];
    for (const ch of v) {
      if (ch === '[') depth++;
      if (ch === ']') depth--;
      if ((ch === ',' || ch === ';') && depth === 0) {
        pieces.push(cur);
        cur = '';
      } else cur += ch;
    }
    pieces.push(cur);
    for (const raw of pieces) {
      const p = raw.trim();
      if (!p) continue;
      const prev = out[out.length - 1];
      const isOption = /^[A-Za-z_][\w-]*\s*=/.test(p) && !p.startsWith('file:') && !p.startsWith('module:');
      if (isOption && prev?.includes(':') && !prev.startsWith('file:')) out[out.length - 1] = `${prev},${p}`;
      else if (isOption)
        throw new UsageError(`--policies: '${p}' looks like an option but follows no policy; write name:${p}`);
      else out.push(p);
    }
  }
  return out;
}

/** `k=v,k=[1,2]` → options (numbers, booleans, bare words, lists), as the built-in spec syntax. */
export function parseOptionString(body: string, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of body) {
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) throw new UsageError(`${where}: unbalanced brackets in '${body}'`);
  parts.push(cur);
  const value = (v: string): unknown => {
    const t = v.trim();
    if (t.startsWith('[') && t.endsWith(']'))
      return t
        .slice(1, -1)
        .split(',')
        .filter((x) => x.trim() !== '')
        .map(value);
    if (t === 'true') return true;
    if (t === 'false') return false;
    if (t !== '' && Number.isFinite(Number(t))) return Number(t);
    return t;
  };
  for (const part of parts.map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`${where}: expected key=value, got '${part}'`);
    const k = part.slice(0, eq).trim();
    if (Object.hasOwn(out, k)) throw new UsageError(`${where}: option '${k}' given twice`);
    out[k] = value(part.slice(eq + 1));
  }
  return out;
}

function looksLikeModule(s: string): boolean {
  return s.startsWith('@') || s.startsWith('.') || s.startsWith('/') || s.includes('/');
}

/**
 * Resolves a module specifier to a URL: a path (`./my-policy`, `/abs/plugin.js`) from `from`, where a
 * folder is a plugin package whose entry its package.json names (exports, module, main, else index.js);
 * a package name by the node_modules lookup from `from` upwards, else a path relative to `from` written
 * without './'. The plugin's own imports then resolve from its own folder, as Node resolves them for any
 * module.
 */
export function resolveModule(spec: string, from = process.cwd()): string | null {
  if (spec.startsWith('.') || spec.startsWith('/')) {
    const p = resolve(from, spec);
    if (!existsSync(p)) return null;
    return pathToFileURL(statSync(p).isDirectory() ? packageEntry(p, spec) : p).href;
  }
  const parts = spec.split('/');
  const pkgName = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  const sub = parts.slice(spec.startsWith('@') ? 2 : 1).join('/');
  let d = resolve(from);
  for (;;) {
    const pkgDir = join(d, 'node_modules', pkgName);
    if (existsSync(join(pkgDir, 'package.json'))) {
      if (sub) return pathToFileURL(join(pkgDir, sub)).href;
      return pathToFileURL(packageEntry(pkgDir, spec)).href;
    }
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  // no such package: a relative path written without './' (module:examples/policy-plugin) is taken as a path
  return existsSync(resolve(from, spec)) ? resolveModule(`./${spec}`, from) : null;
}

/** The entry file of the package in `dir` (exports '.', module, main, else index.js), checked to exist. */
export function packageEntry(dir: string, spec: string): string {
  const pj = join(dir, 'package.json');
  let entry = 'index.js';
  if (existsSync(pj)) {
    let pkg: { exports?: unknown; module?: string; main?: string };
    try {
      pkg = JSON.parse(readBoundedTextSync(pj, { maxBytes: FILE_LIMITS.json, what: 'a package.json' }));
    } catch (e) {
      throw new UsageError(`policy module '${spec}': ${pj} cannot be read: ${(e as Error).message}`, { cause: e });
    }
    entry = exportEntry(pkg.exports) ?? pkg.module ?? pkg.main ?? 'index.js';
  }
  const file = resolve(dir, entry);
  if (!existsSync(file))
    throw new UsageError(
      `policy module '${spec}': its entry ${file} does not exist${existsSync(join(dir, 'tsconfig.json')) ? ' (build the plugin first, e.g. npm run build)' : ''}`,
    );
  return file;
}

function exportEntry(exp: unknown): string | undefined {
  if (typeof exp === 'string') return exp;
  if (!exp || typeof exp !== 'object') return undefined;
  const e = exp as Record<string, unknown>;
  const dot = '.' in e ? e['.'] : e;
  if (typeof dot === 'string') return dot;
  if (dot && typeof dot === 'object') {
    const d = dot as Record<string, unknown>;
    for (const k of ['import', 'node', 'default']) {
      const v = d[k];
      if (typeof v === 'string') return v;
      if (v && typeof v === 'object') {
        const inner = exportEntry({ '.': v });
        if (inner) return inner;
      }
    }
  }
  return undefined;
}

/** The policy factory a plugin module exports: `default`, `policy`, or the only function export. */
export function factoryOf(mod: Record<string, unknown>, spec: string): PolicyFactory {
  const cands = [mod.default, mod.policy].filter((f) => typeof f === 'function');
  if (cands.length) return cands[0] as PolicyFactory;
  const fns = Object.entries(mod).filter(([, v]) => typeof v === 'function');
  if (fns.length === 1) return fns[0][1] as PolicyFactory;
  throw new UsageError(
    `module '${spec}' exports no policy factory: export it as default (export default myPolicy) or as 'policy'${fns.length ? `; found functions ${fns.map(([k]) => k).join(', ')}` : ''}`,
  );
}

async function loadModulePolicy(text: string, specBody: string): Promise<PolicyRequest> {
  // module[:options]; a scoped name has its first ':' after the '/'
  const colon = specBody.indexOf(':', specBody.startsWith('@') ? specBody.indexOf('/') : 0);
  const mod = colon < 0 ? specBody : specBody.slice(0, colon);
  const options = colon < 0 ? {} : parseOptionString(specBody.slice(colon + 1), `policy '${mod}'`);
  const url = resolveModule(mod);
  if (!url)
    throw new UsageError(
      `policy module '${mod}' not found from ${process.cwd()}: install it (e.g. npm install ${mod}) or give a path such as ./my-policy.js`,
    );
  let m: Record<string, unknown>;
  try {
    m = (await import(url)) as Record<string, unknown>;
  } catch (e) {
    // a dependency of the plugin that is not installed: its imports resolve from its own folder
    const missing = (e as NodeJS.ErrnoException)?.code === 'ERR_MODULE_NOT_FOUND';
    const hint = missing ? ` (run npm install in the plugin's folder, ${dirname(fileURLToPath(url))})` : '';
    throw new RuntimeError(`policy module '${mod}' could not be loaded from ${url}: ${(e as Error).message}${hint}`, {
      cause: e,
    });
  }
  const factory = factoryOf(m, mod);
  const build = (o: Record<string, unknown>) => {
    try {
      return factory(o);
    } catch (e) {
      if ((e as Error).name === 'ValidationError') throw new UsageError((e as Error).message, { cause: e });
      throw e;
    }
  };
  const policy = build(options);
  const name = policy.name || mod;
  const resolved = { ...((policy.options as Record<string, unknown> | undefined) ?? options) };
  let grid: Record<string, unknown>[] | undefined;
  if (colon < 0 && factory.sweep) {
    try {
      grid = sweepOptions(factory.sweep);
    } catch (e) {
      throw new UsageError(`policy module '${mod}': ${(e as Error).message}`, { cause: e });
    }
    // every point is built once here, so a bad grid fails now rather than after the trace
    for (const o of grid) build(o);
  }
  return { kind: 'module', text, module: mod, name, factory, options, resolved, ...(grid ? { grid } : {}) };
}

/** Parses one policy given on the command line (no model needed). */
export async function parsePolicyRequest(text: string): Promise<PolicyRequest> {
  const P = await import('@offramp/policies');
  const t = text.trim();
  if (t.startsWith('file:') || t.endsWith('.json')) {
    const path = resolve(t.startsWith('file:') ? t.slice(5) : t);
    if (!existsSync(path))
      throw new RuntimeError(
        `policy file '${path}' does not exist; write one with \`offramp calibrate ... --out ${path}\``,
      );
    let file: Awaited<ReturnType<typeof P.loadPolicyFile>>['file'];
    try {
      file = (await P.loadPolicyFile(path)).file;
    } catch (e) {
      throw new UsageError((e as Error).message, { cause: e });
    }
    return { kind: 'file', text: t, path, name: file.name, options: file.options, calibration: file.calibration };
  }
  if (t.startsWith('module:')) return loadModulePolicy(t, t.slice(7));
  const colon = t.indexOf(':');
  const name = colon < 0 ? t : t.slice(0, colon);
  if (P.isBuiltinPolicy(name)) {
    if (colon < 0) {
      if (!SWEEPABLE.has(name)) {
        throw new UsageError(`policy '${name}' has no default sweep; give its options, e.g. ${exampleSpec(name)}`);
      }
      return { kind: 'sweep', text: t, name };
    }
    try {
      const { options } = P.parsePolicySpec(t);
      return { kind: 'builtin', text: t, name, options };
    } catch (e) {
      throw new UsageError((e as Error).message, { cause: e });
    }
  }
  if (looksLikeModule(t)) return loadModulePolicy(t, t);
  const hint = nearest(name, [...P.builtinPolicyNames, 'all']);
  if (!hint && resolveModule(name)) return loadModulePolicy(t, t);
  throw new UsageError(
    `unknown policy '${name}'${didYouMean(name, [...P.builtinPolicyNames, 'all'])}: built-in policies are ${P.builtinPolicyNames.join(', ')} (or 'all'); a policy file is file:PATH.json, a plugin is module:PACKAGE`,
  );
}

function exampleSpec(name: string): string {
  switch (name) {
    case 'window':
      return 'window:wLo=0.3,wHi=0.9';
    case 'online':
      return 'online:thresholds=[0.6,0.8,0.9]';
    case 'schedule':
      return 'schedule:hMin=0,hMax=2,T=100';
    default:
      return `${name}:key=value`;
  }
}

/** Expands `all` and the comma lists, parses each policy; duplicates are dropped. */
export async function parsePolicyList(values: readonly string[] | undefined): Promise<PolicyRequest[]> {
  const list = values?.length ? splitPolicyList(values) : [...DEFAULT_POLICIES];
  const expanded = list.flatMap((p) => (p === 'all' ? [...ALL_POLICIES] : [p]));
  const seen = new Set<string>();
  const out: PolicyRequest[] = [];
  for (const p of expanded) {
    if (seen.has(p)) continue;
    seen.add(p);
    out.push(await parsePolicyRequest(p));
  }
  if (!out.length) throw new UsageError('--policies: no policy given');
  return out;
}

/** One policy setting to evaluate. */
export interface OperatingPoint {
  /** Row group in the tables: the policy name (with ' (file)' or the module for those). */
  family: string;
  /** The options, readable. */
  label: string;
  options: Record<string, unknown>;
  /** A spec that gives this exact policy back (for --policies). */
  spec: string;
  /** A fresh policy instance. */
  make(): ExitPolicy<any>;
  /** Reference only (oracle): not run for real. */
  reference?: boolean;
}

/** Spec string of a built-in with options, numbers written exactly. */
export function builtinSpec(name: string, options: Record<string, unknown>): string {
  const v = (x: unknown): string => (Array.isArray(x) ? `[${x.map(v).join(',')}]` : String(x));
  const body = Object.entries(options)
    .map(([k, x]) => `${k}=${v(x)}`)
    .join(',');
  return body ? `${name}:${body}` : name;
}

export function pointLabel(options: Record<string, unknown>): string {
  return optionsText(options);
}

export { short };
