// A trace: every sample's signals at every exit, recorded once from a never-exit run (trace = true), plus
// what is needed to replay the engine offline (exit blocks, cost fractions). Calibration reads only this.
import { type ModelInput, neverExit, type Runner, ValidationError } from '@offramp/core';
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
}

export interface Trace extends ModelShape {
  samples: TraceSample[];
}

/** Runs `inputs` to full depth with trace = true and records the trace (labels optional, one per input). */
export async function recordTrace(runner: Runner, inputs: ModelInput, labels?: ArrayLike<number>): Promise<Trace> {
  const model = runner.model;
  const n = model.batchSize(inputs);
  if (labels && labels.length !== n)
    throw new ValidationError(`recordTrace: ${labels.length} labels for ${n} inputs: give one label per input`);
  const res = await runner.run(inputs, { policy: neverExit(), trace: true });
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
  });
}

/** A subset of a trace's samples (for calibration / held-out splits). */
export function subsetTrace(trace: Trace, indices: readonly number[]): Trace {
  return { ...trace, samples: indices.map((i) => trace.samples[i]) };
}
