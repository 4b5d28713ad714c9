// Trace files: a recorded trace as one JSON document, so a full-depth run done once can be replayed, swept
// and used to train learned policies later (`offramp trace` writes them). Signals are stored column-wise
// (sample-major, numExits values per sample); NaN (no gate head, no previous exit) is stored as null.
//   { "offramp_trace": 2, "num_exits", "num_classes", "num_blocks", "exit_blocks", "cost_fractions",
//     "samples", "labels" (array or null), "final_prediction", "max_prob", "entropy", "margin", "argmax",
//     "gate", "similarity",
//     "weights_sha256", "data_sha256" (hex SHA-256 of the weights and of the traced inputs and labels, or
//       null when the writer did not know them),
//     "logits" (optional: every exit's logits, sample-major then exit then class: samples × numExits × numClasses),
//     "meta" (free-form: model, data, split...) }
// Version 1 (no hashes, no logits) is still read; parseTraceFile reports the version so callers can warn.
// Every signal is checked against the range the engine produces (see core's exit-signals kernel).
import { FormatError } from '@offramp/core';
import * as z from 'zod';
import { jsonObject } from '../options.js';
import { checkTrace, type Trace, type TraceSample } from './trace.js';

export const TRACE_FILE_VERSION = 2;

const SIGNALS = ['maxProb', 'entropy', 'margin', 'argmax', 'gate', 'similarity'] as const;
const COLUMN = {
  maxProb: 'max_prob',
  entropy: 'entropy',
  margin: 'margin',
  argmax: 'argmax',
  gate: 'gate',
  similarity: 'similarity',
} as const;

export interface TraceFile {
  offramp_trace: 1 | 2;
  num_exits: number;
  num_classes: number;
  num_blocks: number;
  exit_blocks: number[];
  cost_fractions: number[];
  samples: number;
  labels: number[] | null;
  final_prediction: number[];
  max_prob: (number | null)[];
  entropy: (number | null)[];
  margin: (number | null)[];
  argmax: number[];
  gate: (number | null)[];
  similarity: (number | null)[];
  /** SHA-256 (hex) of the model's safetensors bytes, all shards in name order (version 2). */
  weights_sha256?: string | null;
  /** SHA-256 (hex) of the traced inputs and labels, in order (version 2). */
  data_sha256?: string | null;
  /** samples × num_exits × num_classes logits (sample-major, then exit, then class), when recorded. */
  logits?: number[];
  meta?: Record<string, unknown>;
}

/** What a trace was recorded from, as stored in a version-2 file. */
export interface TraceFingerprint {
  weightsSha256: string | null;
  dataSha256: string | null;
}

export interface ParsedTraceFile {
  trace: Trace;
  meta: Record<string, unknown>;
  /** The file's version: 1 files carry no hashes and cannot be checked against a model and data. */
  version: 1 | 2;
  fingerprint: TraceFingerprint;
}

/** Deepest nesting accepted anywhere in a trace file (its columns are flat; meta is a small object). */
export const TRACE_MAX_DEPTH = 32;
/** Slack for f32 rounding in the range checks (max_prob ≤ 1 + ε, entropy ≤ ln C + ε, ...). */
const F32_SLACK = 1e-5;

const sha = z
  .string({ error: 'must be a hex SHA-256 (64 characters) or null' })
  .regex(/^[0-9a-f]{64}$/, { error: 'must be a hex SHA-256 (64 lowercase hex characters) or null' })
  .nullable();
const int = (what: string) => z.number({ error: `must be ${what}` }).int({ error: `must be ${what}` });
const count = (what: string) => int(what).min(1, { error: `must be ${what}` });
const num = z.number({ error: 'must be numbers or null' }).nullable();
const columns = {
  num_exits: count('an integer ≥ 1'),
  num_classes: count('an integer ≥ 1'),
  num_blocks: count('an integer ≥ 1'),
  exit_blocks: z.array(int('block indices (integers)').min(0), { error: 'must be an array of block indices' }),
  cost_fractions: z.array(z.number().min(0).max(1), { error: 'must be an array of numbers in [0, 1]' }),
  samples: count('an integer ≥ 1'),
  labels: z.array(int('integer labels').min(0), { error: 'must be an array of labels or null' }).nullable(),
  final_prediction: z.array(int('integer class ids').min(0), { error: 'must be an array of class ids' }),
  max_prob: z.array(num, { error: 'must be an array' }),
  entropy: z.array(num, { error: 'must be an array' }),
  margin: z.array(num, { error: 'must be an array' }),
  argmax: z.array(int('integer class ids').min(0), { error: 'must be an array of class ids' }),
  gate: z.array(num, { error: 'must be an array' }),
  similarity: z.array(num, { error: 'must be an array' }),
  meta: z.record(z.string(), z.unknown(), { error: 'must be an object' }).optional(),
};
const v1Schema = z.strictObject({ offramp_trace: z.literal(1), ...columns });
const v2Schema = z.strictObject({
  offramp_trace: z.literal(2),
  ...columns,
  weights_sha256: sha,
  data_sha256: sha,
  logits: z.array(z.number({ error: 'must be finite numbers' }), { error: 'must be an array of numbers' }).optional(),
});

const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);
/** Shortest decimal that gives the same f32 back (9 significant digits always do). */
const f32Text = (v: number): number => Number(Math.fround(v).toPrecision(9));

/**
 * The JSON document of a trace (checked first), with optional free-form metadata and what it was recorded
 * from (hashes of the weights and of the data; null when unknown). Logits recorded in the trace are kept.
 */
export function traceToJson(
  trace: Trace,
  meta?: Record<string, unknown>,
  fingerprint: Partial<TraceFingerprint> = {},
): TraceFile {
  checkTrace(trace);
  const E = trace.numExits;
  const col = (k: (typeof SIGNALS)[number]) => trace.samples.flatMap((s) => s[k].slice(0, E));
  const labelled = trace.samples.every((s) => s.label !== undefined);
  const file: TraceFile = {
    offramp_trace: TRACE_FILE_VERSION,
    num_exits: E,
    num_classes: trace.numClasses,
    num_blocks: trace.numBlocks,
    exit_blocks: trace.exitBlocks.slice(),
    cost_fractions: trace.costFractions.slice(),
    samples: trace.samples.length,
    labels: labelled ? trace.samples.map((s) => s.label as number) : null,
    final_prediction: trace.samples.map((s) => s.finalPrediction),
    max_prob: col('maxProb').map(finiteOrNull),
    entropy: col('entropy').map(finiteOrNull),
    margin: col('margin').map(finiteOrNull),
    argmax: col('argmax'),
    gate: col('gate').map(finiteOrNull),
    similarity: col('similarity').map(finiteOrNull),
    weights_sha256: fingerprint.weightsSha256 ?? null,
    data_sha256: fingerprint.dataSha256 ?? null,
  };
  if (trace.samples[0].logits)
    file.logits = trace.samples.flatMap((s) => s.logits!.flatMap((z) => Array.from(z, f32Text)));
  if (meta) file.meta = JSON.parse(JSON.stringify(meta));
  return file;
}

/** The path to the first value nested deeper than `max` (iterative: a hostile file cannot overflow the stack). */
function tooDeep(doc: unknown, max: number): string | null {
  const stack: [unknown, number, string][] = [[doc, 0, '']];
  while (stack.length) {
    const [v, d, path] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (d >= max) return path || '(top level)';
    if (Array.isArray(v)) {
      // columns are long flat arrays: only their nested elements need a visit
      for (let i = 0; i < v.length; i++)
        if (typeof v[i] === 'object' && v[i] !== null) stack.push([v[i], d + 1, `${path}[${i}]`]);
    } else for (const [k, x] of Object.entries(v)) stack.push([x, d + 1, path ? `${path}.${k}` : k]);
  }
  return null;
}

/**
 * Validates a trace file (a parsed object or its JSON text, a leading byte-order mark allowed) and returns
 * the trace, its metadata, its version and the hashes it was recorded with.
 */
export function parseTraceFile(json: string | unknown, where = 'trace file'): ParsedTraceFile {
  const doc = jsonObject(
    typeof json === 'string' && json.charCodeAt(0) === 0xfeff ? json.slice(1) : json,
    where,
    '{ "offramp_trace": 2, ... }',
  );
  const deep = tooDeep(doc, TRACE_MAX_DEPTH);
  if (deep)
    throw new FormatError(
      `${where}: nested deeper than ${TRACE_MAX_DEPTH} levels at '${deep.slice(0, 120)}'; a trace file holds flat columns and a small meta object`,
    );
  const version = doc.offramp_trace;
  if (version !== 1 && version !== 2)
    throw new FormatError(
      `${where}: 'offramp_trace' must be ${TRACE_FILE_VERSION} (or 1, the older version without hashes), got ${JSON.stringify(version)}`,
    );
  const r = (version === 1 ? v1Schema : v2Schema).safeParse(doc);
  if (!r.success) {
    const msg = r.error.issues
      .slice(0, 5)
      .map((i) =>
        i.code === 'unrecognized_keys'
          ? `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `'${k}'`).join(', ')}`
          : `'${i.path.join('.')}' ${i.message}`,
      )
      .join('; ');
    throw new FormatError(
      `${where}: ${msg}${r.error.issues.length > 5 ? ` (and ${r.error.issues.length - 5} more)` : ''}`,
    );
  }
  const f = r.data;
  const E = f.num_exits;
  const n = f.samples;
  const C = f.num_classes;
  const bad = (what: string): never => {
    throw new FormatError(`${where}: ${what}`);
  };
  if (f.exit_blocks.length !== E) bad(`exit_blocks has ${f.exit_blocks.length} entries for ${E} exits`);
  if (f.cost_fractions.length !== E) bad(`cost_fractions has ${f.cost_fractions.length} entries for ${E} exits`);
  for (let e = 0; e < E; e++) {
    if (f.exit_blocks[e] >= f.num_blocks || (e > 0 && f.exit_blocks[e] <= f.exit_blocks[e - 1]))
      bad(`exit_blocks must be increasing block indices below num_blocks ${f.num_blocks}, got [${f.exit_blocks}]`);
    if (e > 0 && f.cost_fractions[e] < f.cost_fractions[e - 1])
      bad(`cost_fractions must not decrease with depth, got [${f.cost_fractions}]`);
  }
  if (f.labels && f.labels.length !== n) bad(`labels has ${f.labels.length} entries for ${n} samples`);
  if (f.final_prediction.length !== n)
    bad(`final_prediction has ${f.final_prediction.length} entries for ${n} samples`);
  for (const k of SIGNALS) {
    const c = COLUMN[k];
    if (f[c].length !== n * E) bad(`${c} has ${f[c].length} values; ${n} samples × ${E} exits need ${n * E}`);
  }
  const firstBad = (col: readonly (number | null)[], ok: (v: number) => boolean) => {
    const i = col.findIndex((v) => v !== null && !ok(v));
    return i < 0 ? null : { i, v: col[i] as number, sample: Math.floor(i / E), exit: i % E };
  };
  const range = (c: string, col: readonly (number | null)[], lo: number, hi: number, allowed: string) => {
    const b = firstBad(col, (v) => v >= lo - F32_SLACK && v <= hi + F32_SLACK);
    if (b) bad(`${c} of sample ${b.sample} at exit ${b.exit} is ${b.v}; ${c} must be in ${allowed}`);
  };
  // the ranges of core's exit-signals kernel: probabilities, entropy in nats, σ(gate), cosine similarity
  range('max_prob', f.max_prob, 1 / C, 1, `[1/C, 1] = [${(1 / C).toPrecision(4)}, 1] for C=${C} classes`);
  range('entropy', f.entropy, 0, Math.log(C), `[0, ln C] = [0, ${Math.log(C).toPrecision(6)}] for C=${C} classes`);
  range('margin', f.margin, 0, 1, '[0, 1]');
  range('gate', f.gate, 0, 1, '[0, 1] (a sigmoid)');
  range('similarity', f.similarity, -1, 1, '[-1, 1] (a cosine similarity)');
  const classOk = (v: number) => v < C;
  if (!f.argmax.every(classOk)) bad(`argmax holds a class id ≥ num_classes ${C}`);
  if (!f.final_prediction.every(classOk)) bad(`final_prediction holds a class id ≥ num_classes ${C}`);
  if (f.labels && !f.labels.every(classOk)) bad(`labels holds a label ≥ num_classes ${C}`);
  for (let i = 0; i < n; i++)
    if (f.final_prediction[i] !== f.argmax[i * E + E - 1])
      bad(
        `final_prediction of sample ${i} is ${f.final_prediction[i]} but the last exit's argmax is ${f.argmax[i * E + E - 1]}; the full model's prediction is the last exit's argmax`,
      );
  const logits = version === 2 ? (f as z.infer<typeof v2Schema>).logits : undefined;
  if (logits && logits.length !== n * E * C)
    bad(`logits has ${logits.length} values; ${n} samples × ${E} exits × ${C} classes need ${n * E * C}`);
  if (logits)
    for (let row = 0; row < n * E; row++) {
      // the argmax signal is the lowest index of the largest logit
      let top = 0;
      for (let c = 1; c < C; c++) if (logits[row * C + c] > logits[row * C + top]) top = c;
      if (top !== f.argmax[row])
        bad(
          `logits of sample ${Math.floor(row / E)} at exit ${row % E} peak at class ${top} but argmax is ${f.argmax[row]}`,
        );
    }
  const nan = (v: number | null) => (v === null ? Number.NaN : v);
  const samples: TraceSample[] = [];
  for (let i = 0; i < n; i++) {
    const s: TraceSample = {
      maxProb: f.max_prob.slice(i * E, (i + 1) * E).map(nan),
      entropy: f.entropy.slice(i * E, (i + 1) * E).map(nan),
      margin: f.margin.slice(i * E, (i + 1) * E).map(nan),
      argmax: f.argmax.slice(i * E, (i + 1) * E),
      gate: f.gate.slice(i * E, (i + 1) * E).map(nan),
      similarity: f.similarity.slice(i * E, (i + 1) * E).map(nan),
      finalPrediction: f.final_prediction[i],
    };
    if (f.labels) s.label = f.labels[i];
    if (logits)
      s.logits = Array.from({ length: E }, (_, e) =>
        Float32Array.from(logits.slice((i * E + e) * C, (i * E + e + 1) * C)),
      );
    samples.push(s);
  }
  const trace: Trace = {
    numExits: E,
    numClasses: C,
    numBlocks: f.num_blocks,
    exitBlocks: f.exit_blocks,
    costFractions: f.cost_fractions,
    samples,
  };
  const v2 = version === 2 ? (f as z.infer<typeof v2Schema>) : null;
  return {
    trace,
    meta: f.meta ?? {},
    version,
    fingerprint: { weightsSha256: v2?.weights_sha256 ?? null, dataSha256: v2?.data_sha256 ?? null },
  };
}

/**
 * Reads and parses a trace file from disk (Node only): a bounded read (FILE_LIMITS.trace unless `maxBytes`),
 * a byte-order mark allowed; every failure (missing, too large, not a file, bad JSON, bad content) is a
 * FormatError naming the file.
 */
export async function readTraceFile(path: string, options: { maxBytes?: number } = {}): Promise<ParsedTraceFile> {
  const { readBoundedText, FILE_LIMITS } = await import('@offramp/core/node');
  let text: string;
  try {
    text = await readBoundedText(path, {
      maxBytes: options.maxBytes ?? FILE_LIMITS.trace,
      what: 'a trace file (JSON from offramp trace)',
    });
  } catch (e) {
    if (e instanceof FormatError) throw e;
    // e.g. a file at the limit is longer than the longest string V8 can make
    throw new FormatError(`${path} cannot be read as a trace file: ${(e as Error).message}`, { cause: e });
  }
  return parseTraceFile(text, path);
}
