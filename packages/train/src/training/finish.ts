// After training: the exit rules' accuracy/compute trade-off on the held-out split and the model card.
import { confidencePolicy, gatePolicy, type PolicyPoint, qExitPolicy } from './evaluate.js';
import { countParameters, writeModelCard } from './model-card.js';
import { formatDuration } from './progress.js';
import { exitCostFractions } from './recipes.js';
import { fmtEpochs, type TrainResult, type TrainRun } from './trainer.js';

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

/** The epochs of a run as the model card says them: planned, or what ran when it stopped early, and why. */
export function epochsText(
  run: Pick<TrainRun, 'epochs' | 'maxSteps' | 'timeBudgetSeconds'>,
  result: Pick<TrainResult, 'epochsRun' | 'stopped'>,
): string {
  const planned = Array.isArray(run.epochs) ? run.epochs : result.epochsRun.map(() => run.epochs as number);
  const list = (xs: number[]) => xs.map(fmtEpochs).join(' + ');
  const unit = (xs: number[]) => (xs.length === 1 && xs[0] === 1 ? 'epoch' : 'epochs');
  if (!result.stopped) return `${list(planned)} ${unit(planned)}${planned.length > 1 ? ' (per stage)' : ''}`;
  const why =
    result.stopped === 'time-budget'
      ? `stopped at the time budget of ${formatDuration(run.timeBudgetSeconds ?? 0)}`
      : `stopped at --max-steps ${run.maxSteps}`;
  return `${list(result.epochsRun)} of ${list(planned)} planned ${unit(planned)} (${why})`;
}

export function finishRun(run: TrainRun, result: TrainResult, info: FinishInfo): PolicyPoint[] {
  const policies = policyPoints(result, info.thresholds);
  const b = run.batchSize;
  const notes = [...(info.notes ?? [])];
  if (result.stopped === 'time-budget')
    notes.unshift(
      `Training stopped at the time budget of ${formatDuration(run.timeBudgetSeconds ?? 0)} after ${result.state.step} steps, before the planned epochs; the learning-rate schedule was planned for all of them, so this model is not fully trained (the accuracy above is that of the model when it stopped). Resume it with --resume, or plan fewer epochs with --epochs.`,
    );
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
    training: `AdamW (warm-up + cosine decay), batch ${b}, peak learning rate ${JSON.stringify(run.lr)}, weight decay ${run.weightDecay ?? 0}, ${epochsText(run, result)}, ${result.state.step} steps${run.initFrom ? `, initialised from ${run.initFrom}` : ''}`,
    notes,
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
