// Option schemas and their errors: every bad option names the policy, the option, what is allowed and what
// was given ("policy 'entropy': option 'threshold' must be in (0, ln C] ..., got -1").
import { closestName, FormatError, ValidationError } from '@offramp/core';
import * as z from 'zod';

/** Formats a value for an error message, briefly. */
export function show(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (v === undefined) return 'nothing';
  try {
    const s = JSON.stringify(v);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(v);
  }
}

/** Parses `options` with `schema`; a failure throws a ValidationError naming the policy and the option. */
export function parseOptions<S extends z.ZodType>(policy: string, schema: S, options: unknown): z.output<S> {
  const r = schema.safeParse(options ?? {}, { reportInput: true });
  if (r.success) return r.data;
  const lines = r.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const known = schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
      const hint = closestName(issue.keys[0], known);
      return `unknown option${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}${hint ? ` (did you mean '${hint}'?)` : ''}${known.length ? ` (allowed: ${known.join(', ')})` : ''}`;
    }
    const path = issue.path.length ? issue.path.map(String).join('.') : '(options)';
    return `option '${path}' ${issue.message}, got ${show((issue as { input?: unknown }).input)}`;
  });
  throw new ValidationError(`policy '${policy}': ${lines.join('; ')}`);
}

/** Throws a ValidationError in the standard form, for checks that need init-time facts (class count, exits). */
export function optionError(policy: string, option: string, allowed: string, got: unknown): never {
  throw new ValidationError(`policy '${policy}': option '${option}' ${allowed}, got ${show(got)}`);
}

const finite = (error: string) => z.number({ error }).refine(Number.isFinite, { error });

/** A number in a range; `lo`/`hi` inclusive or not, as the message says. */
export function num(lo: number, hi: number, loIncl: boolean, hiIncl: boolean) {
  const error = `must be a number in ${loIncl ? '[' : '('}${lo}, ${hi}${hiIncl ? ']' : ')'}`;
  return finite(error).refine((x) => (loIncl ? x >= lo : x > lo) && (hiIncl ? x <= hi : x < hi), { error });
}

/** An integer in [lo, hi]. */
export function int(lo: number, hi = Number.MAX_SAFE_INTEGER) {
  const error = hi === Number.MAX_SAFE_INTEGER ? `must be an integer ≥ ${lo}` : `must be an integer in [${lo}, ${hi}]`;
  return z.int({ error }).min(lo, { error }).max(hi, { error });
}

/** One threshold for every exit, or one per exit (checked against the exit count at init). */
export function thresholdOrList(lo: number, hi: number, loIncl: boolean, hiIncl: boolean, rangeText?: string) {
  const range = rangeText ?? `${loIncl ? '[' : '('}${lo}, ${hi}${hiIncl ? ']' : ')'}`;
  const error = `must be a number in ${range} or an array of such numbers (one per exit)`;
  const ok = (x: unknown) =>
    typeof x === 'number' && Number.isFinite(x) && (loIncl ? x >= lo : x > lo) && (hiIncl ? x <= hi : x < hi);
  return z.custom<number | number[]>((v) => ok(v) || (Array.isArray(v) && v.length > 0 && v.every(ok)), { error });
}

/** Names of the scalar signals a policy can read a score from. */
export const scalarSignals = ['maxProb', 'entropy', 'margin', 'gate', 'similarity'] as const;
export type ScalarSignal = (typeof scalarSignals)[number];
export const scalarSignal = z.enum(scalarSignals, { error: `must be one of ${scalarSignals.join(', ')}` });

/** WGSL field of Signals for each scalar signal. */
export const wgslField: Record<ScalarSignal, string> = {
  maxProb: 'max_prob',
  entropy: 'entropy',
  margin: 'margin',
  gate: 'gate',
  similarity: 'similarity',
};

/** Checks a per-exit threshold list against the exit count, at init. */
export function checkPerExit(
  policy: string,
  option: string,
  value: number | readonly number[],
  numExits: number,
): void {
  if (Array.isArray(value) && value.length !== numExits) {
    optionError(
      policy,
      option,
      `has one threshold per exit: expected ${numExits} values for this model's ${numExits} exits`,
      value,
    );
  }
}

/** The threshold at exit `e` (a single threshold or a per-exit list), as f32. */
export function thresholdAt(value: number | readonly number[], e: number): number {
  return Math.fround(Array.isArray(value) ? (value as number[])[Math.min(e, value.length - 1)] : (value as number));
}

/**
 * A JSON document that must be an object: parses text (a parsed value passes through; a leading byte-order
 * mark is dropped) and throws a FormatError naming `where` and the expected `shape` otherwise, or when
 * arrays and objects nest deeper than `maxDepth` (checked without recursion).
 */
export function jsonObject(
  json: string | unknown,
  where: string,
  shape: string,
  maxDepth = Number.POSITIVE_INFINITY,
): Record<string, unknown> {
  let doc = json;
  if (typeof json === 'string') {
    const text = json.charCodeAt(0) === 0xfeff ? json.slice(1) : json;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      const msg = e instanceof RangeError ? `nested too deeply to parse` : (e as Error).message;
      throw new FormatError(`${where}: not valid JSON (${msg})`);
    }
  }
  if (Number.isFinite(maxDepth) && jsonDepth(doc, maxDepth) > maxDepth)
    throw new FormatError(
      `${where}: JSON nested more than ${maxDepth} levels deep (arrays and objects); at most ${maxDepth} levels are allowed`,
    );
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new FormatError(`${where}: expected a JSON object ${shape}, got ${show(doc)}`);
  return doc as Record<string, unknown>;
}

/** Deepest nesting of arrays and objects accepted in a policy file (combinators nest a few levels each). */
export const MAX_JSON_DEPTH = 64;

/**
 * Nesting depth of a parsed JSON value (a scalar is 0, `[]` is 1), counted without recursion so a hostile
 * document cannot overflow the stack; stops counting once past `limit`.
 */
export function jsonDepth(value: unknown, limit = Number.POSITIVE_INFINITY): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, d] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null) continue;
    const here = d + 1;
    if (here > max) max = here;
    if (max > limit) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === 'object' && child !== null) stack.push([child, here]);
    }
  }
  return max;
}
