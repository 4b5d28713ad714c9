// Trains checkpoints/code-search: a small multi-exit text/code embedder (encoder blocks, an embedding exit after
// every block, one projection head shared by the exits and conditioned on an exit-index embedding, mean pooling,
// unit-length embeddings) on the code-search pairs (Python docstrings and JavaScript JSDoc → functions), with
// InfoNCE at every exit + self-distillation from the last exit (variant 'mose', the shipped checkpoint), or the
// ablations 'independent' (InfoNCE at every exit, no distillation) and 'last' (InfoNCE at the last exit only).
// Texts are split into words first (identifiers at `_` and camelCase, lower case: text_form.json 'words'); the
// blocks start from a stage 0 that trains the token embeddings as a bag-of-embeddings dual encoder, with the head
// initialised to pass the pooled state through (identity on the first d inputs), zero position embeddings and
// blocks that start as the identity (residual output projections at zero),
// so every exit starts as that bag of embeddings and the blocks learn what it misses. A validation split (5 %
// of the training units, seeded) gives the learning curve; the held-out test units are never read here.
// pnpm train:code-search [--variant mose|independent|last] [--steps N] [--out DIR] [--seed N] [--backend wasm]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type EncoderEmbedderConfig, writeSafetensors } from '@offramp/core';
import { CODE_SEARCH_PY_DEBS, loadCodeSearch, splitCodePairs } from '../src/data/code-search.js';
import { CODE_SEARCH_NPM_PACKAGES } from '../src/data/code-search-js.js';
import { ensureDatasets } from '../src/data/fetch.js';
import { checkoutRoot } from '../src/data/paths.js';
import { type DecoderBackend, initDecoderBackend } from '../src/decoder/backend.js';
import { gatherRows, padBatch, TfEmbedder } from '../src/embeddings/model.js';
import { metricsFromRanks, rankOf } from '../src/embeddings/retrieval.js';
import {
  buildTruncatedGpt2Tokenizer,
  CODE_TOKENIZER_FILE,
  encodeTexts,
  loadBpeTokenizer,
  TEXT_FORM_FILE,
  TEXT_FORMS,
  type TextForm,
} from '../src/embeddings/tokenizer.js';
import { EMBED_VARIANTS, type EmbedVariant, pretrainTokenEmbeddings, trainEmbedder } from '../src/embeddings/train.js';
import { tf } from '../src/training/backend.js';

const { values: a } = parseArgs({
  options: {
    variant: { type: 'string', default: 'mose' },
    steps: { type: 'string', default: '120' },
    batch: { type: 'string', default: '32' },
    lr: { type: 'string', default: '0.00005' },
    seed: { type: 'string', default: '1234' },
    out: { type: 'string' },
    backend: { type: 'string', default: 'wasm' },
    'code-len': { type: 'string', default: '256' },
    hidden: { type: 'string', default: '128' },
    'pre-steps': { type: 'string', default: '1000' },
    'pre-batch': { type: 'string', default: '256' },
    'text-form': { type: 'string', default: 'words' },
    'table-lr-scale': { type: 'string', default: '1' },
    evals: { type: 'string', default: '2' },
    batches: { type: 'string', default: 'unit' },
    help: { type: 'boolean', default: false },
  },
});
if (a.help) {
  console.log(
    'pnpm train:code-search [--variant mose|independent|last] [--steps 120] [--batch 32] [--code-len 256] [--hidden 128] [--pre-steps 1000] [--pre-batch 256] [--text-form words|one-line] [--lr 0.00005] [--table-lr-scale 1] [--evals 2] [--batches unit|length] [--seed 1234] [--out DIR] [--backend wasm|webgpu|cpu]',
  );
  process.exit(0);
}
const variant = a.variant as EmbedVariant;
if (!EMBED_VARIANTS.includes(variant)) {
  console.error(`--variant is '${a.variant}'; allowed: ${EMBED_VARIANTS.join(', ')}`);
  process.exit(2);
}
const int = (name: string, v: string | undefined) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} is '${v}'; expected a positive integer`);
    process.exit(2);
  }
  return n;
};
const steps = int('steps', a.steps);
const hidden = int('hidden', a.hidden);
const preSteps = int('pre-steps', a['pre-steps']);
const preBatch = int('pre-batch', a['pre-batch']);
const textForm = a['text-form'] as TextForm;
if (!TEXT_FORMS.includes(textForm)) {
  console.error(`--text-form is '${a['text-form']}'; allowed: ${TEXT_FORMS.join(', ')}`);
  process.exit(2);
}
const batchSize = int('batch', a.batch);
const evals = int('evals', a.evals);
if (a.batches !== 'length' && a.batches !== 'unit') {
  console.error(
    `--batches is '${a.batches}'; allowed: length (random pairs of similar code length), unit (pairs of one package or module per batch)`,
  );
  process.exit(2);
}
const tableLrScale = Number(a['table-lr-scale']);
if (!(tableLrScale >= 0)) {
  console.error(`--table-lr-scale is '${a['table-lr-scale']}'; expected a number >= 0 (0 freezes the token table)`);
  process.exit(2);
}
const seed = int('seed', a.seed);
const lr = Number(a.lr);
const root = checkoutRoot() ?? process.cwd();
const outDir = path.resolve(
  a.out ?? path.join(root, variant === 'mose' ? 'checkpoints/code-search' : `.data/runs/code-search-${variant}`),
);

const CODE_MERGES = 8000;
const CODE_LEN = int('code-len', a['code-len']);
const QUERY_LEN = 64;

await initDecoderBackend(a.backend as DecoderBackend);
mkdirSync(outDir, { recursive: true });
const { vocabSize, padId } = buildTruncatedGpt2Tokenizer(path.join(outDir, CODE_TOKENIZER_FILE), CODE_MERGES);
writeFileSync(path.join(outDir, TEXT_FORM_FILE), `${JSON.stringify({ form: textForm })}\n`);
const tok = loadBpeTokenizer(path.join(outDir, CODE_TOKENIZER_FILE));
await ensureDatasets(['code-search'], { log: (line) => console.error(line) });
const data = loadCodeSearch();
// validation: 5 % of the training units (seeded), for the learning curve only
const VAL_SEED = 777;
const inner = splitCodePairs(data.train, 0.05, VAL_SEED);
const train = inner.train;
const VAL_N = 400;
const val = inner.test.filter((_, i) => i % Math.max(1, Math.floor(inner.test.length / VAL_N)) === 0).slice(0, VAL_N);
const config: EncoderEmbedderConfig = {
  architecture: 'encoder_embedder',
  vocab_size: vocabSize,
  max_position: CODE_LEN,
  hidden_size: hidden,
  num_layers: 3,
  num_heads: 2,
  intermediate_size: 2 * hidden,
  layer_norm_eps: 1e-5,
  pad_token_id: padId,
  exit_blocks: [0, 1, 2],
  embedding_dim: hidden,
  exit_embedding_dim: 4,
  pooling: 'mean',
};
const enc = (texts: string[], len: number) => encodeTexts(tok, texts, len, padId, textForm);
const queries = enc(
  train.map((r) => r.query),
  QUERY_LEN,
);
const codes = enc(
  train.map((r) => r.code),
  CODE_LEN,
);
const valQ = enc(
  val.map((r) => r.query),
  QUERY_LEN,
);
const valC = enc(
  val.map((r) => r.code),
  CODE_LEN,
);
console.log(
  `code-search ${variant}: ${train.length} training pairs from ${inner.trainModules.length} units (${val.length} validation pairs from ${inner.testModules.length} others); ${steps} steps of ${batchSize}`,
);
/** Validation MRR (text-to-code) of row-aligned query and code embeddings (n × p, unit length). */
function mrrOf(q: Float32Array, c: Float32Array, p: number): number {
  const n = q.length / p;
  const ranks: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      let d = 0;
      for (let k = 0; k < p; k++) d += q[i * p + k] * c[j * p + k];
      s[j] = d;
    }
    ranks.push(rankOf(s, i));
  }
  return metricsFromRanks(ranks).mrr;
}
async function inBatches(rows: number[][], f: (ids: tf.Tensor2D, lengths: tf.Tensor1D) => tf.Tensor2D[]) {
  const parts: Float32Array[][] = [];
  for (let b = 0; b < rows.length; b += 64) {
    const pb = padBatch(rows.slice(b, b + 64), padId, 16);
    const outs = tf.tidy(() => f(pb.ids, pb.lengths));
    parts.push(await Promise.all(outs.map(async (t) => Float32Array.from(await t.data()))));
    tf.dispose([...outs, pb.ids, pb.lengths]);
  }
  return parts[0].map((_, j) => {
    const all = new Float32Array(parts.reduce((s, x) => s + x[j].length, 0));
    let o = 0;
    for (const x of parts) {
      all.set(x[j], o);
      o += x[j].length;
    }
    return all;
  });
}
// stage 0 (shared by the three variants, cached): bag-of-embeddings token embeddings
const PRE_LR = 0.005;
const preFile = path.join(
  root,
  '.data',
  'runs',
  `code-search-stage0-${seed}-${CODE_LEN}-${hidden}-${textForm}-${preSteps}x${preBatch}-${train.length}.json`,
);
let pre: { table: number[]; seconds: number; loss: number; evalCurve: { step: number; value: number }[] };
if (existsSync(preFile)) pre = JSON.parse(readFileSync(preFile, 'utf8'));
else {
  const bagMrr = async (table: tf.Variable) => {
    const bag = (ids: tf.Tensor2D, lengths: tf.Tensor1D) => {
      const T = ids.shape[1];
      const valid = tf.cast(tf.less(tf.range(0, T, 1, 'int32').expandDims(0), lengths.expandDims(1)), 'float32');
      const e = tf.sum(tf.mul(gatherRows(table, ids), valid.expandDims(2)), 1) as tf.Tensor2D;
      return [tf.div(e, tf.maximum(tf.norm(e, 2, 1, true), 1e-12)) as tf.Tensor2D];
    };
    const [q] = await inBatches(valQ, bag);
    const [c] = await inBatches(valC, bag);
    return mrrOf(q, c, hidden);
  };
  const r = await pretrainTokenEmbeddings({
    vocabSize,
    dim: hidden,
    queries,
    codes,
    padId,
    steps: preSteps,
    batchSize: preBatch,
    lr: PRE_LR,
    warmup: Math.round(preSteps / 20),
    seed,
    evaluate: bagMrr,
    evalEvery: Math.max(1, Math.round(preSteps / 5)),
    log: console.log,
  });
  pre = { table: Array.from(r.table), seconds: r.seconds, loss: r.loss, evalCurve: r.evalCurve };
  mkdirSync(path.dirname(preFile), { recursive: true });
  writeFileSync(preFile, JSON.stringify(pre));
}
console.log(
  `stage 0: bag-of-embeddings loss ${pre.loss.toFixed(4)} after ${preSteps} steps (${pre.seconds.toFixed(0)} s); validation MRR ${pre.evalCurve.map((e) => e.value.toFixed(3)).join(' → ')}`,
);
const model = new TfEmbedder(config, { seed });
model.params.get('embeddings.token.weight')!.assign(tf.tensor2d(pre.table, [vocabSize, hidden]));
// start every exit at the bag of embeddings: no position signal yet, the head passes the pooled state through
model.params.get('embeddings.position.weight')!.assign(tf.zeros([CODE_LEN, hidden]));
const proj = new Float32Array((hidden + config.exit_embedding_dim) * config.embedding_dim);
for (let i = 0; i < hidden; i++) proj[i * config.embedding_dim + i] = 1;
model.params
  .get('head.proj.weight')!
  .assign(tf.tensor2d(proj, [hidden + config.exit_embedding_dim, config.embedding_dim]));
// and every block starts as the identity: its residual branches' output projections at zero (their inputs still
// random, so the gradient reaches them from the first step)
for (let i = 0; i < config.num_layers; i++) {
  for (const w of [`blocks.${i}.attn.out.weight`, `blocks.${i}.mlp.fc2.weight`]) {
    const v = model.params.get(w)!;
    v.assign(tf.zerosLike(v));
  }
}
const WARMUP = Math.max(1, Math.round(steps / 20));
const result = await trainEmbedder(model, {
  variant,
  queries,
  codes,
  padId,
  steps,
  batchSize,
  lr,
  warmup: WARMUP,
  tableLrScale,
  units: a.batches === 'unit' ? train.map((r) => r.module) : undefined,
  seed,
  evaluate: async () => {
    const q = await inBatches(valQ, (ids, lengths) => model.embed(ids, lengths));
    const c = await inBatches(valC, (ids, lengths) => model.embed(ids, lengths));
    return q.map((x, j) => mrrOf(x, c[j], config.embedding_dim));
  },
  evalEvery: Math.max(1, Math.round(steps / evals)),
  log: console.log,
});
const weights = await model.export();
writeFileSync(path.join(outDir, 'model.safetensors'), writeSafetensors(weights, { format: 'pt' }));
writeFileSync(path.join(outDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
const params = [...weights.values()].reduce((s, t) => s + t.data.length, 0);
const training = {
  variant,
  steps,
  batch_size: batchSize,
  lr,
  table_lr_scale: tableLrScale,
  batches: a.batches,
  tau: 0.05,
  seed,
  seconds: Math.round(result.seconds),
  stage0: {
    steps: preSteps,
    batch_size: preBatch,
    lr: PRE_LR,
    schedule: `linear warm-up ${Math.round(preSteps / 20)} steps, cosine decay to 10 %`,
    cache: path.relative(root, preFile),
    seconds: Math.round(pre.seconds),
    final_loss: Number(pre.loss.toFixed(4)),
    validation_mrr: pre.evalCurve.map((e) => ({ step: e.step, mrr: Number(e.value.toFixed(4)) })),
  },
  schedule: `linear warm-up ${WARMUP} steps, cosine decay to 10 %`,
  text_form: textForm,
  backend: a.backend,
  loss_curve: result.lossCurve.map((x) => Number(x.toFixed(4))),
  validation_mrr: result.evalCurve.map((e) => ({
    step: e.step,
    mrr_per_exit: e.values.map((v) => Number(v.toFixed(4))),
  })),
  train_pairs: train.length,
  train_units: inner.trainModules.length,
  validation_pairs: val.length,
  validation_units: inner.testModules.length,
  parameters: params,
};
writeFileSync(path.join(outDir, 'training.json'), `${JSON.stringify(training, null, 2)}\n`);
const recipe = {
  mose: 'InfoNCE (in-batch negatives, symmetric, τ = 0.05) at every exit, averaged, + self-distillation from the last exit: KL(softmax(S_last/τ) ‖ softmax(S_j/τ)) over rows and columns for every lower exit, the last exit held constant, weight 1',
  independent: 'InfoNCE (in-batch negatives, symmetric, τ = 0.05) at every exit, averaged; no distillation',
  last: 'InfoNCE (in-batch negatives, symmetric, τ = 0.05) at the last exit only',
}[variant];
writeFileSync(
  path.join(outDir, 'MODEL_CARD.md'),
  `# code-search${variant === 'mose' ? '' : ` (${variant} ablation)`}

A small multi-exit embedder for text-to-code search over Python functions: ${config.num_layers} pre-LN encoder
blocks (d ${config.hidden_size}, ${config.num_heads} heads, MLP ${config.intermediate_size}), an embedding exit after every block, mean
pooling over the valid tokens, and ONE projection head (LayerNorm → Linear to ${config.embedding_dim}) shared by all exits and
conditioned on a learned ${config.exit_embedding_dim}-wide exit-index embedding (ModularStarEncoder), unit-length embeddings.
${params.toLocaleString('en-US')} parameters (F32).

- **Data**: @offramp/train's code-search set (Debian's Python 3.11 standard library and ${CODE_SEARCH_PY_DEBS.length} Debian
  \`python3-*\` library packages; ${CODE_SEARCH_NPM_PACKAGES.length} JavaScript packages from the npm registry; query = a docstring's or
  JSDoc block's summary sentence, document = the function without it), split by unit (a standard-library
  top-level module, or a whole package; each language on its own): ${train.length.toLocaleString('en-US')} training pairs
  from ${inner.trainModules.length} units, ${val.length} validation pairs from ${inner.testModules.length} other units (the learning curve); the
  ${data.test.length.toLocaleString('en-US')} pairs of the test units (${data.testModules.length}) are held out. See docs/data-code-search.md.
- **Tokenizer**: ${CODE_TOKENIZER_FILE}, GPT-2's byte-level BPE cut to its first ${CODE_MERGES} merges (${vocabSize} ids
  with <|pad|> = ${padId}). Text form (${TEXT_FORM_FILE}): ${textForm === 'words' ? "'words': identifiers split at `_` and camelCase, punctuation runs set apart, lower case, one line, so `read_file` and 'read file' give the same tokens" : "'one-line': whitespace runs → one space"}. Queries are cut at
  ${QUERY_LEN} tokens, code at ${CODE_LEN}.
- **Training** (\`${variant === 'mose' ? 'pnpm train:code-search' : `pnpm train:code-search --variant ${variant}`}\`): stage 0 trains the token embeddings
  as a bag-of-embeddings dual encoder with symmetric InfoNCE (${preSteps} steps of ${preBatch} pairs, lr ${PRE_LR}, warm-up + cosine,
  ${Math.round(pre.seconds)} s; cached and reused by the other variants; validation MRR every fifth of the run ${pre.evalCurve.map((e) => e.value.toFixed(3)).join(' → ')}). The
  encoder then starts from it with zero position embeddings, blocks that start as the identity (residual output
  projections at zero) and the head's projection set to pass the pooled state through, so every exit starts as
  the bag of embeddings (centred by the head's LayerNorm); ${recipe}. ${steps} steps of ${batchSize} pairs
  (${((steps * batchSize) / train.length).toFixed(2)} epochs; ${a.batches === 'unit' ? 'each batch drawn from one package or module where it has a batch to give, so the in-batch negatives share its vocabulary, the rest pooled; ' : ''}batches of similar code length), Adam, lr ${lr}${tableLrScale !== 1 ? (tableLrScale === 0 ? ' with the token table frozen' : ` (the token table at ${tableLrScale}× that)`) : ''} (warm-up ${WARMUP}
  steps, cosine decay to 10 %), seed ${seed}, ${Math.round(result.seconds)} s on the tfjs ${a.backend} backend. Loss per tenth of the
  run: ${training.loss_curve.join(', ')}. Validation MRR per exit (learning curve): ${result.evalCurve.map((e) => `step ${e.step}: ${e.values.map((v) => v.toFixed(3)).join(' / ')}`).join('; ')}.
- **Results**: recall@1/10 and MRR per exit on the held-out modules: docs/results-embeddings.md.
- **Use**: \`offramp embed --model DIR [--exit K] text...\`; the engine's \`embed()\` in @offramp/core.
- **Licence** of the training data: the Python Software Foundation License for the standard library
  (LICENSE-python.txt in the data cache); each package's own licence (its Debian copyright file, collected in
  LICENSES-packages.txt in the data cache). The weights contain no text of the sources beyond what they encode.
`,
);
console.log(`wrote ${outDir} (${params} parameters, ${result.seconds.toFixed(0)} s)`);
