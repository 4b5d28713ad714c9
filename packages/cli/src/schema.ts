// The JSON that `offramp eval --json` prints and writes to results.json, as a zod schema (for consumers and
// the tests), and the smaller documents of the other commands.
import * as z from 'zod';

const num = z.number();
const fraction = z.number().min(0).max(1);

const range = z.tuple([num.positive(), num.positive()]).refine(([a, b]) => a <= b, { error: 'min ≤ max' });

export const measuredSchema = z.strictObject({
  mode: z.enum(['host', 'device']),
  wallMs: num.positive(),
  wallMsRange: range,
  repeats: z.number().int().min(1),
  samplesPerSec: num.positive(),
  speedup: num.positive(),
  speedupRange: range,
  withinNoise: z.boolean().nullable(),
  computeFraction: fraction,
  exitsMatch: z.boolean().nullable(),
  mismatches: z.number().int().min(0),
});

export const pointSchema = z.strictObject({
  family: z.string(),
  label: z.string(),
  spec: z.string(),
  options: z.record(z.string(), z.unknown()),
  reference: z.boolean(),
  simulated: z.boolean(),
  accuracy: fraction.nullable(),
  accuracyDrop: z.number().min(-1).max(1).nullable(),
  agreement: fraction,
  meanExitBlock: num.min(0),
  computeFraction: fraction,
  flopsSpeedup: num.min(1),
  exitHistogram: z.array(z.number().int().min(0)),
  policyFrontier: z.boolean(),
  frontier: z.boolean(),
  chosen: z.boolean(),
  measured: measuredSchema.nullable(),
});

export const evalResultSchema = z.strictObject({
  command: z.string(),
  version: z.literal(1),
  date: z.string(),
  model: z.strictObject({
    dir: z.string(),
    name: z.string(),
    architecture: z.enum(['encoder_classifier', 'mlp_classifier', 'cnn_classifier']),
    numBlocks: z.number().int().positive(),
    exitBlocks: z.array(z.number().int().min(0)),
    numClasses: z.number().int().positive(),
    parameters: z.number().int().positive(),
    flopsPerSample: num.positive(),
    costFractions: z.array(fraction),
  }),
  data: z.strictObject({
    name: z.string(),
    split: z.enum(['train', 'test', 'file']),
    n: z.number().int().positive(),
    available: z.number().int().positive(),
    labelled: z.boolean(),
    classNames: z.array(z.string()),
  }),
  device: z.strictObject({ kind: z.enum(['gpu', 'cpu']), adapter: z.string() }),
  batch: z.number().int().positive(),
  maxDrop: num.min(0),
  full: z.strictObject({
    accuracy: fraction.nullable(),
    wallMs: num.positive(),
    wallMsRange: range,
    repeats: z.number().int().min(1),
    samplesPerSec: num.positive(),
    mode: z.enum(['host', 'device']),
    meanExitBlock: num.min(0),
  }),
  policies: z.array(
    z.strictObject({
      family: z.string(),
      source: z.enum(['sweep', 'builtin', 'file', 'module']),
      points: z.array(pointSchema).min(1),
    }),
  ),
  skipped: z.array(z.strictObject({ policy: z.string(), reason: z.string() })),
  checks: z.strictObject({
    measured: z.number().int().min(0),
    exitsMatch: z.boolean(),
    mismatchedPoints: z.array(z.string()),
  }),
  timings: z.strictObject({ loadMs: num, traceMs: num, sweepMs: num, measureMs: num, totalMs: num }),
  files: z.record(z.string(), z.string()).optional(),
});

export type EvalResultJson = z.infer<typeof evalResultSchema>;

export const calibrateResultSchema = z.strictObject({
  command: z.literal('calibrate'),
  policy: z.string(),
  method: z.enum(['max-drop', 'budget', 'learn-then-test']),
  feasible: z.boolean(),
  options: z.record(z.string(), z.unknown()),
  metrics: z.strictObject({
    accuracy: fraction.nullable(),
    accuracyDrop: num.nullable(),
    disagreement: fraction,
    computeFraction: fraction,
    meanExitBlock: num,
  }),
  n: z.number().int().positive(),
  file: z.string(),
});
