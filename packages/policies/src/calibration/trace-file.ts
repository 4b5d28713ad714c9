// Trace files: a recorded trace as one JSON document, so a full-depth run done once can be replayed, swept
// and used to train learned policies later (`offramp trace` writes them). Signals are stored column-wise
// (sample-major, numExits values per sample); NaN (no gate head, no previous exit) is stored as null.
//   { "offramp_trace": 1, "num_exits", "num_classes", "num_blocks", "exit_blocks", "cost_fractions",
//     "samples", "labels" (array or null), "final_prediction", "max_prob", "entropy", "margin", "argmax",
//     "gate", "similarity", "meta" (free-form: model, data, split...) }
import { FormatError } from '@offramp/core';
import * as z from 'zod';
import { jsonObject } from '../options.js';
import { checkTrace, type Trace, type TraceSample } from './trace.js';

export const TRACE_FILE_VERSION = 1;

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
  offramp_trace: 1;
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
  meta?: Record<string, unknown>;
}

const int = (what: string) => z.number({ error: `must be ${what}` }).int({ error: `must be ${what}` });
const count = (what: string) => int(what).min(1, { error: `must be ${what}` });
const num = z.number({ error: 'must be numbers or null' }).nullable();
const fileSchema = z.strictObject({
  offramp_trace: z.literal(1, { error: `must be ${TRACE_FILE_VERSION} (the only trace file version)` }),
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
});

const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** The JSON document of a trace (checked first), with optional free-form metadata. */
export function traceToJson(trace: Trace, meta?: Record<string, unknown>): TraceFile {
  checkTrace(trace);
  const E = trace.numExits;
  const col = (k: (typeof SIGNALS)[number]) => trace.samples.flatMap((s) => s[k].slice(0, E));
  const labelled = trace.samples.every((s) => s.label !== undefined);
  const file: TraceFile = {
    offramp_trace: 1,
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
  };
  if (meta) file.meta = JSON.parse(JSON.stringify(meta));
  return file;
}

/** Validates a trace file (a parsed object or its JSON text) and returns the trace and its metadata. */
export function parseTraceFile(
  json: string | unknown,
  where = 'trace file',
): { trace: Trace; meta: Record<string, unknown> } {
  const doc = jsonObject(json, where, '{ "offramp_trace": 1, ... }');
  const r = fileSchema.safeParse(doc);
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
  const bad = (what: string) => {
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
  const C = f.num_classes;
  const classOk = (v: number) => v < C;
  if (!f.argmax.every(classOk)) bad(`argmax holds a class id ≥ num_classes ${C}`);
  if (!f.final_prediction.every(classOk)) bad(`final_prediction holds a class id ≥ num_classes ${C}`);
  if (f.labels && !f.labels.every(classOk)) bad(`labels holds a label ≥ num_classes ${C}`);
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
  return { trace, meta: f.meta ?? {} };
}
