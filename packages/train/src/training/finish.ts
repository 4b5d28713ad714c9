// After training: the exit rules' accuracy/compute trade-off on the held-out split and the model card.
import { confidencePolicy, gatePolicy, type PolicyPoint, qExitPolicy } from './evaluate.js';
import { countParameters, writeModelCard } from './model-card.js';
import { exitCostFractions } from './recipes.js';
import type { TrainResult, TrainRun } from './trainer.js';

export interface FinishInfo {
  summary: string;
  command: string;
  recipeNotes?: string;
  notes?: string[];
  /** Files in the checkpoint folder besides config.json and model.safetensors. */
  extraFiles?: string[];
  /** Confidence thresholds to report (default 0.9, 0.95, 0.99). */
  thresholds?: number[];
}

export function policyPoints(result: TrainResult, thresholds = [0.9, 0.95, 0.99]): PolicyPoint[] {
  const costs = exitCostFractions(result.model.config);
  const out: PolicyPoint[] = thresholds.map((t) => confidencePolicy(result.records, costs, t));
  if (result.records.gate) {
    out.push(qExitPolicy(result.records, costs, 0.5));
    out.push(gatePolicy(result.records, costs, 0.5));
  }
  return out;
}

export function finishRun(run: TrainRun, result: TrainResult, info: FinishInfo): PolicyPoint[] {
  const policies = policyPoints(result, info.thresholds);
  const b = run.batchSize;
  writeModelCard(run.outDir, {
    name: run.name,
    summary: info.summary,
    config: run.config,
    parameters: countParameters(run.config),
    dataset: run.dataset.name,
    split: run.dataset.split,
    preprocessing: run.dataset.preprocessing,
    recipe: run.recipe,
    recipeNotes: info.recipeNotes,
    seed: run.seed,
    command: info.command,
    seconds: result.seconds,
    backend: result.backend,
    accuracy: result.accuracy,
    exitCosts: exitCostFractions(run.config),
    policies,
    training: `AdamW (warm-up + cosine decay), batch ${b}, peak learning rate ${JSON.stringify(run.lr)}, weight decay ${run.weightDecay ?? 0}, epochs ${JSON.stringify(run.epochs)}, ${result.state.step} steps${run.initFrom ? `, initialised from ${run.initFrom}` : ''}`,
    notes: info.notes,
    files: [
      'config.json',
      'model.safetensors',
      ...(info.extraFiles ?? []),
      'curves.json',
      'curves.csv',
      'MODEL_CARD.md',
    ],
  });
  return policies;
}
