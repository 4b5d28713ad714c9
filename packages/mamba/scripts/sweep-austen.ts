// Threshold sweep of token-level early exit on the Austen character model: for each exit rule (max softmax
// probability, entropy, Mamba exit classifier, FFN exit classifier) and each skipped-state treatment (freeze,
// partial), runs MambaLM.score on the same held-out streams as dynamax-austen.ts from the loosest threshold to
// stricter ones until top-1 agreement with the full model reaches the target, then bisects between the last
// two thresholds. Also scores each fixed exit. Writes bench/results/austen-sweep.json after every run.
// Usage: pnpm --filter @offramp/mamba run sweep:austen --
//   [--dir DIR] [--device gpu|cpu] [--streams 16] [--tokens 256] [--target 0.95] [--bisect 2]
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDevice } from '@offramp/core';
import { CharTokenizer, loadAusten } from '@offramp/train';
import { type ExitClassifierConfig, ExitClassifiers, readExitClassifiers } from '../src/exit-classifier.js';
import { type ExitOptions, type ExitRule, MambaLM, type ScoreResult } from '../src/model.js';
import { loadMambaDir } from '../src/node.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.resolve(arg('dir', path.join(here, '../../../checkpoints/austen-mamba')));
// recorded relative to the repository (absolute only when outside it), so results do not name this machine's folders
const repoPath = (p: string): string => {
  const rel = path.relative(path.resolve(here, '../../..'), p);
  return rel.startsWith('..') || path.isAbsolute(rel) ? p : rel.split(path.sep).join('/');
};
const backend = arg('device', 'gpu') as 'gpu' | 'cpu';
const streams = Number(arg('streams', '16'));
const steps = Number(arg('tokens', '256'));
const target = Number(arg('target', '0.95'));
const bisect = Number(arg('bisect', '2'));
const outFile = path.resolve(arg('out', path.join(here, '../bench/results/austen-sweep.json')));
const t0 = performance.now();
const log = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)}s] ${s}`);

const loaded = await loadMambaDir(dir);
const cfg = loaded.config;
const exits: number[] = cfg.exits ?? JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')).offramp?.exits;
const tok = CharTokenizer.load(path.join(dir, 'char-tokenizer.json'));
const corpus = loadAusten();
const heldIds = tok.encode(corpus.heldOut.text);
// the same streams as dynamax-austen.ts
const stride = Math.floor((heldIds.length - steps - 1) / streams);
const seqs = Array.from({ length: streams }, (_, b) =>
  Array.from(heldIds.subarray(b * stride, b * stride + steps + 1)),
);

const device = await createDevice({ backend });
const model = new MambaLM(device, cfg, loaded.tensors, { exits });
const classifierConfig = (kind: 'mamba' | 'ffn'): { config: ExitClassifierConfig; cls: ExitClassifiers } => {
  const r = readExitClassifiers(readFileSync(path.join(dir, `exit-classifier-${kind}.safetensors`)));
  return { config: r.config, cls: new ExitClassifiers(device, r.config, r.tensors) };
};
const classifiers = { mamba: classifierConfig('mamba'), ffn: classifierConfig('ffn') };

interface Run {
  rule: string;
  threshold: number | null;
  skip: string;
  bpc: number;
  agreement: number;
  blocks: number;
  partial: number;
  exits: number[];
  seconds: number;
}
const out = {
  model: repoPath(dir),
  device: device.describe(),
  heldout: { title: corpus.heldOut.title, streams, tokens_per_stream: steps, positions: streams * steps },
  shape: {
    d: cfg.hiddenSize,
    D: cfg.intermediateSize,
    N: cfg.stateSize,
    R: cfg.timeStepRank,
    K: cfg.convKernel,
    V: cfg.vocabSize,
    L: cfg.numLayers,
  },
  exitBlocks: exits,
  classifiers: { mamba: classifiers.mamba.config, ffn: classifiers.ffn.config },
  target,
  runs: [] as Run[],
};
let full: ScoreResult | null = null;
async function run(rule: string, threshold: number | null, exit: ExitOptions, cls?: ExitClassifiers): Promise<Run> {
  const ts = performance.now();
  const r = await model.score(seqs, exit, cls);
  if (!full) full = r;
  let agree = 0;
  for (let i = 0; i < r.argmax.length; i++) if (r.argmax[i] === full.argmax[i]) agree++;
  const row: Run = {
    rule,
    threshold,
    skip: exit.rule.kind === 'never' ? '-' : (exit.skip ?? 'freeze'),
    bpc: r.nll / r.count / Math.LN2,
    agreement: agree / r.count,
    blocks: r.blocksRun / (r.count * cfg.numLayers),
    partial: r.partialBlocks / (r.count * cfg.numLayers),
    exits: exits.map((e) => r.exitBlocks.filter((x) => x === e).length / r.count),
    seconds: (performance.now() - ts) / 1000,
  };
  out.runs.push(row);
  writeFileSync(outFile, `${JSON.stringify(out, null, 1)}\n`);
  log(
    `${rule} ${threshold ?? ''} ${row.skip}: bpc ${row.bpc.toFixed(4)} agreement ${row.agreement.toFixed(4)} blocks ${row.blocks.toFixed(3)} partial ${row.partial.toFixed(3)}`,
  );
  return row;
}

await run('full', null, { rule: { kind: 'never' } });
for (const e of exits.slice(0, -1)) await run('fixed', e, { rule: { kind: 'fixed', block: e } });

type Family = { rule: string; grid: number[]; make: (t: number) => ExitRule; cls?: ExitClassifiers };
const families: Family[] = [
  { rule: 'maxProb', grid: [0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98], make: (t) => ({ kind: 'maxProb', threshold: t }) },
  { rule: 'entropy', grid: [2, 1.5, 1, 0.7, 0.5, 0.3, 0.15], make: (t) => ({ kind: 'entropy', threshold: t }) },
  ...(['mamba', 'ffn'] as const).map(
    (k): Family => ({
      rule: `${k}Classifier`,
      grid: [0.9, 0.97, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999],
      make: (t) => ({ kind: 'classifier', threshold: t }),
      cls: classifiers[k].cls,
    }),
  ),
];
for (const skip of ['freeze', 'partial'] as const) {
  for (const f of families) {
    // grid from loose to strict: stop at the first threshold that reaches the target, then bisect
    let prev: number | null = null;
    for (const t of f.grid) {
      const r = await run(f.rule, t, { rule: f.make(t), skip }, f.cls);
      if (r.agreement >= target) {
        let lo = prev;
        let hi = t;
        for (let i = 0; i < bisect && lo !== null; i++) {
          const mid = +((lo + hi) / 2).toPrecision(6);
          const m = await run(f.rule, mid, { rule: f.make(mid), skip }, f.cls);
          if (m.agreement >= target) hi = mid;
          else lo = mid;
        }
        break;
      }
      prev = t;
    }
  }
}
log(`wrote ${outFile}`);
model.dispose();
device.destroy();
