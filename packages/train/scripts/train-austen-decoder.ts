// Trains a small character-level Llama-style decoder with early exits on five Jane Austen novels (Persuasion
// held out) with TensorFlow.js autograd, by the LayerSkip recipe or joint training + self-distillation, and
// writes a Hugging Face LlamaForCausalLM folder: config.json, model.safetensors, char-tokenizer.json and
// train-log.json (held-out bits per character per exit, the F16 check and the float64 reference check).
// Usage: pnpm train:austen-decoder [--recipe layerskip|selfdistill] [--minutes 20] [--seed 1] [--out DIR]
//        [--steps N] [--backend wasm|webgpu|cpu] [--eval-windows 256]
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ValidationError } from '@offramp/core';
import { type DecoderBackend, initDecoderBackend } from '../src/decoder/backend.js';
import {
  type ExportDType,
  fromHfTensors,
  llamaConfig,
  readDecoderSafetensors,
  writeDecoderSafetensors,
} from '../src/decoder/export.js';
import { type DecoderDims, DecoderModel, paramCount } from '../src/decoder/model.js';
import { checkRecipe } from '../src/decoder/recipes.js';
import { referenceLoss } from '../src/decoder/reference.js';
import { type DecoderTrainOptions, evalBpc, recipeScales, trainDecoder } from '../src/decoder/train.js';
import { CharTokenizer, loadAusten } from '../src/index.js';

const args = process.argv.slice(2);
const known = ['recipe', 'minutes', 'seed', 'out', 'steps', 'backend', 'eval-windows'];
for (let i = 0; i < args.length; i += 2) {
  const k = args[i].replace(/^--/, '');
  if (!args[i].startsWith('--') || !known.includes(k) || args[i + 1] === undefined)
    throw new ValidationError(`bad argument ${args[i]}: expected --${known.join(' V, --')} V`);
}
function arg(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
}
function num(name: string, fallback: string): number {
  const v = Number(arg(name, fallback));
  if (!Number.isFinite(v) || v <= 0)
    throw new ValidationError(`--${name} is ${arg(name, fallback)}; expected a positive number`);
  return v;
}

const recipe = checkRecipe(arg('recipe', 'layerskip'));
const here = path.dirname(fileURLToPath(import.meta.url));
const defaultOut = recipe === 'layerskip' ? 'austen-decoder' : `austen-decoder-${recipe}`;
const outDir = path.resolve(arg('out', path.join(here, '../../../checkpoints', defaultOut)));
const seed = num('seed', '1');
const stepsArg = args.includes('--steps') ? num('steps', '1') : undefined;
const minutes = stepsArg === undefined ? num('minutes', '20') : undefined;
const evalWindows = num('eval-windows', '256');
const backendArg = arg('backend', 'wasm') as DecoderBackend;

const EVAL_WINDOW = 128;
const EXITS = [1, 2, 3, 4, 5];

const backend = await initDecoderBackend(backendArg);
const corpus = loadAusten();
const tok = CharTokenizer.fromCorpus(corpus.novels.map((n) => n.text));
const trainIds = tok.encode(corpus.train.map((n) => n.text).join('\n\n\n'));
const heldIds = tok.encode(corpus.heldOut.text);

const dims: DecoderDims = {
  vocab: tok.vocabSize,
  d: 128,
  layers: 6,
  heads: 4,
  kvHeads: 2,
  ffn: 288,
  ropeTheta: 10000,
  eps: 1e-5,
  maxPos: 128,
};
const opts: DecoderTrainOptions = {
  recipe,
  dims,
  exits: EXITS,
  batch: 4,
  context: 128,
  seed,
  lr: 3e-3,
  warmup: 10,
  minFactor: 0.1,
  weightDecay: 0.1,
  clipNorm: 1,
  steps: stepsArg,
  minutes,
  pMax: 0.2,
  eScale: 1,
  alpha: 1,
  logEvery: 5,
};

console.log(
  `training the ${recipe} recipe: ${JSON.stringify(dims)}, ${paramCount(dims)} parameters, exits after blocks ` +
    `[${EXITS}] on ${trainIds.length} chars, backend ${backend}, ${stepsArg ? `${stepsArg} steps` : `${minutes} min`}, seed ${seed}`,
);
const r = await trainDecoder(trainIds, opts);
console.log(`trained ${r.steps} steps (${r.tokens} tokens) in ${(r.seconds / 60).toFixed(1)} min; evaluating`);

const e0 = performance.now();
const held = await evalBpc(r.model, heldIds, EXITS, EVAL_WINDOW, evalWindows);
console.log(`held-out bpc per exit [${held.bpc.map((b) => b.toFixed(4))}] over ${held.chars} chars`);

// F16 when rounding the weights to half precision changes no exit's held-out bpc by 0.005 or more
const values = await r.model.values();
const f16Bytes = writeDecoderSafetensors(values, dims, 'F16');
const f16Model = new DecoderModel(dims, fromHfTensors(readDecoderSafetensors(f16Bytes), dims));
const heldF16 = await evalBpc(f16Model, heldIds, EXITS, EVAL_WINDOW, evalWindows);
f16Model.dispose();
const f16Delta = Math.max(...heldF16.bpc.map((b, j) => Math.abs(b - held.bpc[j])));
const dtype: ExportDType = f16Delta < 0.005 ? 'F16' : 'F32';
console.log(`F16 weights change held-out bpc by at most ${f16Delta.toFixed(5)}: saving ${dtype}`);
const evalMinutes = (performance.now() - e0) / 60000;

mkdirSync(outDir, { recursive: true });
const bytes = dtype === 'F16' ? f16Bytes : writeDecoderSafetensors(values, dims, 'F32');
writeFileSync(path.join(outDir, 'model.safetensors.tmp'), bytes);
renameSync(path.join(outDir, 'model.safetensors.tmp'), path.join(outDir, 'model.safetensors'));
const scales = recipeScales(opts);
const recipeText =
  recipe === 'layerskip'
    ? `LayerSkip: layer dropout p(l) = D(l)·${opts.pMax} per sequence (S(t) = 1), early-exit loss with normalised scales e(l) (e_scale ${opts.eScale}), every exit every step`
    : `joint + self-distillation: mean CE over the exits + ${opts.alpha}·mean KL(final ‖ exit) over the early exits (final detached)`;
const config = llamaConfig(dims, dtype, {
  exits: EXITS,
  tokenizer: 'char-tokenizer.json',
  recipe: recipeText,
  exit_loss_scales: scales,
  layer_dropout: r.dropout,
  heldout_bpc: held.bpc,
});
writeFileSync(path.join(outDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
tok.save(path.join(outDir, 'char-tokenizer.json'));

// the saved file, read back and run by the independent float64 forward, against the TF.js forward
const saved = readDecoderSafetensors(readFileSync(path.join(outDir, 'model.safetensors')));
const savedModel = new DecoderModel(dims, fromHfTensors(saved, dims));
const refWindows = 2;
const ref: { window: number; reference_bpc: number[]; tfjs_bpc: number[] }[] = [];
for (let w = 0; w < refWindows; w++) {
  const at = w * EVAL_WINDOW;
  const win = heldIds.subarray(at, at + EVAL_WINDOW + 1);
  const refLoss = referenceLoss(saved, dims, win.subarray(0, EVAL_WINDOW), win.subarray(1), EXITS);
  const tfLoss = await evalBpc(savedModel, win, EXITS, EVAL_WINDOW, 1);
  ref.push({
    window: w,
    reference_bpc: refLoss.map((l) => l / Math.LN2),
    tfjs_bpc: tfLoss.bpc,
  });
}
savedModel.dispose();
const refMaxDiff = Math.max(...ref.flatMap((x) => x.reference_bpc.map((b, j) => Math.abs(b - x.tfjs_bpc[j]))));
console.log(
  `float64 reference vs TF.js on ${refWindows} windows of the saved file: max |Δ bpc| ${refMaxDiff.toExponential(2)}`,
);

const meta = {
  recipe,
  recipe_text: recipeText,
  seed,
  backend,
  dims,
  parameters: paramCount(dims),
  exits: EXITS,
  exit_loss_scales: scales,
  layer_dropout: r.dropout,
  layer_dropout_observed: r.dropoutObserved,
  batch: { sequences: opts.batch, length: opts.context },
  optimizer: {
    name: 'AdamW',
    lr: opts.lr,
    betas: [0.9, 0.95],
    weight_decay: opts.weightDecay,
    clip_norm: opts.clipNorm,
    warmup_steps: opts.warmup,
    cosine_floor: opts.minFactor,
    schedule: stepsArg ? 'steps' : 'wall clock',
  },
  budget: stepsArg ? { steps: stepsArg } : { minutes },
  steps: r.steps,
  tokens: r.tokens,
  train_minutes: +(r.seconds / 60).toFixed(2),
  tokens_per_second: +(r.tokens / r.seconds).toFixed(1),
  train_chars: trainIds.length,
  heldout: {
    title: corpus.heldOut.title,
    chars: heldIds.length,
    evaluated_chars: held.chars,
    window: EVAL_WINDOW,
    windows: held.chars / EVAL_WINDOW,
  },
  heldout_bpc: held.bpc,
  heldout_bpc_f16: heldF16.bpc,
  f16_max_delta: f16Delta,
  dtype,
  eval_minutes: +evalMinutes.toFixed(2),
  reference_check: { windows: ref, max_abs_diff_bpc: refMaxDiff },
  command: `pnpm train:austen-decoder --recipe ${recipe} ${stepsArg ? `--steps ${stepsArg}` : `--minutes ${minutes}`} --seed ${seed} --eval-windows ${evalWindows} --backend ${backend}`,
  history: r.history,
};
writeFileSync(path.join(outDir, 'train-log.json'), `${JSON.stringify(meta, null, 1)}\n`);
r.model.dispose();
console.log(`wrote ${outDir}`);
