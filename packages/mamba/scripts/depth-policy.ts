// An exit policy whose state is a Mamba recurrence over depth: at each exit a small Mamba block (the exit
// classifier of src/exit-classifier.ts, trained with the same code) reads that exit's signals — max prob,
// entropy / ln C, margin, whether the argmax changed since the previous exit, the cost fraction — as one
// step of a sequence over the sample's exits, and the sample leaves when σ(logit) ≥ threshold.
// Host form only. Also: per-exit features and distillation targets from a @offramp/policies trace.
import type { ExitPolicy } from '@offramp/core';
import type { Trace } from '@offramp/policies';
import type { ExitClassifierConfig } from '../src/exit-classifier.js';
import {
  type ClassifierParams,
  classifierLogits,
  type ExitTargets,
  trainExitClassifiers,
} from '../src/train/classifier-train.js';

/** Features per exit step (the last is a constant 1, so the classifier's RMSNorm keeps their scale). */
export const DEPTH_FEATURES = 6;

/** One exit step's features from its signals and the previous exit's argmax (−1 at the first exit). */
export function depthFeatures(
  maxProb: number,
  entropy: number,
  margin: number,
  argmax: number,
  prevArgmax: number,
  costFraction: number,
  numClasses: number,
): number[] {
  const changed = prevArgmax < 0 ? 0 : argmax === prevArgmax ? 0 : 1;
  return [maxProb, entropy / Math.log(Math.max(2, numClasses)), margin, changed, costFraction, 1];
}

/** Distillation data over depth: one sequence of numExits steps per sample; target = exit argmax equals the final one. */
export function traceToDepthTargets(trace: Trace): ExitTargets {
  const E = trace.numExits;
  const F = DEPTH_FEATURES;
  const n = trace.samples.length;
  const hidden = new Float64Array(n * E * F);
  const labels = new Uint8Array(n * E);
  trace.samples.forEach((s, i) => {
    for (let e = 0; e < E; e++) {
      const f = depthFeatures(
        s.maxProb[e],
        s.entropy[e],
        s.margin[e],
        s.argmax[e],
        e > 0 ? s.argmax[e - 1] : -1,
        trace.costFractions[e],
        trace.numClasses,
      );
      hidden.set(f, (i * E + e) * F);
      labels[i * E + e] = s.argmax[e] === s.finalPrediction ? 1 : 0;
    }
  });
  return { Bt: n, T: E, hidden: [hidden], labels: [labels] };
}

/** The classifier that scans over depth ('mamba') or reads each exit alone ('ffn', the control). */
export function depthClassifierConfig(kind: 'mamba' | 'ffn'): ExitClassifierConfig {
  return kind === 'mamba'
    ? { kind, exits: [0], hiddenSize: DEPTH_FEATURES, inner: 16, stateSize: 4, rank: 2, convKernel: 2, eps: 1e-5 }
    : { kind, exits: [0], hiddenSize: DEPTH_FEATURES, hidden: 16, eps: 1e-5 };
}

export function trainDepthClassifier(
  kind: 'mamba' | 'ffn',
  trace: Trace,
  o: { steps: number; batch: number; seed: number; log?: (s: string) => void },
): { config: ExitClassifierConfig; params: ClassifierParams; losses: number[] } {
  const config = depthClassifierConfig(kind);
  const { params, losses } = trainExitClassifiers(config, traceToDepthTargets(trace), o);
  return { config, params, losses };
}

interface DepthState {
  /** Per sample id: the features of the exits it has passed. */
  history: Map<number, number[][]>;
  prevArgmax: Map<number, number>;
}

/**
 * The policy. At exit e each live row appends its features and the classifier runs over the row's e + 1
 * steps (the block is causal, so the last output is the recurrence's output after step e; a device form
 * would keep the block's conv and SSM state per row instead of the history).
 */
export function depthScanPolicy(
  config: ExitClassifierConfig,
  params: ClassifierParams,
  threshold: number,
): ExitPolicy<DepthState> {
  if (!(threshold >= 0 && threshold <= 1))
    throw new Error(`depthScanPolicy: threshold must be in [0, 1], got ${threshold}`);
  if (config.exits.length !== 1 || config.hiddenSize !== DEPTH_FEATURES)
    throw new Error(
      `depthScanPolicy: needs one classifier of width ${DEPTH_FEATURES} (depthClassifierConfig), got ${config.exits.length} of width ${config.hiddenSize}`,
    );
  return {
    name: `depth-scan-${config.kind}`,
    needs: ['maxProb', 'entropy', 'margin', 'argmax'],
    options: { threshold, kind: config.kind },
    init: () => ({ history: new Map(), prevArgmax: new Map() }),
    decide: (ctx, s, state) => {
      const n = s.count;
      const T = ctx.exitIndex + 1;
      const F = DEPTH_FEATURES;
      const h = new Float64Array(n * T * F);
      for (let r = 0; r < n; r++) {
        const id = s.sampleIds[r];
        const hist = state.history.get(id) ?? [];
        hist.push(
          depthFeatures(
            s.maxProb[r],
            s.entropy[r],
            s.margin[r],
            s.argmax[r],
            state.prevArgmax.get(id) ?? -1,
            ctx.costFraction,
            ctx.numClasses,
          ),
        );
        if (hist.length !== T)
          throw new Error(
            `depthScanPolicy: sample ${id} has ${hist.length} steps at exit ${ctx.exitIndex}; use a fresh state per request`,
          );
        state.history.set(id, hist);
        state.prevArgmax.set(id, s.argmax[r]);
        hist.forEach((f, t) => {
          h.set(f, (r * T + t) * F);
        });
      }
      const z = classifierLogits(config, params, { Bt: n, T, hidden: [h], labels: [] })[0];
      const out = new Uint8Array(n);
      for (let r = 0; r < n; r++) out[r] = 1 / (1 + Math.exp(-z[r * T + T - 1])) >= threshold ? 1 : 0;
      return out;
    },
  };
}
