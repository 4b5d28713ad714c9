// Trains a small character-level Mamba LM with exits on five Jane Austen novels (Persuasion held out) with
// the hand-written float64 backward of src/train, and writes checkpoints/austen-mamba/: config.json (HF
// style), model.safetensors (HF names, tied head), char-tokenizer.json, train-log.json and MODEL_CARD.md.
// Usage: pnpm train:austen-mamba [--minutes 36] [--out DIR] [--seed 1] [--eval-windows N]
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32, writeSafetensors } from '@offramp/core';
import { CharTokenizer, loadAusten } from '@offramp/train';
import { AdamW, type AdamWConfig } from '../src/train/adamw.js';
import { hfConfig, lmToHf } from '../src/train/export.js';
import { initLm, type LmDims, lmParamList, lmStep, splitWindows, zeroGrads } from '../src/train/lm-grad.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.resolve(arg('out', path.join(here, '../../../checkpoints/austen-mamba')));
const minutes = Number(arg('minutes', '36'));
const seed = Number(arg('seed', '1'));
const evalWindows = Number(arg('eval-windows', '1000000000'));

const dims: LmDims = { vocab: 0, d: 64, layers: 6, D: 128, N: 8, R: 4, K: 4, eps: 1e-5 };
const EXITS = [3, 4, 5];
/** Depth-weighted exit losses (PABEE-style, normalised so the final exit weighs 1). */
const EXIT_WEIGHTS = EXITS.map((b) => (b + 1) / dims.layers);
const Bt = 16;
const T = 128;
const EVAL_WINDOW = 512;

const corpus = loadAusten();
const tok = CharTokenizer.fromCorpus(corpus.novels.map((n) => n.text));
dims.vocab = tok.vocabSize;
const trainIds = tok.encode(corpus.train.map((n) => n.text).join('\n\n\n'));
const heldIds = tok.encode(corpus.heldOut.text);

const adam: AdamWConfig = {
  lr: 3e-3,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  clip: 1,
  warmup: 50,
  totalSteps: 0, // the schedule follows the wall-clock budget, see below
  minFactor: 0.1,
};

const params = initLm(dims, seed);
const decays = (name: string) => /inProj|xProj|outProj|dtW/.test(name);
const opt = new AdamW(adam, decays);
const rand = mulberry32(seed * 7919 + 1);

function batch(): { inputs: Int32Array; targets: Int32Array } {
  const w = new Int32Array(Bt * (T + 1));
  for (let b = 0; b < Bt; b++) {
    const s = Math.floor(rand() * (trainIds.length - T - 1));
    w.set(trainIds.subarray(s, s + T + 1), b * (T + 1));
  }
  return splitWindows(w, Bt, T);
}

/** Held-out bits per character at each exit over `count` evenly spaced windows (each from a fresh state). */
function evalBpc(count: number, windowLen: number): { bpc: number[]; chars: number } {
  const n = Math.min(count, Math.floor((heldIds.length - 1) / windowLen));
  const stride = Math.floor((heldIds.length - 1) / n);
  const sums = EXITS.map(() => 0);
  const per = 8;
  let chars = 0;
  for (let s = 0; s < n; s += per) {
    const k = Math.min(per, n - s);
    const w = new Int32Array(k * (windowLen + 1));
    for (let b = 0; b < k; b++)
      w.set(heldIds.subarray((s + b) * stride, (s + b) * stride + windowLen + 1), b * (windowLen + 1));
    const { inputs, targets } = splitWindows(w, k, windowLen);
    const r = lmStep(params, dims, inputs, targets, k, windowLen, EXITS, EXIT_WEIGHTS);
    r.losses.forEach((l, j) => {
      sums[j] += l * k * windowLen;
    });
    chars += k * windowLen;
  }
  return { bpc: sums.map((s) => s / chars / Math.LN2), chars };
}

function save(meta: Record<string, unknown>): void {
  mkdirSync(outDir, { recursive: true });
  const tensors = lmToHf(params, dims);
  const bytes = writeSafetensors(tensors, { format: 'pt' });
  writeFileSync(path.join(outDir, 'model.safetensors.tmp'), bytes);
  renameSync(path.join(outDir, 'model.safetensors.tmp'), path.join(outDir, 'model.safetensors'));
  const config = hfConfig(dims, {
    offramp: { exits: EXITS, exit_loss_weights: EXIT_WEIGHTS, tokenizer: 'char-tokenizer.json' },
  });
  writeFileSync(path.join(outDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  tok.save(path.join(outDir, 'char-tokenizer.json'));
  writeFileSync(path.join(outDir, 'train-log.json'), `${JSON.stringify(meta, null, 1)}\n`);
}

const budgetMs = minutes * 60_000;
const t0 = performance.now();
const log: Record<string, unknown>[] = [];
let step = 0;
let tokens = 0;
console.log(`training ${JSON.stringify(dims)} exits ${EXITS} on ${trainIds.length} chars; budget ${minutes} min`);
for (;;) {
  const elapsed = performance.now() - t0;
  const progress = elapsed / budgetMs;
  if (progress >= 1) break;
  // warm-up by steps, then cosine by the fraction of the wall-clock budget used
  adam.totalSteps = Math.max(adam.warmup + 1, Math.round(step / Math.max(progress, 1e-6)));
  const { inputs, targets } = batch();
  const grads = zeroGrads(params);
  const r = lmStep(params, dims, inputs, targets, Bt, T, EXITS, EXIT_WEIGHTS, grads);
  const gnorm = opt.update(lmParamList(params), lmParamList(grads));
  tokens += Bt * T;
  step++;
  if (step % 10 === 0 || step === 1) {
    const entry: Record<string, unknown> = {
      step,
      minutes: +(elapsed / 60000).toFixed(2),
      train_bpc: r.losses.map((l) => +(l / Math.LN2).toFixed(4)),
      grad_norm: +gnorm.toFixed(3),
    };
    if (step % 100 === 0) entry.heldout_bpc_sample = evalBpc(16, 256).bpc.map((b) => +b.toFixed(4));
    log.push(entry);
    console.log(JSON.stringify(entry));
  }
  if (step % 200 === 0) save({ partial: true, step, tokens, log });
}
const trainMinutes = (performance.now() - t0) / 60000;
console.log(
  `trained ${step} steps (${tokens} tokens) in ${trainMinutes.toFixed(1)} min; evaluating the held-out novel`,
);
const e0 = performance.now();
const final = evalBpc(evalWindows, EVAL_WINDOW);
const evalMinutes = (performance.now() - e0) / 60000;
console.log(`held-out bpc per exit ${final.bpc.map((b) => b.toFixed(4))} over ${final.chars} chars`);
const meta = {
  seed,
  dims,
  exits: EXITS,
  exit_loss_weights: EXIT_WEIGHTS,
  batch: { sequences: Bt, length: T },
  optimizer: adam,
  steps: step,
  tokens,
  train_minutes: +trainMinutes.toFixed(2),
  train_chars: trainIds.length,
  heldout: { title: corpus.heldOut.title, chars: heldIds.length, evaluated_chars: final.chars, window: EVAL_WINDOW },
  heldout_bpc: final.bpc,
  eval_minutes: +evalMinutes.toFixed(2),
  log,
};
save(meta);
writeFileSync(path.join(outDir, 'MODEL_CARD.md'), card(meta));
console.log(`wrote ${outDir}`);

function card(m: typeof meta): string {
  const params = lmParamList(initLm(dims, 0)).reduce((a, [, v]) => a + v.length, 0);
  const rows = EXITS.map(
    (b, j) => `| ${j} | after block ${b} (${b + 1} of ${dims.layers} layers) | ${m.heldout_bpc[j].toFixed(4)} |`,
  ).join('\n');
  return `# austen-mamba: a character-level Mamba-1 language model with early exits

A ${dims.layers}-layer Mamba-1 model (hidden ${dims.d}, inner ${dims.D}, state ${dims.N}, dt rank ${dims.R}, conv ${dims.K};
${params} parameters, float32, tied embedding/LM head) trained on characters of Jane Austen's novels.
Exits after blocks ${EXITS.join(', ')} (0-based; the latter half of the layers) share \`norm_f\` and the LM head.

- **Files**: \`config.json\` (HuggingFace Mamba keys plus an \`offramp\` section with the exits), \`model.safetensors\`
  (HuggingFace names: \`backbone.embeddings.weight\`, \`backbone.layers.{i}.mixer.*\`, \`backbone.norm_f.weight\`; no
  \`lm_head.weight\`: the head is tied), \`char-tokenizer.json\` (@offramp/train's CharTokenizer: id 0 = unknown,
  then every code point of the six novels in code-point order; ${tok.vocabSize} ids), \`train-log.json\`.
- **Data**: the six novels of the janeaustenr R package (\`loadAusten()\` of @offramp/train). Training: the five
  novels other than *${m.heldout.title}*, joined with blank lines (${m.train_chars} characters). Held out: *${m.heldout.title}*
  (${m.heldout.chars} characters). The character set was taken from all six novels (characters only).
- **Training**: seed ${m.seed}; windows of ${T} characters at uniformly random offsets, ${Bt} per step; loss
  Σ_j w_j·CE_j over the exits with depth weights w = [${EXIT_WEIGHTS.map((w) => w.toFixed(3)).join(', ')}] (exit block + 1 over
  the depth); AdamW (lr ${adam.lr}, β = (${adam.beta1}, ${adam.beta2}), weight decay ${adam.weightDecay} on matrices, gradient clip
  ${adam.clip}), ${adam.warmup} warm-up steps, then a cosine decay to ${adam.minFactor}·lr over a wall-clock budget of ${minutes} minutes.
  ${m.steps} steps (${m.tokens} tokens, ${(m.tokens / m.train_chars).toFixed(2)} epochs) in ${m.train_minutes} minutes of wall time on a
  shared 2-core machine, with the package's hand-written float64 backward (\`src/train/\`), no GPU.
- **Held-out bits per character** (${m.heldout.evaluated_chars} characters of *${m.heldout.title}* in consecutive windows of ${m.heldout.window},
  each window from a fresh state, so the first characters of a window see little context; the evaluation took
  ${m.eval_minutes} minutes after training):

| exit | position | bits per character |
|---|---|---|
${rows}

Reproduce: \`pnpm train:austen-mamba\` (\`--minutes\`, \`--seed\`, \`--out\`). Step counts depend on the machine's speed
because the schedule follows the wall-clock budget. Token-level early exit on this model (exit classifiers,
freeze vs partial state updates): \`pnpm --filter @offramp/mamba run dynamax:austen\` writes \`EXITS.md\` here.
`;
}
