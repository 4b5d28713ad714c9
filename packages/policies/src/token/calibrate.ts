// Risk-controlled calibration of token-level exits ("consistent with the full model with probability
// ≥ 1 − δ", CALM's use of Learn-then-Test): held-out text is scored teacher-forced at every exit, each
// scored position becomes a trace sample whose "full prediction" is the last exit's argmax, and the existing
// calibrateRisk tests the policy's threshold grid, most conservative first, against H0: risk > ε, where the
// risk is the fraction of tokens whose exit argmax differs from the full model's.
import { type GenerationModel, type GenerationScore, ValidationError } from '@offramp/core';
import { calibrateRisk, type RiskCalibration, type RiskOptions } from '../calibration/risk.js';
import type { Trace, TraceSample } from '../calibration/trace.js';
import { tokenCostFractions } from './adapter.js';

/** A trace of token positions from a teacher-forced score (one sample per scored position). */
export function traceFromScore(
  model: Pick<GenerationModel, 'numLayers' | 'exits' | 'vocabSize'>,
  score: GenerationScore,
): Trace {
  const E = model.exits.length;
  if (score.signals.length !== E)
    throw new ValidationError(`token trace: the score has ${score.signals.length} exits, the model ${E}`);
  const samples: TraceSample[] = [];
  for (let i = 0; i < score.count; i++) {
    const at = (k: 'maxProb' | 'entropy' | 'margin' | 'argmax' | 'gate' | 'similarity') =>
      score.signals.map((s) => s[k][i]);
    const argmax = at('argmax');
    samples.push({
      maxProb: at('maxProb'),
      entropy: at('entropy'),
      margin: at('margin'),
      argmax,
      gate: at('gate'),
      similarity: at('similarity'),
      finalPrediction: argmax[E - 1],
    });
  }
  return {
    numExits: E,
    numClasses: model.vocabSize,
    numBlocks: model.numLayers,
    exitBlocks: model.exits,
    costFractions: tokenCostFractions(model),
    samples,
  };
}

/** Teacher-forced token trace of held-out sequences (each of length ≥ 2). */
export async function tokenTrace(model: GenerationModel, sequences: readonly (readonly number[])[]): Promise<Trace> {
  return traceFromScore(model, await model.score(sequences));
}

/**
 * Chooses a built-in threshold policy's threshold (confidence, entropy, margin, saturation, ...) so that
 * tokens disagree with the full model's argmax at most ε of the time with probability ≥ 1 − δ, by
 * Learn-then-Test on the trace's tokens. Tokens are treated as exchangeable draws, as CALM does.
 */
export function calibrateTokenPolicy(trace: Trace, policyName: string, options: RiskOptions): RiskCalibration {
  return calibrateRisk(trace, policyName, options);
}
