// Trains checkpoints/code-search: a small multi-exit text/code embedder (encoder blocks, an embedding exit after
// every block, one projection head shared by the exits and conditioned on an exit-index embedding, mean pooling,
// unit-length embeddings) on the code-search pairs (Python standard library docstrings → functions), with
// InfoNCE at every exit + self-distillation from the last exit (variant 'mose', the shipped checkpoint), or the
// ablations 'independent' (InfoNCE at every exit, no distillation) and 'last' (InfoNCE at the last exit only).
// pnpm train:code-search [--variant mose|independent|last] [--steps N] [--out DIR] [--seed N] [--backend cpu]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type EncoderEmbedderConfig, writeSafetensors } from '@offramp/core';
import { loadCodeSearch } from '../src/data/code-search.js';
import { ensureDatasets } from '../src/data/fetch.js';
import { checkoutRoot } from '../src/data/paths.js';
import { TfEmbedder } from '../src/embeddings/model.js';
import {
  buildTruncatedGpt2Tokenizer,
  CODE_TOKENIZER_FILE,
  encodeTexts,
  loadBpeTokenizer,
} from '../src/embeddings/tokenizer.js';
import { EMBED_VARIANTS, type EmbedVariant, pretrainTokenEmbeddings, trainEmbedder } from '../src/embeddings/train.js';
import { initBackend, tf } from '../src/training/backend.js';

const { values: a } = parseArgs({
  options: {
    variant: { type: 'string', default: 'mose' },
    steps: { type: 'string', default: '80' },
    batch: { type: 'string', default: '32' },
    lr: { type: 'string', default: '0.001' },
    seed: { type: 'string', default: '1234' },
    out: { type: 'string' },
    backend: { type: 'string', default: 'webgpu' },
    'code-len': { type: 'string', default: '128' },
    help: { type: 'boolean', default: false },
  },
});
if (a.help) {
  console.log(
    'pnpm train:code-search [--variant mose|independent|last] [--steps 80] [--batch 32] [--code-len 128] [--lr 0.001] [--seed 1234] [--out DIR] [--backend webgpu|cpu]',
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
const batchSize = int('batch', a.batch);
const seed = int('seed', a.seed);
const lr = Number(a.lr);
const root = checkoutRoot() ?? process.cwd();
const outDir = path.resolve(
  a.out ?? path.join(root, variant === 'mose' ? 'checkpoints/code-search' : `.data/runs/code-search-${variant}`),
);

const CODE_MERGES = 8000;
const CODE_LEN = int('code-len', a['code-len']);
const QUERY_LEN = 64;

await initBackend(a.backend as 'webgpu' | 'cpu');
mkdirSync(outDir, { recursive: true });
const { vocabSize, padId } = buildTruncatedGpt2Tokenizer(path.join(outDir, CODE_TOKENIZER_FILE), CODE_MERGES);
const tok = loadBpeTokenizer(path.join(outDir, CODE_TOKENIZER_FILE));
await ensureDatasets(['code-search'], { log: (line) => console.error(line) });
const data = loadCodeSearch();
const config: EncoderEmbedderConfig = {
  architecture: 'encoder_embedder',
  vocab_size: vocabSize,
  max_position: CODE_LEN,
  hidden_size: 32,
  num_layers: 3,
  num_heads: 2,
  intermediate_size: 64,
  layer_norm_eps: 1e-5,
  pad_token_id: padId,
  exit_blocks: [0, 1, 2],
  embedding_dim: 32,
  exit_embedding_dim: 4,
  pooling: 'mean',
};
const queries = encodeTexts(
  tok,
  data.train.map((r) => r.query),
  QUERY_LEN,
  padId,
);
const codes = encodeTexts(
  tok,
  data.train.map((r) => r.code),
  CODE_LEN,
  padId,
);
console.log(
  `code-search ${variant}: ${data.train.length} training pairs from ${data.trainModules.length} modules; ${steps} steps of ${batchSize}`,
);
// stage 0 (shared by the three variants, cached): bag-of-embeddings token embeddings
const PRE_STEPS = 300;
const preFile = path.join(root, '.data', 'runs', `code-search-stage0-${seed}-${CODE_LEN}-${config.hidden_size}.json`);
let pre: { table: number[]; seconds: number; loss: number };
if (existsSync(preFile)) pre = JSON.parse(readFileSync(preFile, 'utf8'));
else {
  const r = await pretrainTokenEmbeddings({
    vocabSize,
    dim: config.hidden_size,
    queries,
    codes,
    padId,
    steps: PRE_STEPS,
    batchSize: 128,
    lr: 0.01,
    seed,
    log: console.log,
  });
  pre = { table: Array.from(r.table), seconds: r.seconds, loss: r.loss };
  mkdirSync(path.dirname(preFile), { recursive: true });
  writeFileSync(preFile, JSON.stringify(pre));
}
console.log(
  `stage 0: bag-of-embeddings loss ${pre.loss.toFixed(4)} after ${PRE_STEPS} steps (${pre.seconds.toFixed(0)} s)`,
);
const model = new TfEmbedder(config, { seed });
model.params.get('embeddings.token.weight')!.assign(tf.tensor2d(pre.table, [vocabSize, config.hidden_size]));
const result = await trainEmbedder(model, {
  variant,
  queries,
  codes,
  padId,
  steps,
  batchSize,
  lr,
  seed,
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
  tau: 0.05,
  seed,
  seconds: Math.round(result.seconds),
  stage0: {
    steps: PRE_STEPS,
    batch_size: 128,
    lr: 0.01,
    seconds: Math.round(pre.seconds),
    final_loss: Number(pre.loss.toFixed(4)),
  },
  loss_curve: result.lossCurve.map((x) => Number(x.toFixed(4))),
  train_pairs: data.train.length,
  train_modules: data.trainModules.length,
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

- **Data**: @offramp/train's code-search set (Debian's Python 3.11 standard library; query = a docstring's
  summary sentence, document = the function without its docstring), split by top-level module:
  ${data.train.length.toLocaleString('en-US')} training pairs from ${data.trainModules.length} modules; the ${data.test.length.toLocaleString('en-US')} pairs of the other ${data.testModules.length} modules are held out.
  See docs/data-code-search.md.
- **Tokenizer**: ${CODE_TOKENIZER_FILE}, GPT-2's byte-level BPE cut to its first ${CODE_MERGES} merges (${vocabSize} ids
  with <|pad|> = ${padId}); texts are put on one line (whitespace runs → one space) first. Queries are cut at
  ${QUERY_LEN} tokens, code at ${CODE_LEN}.
- **Training** (\`${variant === 'mose' ? 'pnpm train:code-search' : `pnpm train:code-search --variant ${variant}`}\`): ${recipe}. ${steps} steps of ${batchSize} pairs
  (${((steps * batchSize) / data.train.length).toFixed(1)} epochs; batches drawn from groups of similar code length), Adam, lr ${lr}, seed ${seed},
  ${Math.round(result.seconds)} s on the tfjs ${a.backend} backend, after a stage 0 that trains the token embeddings
  as a bag-of-embeddings dual encoder with the same loss (${PRE_STEPS} steps of 128 pairs, ${Math.round(pre.seconds)} s; shared by the three variants). Loss per tenth of the run: ${training.loss_curve.join(', ')}.
- **Results**: recall@1/10 and MRR per exit on the held-out modules: docs/results-embeddings.md.
- **Use**: \`offramp embed --model DIR [--exit K] text...\`; the engine's \`embed()\` in @offramp/core.
- **Licence** of the training data: Python Software Foundation License (LICENSE-python.txt in the data cache).
`,
);
console.log(`wrote ${outDir} (${params} parameters, ${result.seconds.toFixed(0)} s)`);
