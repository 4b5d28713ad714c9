// The training loop: stages of a recipe, seeded shuffling and dropout, AdamW with warm-up + cosine decay,
// progress with loss/accuracy/ETA, resumable checkpoints in a work directory, per-epoch evaluation of every
// exit on the held-out split, and export to an Offramp model directory (config.json + model.safetensors,
// plus curves.json / curves.csv) that the engine loads unchanged.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ConfigEnvelope, type ModelConfig, modelTensorSpec } from '@offramp/core';
import { saveModelDir } from '@offramp/core/node';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type TrainBackend } from './backend.js';
import {
  type CurvePoint,
  type EvalPoint,
  hasCheckpoint,
  loadCheckpoint,
  type NamedTensors,
  saveCheckpoint,
  type TrainState,
} from './checkpoint.js';
import {
  type CachedFeatures,
  cacheFeatures,
  type ExitRecords,
  evaluateHeads,
  evaluateModel,
  exitAccuracy,
  featureBatch,
} from './evaluate.js';
import { disposeBatch, type Examples, makeBatch, mixSeed, permutation } from './examples.js';
import {
  createTfModel,
  exportWeights,
  type HeadOutput,
  initialWeights,
  type ModelOptions,
  type TfModel,
} from './models.js';
import { AdamW, scheduledLr } from './optimizer.js';
import { formatDuration, Progress } from './progress.js';
import { createRecipe, type Recipe, type RecipeName, type RecipeOptions } from './recipes.js';

export interface DatasetInfo {
  /** e.g. 'fashion-mnist' */
  name: string;
  /** How train and evaluation rows were chosen, e.g. 'train 60,000 / test 10,000 (official split)'. */
  split: string;
  /** Preprocessing, e.g. the tokenizer and length. */
  preprocessing?: string;
}

export interface TrainRun {
  /** Run name (log lines, default work directory). */
  name: string;
  config: ModelConfig;
  recipe: RecipeName;
  recipeOptions?: RecipeOptions;
  train: Examples;
  /** Held-out split: evaluated after every epoch; its per-exit accuracy goes into the meta. */
  test: Examples;
  dataset: DatasetInfo;
  /** Epochs per stage (one number: every stage). */
  epochs: number | number[];
  batchSize: number;
  /** Peak learning rate per stage (one number: every stage). */
  lr: number | number[];
  weightDecay?: number;
  /** Warm-up as a fraction of a stage's steps (default 0.05). */
  warmup?: number;
  clipNorm?: number;
  /** Encoder dropout in training (default 0.1). */
  dropout?: number;
  seed: number;
  /** Where the finished model goes (config.json, model.safetensors, curves). */
  outDir: string;
  /** Where resumable state goes. */
  workDir: string;
  /** Continue from the work directory's state (must be the same run). */
  resume?: boolean;
  /** Save resumable state every this many steps (default 200) and at every epoch end. */
  checkpointEvery?: number;
  /** Start from these weights (engine layouts; tensors the config adds, e.g. gate heads, are initialised). */
  initWeights?: Map<string, { shape: number[]; data: Float32Array | ArrayLike<number> }>;
  /** Description of initWeights for the meta, e.g. 'checkpoints/imdb-encoder'. */
  initFrom?: string;
  backend?: TrainBackend;
  /** Stop each stage after this many steps (smoke runs). */
  maxSteps?: number;
  /**
   * Wall-clock budget of this call, in seconds: training stops cleanly once it is spent (the held-out evaluation
   * and the export follow), and the result says so. The learning-rate schedule stays planned for all epochs.
   */
  timeBudgetSeconds?: number;
  /** Batch size for evaluation and feature caching (default 2·batchSize). */
  evalBatchSize?: number;
  /** Extra fields for config.json's meta. */
  meta?: Record<string, unknown>;
  /** Training-time model options (batch norm for the CNN). */
  modelOptions?: ModelOptions;
  /** Also export the model after every epoch (the demos get a usable model early). */
  exportEveryEpoch?: boolean;
  /**
   * Head inputs of `train` and `test` computed beforehand by this model's backbone, for stages with a frozen
   * backbone (saves recomputing them, e.g. when several head recipes share one backbone).
   */
  cachedFeatures?: { train: CachedFeatures; test: CachedFeatures };
  /** Keep the head inputs of the held-out split from the last evaluation (in the result's records). */
  keepHeldoutFeatures?: boolean;
  progress?: Progress;
}

export interface TrainResult {
  model: TfModel;
  /** Epochs trained per stage (fractional when a stage stopped inside an epoch). */
  epochsRun: number[];
  /** Why training stopped before the planned epochs, if it did. */
  stopped?: 'max-steps' | 'time-budget';
  recipe: Recipe;
  /** Per-exit accuracy on the held-out split. */
  accuracy: number[];
  records: ExitRecords;
  seconds: number;
  state: TrainState;
  backend: TrainBackend;
  configEnvelope: ConfigEnvelope;
}

const perStage = <T>(v: T | T[], stages: number, what: string): T[] => {
  if (!Array.isArray(v)) return new Array(stages).fill(v);
  if (v.length !== stages) throw new Error(`${what} has ${v.length} entries; the recipe has ${stages} stages`);
  return v;
};

function fingerprint(run: TrainRun): string {
  const h = createHash('sha256');
  h.update(
    JSON.stringify({
      config: run.config,
      recipe: run.recipe,
      recipeOptions: run.recipeOptions ?? {},
      n: [run.train.n, run.test.n],
      dataset: run.dataset,
      epochs: run.epochs,
      batchSize: run.batchSize,
      lr: run.lr,
      weightDecay: run.weightDecay,
      warmup: run.warmup,
      clipNorm: run.clipNorm,
      dropout: run.dropout,
      seed: run.seed,
      initFrom: run.initFrom,
      maxSteps: run.maxSteps,
      modelOptions: run.modelOptions ?? {},
    }),
  );
  return h.digest('hex').slice(0, 16);
}

async function readNamed(vars: Map<string, tf.Variable>): Promise<NamedTensors> {
  const out: NamedTensors = new Map();
  for (const [k, v] of vars) out.set(k, { shape: v.shape, data: Float32Array.from((await v.data()) as Float32Array) });
  return out;
}

function fmtAcc(a: number[]): string {
  return a.map((x) => (100 * x).toFixed(2)).join(' / ');
}

/** Epochs as a short number: 3, 0.4, 2.25. */
export function fmtEpochs(x: number): string {
  return Number.isInteger(x) ? String(x) : String(Number(x.toFixed(x < 1 ? 2 : 1)));
}

/** Trains, evaluates and exports one model. */
export async function train(run: TrainRun): Promise<TrainResult> {
  const callStart = performance.now();
  const budget = run.timeBudgetSeconds;
  if (budget !== undefined && !(budget > 0)) throw new Error(`timeBudgetSeconds must be > 0, got ${budget}`);
  const outOfTime = () => budget !== undefined && (performance.now() - callStart) / 1000 >= budget;
  let stopped: TrainResult['stopped'];
  const progress = run.progress ?? new Progress();
  const backend = await initBackend(run.backend ?? 'webgpu', (l) => progress.line(l));
  const seed = run.seed >>> 0;
  const fp = fingerprint(run);

  // model: seeded initialisation, optionally overwritten by given weights
  let weights: Map<string, { shape: number[]; data: Float32Array | ArrayLike<number> }> = initialWeights(run.config, {
    seed,
  });
  if (run.initWeights) {
    const expected = new Set(modelTensorSpec(run.config).keys());
    for (const [k, v] of run.initWeights) if (expected.has(k)) weights.set(k, v);
  }
  let resumed = false;
  let state: TrainState = {
    fingerprint: fp,
    stage: 0,
    epoch: 0,
    stepInEpoch: 0,
    step: 0,
    stageStep: 0,
    optimizerT: 0,
    seconds: 0,
    curves: [],
    evals: [],
    done: false,
  };
  let saved: Record<string, NamedTensors> | undefined;
  if (run.resume && hasCheckpoint(run.workDir)) {
    const ck = loadCheckpoint(run.workDir, ['params', 'train', 'extra', 'optimizer']);
    if (ck.state.fingerprint !== fp) {
      throw new Error(
        `--resume: the state in ${run.workDir} belongs to different settings (fingerprint ${ck.state.fingerprint}, this run ${fp}); rerun without --resume to start over, or restore the original settings`,
      );
    }
    state = ck.state;
    saved = ck.tensors;
    weights = new Map([...saved.params, ...saved.train]);
    resumed = true;
    progress.line(
      state.done
        ? `${run.name}: the saved run is finished (${state.step} steps); exporting it again`
        : `${run.name}: resuming at stage ${state.stage + 1}, epoch ${state.epoch + 1}, step ${state.step} (${formatDuration(state.seconds)} trained so far)`,
    );
  }

  const model = createTfModel(run.config, { weights }, run.modelOptions);
  const recipe = createRecipe(run.recipe, model, run.recipeOptions, seed);
  if (saved) for (const [k, v] of saved.extra) recipe.extraParams.get(k)?.assign(tf.tensor(v.data, v.shape));
  const stages = recipe.stages;
  const epochs = perStage(run.epochs, stages.length, 'epochs');
  const lrs = perStage(run.lr, stages.length, 'lr');
  const B = run.batchSize;
  const evalB = run.evalBatchSize ?? 2 * B;
  const checkpointEvery = run.checkpointEvery ?? 200;
  progress.line(
    `${run.name}: ${run.config.architecture}, recipe ${run.recipe} (${stages.map((s) => s.name).join(' → ')}), ${run.train.n} train / ${run.test.n} held-out, batch ${B}, seed ${seed}, backend ${backend}${resumed ? ', resumed' : ''}`,
  );

  let optimizer = new AdamW({
    lr: lrs[state.stage] ?? 0,
    weightDecay: run.weightDecay ?? 0,
    clipNorm: run.clipNorm ?? 0,
  });
  if (saved?.optimizer.size) optimizer.load(state.optimizerT, saved.optimizer);
  let segmentStart = performance.now();
  const elapsed = () => state.seconds + (performance.now() - segmentStart) / 1000;

  const checkpoint = async () => {
    state.seconds = elapsed();
    segmentStart = performance.now();
    state.optimizerT = optimizer.t;
    saveCheckpoint(run.workDir, state, {
      params: await exportWeights(model, { foldBatchNorm: false }),
      train: await readNamed(new Map([...model.trainParams, ...model.buffers])),
      extra: await readNamed(recipe.extraParams),
      optimizer: await optimizer.state(),
    });
  };

  let lastRecords: ExitRecords | undefined;
  const epochsRun: number[] = stages.map((_, i) => (i < state.stage ? epochs[i] : 0));
  for (; state.stage < stages.length; state.stage++, state.epoch = 0, state.stepInEpoch = 0, state.stageStep = 0) {
    const s = state.stage;
    const stage = stages[s];
    const trainVars = new Map<string, tf.Variable>();
    for (const [k, v] of [...model.params, ...model.trainParams]) if (stage.trainable(k)) trainVars.set(k, v);
    for (const [k, v] of recipe.extraParams) trainVars.set(k, v);
    const stepsPerEpoch = Math.floor(run.train.n / B);
    if (stepsPerEpoch < 1) throw new Error(`${run.train.n} training rows cannot fill one batch of ${B}`);
    const planned = epochs[s] * stepsPerEpoch;
    const total = Math.min(planned, run.maxSteps ?? Number.POSITIVE_INFINITY);
    const warmup = Math.max(1, Math.round((run.warmup ?? 0.05) * total));
    progress.line(
      `stage ${s + 1}/${stages.length} '${stage.name}': ${epochs[s]} epochs × ${stepsPerEpoch} steps, ${trainVars.size} trainable tensors, lr ${lrs[s]}`,
    );

    let cache: { train: CachedFeatures; test: CachedFeatures } | undefined;
    if (stage.frozenBackbone && run.cachedFeatures) cache = run.cachedFeatures;
    else if (stage.frozenBackbone && state.stageStep < total) {
      const t0 = performance.now();
      cache = {
        train: await cacheFeatures(model, run.train, evalB, (d) =>
          progress.step('caching head inputs (train)', d, run.train.n, 0, {}),
        ),
        test: await cacheFeatures(model, run.test, evalB, (d) =>
          progress.step('caching head inputs (held-out)', d, run.test.n, 0, {}),
        ),
      };
      progress.line(`cached the frozen backbone's head inputs in ${formatDuration((performance.now() - t0) / 1000)}`);
    }

    let runLoss = 0;
    let runAcc = 0;
    let runN = 0;
    let rateT0 = performance.now();
    let rateSteps = 0;
    const curveEvery = Math.max(1, Math.min(50, Math.floor(stepsPerEpoch / 4)));
    // time per epoch, estimated from a few steps after the first (which compiles the kernels)
    let estimateT0 = 0;
    let estimateFrom = -1;
    let estimated = false;
    for (
      ;
      state.epoch < epochs[s] && state.stageStep < total && stopped !== 'time-budget';
      state.epoch++, state.stepInEpoch = 0
    ) {
      const perm = permutation(run.train.n, mixSeed(seed, s, state.epoch));
      for (; state.stepInEpoch < stepsPerEpoch && state.stageStep < total; state.stepInEpoch++) {
        if (outOfTime() && state.stageStep > 0) {
          stopped = 'time-budget';
          progress.line(
            `${run.name}: the time budget of ${formatDuration(budget!)} is spent after ${state.stageStep} step${state.stageStep === 1 ? '' : 's'} of stage '${stage.name}' (${fmtEpochs(state.stageStep / stepsPerEpoch)} of ${epochs[s]} epochs); stopping`,
          );
          break;
        }
        const idx = perm.subarray(state.stepInEpoch * B, (state.stepInEpoch + 1) * B);
        const lr = scheduledLr(lrs[s], state.stageStep, { warmup, total });
        const stepSeed = mixSeed(seed, 0x57e9, state.step);
        const batch = cache ? undefined : makeBatch(run.train, idx);
        const labels = batch
          ? batch.labels
          : tf.tensor1d(
              Int32Array.from(idx, (r) => run.train.labels[r]),
              'int32',
            );
        const feats = cache ? featureBatch(cache.train, idx) : undefined;
        let acc: tf.Scalar | undefined;
        const { value, grads } = tf.variableGrads(() => {
          let heads: HeadOutput[];
          if (feats) heads = feats.map((f, j) => model.head(j, f, { training: true }));
          else
            heads = model.forward(batch!.input, { training: true, dropout: run.dropout ?? 0.1, seed: stepSeed }).heads;
          acc = tf.keep(
            tf.mean(tf.cast(tf.equal(tf.argMax(heads[heads.length - 1].logits, -1), labels), 'float32')) as tf.Scalar,
          );
          return recipe.loss(s, heads, labels, stepSeed).loss;
        }, [...trainVars.values()]);
        // variableGrads keys gradients by tfjs variable name; the optimizer by parameter name
        const named = new Map<string, tf.Tensor>();
        for (const [k, v] of trainVars) if (grads[v.name]) named.set(k, grads[v.name]);
        const norm = optimizer.apply(trainVars, named, lr);
        model.commitStats();
        const [lossV] = (await value.data()) as Float32Array;
        const [accV] = (await acc!.data()) as Float32Array;
        tf.dispose([value, norm, acc!, ...Object.values(grads)]);
        if (batch) disposeBatch(batch);
        else labels.dispose();
        if (feats) tf.dispose(feats);
        if (!Number.isFinite(lossV))
          throw new Error(
            `${run.name}: the loss became ${lossV} at step ${state.step} (stage '${stage.name}'); lower the learning rate`,
          );
        state.step++;
        state.stageStep++;
        if (estimateFrom < 0) {
          estimateFrom = state.stageStep;
          estimateT0 = performance.now();
        } else if (!estimated && (state.stageStep - estimateFrom >= 3 || state.stageStep >= total)) {
          estimated = true;
          const perStep = (performance.now() - estimateT0) / 1000 / (state.stageStep - estimateFrom);
          const perEpoch = perStep * stepsPerEpoch;
          const left = perStep * (total - state.stageStep);
          let fit = '';
          if (budget !== undefined) {
            const remaining = budget - (performance.now() - callStart) / 1000;
            const more = Math.max(0, remaining / perEpoch);
            fit =
              remaining < left
                ? `; the ${formatDuration(budget)} budget stops it after about ${fmtEpochs(Math.floor((state.stageStep / stepsPerEpoch + more) * 10) / 10)} epochs (pass --epochs to plan the schedule for what fits)`
                : `; within the ${formatDuration(budget)} budget`;
          }
          progress.line(
            `${run.name}: about ${formatDuration(perEpoch)} per epoch (${stepsPerEpoch} steps of ${B}, ${perStep.toFixed(2)} s a step, evaluation not counted); ${fmtEpochs(total / stepsPerEpoch)} epochs need about ${formatDuration(left)} more${fit}`,
          );
        }
        runLoss += lossV;
        runAcc += accV;
        runN++;
        rateSteps++;
        const rate = rateSteps / ((performance.now() - rateT0) / 1000);
        progress.step(`${stage.name} ep ${state.epoch + 1}/${epochs[s]}`, state.stageStep, total, rate, {
          loss: (runLoss / runN).toFixed(4),
          acc: `${((100 * runAcc) / runN).toFixed(1)}%`,
          lr: lr.toExponential(2),
        });
        if (runN >= curveEvery) {
          state.curves.push({
            step: state.step,
            stage: stage.name,
            epoch: state.epoch,
            loss: runLoss / runN,
            acc: runAcc / runN,
            lr,
            seconds: elapsed(),
          } satisfies CurvePoint);
          runLoss = 0;
          runAcc = 0;
          runN = 0;
        }
        if (state.step % checkpointEvery === 0) {
          state.stepInEpoch++;
          await checkpoint();
          state.stepInEpoch--;
          rateT0 = performance.now();
          rateSteps = 0;
        }
      }
      // end of epoch (or of the step budget): evaluate every exit on the held-out split
      const records = cache
        ? await evaluateHeads(model, cache.test, evalB)
        : await evaluateModel(model, run.test, evalB, { features: run.keepHeldoutFeatures });
      lastRecords = records;
      const accuracy = exitAccuracy(records);
      state.evals.push({
        step: state.step,
        stage: stage.name,
        epoch: state.epoch + 1,
        accuracy,
        seconds: elapsed(),
      } satisfies EvalPoint);
      const whole = state.stepInEpoch >= stepsPerEpoch;
      progress.line(
        `${run.name} stage '${stage.name}' ${whole ? `epoch ${state.epoch + 1}/${epochs[s]}` : `after ${state.stageStep} step${state.stageStep === 1 ? '' : 's'} (${fmtEpochs(state.stageStep / stepsPerEpoch)} of ${epochs[s]} epochs)`}: held-out accuracy per exit ${fmtAcc(accuracy)} % (${formatDuration(elapsed())} so far)`,
      );
      if (stopped === 'time-budget') {
        // resumable inside this epoch: --resume continues with its next batch
        await checkpoint();
        break;
      }
      if (run.exportEveryEpoch) {
        state.seconds = elapsed();
        segmentStart = performance.now();
        state.epoch++;
        await exportRun(run, model, recipe, state, accuracy, backend);
        state.epoch--;
      }
      state.epoch++;
      state.stepInEpoch = 0;
      await checkpoint();
      state.epoch--;
      rateT0 = performance.now();
      rateSteps = 0;
    }
    epochsRun[s] = state.stageStep / stepsPerEpoch;
    if (stopped === 'time-budget') break;
    if (state.stageStep < planned) stopped = 'max-steps';
    if (state.stage + 1 < stages.length) {
      optimizer.dispose();
      optimizer = new AdamW({ lr: lrs[s + 1], weightDecay: run.weightDecay ?? 0, clipNorm: run.clipNorm ?? 0 });
    }
  }
  // stopped at the budget: the state stays resumable (--resume continues where it stopped)
  if (stopped !== 'time-budget') state.done = true;
  await checkpoint();

  const records = lastRecords ?? (await evaluateModel(model, run.test, evalB, { features: run.keepHeldoutFeatures }));
  const accuracy = exitAccuracy(records);
  const seconds = state.seconds;
  const envelope = await exportRun(run, model, recipe, state, accuracy, backend, { epochsRun, stopped });
  progress.line(
    `${run.name}: ${stopped === 'time-budget' ? 'stopped at the time budget' : 'done'} after ${state.step} step${state.step === 1 ? '' : 's'} (${epochsRun.map(fmtEpochs).join(' + ')} epochs) in ${formatDuration(seconds)}; held-out accuracy per exit ${fmtAcc(accuracy)} %; wrote ${run.outDir}`,
  );
  optimizer.dispose();
  return { model, recipe, accuracy, records, seconds, state, backend, configEnvelope: envelope, epochsRun, stopped };
}

/** Writes the model directory (config.json with meta, model.safetensors) and the curves. */
async function exportRun(
  run: TrainRun,
  model: TfModel,
  recipe: Recipe,
  state: TrainState,
  accuracy: number[],
  backend: TrainBackend,
  end?: { epochsRun: number[]; stopped?: TrainResult['stopped'] },
): Promise<ConfigEnvelope> {
  const seed = run.seed >>> 0;
  const B = run.batchSize;
  const seconds = state.seconds;
  const envelope: ConfigEnvelope = {
    offramp_format: 1,
    model: run.config,
    meta: {
      name: run.name,
      dataset: run.dataset.name,
      split: run.dataset.split,
      ...(run.dataset.preprocessing ? { preprocessing: run.dataset.preprocessing } : {}),
      recipe: run.recipe,
      recipe_settings: recipe.settings,
      seed,
      ...(run.initFrom ? { init_from: run.initFrom } : {}),
      training: {
        epochs: run.epochs,
        batch_size: B,
        lr: run.lr,
        weight_decay: run.weightDecay ?? 0,
        warmup_fraction: run.warmup ?? 0.05,
        clip_norm: run.clipNorm ?? 0,
        dropout: run.config.architecture === 'encoder_classifier' ? (run.dropout ?? 0.1) : 0,
        optimizer: 'AdamW, warm-up + cosine decay',
        ...(run.modelOptions?.batchNorm
          ? { batch_norm: 'after every convolution in training; folded into the convolutions at export' }
          : {}),
        steps: state.step,
        ...(end ? { epochs_run: end.epochsRun.map((e) => Number(e.toFixed(3))) } : {}),
        ...(end?.stopped ? { stopped: end.stopped } : {}),
        backend,
        seconds: Math.round(seconds),
      },
      metrics: { heldout_accuracy_per_exit: accuracy.map((a) => Number(a.toFixed(4))), heldout_examples: run.test.n },
      ...(state.done || end
        ? {}
        : { unfinished: `exported after epoch ${state.epoch} of stage ${state.stage + 1}; training continues` }),
      ...run.meta,
    },
  };
  await saveModelDir(run.outDir, envelope, await exportWeights(model), { metadata: { producer: '@offramp/train' } });
  writeCurves(run.outDir, state);
  return envelope;
}

/** curves.json (training points and evaluations) and curves.csv (training points) in `dir`. */
export function writeCurves(dir: string, state: TrainState): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'curves.json'), `${JSON.stringify({ train: state.curves, eval: state.evals }, null, 1)}\n`);
  const rows = ['step,stage,epoch,loss,acc,lr,seconds'];
  for (const c of state.curves)
    rows.push(
      [c.step, c.stage, c.epoch, c.loss.toFixed(6), c.acc.toFixed(4), c.lr.toExponential(4), c.seconds.toFixed(1)].join(
        ',',
      ),
    );
  writeFileSync(join(dir, 'curves.csv'), `${rows.join('\n')}\n`);
}
