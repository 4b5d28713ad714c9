// Writes docs/results-cascades.md from real runs: uncertainty metrics against compute for single Fashion-MNIST
// models of increasing size, full ensembles, threshold cascades and window cascades of checkpoints/fashion-cascade
// (MNIST test images as the out-of-distribution set), and the JEI-DNN calibration check (ECE of imdb-gates' gate
// exits against imdb-encoder's confidence thresholds at the same compute).
//   pnpm results:cascades [--limit N] [--imdb-limit N] [--backend auto|cpu|gpu|ort-cpu]
// Windows and thresholds are fitted on the validation split (official training images 55000..59999, never
// trained on); every figure is measured on the test splits by Cascade.run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type Backend,
  buildModel,
  Cascade,
  type CascadeResult,
  createDevice,
  type ExitPolicy,
  neverExit,
  Runner,
} from '@offramp/core';
import { confidence, fitWindow, gate, quantile, reliability, windowPolicy } from '@offramp/policies';
import { type RunMetrics, runMetrics } from '../src/cascade-metrics.js';
import { loadEvalData } from '../src/data.js';
import { loadClassifier } from '../src/model.js';
import { svgToPng } from '../src/plot.js';
import { reliabilityImages } from '../src/reliability-plot.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const limit = arg('--limit') ? Number(arg('--limit')) : undefined;
const imdbLimit = Number(arg('--imdb-limit') ?? 2000);
const backend = (arg('--backend') ?? 'auto') as Backend;
const membersDir = arg('--members') ?? join(root, 'checkpoints', 'fashion-cascade');
const skipImdb = process.argv.includes('--skip-imdb');
const GATE_LEVELS = [0.5, 0.58, 0.6, 0.63, 0.66];
const docFile = arg('--doc') ?? join(root, 'docs', 'results-cascades.md');
const t0 = performance.now();
const log = (m: string) => console.error(`[${((performance.now() - t0) / 1000).toFixed(0)}s] ${m}`);

const device = await createDevice({ backend });
log(`device: ${device.describe()}`);
const MEMBERS = ['s0', 's1', 's2', 'm128', 'large'] as const;
type Member = (typeof MEMBERS)[number];
const runners = {} as Record<Member, Runner>;
const params = {} as Record<Member, number>;
const loadedMembers = {} as Record<Member, Awaited<ReturnType<typeof loadClassifier>>>;
let env: Awaited<ReturnType<typeof loadClassifier>>['envelope'] | null = null;
let dir0 = '';
for (const m of MEMBERS) {
  const c = await loadClassifier(join(membersDir, m));
  runners[m] = new Runner(device, buildModel(device, c.envelope.model, c.tensors), { maxBatch: 256 });
  params[m] = c.parameters;
  loadedMembers[m] = c;
  env ??= c.envelope;
  dir0 ||= c.dir;
}
const test = await loadEvalData(env!, dir0, { spec: 'fashion-mnist', split: 'test', limit, fetch: true });
const val = await loadEvalData(env!, dir0, {
  spec: 'fashion-mnist',
  split: 'train',
  offset: 55_000,
  limit: 5000,
  fetch: true,
});
const ood = await loadEvalData(env!, dir0, { spec: 'mnist', split: 'test', limit, fetch: true });
log(`data: ${test.n} test, ${val.n} validation, ${ood.n} MNIST (OOD)`);

const run = (stages: Member[], policy: ExitPolicy<any>, input: typeof test.input): Promise<CascadeResult> =>
  new Cascade(stages.map((m) => ({ runner: runners[m], name: m }))).run(input, { policy, mode: 'host' });
const scoresOf = (r: CascadeResult) => r.samples.map((s) => Math.max(...s.probs));

// operating thresholds of the two tasks on the first stage's validation confidence
const v0 = await run(['s0'], neverExit(), val.input);
const vScores = scoresOf(v0);
const vCorrect = v0.samples.map((s, i) => (s.prediction === val.labels[i] ? 1 : 0));
const { coverageAtRisk } = await import('@offramp/policies');
const tauSel = coverageAtRisk(vScores, vCorrect, 0.05).threshold;
const sorted = [...vScores].sort((a, b) => a - b);
const tauOod = quantile(sorted, 0.05); // 95% of in-distribution validation samples score at least this
const winSel = fitWindow(vScores, tauSel, 0.1);
const winOod = fitWindow(vScores, tauOod, 0.1);
log(
  `τ(5% risk) ${tauSel.toFixed(4)} window [${winSel.wLo.toFixed(4)}, ${winSel.wHi.toFixed(4)}]; τ(95% TPR) ${tauOod.toFixed(4)} window [${winOod.wLo.toFixed(4)}, ${winOod.wHi.toFixed(4)}]`,
);

interface System {
  kind: 'single' | 'ensemble' | 'threshold cascade' | 'window cascade';
  name: string;
  stages: Member[];
  policy: ExitPolicy<any>;
  rule: string;
}
const thr = (t: number) => windowPolicy({ wLo: 0, wHi: t });
const qLevel = (q: number) => quantile(sorted, q);
const systems: System[] = [
  { kind: 'single', name: 's0 (64×2)', stages: ['s0'], policy: neverExit(), rule: '-' },
  { kind: 'single', name: 'm128 (128×2)', stages: ['m128'], policy: neverExit(), rule: '-' },
  { kind: 'single', name: 'large (256×3)', stages: ['large'], policy: neverExit(), rule: '-' },
  { kind: 'ensemble', name: 's0+s1', stages: ['s0', 's1'], policy: neverExit(), rule: 'all stages' },
  { kind: 'ensemble', name: 's0+s1+s2', stages: ['s0', 's1', 's2'], policy: neverExit(), rule: 'all stages' },
  {
    kind: 'threshold cascade',
    name: 's0→s1',
    stages: ['s0', 's1'],
    policy: thr(qLevel(0.2)),
    rule: `leave if p > ${qLevel(0.2).toFixed(4)} (validation 20% quantile)`,
  },
  {
    kind: 'threshold cascade',
    name: 's0→s1',
    stages: ['s0', 's1'],
    policy: thr(qLevel(0.4)),
    rule: `leave if p > ${qLevel(0.4).toFixed(4)} (validation 40% quantile)`,
  },
  {
    kind: 'threshold cascade',
    name: 's0→s1→s2',
    stages: ['s0', 's1', 's2'],
    policy: thr(qLevel(0.4)),
    rule: `leave if p > ${qLevel(0.4).toFixed(4)}`,
  },
  {
    kind: 'window cascade',
    name: 's0→s1 (selective window)',
    stages: ['s0', 's1'],
    policy: windowPolicy(winSel),
    rule: `leave if p ∉ [${winSel.wLo.toFixed(4)}, ${winSel.wHi.toFixed(4)}] (τ = ${tauSel.toFixed(4)} ± 0.10 in quantile)`,
  },
  {
    kind: 'window cascade',
    name: 's0→s1→s2 (selective window)',
    stages: ['s0', 's1', 's2'],
    policy: windowPolicy(winSel),
    rule: 'the same window after each stage',
  },
  {
    kind: 'window cascade',
    name: 's0→s1 (OOD window)',
    stages: ['s0', 's1'],
    policy: windowPolicy(winOod),
    rule: `leave if p ∉ [${winOod.wLo.toFixed(4)}, ${winOod.wHi.toFixed(4)}] (τ = ${tauOod.toFixed(4)} ± 0.10 in quantile)`,
  },
  {
    kind: 'window cascade',
    name: 's0→s1→s2 (OOD window)',
    stages: ['s0', 's1', 's2'],
    policy: windowPolicy(winOod),
    rule: 'the same window after each stage',
  },
];

const results: { sys: System; m: RunMetrics; mEnt: RunMetrics; idRun: CascadeResult }[] = [];
for (const sys of systems) {
  const idRun = await run(sys.stages, sys.policy, test.input);
  const oodRun = await run(sys.stages, sys.policy, ood.input);
  const m = runMetrics(idRun, test.labels, { ood: oodRun });
  const mEnt = runMetrics(idRun, test.labels, { ood: oodRun, score: 'entropy', groups: ['selective', 'ood'] });
  results.push({ sys, m, mEnt, idRun });
  log(
    `${sys.kind} ${sys.name}: acc ${(100 * m.accuracy).toFixed(2)}% cov@5 ${(100 * m.selective!.coverageAt5).toFixed(1)}% flops ${m.flopsPerSample.toFixed(0)}`,
  );
}

// host and device mode on the same run, where the device is a GPU
// host and device mode on the same run, on a WebGPU device (both modes run the WebGPU kernels there; with the
// ONNX Runtime CPU path attached, host mode would run on ONNX Runtime instead)
let modeCheck = 'not run: no WebGPU adapter';
try {
  const gpu = await createDevice({ backend: 'gpu' });
  const stages = (['s0', 's1', 's2'] as const).map((m) => {
    const c = loadedMembers[m];
    return { runner: new Runner(gpu, buildModel(gpu, c.envelope.model, c.tensors), { maxBatch: 256 }) };
  });
  const c = new Cascade(stages);
  const a = await c.run(test.input, { policy: windowPolicy(winSel), mode: 'host' });
  const b = await c.run(test.input, { policy: windowPolicy(winSel), mode: 'device' });
  const differ = a.samples.filter(
    (s, i) => s.stage !== b.samples[i].stage || s.logits.some((v, j) => v !== b.samples[i].logits[j]),
  ).length;
  modeCheck = `${differ === 0 ? 'identical' : `DIFFERENT for ${differ} of`} stages and combined outputs (bit for bit) on all ${test.n} test images, on ${gpu.describe()} (host ${a.summary.wallMs.toFixed(0)} ms, device ${b.summary.wallMs.toFixed(0)} ms)`;
} catch (e) {
  modeCheck = `not run: ${(e as Error).message}`;
}
log(`host/device: ${modeCheck}`);

// JEI-DNN calibration check on IMDB
log('IMDB: loading imdb-gates and imdb-encoder');
const imdb: string[] = [];
const jei: {
  name: string;
  rule: string;
  compute: number;
  accuracy: number;
  ece: number;
  rel: ReturnType<typeof reliability>;
}[] = [];
if (!skipImdb) {
  const load = async (name: string) => {
    const c = await loadClassifier(join(root, 'checkpoints', name));
    const r = new Runner(device, buildModel(device, c.envelope.model, c.tensors), { maxBatch: 64 });
    const d = await loadEvalData(c.envelope, c.dir, { spec: 'imdb', split: 'test', limit: imdbLimit, fetch: true });
    return { r, d };
  };
  const g = await load('imdb-gates');
  const e = await load('imdb-encoder');
  const measure = async (x: typeof g, policy: ExitPolicy<any>, name: string, rule: string) => {
    const res = await x.r.run(x.d.input, { policy, mode: 'host' });
    const correct = res.samples.map((s, i) => (s.prediction === x.d.labels[i] ? 1 : 0));
    const rel = reliability(
      res.samples.map((s) => Math.min(1, Math.max(...s.probs))),
      correct,
      15,
    );
    const row = {
      name,
      rule,
      compute: res.summary.flops / res.summary.fullDepthFlops,
      accuracy: correct.reduce((a: number, b) => a + b, 0) / correct.length,
      ece: rel.ece,
      rel,
    };
    jei.push(row);
    log(`${name} ${rule}: compute ${row.compute.toFixed(3)} ECE ${(100 * row.ece).toFixed(2)}%`);
    return row;
  };
  // the JEI-DNN rule (gate > 0.5) and stricter gate thresholds (this checkpoint's gates at 0.5 send every review
  // out at the first exit); at each, the confidence threshold of each model that spends the same compute
  for (const gt of GATE_LEVELS) {
    const gated = await measure(
      g,
      gate({ threshold: gt }),
      'imdb-gates',
      gt === 0.5 ? 'gate > 0.5 (JEI-DNN rule)' : `gate > ${gt}`,
    );
    for (const [x, name] of [
      [e, 'imdb-encoder'],
      [g, 'imdb-gates'],
    ] as const) {
      let lo = 0.5;
      let hi = 1;
      let best: { tau: number; gap: number } = { tau: 0.9, gap: Number.POSITIVE_INFINITY };
      for (let it = 0; it < 7; it++) {
        const tau = (lo + hi) / 2;
        const res = await x.r.run(x.d.input, { policy: confidence({ threshold: tau }), mode: 'host' });
        const c = res.summary.flops / res.summary.fullDepthFlops;
        if (Math.abs(c - gated.compute) < best.gap) best = { tau, gap: Math.abs(c - gated.compute) };
        if (c < gated.compute) lo = tau;
        else hi = tau;
      }
      await measure(x, confidence({ threshold: best.tau }), name, `max prob ≥ ${best.tau.toFixed(4)} (same compute)`);
    }
  }
  imdb.push(`${g.d.n} IMDB test reviews (the first ${g.d.n} of the 10,000 held out)`);
}

// images (PNG only: the repository's linter reads SVG files as markup)
const outDir = join(dirname(docFile), 'results-cascades');
mkdirSync(outDir, { recursive: true });
const pick = (name: string) => results.find((r) => r.sys.name === name)!;
const relFashion = await reliabilityImages(
  ['large (256×3)', 's0+s1+s2', 's0→s1→s2 (selective window)'].map((n) => ({
    name: n,
    reliability: pick(n).m.calibration!.reliability,
  })),
  `Fashion-MNIST test (${test.n} images): reliability of the combined output`,
);
writeFileSync(join(outDir, 'reliability-fashion.png'), relFashion.png);
// metric against compute, one point per system
{
  const values = results.flatMap(({ sys, m }) =>
    [
      ['coverage at 5% risk', m.selective!.coverageAt5],
      ['misclassification AUROC', m.selective!.misclassificationAuroc],
      ['OOD AUROC (MNIST)', m.ood!.auroc],
      ['ECE', m.calibration!.ece],
    ].map(([metric, value]) => ({ system: sys.name, kind: sys.kind, kflops: m.flopsPerSample / 1000, metric, value })),
  );
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    padding: 12,
    title: { text: `Fashion-MNIST test (${test.n} images): each metric against compute`, anchor: 'start' },
    config: { font: 'DejaVu Sans', axis: { grid: true, gridColor: '#e6e6e6' } },
    data: { values },
    facet: { field: 'metric', type: 'nominal', title: null },
    columns: 2,
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 300,
      height: 220,
      mark: { type: 'point', filled: true, size: 70 },
      encoding: {
        x: { field: 'kflops', type: 'quantitative', title: 'kFLOPs per image', scale: { zero: false } },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
        color: { field: 'kind', type: 'nominal', title: 'system', scale: { scheme: 'tableau10' } },
        shape: { field: 'kind', type: 'nominal', title: 'system' },
        tooltip: [{ field: 'system' }, { field: 'value', format: '.4f' }, { field: 'kflops', format: '.1f' }],
      },
    },
  };
  const vl = await import('vega-lite');
  const vega = await import('vega');
  const view = new vega.View(vega.parse(vl.compile(spec as never).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  writeFileSync(join(outDir, 'metrics-vs-compute.png'), (await svgToPng(svg)).png);
}
if (jei.length) {
  const lv = Math.max(
    0,
    GATE_LEVELS.findIndex((_, k) => jei[3 * k] && jei[3 * k].compute > 0.34),
  );
  const relImdb = await reliabilityImages(
    jei
      .slice(3 * lv, 3 * lv + 3)
      .map((j) => ({ name: `${j.name}: ${j.rule.replace(/ \(.*\)$/, '')}`, reliability: j.rel })),
    `IMDB: ${imdb[0]}; reliability at the exit taken (gates against thresholds, same compute)`,
  );
  writeFileSync(join(outDir, 'reliability-imdb.png'), relImdb.png);
}

// the document
const pct = (x: number, d = 1) => `${(100 * x).toFixed(d)}`;
const kf = (x: number) => (x / 1000).toFixed(1);
const large = pick('large (256×3)').m;
const lines: string[] = [];
lines.push('# Cascades across models and uncertainty metrics: results');
lines.push('');
lines.push(
  `Generated by \`pnpm results:cascades\` (packages/cli/scripts/results-cascades.ts) from real runs of \`Cascade\` on ${device.describe()}, in ${((performance.now() - t0) / 1000).toFixed(0)} s. Models: \`checkpoints/fashion-cascade\` (MLPs; s0, s1, s2 are the same size with different seeds). In-distribution: the ${test.n.toLocaleString('en-US')} Fashion-MNIST test images; out-of-distribution: ${ood.n.toLocaleString('en-US')} MNIST test images; windows and thresholds fitted on the ${val.n.toLocaleString('en-US')} validation images (training images 55000..59999, never trained on). Score: the max probability of the combined output (log of the mean of the members' softmaxes) unless said otherwise. Compute: mean FLOPs per test image as counted by the engine from what ran (MACs ≈ FLOPs / 2).`,
);
lines.push('');
lines.push('## Fashion-MNIST: each metric against compute');
lines.push('');
lines.push(
  '| system | kind | rule | kFLOPs / image | vs large | stage shares | accuracy % | coverage @5% risk % | AURC ×100 | misclass. AUROC | ECE % | OOD FPR@95 % | OOD AUROC | OOD AUROC (entropy) |',
);
lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const { sys, m, mEnt } of results) {
  lines.push(
    `| ${sys.name} | ${sys.kind} | ${sys.rule} | ${kf(m.flopsPerSample)} | ${pct(m.flopsPerSample / large.flopsPerSample, 0)}% | ${m.stageShare.map((x) => pct(x, 0)).join(' / ')} | ${pct(m.accuracy, 2)} | ${pct(m.selective!.coverageAt5)} | ${pct(m.selective!.aurc, 2)} | ${m.selective!.misclassificationAuroc.toFixed(4)} | ${pct(m.calibration!.ece, 2)} | ${pct(m.ood!.fpr95)} | ${m.ood!.auroc.toFixed(4)} | ${mEnt.ood!.auroc.toFixed(4)} |`,
  );
}
lines.push('');
lines.push(
  `Parameters: ${MEMBERS.map((m) => `${m} ${params[m].toLocaleString('en-US')}`).join(', ')}. Stage shares: the share of test images each stage ran. OOD compute differs from the in-distribution compute because MNIST digits defer differently; per system (kFLOPs / MNIST image): ${results.map((r) => `${r.sys.name} ${kf(r.m.ood!.flopsPerSample)}`).join('; ')}.`,
);
lines.push('');
lines.push(`Host and device mode of the three-stage window cascade: ${modeCheck}.`);
lines.push('');
// the claim
const winBest = results
  .filter((r) => r.sys.kind === 'window cascade' && r.sys.name.includes('selective'))
  .sort((a, b) => b.m.selective!.coverageAt5 - a.m.selective!.coverageAt5)[0];
const ens = pick('s0+s1+s2').m;
lines.push("## Does the paper's claim reproduce in kind?");
lines.push('');
lines.push(
  `The claim: a window cascade of small ensemble members matches a larger single model's coverage at 5% risk with under 30% of its MACs. Here: the large single model covers ${pct(large.selective!.coverageAt5)}% at ${kf(large.flopsPerSample)} kFLOPs per image; the full three-member ensemble covers ${pct(ens.selective!.coverageAt5)}% at ${kf(ens.flopsPerSample)} kFLOPs (${pct(ens.flopsPerSample / large.flopsPerSample, 0)}% of the large model); the best selective-window cascade (${winBest.sys.name}) covers ${pct(winBest.m.selective!.coverageAt5)}% at ${kf(winBest.m.flopsPerSample)} kFLOPs (${pct(winBest.m.flopsPerSample / large.flopsPerSample, 0)}%). ${
    winBest.m.selective!.coverageAt5 >= large.selective!.coverageAt5 &&
    winBest.m.flopsPerSample < 0.3 * large.flopsPerSample
      ? 'So the claim reproduces in kind on this scale: the window cascade matches or beats the large model at under 30% of its compute.'
      : winBest.m.selective!.coverageAt5 >= large.selective!.coverageAt5
        ? 'The window cascade matches the large model, but not under 30% of its compute: the claim reproduces only in part.'
        : "The window cascade does not reach the large model's coverage at 5% risk here: the claim does not reproduce on these models."
  } The window cascade's coverage against the full ensemble's: ${pct(winBest.m.selective!.coverageAt5)}% against ${pct(ens.selective!.coverageAt5)}% at ${pct(winBest.m.flopsPerSample / ens.flopsPerSample, 0)}% of the ensemble's compute.`,
);
lines.push('');
{
  // the OOD task: the same comparison on FPR at 95% TPR and AUROC (MNIST as OOD)
  const oodWin = results
    .filter((r) => r.sys.kind === 'window cascade' && r.sys.name.includes('OOD'))
    .sort((a, b) => a.m.ood!.fpr95 - b.m.ood!.fpr95)[0];
  const ens2 = pick('s0+s1').m;
  lines.push(
    `On OOD detection (MNIST digits against Fashion-MNIST), scaling the model up does not help here: the large model's FPR at 95% TPR is ${pct(large.ood!.fpr95)}% (AUROC ${large.ood!.auroc.toFixed(4)}), s0's ${pct(pick('s0 (64×2)').m.ood!.fpr95)}%, while the two- and three-member ensembles reach ${pct(ens2.ood!.fpr95)}% and ${pct(ens.ood!.fpr95)}% (AUROC ${ens2.ood!.auroc.toFixed(4)}, ${ens.ood!.auroc.toFixed(4)}). The best OOD-window cascade (${oodWin.sys.name}) reaches ${pct(oodWin.m.ood!.fpr95)}% (AUROC ${oodWin.m.ood!.auroc.toFixed(4)}) at ${pct(oodWin.m.flopsPerSample / large.flopsPerSample, 0)}% of the large model's compute on Fashion-MNIST (${kf(oodWin.m.ood!.flopsPerSample)} kFLOPs per MNIST image, as OOD inputs defer more).`,
  );
  lines.push('');
  const memberLine = MEMBERS.map((m) => {
    const meta = (loadedMembers[m].envelope.meta ?? {}) as {
      training?: { steps?: number; epochs_run?: number[] };
      metrics?: { heldout_accuracy_per_exit?: number[] };
    };
    const acc = meta.metrics?.heldout_accuracy_per_exit?.at(-1);
    const ep = meta.training?.epochs_run?.reduce((a, b) => a + b, 0);
    return `${m} ${acc === undefined ? '?' : pct(acc, 2)}% after ${ep === undefined ? '?' : ep.toFixed(1)} epochs`;
  }).join(', ');
  lines.push(
    `What limits the cascades here: the members are small MLPs trained under an 8-minute budget per run on a shared 2-core machine, which stopped some before their planned 4 epochs (${memberLine}; test accuracy at the last exit), so they are weak and alike, and their ensemble gains little accuracy${ens.accuracy < ens2.accuracy ? ' (adding the least-trained member, s2, lowers it)' : ''}; the paper's members are EfficientNets whose ensembles gain several points.${ens.ood!.auroc > large.ood!.auroc && oodWin.m.ood!.auroc > large.ood!.auroc ? ' What does hold in kind here is the OOD comparison above: the ensembles, and the cascades at a fraction of the compute, detect MNIST better than the larger single model.' : ''}`,
  );
  lines.push('');
}
lines.push('![each metric against compute](results-cascades/metrics-vs-compute.png)');
lines.push('');
lines.push('![reliability diagrams, Fashion-MNIST](results-cascades/reliability-fashion.png)');
lines.push('');
if (jei.length) {
  lines.push('## JEI-DNN calibration check (IMDB)');
  lines.push('');
  lines.push(
    `JEI-DNN's claim: jointly trained gates give better-calibrated probabilities than confidence thresholds. Measured on ${imdb[0]}: the ECE (15 bins) of the predicted class's probability at the exit each review took, for imdb-gates with its gates (leave at the first exit whose gate > 0.5) and for imdb-encoder and imdb-gates with a confidence threshold chosen (bisection over real runs) to spend the same compute.`,
  );
  lines.push('');
  lines.push('| model | rule | compute (fraction of full depth) | accuracy % | ECE % |');
  lines.push('|---|---|---|---|---|');
  for (const j of jei)
    lines.push(`| ${j.name} | ${j.rule} | ${j.compute.toFixed(3)} | ${pct(j.accuracy, 2)} | ${pct(j.ece, 2)} |`);
  lines.push('');
  const levels = GATE_LEVELS.map((gt, k) => ({ gt, g: jei[3 * k], e: jei[3 * k + 1], gc: jei[3 * k + 2] }));
  // levels where the gates send some reviews past the first exit (at 0.5 this checkpoint's gates do not)
  const informative = levels.filter((l) => l.g.compute > levels[0].g.compute + 1e-3);
  const wins = informative.filter((l) => l.g.ece < l.e.ece);
  const winsOwn = informative.filter((l) => l.g.ece < l.gc.ece);
  lines.push(
    `At ${wins.length} of the ${informative.length} gate thresholds above the first-exit-only level the gate rule's ECE is lower than imdb-encoder's with a confidence threshold at the same compute (${informative.map((l) => `${pct(l.g.ece, 2)} vs ${pct(l.e.ece, 2)}% at compute ${l.g.compute.toFixed(3)}`).join('; ')}), and at ${winsOwn.length} of ${informative.length} lower than imdb-gates' own heads with a confidence threshold (${informative.map((l) => `${pct(l.gc.ece, 2)}%`).join(', ')}). ${
      informative.length > 0 && wins.length === informative.length
        ? 'In kind, the claim holds here against the thresholded encoder.'
        : wins.length === 0
          ? 'The claim does not reproduce here.'
          : 'The claim reproduces only at some compute levels here.'
    } With gate > 0.5 every review leaves at the first exit (this checkpoint's gates are all above 0.5 there), so that row compares the first exit heads rather than the rules; the stricter gate thresholds are the informative rows. The ECE here is the calibration of the class probabilities at the exit taken, with ${jei[0] ? imdb[0] : ''}: at a few hundred errors per level, differences under about one point are within noise.`,
  );
  lines.push('');
  lines.push('![reliability diagrams, IMDB](results-cascades/reliability-imdb.png)');
  lines.push('');
}
lines.push('## How to reproduce');
lines.push('');
lines.push('```sh');
lines.push('pnpm train:fashion-cascade      # the five members, one after another (about 8 minutes each on 2 cores)');
lines.push('pnpm results:cascades           # this page');
lines.push('```');
writeFileSync(docFile, `${lines.join('\n')}\n`);
log('wrote docs/results-cascades.md');
