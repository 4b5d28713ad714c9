// DYNAMAX on the Austen character model: trains the exit classifiers (a small Mamba block and a CALM-style
// FFN) by distillation against the full model, then measures token-level early exit on held-out text with
// the engine (MambaLM.score on a Device): bits per character, agreement of each token's argmax with the
// full-depth model's, the fraction of blocks run, for softmax-confidence, entropy, both classifiers and
// fixed exits, each with the skipped blocks' state frozen or partially updated.
// Writes exit-classifier-{mamba,ffn}.safetensors, exits.json and EXITS.md into the checkpoint folder.
// Usage: pnpm --filter @offramp/mamba run dynamax:austen [--dir DIR] [--device gpu|cpu] [--topk 2] [--streams 16]
//   [--tokens 256] [--windows 192] [--classifier-steps 300]
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDevice, mulberry32, parseSafetensors } from '@offramp/core';
import { CharTokenizer, loadAusten } from '@offramp/train';
import {
  type ExitClassifierConfig,
  ExitClassifiers,
  exitClassifiersToSafetensors,
  readExitClassifiers,
} from '../src/exit-classifier.js';
import { type ExitOptions, MambaLM, type ScoreResult } from '../src/model.js';
import { loadMambaDir } from '../src/node.js';
import {
  classifiersToTensors,
  type ExitTargets,
  exitTargets,
  trainExitClassifiers,
} from '../src/train/classifier-train.js';
import { lmFromHf } from '../src/train/export.js';
import { type LmDims, splitWindows } from '../src/train/lm-grad.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.resolve(arg('dir', path.join(here, '../../../checkpoints/austen-mamba')));
const backend = arg('device', 'gpu') as 'gpu' | 'cpu';
const topk = Number(arg('topk', '2'));
const streams = Number(arg('streams', '16'));
const steps = Number(arg('tokens', '256'));
const seed = 1;
const classifierSteps = Number(arg('classifier-steps', '300'));
const t0 = performance.now();
const log = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)}s] ${s}`);

const loaded = await loadMambaDir(dir);
const cfg = loaded.config;
const raw = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
const dm: LmDims = {
  vocab: cfg.vocabSize,
  d: cfg.hiddenSize,
  layers: cfg.numLayers,
  D: cfg.intermediateSize,
  N: cfg.stateSize,
  R: cfg.timeStepRank,
  K: cfg.convKernel,
  eps: cfg.layerNormEpsilon,
};
const exits: number[] = cfg.exits ?? raw.offramp?.exits;
const early = exits.slice(0, -1);
const lm = lmFromHf(parseSafetensors(readFileSync(path.join(dir, 'model.safetensors'))).tensors, dm);
const tok = CharTokenizer.load(path.join(dir, 'char-tokenizer.json'));
const corpus = loadAusten();
const trainIds = tok.encode(corpus.train.map((n) => n.text).join('\n\n\n'));
const heldIds = tok.encode(corpus.heldOut.text);

// 1. distillation data: hidden states at the early exits and relaxed top-k labels on training windows
const T = 128;
const windows = Number(arg('windows', '192'));
const rand = mulberry32(seed);
const chunks: ExitTargets[] = [];
for (let s = 0; s < windows; s += 16) {
  const w = new Int32Array(16 * (T + 1));
  for (let b = 0; b < 16; b++) {
    const o = Math.floor(rand() * (trainIds.length - T - 1));
    w.set(trainIds.subarray(o, o + T + 1), b * (T + 1));
  }
  chunks.push(exitTargets(lm, dm, splitWindows(w, 16, T).inputs, 16, T, early, topk));
}
const data: ExitTargets = {
  Bt: windows,
  T,
  hidden: early.map((_, j) => Float64Array.from(chunks.flatMap((c) => Array.from(c.hidden[j])))),
  labels: early.map((_, j) => Uint8Array.from(chunks.flatMap((c) => Array.from(c.labels[j])))),
};
const positives = data.labels.map((l) => l.reduce((a, v) => a + v, 0) / l.length);
log(
  `distillation data: ${windows}×${T} positions; exit correct (top-1 in full top-${topk}) at exits [${early}]: ${positives.map((p) => p.toFixed(3))}`,
);

// 2. the classifiers
const classifierConfigs: Record<'mamba' | 'ffn', ExitClassifierConfig> = {
  mamba: {
    kind: 'mamba',
    exits: early,
    hiddenSize: dm.d,
    inner: 32,
    stateSize: 8,
    rank: 4,
    convKernel: 4,
    eps: dm.eps,
  },
  ffn: { kind: 'ffn', exits: early, hiddenSize: dm.d, hidden: 64, eps: dm.eps },
};
const trainInfo: Record<string, unknown> = {};
for (const kind of ['mamba', 'ffn'] as const) {
  const c = classifierConfigs[kind];
  const tt = performance.now();
  const { params, losses } = trainExitClassifiers(c, data, { steps: classifierSteps, batch: 8, seed, log });
  const file = path.join(dir, `exit-classifier-${kind}.safetensors`);
  writeFileSync(file, exitClassifiersToSafetensors(c, classifiersToTensors(c, params)));
  trainInfo[kind] = {
    steps: classifierSteps,
    batch: 8,
    final_loss: losses[losses.length - 1],
    seconds: +((performance.now() - tt) / 1000).toFixed(1),
  };
  log(`wrote ${file}`);
}

// 3. measurement with the engine on held-out text
const device = await createDevice({ backend });
const model = new MambaLM(device, cfg, loaded.tensors, { exits });
const classifiers = {
  mamba: new ExitClassifiers(device, classifierConfigs.mamba, classifiersToTensorsFromFile('mamba')),
  ffn: new ExitClassifiers(device, classifierConfigs.ffn, classifiersToTensorsFromFile('ffn')),
};
function classifiersToTensorsFromFile(kind: 'mamba' | 'ffn') {
  return readExitClassifiers(readFileSync(path.join(dir, `exit-classifier-${kind}.safetensors`))).tensors;
}
const stride = Math.floor((heldIds.length - steps - 1) / streams);
const seqs = Array.from({ length: streams }, (_, b) =>
  Array.from(heldIds.subarray(b * stride, b * stride + steps + 1)),
);

interface Row {
  rule: string;
  skip: string;
  bpc: number;
  agreement: number;
  blocks: number;
  partial: number;
  exits: number[];
  seconds: number;
}
const rows: Row[] = [];
let full: ScoreResult | null = null;
async function run(label: string, exit: ExitOptions, cls?: ExitClassifiers): Promise<void> {
  const ts = performance.now();
  const r = await model.score(seqs, exit, cls);
  if (!full) full = r;
  let agree = 0;
  for (let i = 0; i < r.argmax.length; i++) if (r.argmax[i] === full.argmax[i]) agree++;
  const counts = exits.map((e) => r.exitBlocks.filter((x) => x === e).length / r.count);
  const row: Row = {
    rule: label,
    skip: exit.rule.kind === 'never' ? '-' : (exit.skip ?? 'freeze'),
    bpc: r.nll / r.count / Math.LN2,
    agreement: agree / r.count,
    blocks: r.blocksRun / (r.count * dm.layers),
    partial: r.partialBlocks / (r.count * dm.layers),
    exits: counts,
    seconds: (performance.now() - ts) / 1000,
  };
  rows.push(row);
  log(
    `${label} ${row.skip}: bpc ${row.bpc.toFixed(4)} agreement ${row.agreement.toFixed(4)} blocks ${row.blocks.toFixed(3)} partial ${row.partial.toFixed(3)} exits ${counts.map((c) => c.toFixed(2))}`,
  );
}

await run('full depth', { rule: { kind: 'never' } });
for (const skip of ['freeze', 'partial'] as const) {
  for (const e of early) await run(`fixed exit after block ${e}`, { rule: { kind: 'fixed', block: e }, skip });
  for (const t of [0.5, 0.7, 0.9]) await run(`max prob ≥ ${t}`, { rule: { kind: 'maxProb', threshold: t }, skip });
  for (const t of [1.5, 1.0, 0.5]) await run(`entropy ≤ ${t} nats`, { rule: { kind: 'entropy', threshold: t }, skip });
  for (const kind of ['mamba', 'ffn'] as const) {
    for (const t of [0.9, 0.97, 0.99])
      await run(`${kind} classifier σ ≥ ${t}`, { rule: { kind: 'classifier', threshold: t }, skip }, classifiers[kind]);
  }
}

const result = {
  model: path.relative(path.resolve(here, '../../..'), dir).split(path.sep).join('/') || dir, // relative to the repository
  device: device.describe(),
  heldout: { title: corpus.heldOut.title, streams, tokens_per_stream: steps, positions: streams * steps },
  distillation: {
    windows,
    length: T,
    topk,
    positive_rate: positives,
    classifiers: trainInfo,
    loss_weights: early.map((_, j) => 1 - j / early.length),
  },
  rows,
};
writeFileSync(path.join(dir, 'exits.json'), `${JSON.stringify(result, null, 1)}\n`);
const table = rows
  .map(
    (r) =>
      `| ${r.rule} | ${r.skip} | ${r.bpc.toFixed(3)} | ${(100 * r.agreement).toFixed(1)}% | ${(100 * r.blocks).toFixed(1)}% | ${(100 * r.partial).toFixed(1)}% | ${r.exits.map((c) => (100 * c).toFixed(0)).join(' / ')} |`,
  )
  .join('\n');
writeFileSync(
  path.join(dir, 'EXITS.md'),
  `# Token-level early exit on held-out text (DYNAMAX)

Model: this folder's ${dm.layers}-layer character Mamba, exits after blocks ${exits.join(', ')} (exit head = norm_f + the shared LM head).
Held-out text: ${streams} streams of ${steps} characters at evenly spaced offsets of *${corpus.heldOut.title}*, fed one character at
a time from an empty state (teacher forcing), scored under the logits of the exit each character left from.
Engine: \`MambaLM.score\` on ${device.describe()}.

Exit classifiers (one per early exit, trained by distillation on ${windows} windows of ${T} training characters: target 1 when the
exit's top-1 character is in the full model's top-${topk}; loss weights ${early.map((_, j) => (1 - j / early.length).toFixed(2)).join(', ')} decaying linearly over the exits;
${classifierSteps} AdamW steps): **mamba** = a Mamba block (inner ${classifierConfigs.mamba.inner}, state ${classifierConfigs.mamba.stateSize}) reading the exit's hidden
state token by token with its own conv/SSM state, out_proj → 1 logit; **ffn** = CALM-style Linear(${dm.d}→64) + ReLU + Linear(64→1).
Share of positions where the exit's top-1 is in the full model's top-${topk} (training windows): ${positives.map((p) => (100 * p).toFixed(1) + '%').join(', ')}.

Columns: bits per character; agreement of the emitted argmax with the full-depth model's; blocks run (fraction of
the full depth); blocks partially run for skipped layers' state (\`partial\`: in_proj x-half, conv, x_proj δ/B, dt_proj and the
state update; no z, C or out_proj); share of tokens leaving at each exit (${exits.join(' / ')}).

| rule | skipped state | bpc | agreement | blocks run | partial blocks | exits |
|---|---|---|---|---|---|---|
${table}
`,
);
log(`wrote ${path.join(dir, 'exits.json')} and EXITS.md`);
model.dispose();
device.destroy();
