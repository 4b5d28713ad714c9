// Writes MODEL_CARD.md for the shipped austen-decoder checkpoint from the train-log.json of both recipes.
// Usage: tsx scripts/austen-decoder-card.ts --shipped DIR --other DIR
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

function arg(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || !process.argv[i + 1]) throw new Error(`missing --${name} DIR`);
  return path.resolve(process.argv[i + 1]);
}

interface Log {
  recipe: string;
  recipe_text: string;
  seed: number;
  backend: string;
  dims: Record<string, number>;
  parameters: number;
  exits: number[];
  exit_loss_scales: number[];
  layer_dropout: number[];
  layer_dropout_observed: number[];
  batch: { sequences: number; length: number };
  optimizer: Record<string, unknown>;
  budget: { minutes?: number; steps?: number };
  steps: number;
  tokens: number;
  train_minutes: number;
  tokens_per_second: number;
  train_chars: number;
  heldout: { title: string; chars: number; evaluated_chars: number; window: number; windows: number };
  heldout_bpc: number[];
  heldout_bpc_f16: number[];
  f16_max_delta: number;
  dtype: string;
  eval_minutes: number;
  reference_check: { max_abs_diff_bpc: number };
  command: string;
}

const shippedDir = arg('shipped');
const noteAt = process.argv.indexOf('--note');
const note = noteAt >= 0 ? process.argv[noteAt + 1] : '';
const earlierAt = process.argv.indexOf('--earlier');
// an earlier pair of runs with the same settings: DIR_SHIPPED_RECIPE,DIR_OTHER_RECIPE
const earlier = earlierAt >= 0 ? process.argv[earlierAt + 1].split(',').map((d) => path.resolve(d)) : [];
const otherDir = arg('other');
const read = (d: string) => JSON.parse(readFileSync(path.join(d, 'train-log.json'), 'utf8')) as Log;
const a = read(shippedDir);
const b = read(otherDir);
const f = (x: number) => x.toFixed(3);
const L = a.dims.layers;
const rows = a.exits
  .map(
    (e, j) =>
      `| after block ${e} (${e + 1} of ${L}) | ${f(a.heldout_bpc[j])} | ${f(b.heldout_bpc[j])} | ${a.exit_loss_scales[j].toFixed(3)} | ${a.layer_dropout[e].toFixed(3)} |`,
  )
  .join('\n');
const runRow = (x: Log) =>
  `| ${x.recipe} | ${x.steps} | ${x.tokens} | ${x.train_minutes} | ${x.tokens_per_second} | ${x.eval_minutes} | ${x.dtype} (F16 Δbpc ≤ ${x.f16_max_delta.toFixed(5)}) | ${x.reference_check.max_abs_diff_bpc.toExponential(1)} |`;
const name = (x: Log) => (x.recipe === 'layerskip' ? 'LayerSkip' : 'joint + self-distillation');

const card = `# austen-decoder: a character-level Llama-style decoder with early exits

A ${L}-block Llama-architecture decoder (hidden ${a.dims.d}, ${a.dims.heads} attention heads with ${a.dims.kvHeads} key/value heads
(grouped-query attention, head width ${a.dims.d / a.dims.heads}), RoPE θ = ${a.dims.ropeTheta}, SwiGLU intermediate ${a.dims.ffn}, RMSNorm ε = ${a.dims.eps},
context ${a.dims.maxPos}, **tied** embedding / LM head; ${a.parameters} parameters) trained on characters of Jane Austen's
novels by the **${name(a)}** recipe. Exits after blocks ${a.exits.join(', ')} (0-based; the last is the full model) all read the
shared final norm \`model.norm\` and the tied head (LayerSkip style).

- **Files**: \`config.json\` (Hugging Face \`LlamaForCausalLM\` keys; \`tie_word_embeddings: true\`, \`torch_dtype: ${a.dtype === 'F16' ? 'float16' : 'float32'}\`; an
  \`offramp\` section with \`exits\`, \`tokenizer\`, \`recipe\`, the exit-loss scales, layer-dropout rates and held-out bits per
  character), \`model.safetensors\` (${a.dtype}; HF names \`model.embed_tokens.weight\`, \`model.layers.{i}.{input_layernorm,post_attention_layernorm}.weight\`,
  \`model.layers.{i}.self_attn.{q,k,v,o}_proj.weight\`, \`model.layers.{i}.mlp.{gate,up,down}_proj.weight\` in the Linear layout (out, in),
  \`model.norm.weight\`; no \`lm_head.weight\`, no biases), \`char-tokenizer.json\` (@offramp/train's CharTokenizer, the same format
  and vocabulary as \`checkpoints/austen-mamba\`: id 0 = unknown, then every code point of the six novels; ${a.dims.vocab} ids),
  \`train-log.json\` (settings, progress, per-exit results, the F16 and reference checks).
- **Conventions** (checked by a float64 forward written separately from the training graph, which recomputes the
  held-out loss of windows from the saved file): RMSNorm x·(mean(x²)+ε)^(−1/2)·w; RoPE rotate_half (dims i and i + hd/2 pair,
  inv_freq_i = θ^(−2i/hd)), positions from 0 in each window; attention q·k/√hd, causal, query head h reads key/value head
  ⌊h/${a.dims.heads / a.dims.kvHeads}⌋; MLP down(silu(gate x)·up x). Largest |Δ bits/char| between that forward and TensorFlow.js on ${2} windows
  of the saved file: ${a.reference_check.max_abs_diff_bpc.toExponential(1)} (${a.recipe}), ${b.reference_check.max_abs_diff_bpc.toExponential(1)} (${b.recipe}).
- **Data**: the six novels of the janeaustenr R package (\`loadAusten()\`). Training: the five novels other than *${a.heldout.title}*,
  joined with blank lines (${a.train_chars} characters). Held out: *${a.heldout.title}* (${a.heldout.chars} characters). No KJV.

## Recipes (same model, data, seed ${a.seed}, optimiser and budget)
- **LayerSkip**: layer dropout per sequence with p(l) = S(t)·D(l)·p_max, D(l) = e^{l·ln2/(L−1)} − 1, p_max = 0.2 and a constant
  curriculum S(t) = 1 (rates per block: ${(a.recipe === 'layerskip' ? a : b).layer_dropout.map((p) => p.toFixed(3)).join(', ')}; drawn:
  ${(a.recipe === 'layerskip' ? a : b).layer_dropout_observed.map((p) => p.toFixed(3)).join(', ')}); early-exit loss Σ ẽ(l)·CE_l at every exit,
  e(l) = e_scale·Σ_{i=0}^{l} i below the top and e(L−1) = L−1 + e_scale·Σ_{i=0}^{L−2} i, e_scale = 1, normalised over the exits
  (ẽ = ${(a.recipe === 'layerskip' ? a : b).exit_loss_scales.map((x) => x.toFixed(3)).join(', ')}); every exit in every step (no exit curriculum
  C(t, l): the shared head costs little at this vocabulary). Block 0 would get e(0) = 0, so it has no exit.
- **Joint + self-distillation**: (1/${a.exits.length})·Σ CE_l over the exits + 1·(1/${a.exits.length - 1})·Σ KL(p_final ‖ p_l) over the early
  exits, the final exit's distribution detached (no gradient through the teacher). No layer dropout.
- Both: windows of ${a.batch.length} characters at seeded random offsets, ${a.batch.sequences} per step; AdamW (lr ${a.optimizer.lr}, β = (0.9, 0.95),
  weight decay ${a.optimizer.weight_decay} on matrices, global gradient-norm clip ${a.optimizer.clip_norm}), ${a.optimizer.warmup_steps} warm-up steps, then a cosine decay to
  ${a.optimizer.cosine_floor}·lr over a wall-clock budget of ${a.budget.minutes} minutes (the schedule estimates the step count from the pace).
  TensorFlow.js autograd on its WebAssembly backend (\`--backend wasm\`, the default; see *Speed*).

## Held-out bits per character per exit
${a.heldout.evaluated_chars} characters of *${a.heldout.title}*: ${a.heldout.windows} consecutive windows of ${a.heldout.window} from its start, each window
from a fresh context (the first characters of a window see little context).

| exit | ${name(a)} (shipped) | ${name(b)} | LayerSkip ẽ(l) | LayerSkip p(l) |
|---|---|---|---|---|
${rows}

| recipe | steps | tokens | train minutes | tokens/s | eval minutes | saved as | reference Δbpc |
|---|---|---|---|---|---|---|---|
${runRow(a)}
${runRow(b)}

The ${name(b)} run is shipped beside it in \`checkpoints/austen-decoder-${b.recipe}/\` (same format, its own train-log.json).

${earlierText()}## Speed and what the numbers mean
Both runs ran at the same time on a shared 2-core machine without a GPU, with other work running${note ? ` (${note})` : ''},
so each run had a fraction of the machine: the model saw only ${a.tokens} characters
(${(a.tokens / a.train_chars).toFixed(3)} of an epoch). It is an early-training checkpoint: its exits differ from each other, which is what
exit research needs, but its quality is far from what the architecture reaches with more compute (for scale:
\`austen-mamba\`, 183k parameters, saw 1.2M characters in 36 minutes and reached 2.14 bits/char at its last exit).
Backend, measured by hand on this model (hidden 128, batch 4 × 128 as trained, one forward + backward, median of the last
3 of 4 repeats, on a quiet machine, load average 1.4-1.8): WebAssembly 1.34 s, WebGPU on Dawn/lavapipe 1.97 s, CPU 7.8 s;
hence \`--backend wasm\` (512 / 1.34 s ≈ 380 tokens/s for forward and backward alone; the two concurrent runs got ${a.tokens_per_second} and ${b.tokens_per_second} with the
AdamW update and the other work). In a WebGPU kernel profile of the forward, the backend's softmax took 1.1 s of 3.3 s, so the model writes softmax
out (max, exp, sum, divide).

## Reproduce
\`\`\`
${a.command} --out checkpoints/austen-decoder
${b.command} --out checkpoints/austen-decoder-${b.recipe}
\`\`\`
(\`pnpm train:austen-decoder --recipe layerskip|selfdistill --minutes N --seed S --out DIR\`; \`--steps N\` trains a fixed number of
steps instead, \`--backend wasm|webgpu|cpu\`, \`--eval-windows N\`.) Step counts depend on the machine's speed because the schedule follows
the wall-clock budget. This card: \`pnpm --filter @offramp/train exec tsx scripts/austen-decoder-card.ts --shipped DIR --other DIR\`.
`;
writeFileSync(path.join(shippedDir, 'MODEL_CARD.md'), card);

function earlierText(): string {
  if (earlier.length !== 2) return '';
  const [ea, eb] = earlier.map(read);
  const er = ea.exits
    .map((e, j) => `| after block ${e} | ${f(ea.heldout_bpc[j])} | ${f(eb.heldout_bpc[j])} |`)
    .join('\n');
  return `An earlier pair of runs with the same settings and seed, evaluated on ${ea.heldout.evaluated_chars} characters (the first ${ea.heldout.windows}
windows), under heavier load (${ea.steps} and ${eb.steps} steps, ${ea.tokens_per_second} and ${eb.tokens_per_second} tokens/s):

| exit | ${name(ea)} | ${name(eb)} |
|---|---|---|
${er}

`;
}
console.log(`wrote ${path.join(shippedDir, 'MODEL_CARD.md')}`);
