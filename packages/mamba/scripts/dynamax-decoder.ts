// DYNAMAX for the Llama-style decoder: exit classifiers (a Mamba block keeping its own state across tokens,
// and a CALM-style FFN) read the decoder's hidden state at each early exit; trained by distillation against
// the full model (target: the exit's top-1 token is among the full model's top-k), then compared at matched
// agreement with the full model's argmax on held-out text (teacher forcing) against a plain maxProb
// threshold and fixed exits: mean blocks per token.
//   1. simulation: the full model's teacher-forced hidden states at every exit (the classifiers' state
//      carried across all tokens); each rule leaves at the first early exit whose score ≥ t; the threshold
//      swept to the least compute at agreement ≥ the target;
//   2. engine: the matched thresholds run token by token through the decoder's step (GenerationModel, CALM
//      propagation of the skipped blocks' K/V, the classifier state carried across steps), same text.
// Writes exit-classifier-{mamba,ffn}.safetensors and dynamax-decoder.json into --out (default: the model
// folder) and docs/results-dynamax-decoder.md.
// Usage: pnpm --filter @offramp/mamba run dynamax:decoder [--model DIR] [--out DIR] [--device gpu|cpu]
//   [--topk 2] [--windows 192] [--length 128] [--classifier-steps 300] [--streams 16] [--tokens 256]
//   [--engine-tokens 128] [--docs FILE]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDevice, decoderGenerationModel, type GenerationModel, mulberry32 } from '@offramp/core';
import { loadDecoderLM } from '@offramp/core/node';
import { loadAusten } from '@offramp/train';
import {
  classifierDeviceLogits,
  type DecoderExitFeatures,
  decoderExitFeatures,
  dynamaxDecoderModel,
} from '../src/decoder-dynamax.js';
import {
  type ExitClassifierConfig,
  ExitClassifiers,
  exitClassifiersToSafetensors,
  readExitClassifiers,
} from '../src/exit-classifier.js';
import { classifiersToTensors, type ExitTargets, trainExitClassifiers } from '../src/train/classifier-train.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const dir = path.resolve(arg('model', path.join(root, 'checkpoints/austen-decoder')));
if (!existsSync(path.join(dir, 'config.json'))) {
  console.error(
    `dynamax-decoder: no decoder folder at ${dir} (config.json missing); pass --model DIR, a Llama folder with an offramp exits section and a char tokenizer (e.g. checkpoints/austen-decoder)`,
  );
  process.exit(2);
}
const out = path.resolve(arg('out', dir));
mkdirSync(out, { recursive: true });
const docsFile = path.resolve(arg('docs', path.join(root, 'docs/results-dynamax-decoder.md')));
const backend = arg('device', 'gpu') as 'gpu' | 'cpu';
const topk = Number(arg('topk', '2'));
const windows = Number(arg('windows', '192'));
const T = Number(arg('length', '128'));
const classifierSteps = Number(arg('classifier-steps', '300'));
const streams = Number(arg('streams', '16'));
const tokens = Number(arg('tokens', '256'));
const engineTokens = Number(arg('engine-tokens', '128'));
const targets = [0.95, 0.98, 0.99];
const seed = 1;
const t0 = performance.now();
const log = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)}s] ${s}`);

const device = await createDevice({ backend });
const { model: lm, loaded } = await loadDecoderLM(dir, device);
if (!loaded.tokenizer) throw new Error(`${dir}: the folder has no tokenizer; DYNAMAX needs one to encode the text`);
const tok = loaded.tokenizer;
const L = lm.numLayers;
const exits = [...lm.exits];
const early = exits.slice(0, -1);
if (early.length === 0) throw new Error(`${dir}: the decoder has no early exits (offramp.exits); nothing to classify`);
const maxT = lm.config.maxPositionEmbeddings;
if (T > maxT || tokens > maxT)
  throw new Error(`--length ${T} and --tokens ${tokens} must be ≤ the decoder's ${maxT} positions`);
log(`decoder ${dir}: ${L} blocks, d ${lm.d}, vocab ${lm.V}, exits [${exits}] on ${device.describe()}`);

const corpus = loadAusten();
const trainIds = tok.encode(corpus.train.map((n) => n.text).join('\n\n\n'));
const heldIds = tok.encode(corpus.heldOut.text);

// 1. distillation data on training windows
const rand = mulberry32(seed);
const trainWindows = Array.from({ length: windows }, () => {
  const o = Math.floor(rand() * (trainIds.length - T));
  return trainIds.slice(o, o + T);
});
const data: ExitTargets = await decoderExitFeatures(lm, trainWindows, topk);
const positives = data.labels.map((l) => l.reduce((a, v) => a + v, 0) / l.length);
log(
  `distillation data: ${windows}×${T} positions; exit's top-1 in the full top-${topk} at exits [${early}]: ${positives.map((p) => p.toFixed(3))}`,
);

// 2. the classifiers
const classifierConfigs: Record<'mamba' | 'ffn', ExitClassifierConfig> = {
  mamba: { kind: 'mamba', exits: early, hiddenSize: lm.d, inner: 32, stateSize: 8, rank: 4, convKernel: 4 },
  ffn: { kind: 'ffn', exits: early, hiddenSize: lm.d, hidden: 64 },
};
const kinds = ['mamba', 'ffn'] as const;
const trainInfo: Record<string, unknown> = {};
const classifiers = {} as Record<'mamba' | 'ffn', ExitClassifiers>;
for (const kind of kinds) {
  const c = classifierConfigs[kind];
  const tt = performance.now();
  const { params, losses } = trainExitClassifiers(c, data, { steps: classifierSteps, batch: 8, seed, log });
  const file = path.join(out, `exit-classifier-${kind}.safetensors`);
  writeFileSync(file, exitClassifiersToSafetensors(c, classifiersToTensors(c, params)));
  trainInfo[kind] = {
    steps: classifierSteps,
    batch: 8,
    final_loss: losses[losses.length - 1],
    seconds: +((performance.now() - tt) / 1000).toFixed(1),
    file: path.basename(file),
  };
  const back = readExitClassifiers(readFileSync(file), file);
  classifiers[kind] = new ExitClassifiers(device, back.config, back.tensors);
  log(`wrote ${file}`);
}

// 3. held-out streams (teacher forcing from an empty cache), features at every exit
const stride = Math.floor((heldIds.length - tokens) / streams);
const held = Array.from({ length: streams }, (_, b) => heldIds.slice(b * stride, b * stride + tokens));
const feats: DecoderExitFeatures = await decoderExitFeatures(lm, held, topk);
const M = feats.Bt * feats.T;
const full = feats.argmax[exits.length - 1];
const scores: Record<string, Float32Array[]> = { maxProb: feats.maxProb.slice(0, -1) };
for (const kind of kinds)
  scores[kind] = (await classifierDeviceLogits(classifiers[kind], feats)).map((z) =>
    Float32Array.from(z, (x) => 1 / (1 + Math.exp(-x))),
  );
const agreeAt = early.map((_, e) => {
  let a = 0;
  for (let m = 0; m < M; m++) if (feats.argmax[e][m] === full[m]) a++;
  return a / M;
});
log(
  `held-out: ${streams}×${tokens} positions; agreement of each early exit with the full model: ${agreeAt.map((a) => a.toFixed(3))}`,
);

/** Leave at the first early exit whose score ≥ t: agreement with the full argmax and mean blocks / L. */
function simulate(s: Float32Array[], t: number): { agreement: number; blocks: number; exits: number[] } {
  let agree = 0;
  let blocks = 0;
  const counts = exits.map(() => 0);
  for (let m = 0; m < M; m++) {
    let e = 0;
    while (e < early.length && !(s[e][m] >= t)) e++;
    counts[e]++;
    blocks += exits[e] + 1;
    if (feats.argmax[e][m] === full[m]) agree++;
  }
  return { agreement: agree / M, blocks: blocks / (M * L), exits: counts.map((c) => c / M) };
}

/** Candidate thresholds: quantiles of the scores (plus +∞ = full depth). */
function candidates(s: Float32Array[]): number[] {
  const all = Float32Array.from(s.flatMap((x) => Array.from(x))).sort();
  const out = new Set<number>([Number.POSITIVE_INFINITY]);
  for (let i = 0; i < 2000; i++) out.add(all[Math.floor((i / 2000) * all.length)]);
  for (let i = 1; i <= 200; i++) out.add(all[Math.max(0, all.length - i)]); // fine steps near the top
  return [...out];
}

interface Matched {
  rule: string;
  target: number;
  threshold: number | null;
  block?: number;
  sim: { agreement: number; blocks: number; exits: number[] };
  engine?: { agreement: number; blocks: number; positions: number; seconds: number };
}
const matched: Matched[] = [];
const curves: Record<string, { threshold: number; agreement: number; blocks: number }[]> = {};
for (const rule of ['maxProb', ...kinds]) {
  const pts = candidates(scores[rule]).map((t) => ({ threshold: t, ...simulate(scores[rule], t) }));
  curves[rule] = pts
    .map(({ threshold, agreement, blocks }) => ({ threshold, agreement, blocks }))
    .sort((a, b) => a.blocks - b.blocks);
  for (const target of targets) {
    const ok = pts.filter((p) => p.agreement >= target).sort((a, b) => a.blocks - b.blocks)[0];
    matched.push({
      rule,
      target,
      threshold: ok.threshold,
      sim: { agreement: ok.agreement, blocks: ok.blocks, exits: ok.exits },
    });
  }
}
// fixed exits: the shallowest exit whose agreement reaches the target (the full depth otherwise)
for (const target of targets) {
  const e = agreeAt.findIndex((a) => a >= target);
  const block = e >= 0 ? early[e] : L - 1;
  matched.push({
    rule: 'fixed',
    target,
    threshold: null,
    block,
    sim: {
      agreement: e >= 0 ? agreeAt[e] : 1,
      blocks: (block + 1) / L,
      exits: exits.map((x) => (x === block ? 1 : 0)),
    },
  });
}
// the oracle: the first exit whose argmax already equals the full model's (a lower bound at 100%)
let oracleBlocks = 0;
for (let m = 0; m < M; m++) {
  let e = 0;
  while (e < early.length && feats.argmax[e][m] !== full[m]) e++;
  oracleBlocks += exits[e] + 1;
}
const oracle = oracleBlocks / (M * L);
for (const r of matched)
  log(
    `sim ${r.rule} @${r.target}: threshold ${r.threshold ?? `block ${r.block}`} agreement ${r.sim.agreement.toFixed(4)} blocks ${r.sim.blocks.toFixed(3)}`,
  );
log(`oracle (first exit agreeing with the full model): blocks ${oracle.toFixed(3)}`);

// 4. engine: the matched thresholds through the decoder's step, teacher-forced on the first engineTokens
const plain = decoderGenerationModel(lm);
const withCls = { mamba: dynamaxDecoderModel(lm, classifiers.mamba), ffn: dynamaxDecoderModel(lm, classifiers.ffn) };
const En = Math.min(engineTokens, tokens);
async function engine(
  model: GenerationModel,
  decide: ((s: { maxProb: Float32Array; gate: Float32Array }, block: number) => boolean[]) | null,
) {
  const ts = performance.now();
  const cache = model.newCache(streams, En);
  let agree = 0;
  let blocks = 0;
  let n = 0;
  try {
    await model.prefill(
      held.map((q) => [q[0]]),
      cache,
    );
    for (let t = 1; t < En; t++) {
      const r = await model.step(
        held.map((q) => q[t]),
        cache,
        decide ? { decide: (s, ctx) => decide(s, ctx.block) } : undefined,
      );
      blocks += r.blocksRun;
      for (let b = 0; b < streams; b++) {
        const z = r.logits.subarray(b * lm.V, (b + 1) * lm.V);
        let best = 0;
        for (let v = 1; v < lm.V; v++) if (z[v] > z[best]) best = v;
        if (best === full[b * tokens + t]) agree++;
        n++;
      }
    }
  } finally {
    cache.dispose();
  }
  return { agreement: agree / n, blocks: blocks / (n * L), positions: n, seconds: (performance.now() - ts) / 1000 };
}
if (En > 1) {
  for (const r of matched) {
    if (r.rule === 'fixed') {
      const block = r.block!;
      r.engine = await engine(plain, block === L - 1 ? null : (s, b) => Array.from(s.maxProb, () => b === block));
    } else {
      const t = r.threshold!;
      const model = r.rule === 'maxProb' ? plain : withCls[r.rule as 'mamba' | 'ffn'];
      const key = r.rule === 'maxProb' ? 'maxProb' : 'gate';
      r.engine = await engine(model, (s) => Array.from(s[key], (x) => x >= t));
    }
    log(
      `engine ${r.rule} @${r.target}: agreement ${r.engine.agreement.toFixed(4)} blocks ${r.engine.blocks.toFixed(3)} (${r.engine.seconds.toFixed(1)} s)`,
    );
  }
}

const rel = (p: string) => path.relative(root, p).split(path.sep).join('/') || p;
const result = {
  model: rel(dir),
  classifiers_dir: rel(out),
  device: device.describe(),
  decoder: { layers: L, hidden: lm.d, vocab: lm.V, exits },
  distillation: {
    windows,
    length: T,
    topk,
    target: `exit top-1 in the full model's top-${topk}`,
    positive_rate: positives,
    loss_weights: early.map((_, j) => 1 - j / early.length),
    classifiers: trainInfo,
    configs: classifierConfigs,
  },
  heldout: { title: corpus.heldOut.title, streams, tokens_per_stream: tokens, positions: M, engine_tokens: En },
  exit_agreement: Object.fromEntries(early.map((e, i) => [e, agreeAt[i]])),
  oracle_blocks: oracle,
  matched,
  curves,
};
writeFileSync(path.join(out, 'dynamax-decoder.json'), `${JSON.stringify(result, null, 1)}\n`);

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const label = (r: Matched) =>
  r.rule === 'fixed'
    ? `fixed exit after block ${r.block}`
    : r.rule === 'maxProb'
      ? `max prob ≥ ${r.threshold!.toPrecision(6)}`
      : `${r.rule} classifier σ ≥ ${r.threshold!.toPrecision(6)}`;
const table = targets
  .map((target) =>
    matched
      .filter((r) => r.target === target)
      .map(
        (r) =>
          `| ${pct(target)} | ${label(r)} | ${pct(r.sim.agreement)} | **${pct(r.sim.blocks)}** | ${r.sim.exits.map((c) => (100 * c).toFixed(0)).join(' / ')} | ${r.engine ? pct(r.engine.agreement) : '–'} | ${r.engine ? pct(r.engine.blocks) : '–'} |`,
      )
      .join('\n'),
  )
  .join('\n');
writeFileSync(
  docsFile,
  `# DYNAMAX exit classifiers on the decoder

Generated by \`pnpm --filter @offramp/mamba run dynamax:decoder --model ${rel(dir)}\` (packages/mamba/scripts/dynamax-decoder.ts);
raw numbers in \`dynamax-decoder.json\` next to the classifiers.

**Model**: ${rel(dir)}, a ${L}-block Llama-style character decoder (d ${lm.d}, vocabulary ${lm.V}), exits after blocks
${exits.join(', ')} (exit = norm + LM head). **Device**: ${device.describe()}.

**Classifiers** (one per early exit, reading the decoder's hidden state after the exit block): **mamba** = a Mamba block
(inner ${classifierConfigs.mamba.inner}, state ${classifierConfigs.mamba.stateSize}, conv ${classifierConfigs.mamba.convKernel}) with out_proj → 1 logit, keeping its own conv/SSM state across tokens; **ffn** =
CALM-style Linear(${lm.d}→${classifierConfigs.ffn.hidden}) + ReLU + Linear(${classifierConfigs.ffn.hidden}→1), per token. Trained by distillation against the full model on
${windows} windows of ${T} training characters (all novels but *${corpus.heldOut.title}*): target 1 when the exit's top-1 character is
among the full model's top-${topk} (DYNAMAX's relaxed target), BCE with per-exit weights ${early.map((_, j) => (1 - j / early.length).toFixed(2)).join(', ')} decaying linearly,
${classifierSteps} AdamW steps of 8 windows (float64 trainer of classifier-train.ts). Positive rate per exit: ${positives.map(pct).join(', ')}.

**Held-out**: ${streams} streams of ${tokens} characters at evenly spaced offsets of *${corpus.heldOut.title}*, teacher-forced from an empty
cache (${M} positions). Agreement of each early exit's argmax with the full model's: ${early.map((e, i) => `block ${e}: ${pct(agreeAt[i])}`).join(', ')}.
Oracle (leave at the first exit whose argmax already equals the full model's): ${pct(oracle)} of the blocks.

**Rules**: leave at the first early exit whose score ≥ t (maxProb: the exit's max softmax probability; mamba / ffn:
σ(classifier logit)); one t for all exits, the one with the least compute whose agreement reaches the target
(swept over ~2,200 quantiles of the scores). Fixed exit: the shallowest exit whose agreement reaches the target.

Columns: *sim* = the full model's teacher-forced hidden states at every exit (what the classifiers were trained on;
the classifier state sees every token); *engine* = the same threshold run through the decoder's \`step\`
(\`GenerationModel\`, CALM propagation of the skipped blocks' K/V from the exit's hidden state, the classifier's state
carried across steps and advanced at exit j only by tokens reaching it), teacher-forced on the first ${En} characters of
each stream (positions 1..${En - 1}). Blocks = mean blocks run per token / ${L}; exits = share of tokens leaving after
block ${exits.join(' / ')} (sim).

| target agreement | rule | agreement (sim) | blocks (sim) | exits (sim) | agreement (engine) | blocks (engine) |
|---|---|---|---|---|---|---|
${table}

## The paper, beside ours

research.md (DYNAMAX section) records the setup, not numbers: exits only in the latter half of the layers; three exit
classifiers (a CALM-style one-layer FFN, a Transformer-block-shaped FFN, and a Mamba block with a modified output
projection, one logit → sigmoid) compared; the Mamba classifier keeps its own conv/SSM state across tokens;
distillation against the full model with the relaxed target (top-1 in the full model's top-k) and per-exit loss
weights decaying linearly; evaluated on Mistral 7B vs Codestral Mamba 7B with TruthfulQA, CoQA and TriviaQA (compute
saved, accuracy, consistency with the full model). "No public code; some details above are from summaries
(reconstructed)." No compute-saved or consistency figures of the paper are recorded there, so none are quoted here.
Differences here: a ${L}-block character model instead of a 7B model, exits ${early.join(', ')} as the checkpoint defines them
(not only the latter half), consistency with the full model measured token by token under teacher forcing.
`,
);
log(`wrote ${path.join(out, 'dynamax-decoder.json')} and ${docsFile}`);
for (const kind of kinds) classifiers[kind].dispose();
lm.dispose();
device.destroy();
