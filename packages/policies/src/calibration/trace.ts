// A trace: every sample's signals at every exit, recorded once from a never-exit run (trace = true), plus
// what is needed to replay the engine offline (exit blocks, cost fractions). Calibration reads only this.
import { type ExitPolicy, type ModelInput, neverExit, type Runner, ValidationError } from '@offramp/core';
import type { ModelShape } from '../loop.js';

export interface TraceSample {
  /** The true label, when known. */
  label?: number;
  /** Signals at each exit (all `numExits` of them). */
  maxProb: number[];
  entropy: number[];
  margin: number[];
  argmax: number[];
  gate: number[];
  similarity: number[];
  /** The full model's prediction (the last exit's argmax). */
  finalPrediction: number;
  /**
   * Per exit: the exit head's raw logits (numClasses values), when recorded with `{ logits: true }`. Policies
   * that need logits can then be replayed from the trace too.
   */
  logits?: Float32Array[];
}

export interface Trace extends ModelShape {
  samples: TraceSample[];
}

export interface RecordTraceOptions {
  /** Also record every exit's logits (read back to the host after each exit head: slower). */
  logits?: boolean;
}

/**
 * A never-exit policy that keeps each row's logits at every exit (host mode: it needs 'logits'). The runner
 * splits a large batch into chunks and calls `init` once per chunk, in order: the state is the chunk's offset.
 */
function logitsRecorder(n: number, E: number, C: number): { policy: ExitPolicy<number>; logits: Float32Array[][] } {
  const logits = Array.from({ length: n }, () => Array.from({ length: E }, () => new Float32Array(C)));
  let next = 0;
  const policy: ExitPolicy<number> = {
    name: 'never (recording logits)',
    options: {},
    needs: ['logits'],
    init: ({ batchSize }) => {
      const offset = next;
      next += batchSize;
      return offset;
    },
    decide: (ctx, s, offset) => {
      for (let r = 0; r < s.count; r++)
        logits[offset + s.sampleIds[r]][ctx.exitIndex].set(s.logits!.subarray(r * C, (r + 1) * C));
      return new Uint8Array(s.count);
    },
  };
  return { policy, logits };
}

/**
 * Runs `inputs` to full depth with trace = true and records the trace (labels optional, one per input;
 * `logits: true` keeps every exit's logits too).
 */
export async function recordTrace(
  runner: Runner,
  inputs: ModelInput,
  labels?: ArrayLike<number>,
  options: RecordTraceOptions = {},
): Promise<Trace> {
  const model = runner.model;
  const n = model.batchSize(inputs);
  if (labels && labels.length !== n)
    throw new ValidationError(`recordTrace: ${labels.length} labels for ${n} inputs: give one label per input`);
  const recorder = options.logits ? logitsRecorder(n, model.exitBlocks.length, model.numClasses) : null;
  const res = recorder
    ? await runner.run(inputs, { policy: recorder.policy, trace: true })
    : await runner.run(inputs, { policy: neverExit(), trace: true });
  const { atExit, full } = runner.costs(model.bucket(inputs));
  const E = model.exitBlocks.length;
  const samples = res.samples.map((s, i): TraceSample => {
    const t = s.trace;
    if (!t || t.maxProb.length !== E) throw new Error(`internal: sample ${i} has no full trace`);
    const out: TraceSample = {
      maxProb: t.maxProb.slice(),
      entropy: t.entropy.slice(),
      margin: t.margin.slice(),
      argmax: t.argmax.slice(),
      gate: t.gate.slice(),
      similarity: t.similarity.slice(),
      finalPrediction: s.prediction,
    };
    if (labels) out.label = labels[i];
    if (recorder) out.logits = recorder.logits[i];
    return out;
  });
  return {
    numExits: E,
    numClasses: model.numClasses,
    numBlocks: model.numBlocks,
    exitBlocks: model.exitBlocks.slice(),
    costFractions: atExit.map((f) => f / full),
    samples,
  };
}

/** Checks a trace's shape; throws a ValidationError saying what is wrong and where. */
export function checkTrace(trace: Trace): void {
  const E = trace.numExits;
  if (!Number.isInteger(E) || E < 1) throw new ValidationError(`trace: numExits must be an integer ≥ 1, got ${E}`);
  if (trace.exitBlocks.length !== E)
    throw new ValidationError(`trace: exitBlocks has ${trace.exitBlocks.length} entries for ${E} exits`);
  if (trace.costFractions.length !== E)
    throw new ValidationError(`trace: costFractions has ${trace.costFractions.length} entries for ${E} exits`);
  if (trace.samples.length === 0) throw new ValidationError('trace: no samples');
  trace.samples.forEach((s, i) => {
    for (const k of ['maxProb', 'entropy', 'margin', 'argmax', 'gate', 'similarity'] as const) {
      if (!s[k] || s[k].length < E)
        throw new ValidationError(
          `trace: sample ${i} has ${s[k]?.length ?? 0} '${k}' values for ${E} exits (record it with a never-exit policy)`,
        );
    }
    const withLogits = Boolean(trace.samples[0].logits);
    if (Boolean(s.logits) !== withLogits)
      throw new ValidationError(
        `trace: sample ${i} ${s.logits ? 'has' : 'has no'} logits, sample 0 ${withLogits ? 'has' : 'has none'}: logits are recorded for every sample or none`,
      );
    if (s.logits && (s.logits.length !== E || s.logits.some((z) => z.length !== trace.numClasses)))
      throw new ValidationError(
        `trace: sample ${i} has logits of shape [${s.logits.map((z) => z.length)}]; expected ${E} exits × ${trace.numClasses} classes`,
      );
  });
}

/** A subset of a trace's samples (for calibration / held-out splits). */
export function subsetTrace(trace: Trace, indices: readonly number[]): Trace {
  return { ...trace, samples: indices.map((i) => trace.samples[i]) };
}
