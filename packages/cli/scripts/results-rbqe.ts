// Writes docs/results-rbqe.md (and docs/results-rbqe.json, docs/rbqe/*.png) from real runs of checkpoints/rbqe
// on the held-out images: ΔPSNR / ΔSSIM over the JPEG input per quality factor at each fixed exit, the quality
// policy at a threshold chosen on the ΔPSNR–FLOPs curve and at RBQE's 0.67, the exit distribution per quality,
// FLOPs and measured wall time against always running the last exit, and the oracle (best exit per image).
//   pnpm results:rbqe [--model checkpoints/rbqe] [--size N (centre crops N×N; default whole images)] [--repeats 3]
//   --from-json: render the doc again from docs/results-rbqe.json of an earlier run (no GPU runs, PNGs kept)
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { parseArgs } from 'node:util';
import {
  createGpuDevice,
  definePolicy,
  ImageEnhancer,
  neverExit,
  QUALITY_THRESHOLD_JPEG,
  qualityScoreReference,
} from '@offramp/core';
import { loadEnhancerDir } from '@offramp/core/node';
import { quality } from '@offramp/policies';
import {
  encodePngGrey,
  ensureDatasets,
  type GreyImage,
  JPEG_QUALITIES,
  jpegDegrade,
  loadImages,
  psnr,
  ssim,
} from '@offramp/train';
import { repoRoot } from '@offramp/train/training';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string' },
    size: { type: 'string' },
    repeats: { type: 'string' },
    'from-json': { type: 'boolean', default: false },
  },
});
const root = repoRoot();
const modelDir = a.model ?? join(root, 'checkpoints', 'rbqe');
const size = a.size ? Number(a.size) : 0;
const repeats = a.repeats ? Number(a.repeats) : 3;

const exitAt = definePolicy((o: { k: number }) => ({
  name: 'exit-at',
  init: () => null,
  decide: (ctx, s) => new Uint8Array(s.count).fill(ctx.exitIndex >= o.k ? 1 : 0),
}));

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;
const f2 = (v: number) => (v >= 0 ? '+' : '') + v.toFixed(2);
const f3 = (v: number) => (v >= 0 ? '+' : '') + v.toFixed(3);

function centreCrop(img: GreyImage, n: number): GreyImage {
  if (!n) return img;
  const x0 = Math.floor((img.width - n) / 2 / 8) * 8;
  const y0 = Math.floor((img.height - n) / 2 / 8) * 8;
  const data = new Float32Array(n * n);
  for (let r = 0; r < n; r++)
    data.set(img.data.subarray((y0 + r) * img.width + x0, (y0 + r) * img.width + x0 + n), r * n);
  return { width: n, height: n, data };
}

const jsonPath = join(root, 'docs', 'results-rbqe.json');
const saved = a['from-json'] ? JSON.parse(readFileSync(jsonPath, 'utf8')) : null;
const device = saved ? null : await createGpuDevice();
const { config, tensors, meta } = loadEnhancerDir(modelDir);
const enh = device ? new ImageEnhancer(device, config, tensors, { maxBatch: 1 }) : null;
const E = config.levels;
await ensureDatasets(['images'], { log: (line) => console.error(line) });
const test = loadImages('test').map(({ name, image }) => ({ name, image: centreCrop(image, size) }));

interface Row {
  name: string;
  q: number;
  inPsnr: number;
  inSsim: number;
  psnr: number[];
  ssim: number[];
  scores: number[];
  /** The quality score of the JPEG input itself (float64 reference). */
  inScore: number;
  flops: number[];
  outputs: Float32Array[];
}
const rows: Row[] = saved ? saved.rows.map((r: Row) => ({ ...r, outputs: [] })) : [];
const t0 = performance.now();
for (const { name, image } of saved ? [] : test) {
  const flops = enh!.flopsPerExit(image.width, image.height);
  for (const q of JPEG_QUALITIES) {
    const d = jpegDegrade(image, q);
    const [traced] = await enh!.enhance([d], { policy: neverExit(), trace: true, mode: 'device' });
    const outputs: Float32Array[] = [];
    for (let k = 0; k < E; k++) {
      const [o] = k === E - 1 ? [traced] : await enh!.enhance([d], { policy: exitAt({ k }), mode: 'host' });
      outputs.push(o.data);
    }
    const img = (data: Float32Array) => ({ width: image.width, height: image.height, data });
    rows.push({
      name,
      q,
      inPsnr: psnr(d, image),
      inSsim: ssim(d, image),
      psnr: outputs.map((o) => psnr(img(o), image)),
      ssim: outputs.map((o) => ssim(img(o), image)),
      scores: traced.scores ?? [],
      inScore: Number.NaN,
      flops,
      outputs,
    });
    process.stderr.write(
      `${name} q${q}: input ${psnr(d, image).toFixed(2)} dB, exits ${rows[rows.length - 1].psnr.map((p) => p.toFixed(2)).join(' ')}; scores ${traced.scores?.map((s) => s.toFixed(3)).join(' ')}\n`,
    );
  }
}
const evalSeconds: number = saved ? saved.evalSeconds : (performance.now() - t0) / 1000;
for (const r of rows) {
  const image = test.find((t) => t.name === r.name)!.image;
  r.inScore = qualityScoreReference(jpegDegrade(image, r.q).data, 1, image.height, image.width).score;
}

/** The exit the quality policy takes at threshold t (first exit whose score ≥ t, else the last). */
const exitOf = (r: Row, t: number) => {
  const k = r.scores.findIndex((s) => s >= Math.fround(t));
  return k < 0 ? E - 1 : k;
};
const evalPolicy = (pick: (r: Row) => number) => {
  const ks = rows.map(pick);
  return {
    dPsnr: mean(rows.map((r, i) => r.psnr[ks[i]] - r.inPsnr)),
    dSsim: mean(rows.map((r, i) => r.ssim[ks[i]] - r.inSsim)),
    flops: mean(rows.map((r, i) => r.flops[ks[i]] / r.flops[E - 1])),
    exits: ks,
  };
};
const last = evalPolicy(() => E - 1);
const oracle = evalPolicy((r) => r.psnr.indexOf(Math.max(...r.psnr)));
// the ΔPSNR–FLOPs curve over every threshold that changes a decision
const candidates = [...new Set(rows.flatMap((r) => r.scores))].sort((x, y) => x - y);
const curve = [Number.NEGATIVE_INFINITY, ...candidates, Number.POSITIVE_INFINITY].map((t) => ({
  t,
  ...evalPolicy((r) => exitOf(r, t)),
}));
// chosen: the cheapest threshold within 0.1 dB of the last exit; if none, the one with the best ΔPSNR per FLOP fraction
const within = curve.filter((c) => c.dPsnr >= last.dPsnr - 0.1 && Number.isFinite(c.t));
const chosen = within.length
  ? within.reduce((b, c) => (c.flops < b.flops ? c : b))
  : curve.reduce((b, c) => (c.dPsnr > b.dPsnr ? c : b));
const paper = { t: QUALITY_THRESHOLD_JPEG, ...evalPolicy((r) => exitOf(r, QUALITY_THRESHOLD_JPEG)) };

// real runs of the quality policy on the GPU (device mode) must take the exits the traced scores predict, and
// wall time against always running the last exit, side by side, median of `repeats`
const timing: { name: string; q: number; policyMs: number; lastMs: number; exit: number }[] = saved ? saved.timing : [];
for (const [i, r] of (saved ? [] : rows).entries()) {
  const image = test.find((t) => t.name === r.name)!.image;
  const d = jpegDegrade(image, r.q);
  const tp: number[] = [];
  const tl: number[] = [];
  let exit = -1;
  for (let rep = 0; rep < repeats; rep++) {
    let s = performance.now();
    const [o] = await enh!.enhance([d], { policy: quality({ threshold: chosen.t }), mode: 'device' });
    tp.push(performance.now() - s);
    exit = o.exitIndex;
    s = performance.now();
    await enh!.enhance([d], { policy: neverExit(), mode: 'device' });
    tl.push(performance.now() - s);
  }
  if (exit !== chosen.exits[i])
    throw new Error(`${r.name} q${r.q}: the device run exited at ${exit}, the trace predicts ${chosen.exits[i]}`);
  timing.push({ name: r.name, q: r.q, policyMs: median(tp), lastMs: median(tl), exit });
}
const wallSaving = 1 - timing.reduce((s, t) => s + t.policyMs, 0) / timing.reduce((s, t) => s + t.lastMs, 0);
const flopsSaving = 1 - chosen.flops;

// before / after crops: the lowest quality of camera and astronaut, 96×96 from the centre, 3× nearest
/** Sort key of a saved crop: by image, then clean, JPEG, and the exits in order (the caption's order). */
function picOrder(file: string): string {
  const m = /^(.*)-(clean|jpeg-q\d+|exit(\d+))\.png$/.exec(file);
  if (!m) return `~${file}`;
  const rank = m[2] === 'clean' ? 0 : m[2].startsWith('jpeg') ? 1 : 2 + Number(m[3]);
  return `${m[1]}\u0000${String(rank).padStart(3, '0')}`;
}
const outDir = join(root, 'docs', 'rbqe');
mkdirSync(outDir, { recursive: true });
const pics: string[] =
  saved && existsSync(outDir)
    ? readdirSync(outDir)
        .filter((f) => f.endsWith('.png'))
        .sort((a, b) => picOrder(a).localeCompare(picOrder(b)))
    : [];
for (const name of saved ? [] : ['camera', 'astronaut']) {
  const r = rows.find((x) => x.name === name && x.q === 10);
  if (!r) continue;
  const image = test.find((t) => t.name === name)!.image;
  const k = chosen.exits[rows.indexOf(r)];
  const n = 96;
  const x0 = Math.floor((image.width - n) / 2);
  const y0 = Math.floor((image.height - n) / 2);
  const panel = (src: Float32Array) => {
    const z = 3;
    const data = new Float32Array(n * z * n * z);
    for (let y = 0; y < n * z; y++)
      for (let x = 0; x < n * z; x++)
        data[y * n * z + x] = src[(y0 + Math.floor(y / z)) * image.width + x0 + Math.floor(x / z)];
    return { width: n * z, height: n * z, data };
  };
  const d = jpegDegrade(image, 10);
  for (const [label, src] of [
    ['clean', image.data],
    ['jpeg-q10', d.data],
    [`exit${k}`, r.outputs[k]],
    [`exit${E - 1}`, r.outputs[E - 1]],
  ] as const) {
    const file = `${name}-${label}.png`;
    writeFileSync(join(outDir, file), encodePngGrey(panel(src)));
    pics.push(file);
  }
}

const byQ = (q: number, f: (r: Row) => number) => mean(rows.filter((r) => r.q === q).map(f));
const dist = (exits: number[], q: number) => {
  const c = new Array(E).fill(0);
  rows.forEach((r, i) => {
    if (r.q === q) c[exits[i]]++;
  });
  return c.join(' / ');
};
const meanExit = (exits: number[], q: number) => mean(rows.flatMap((r, i) => (r.q === q ? [exits[i]] : [])));
const inputScoresHigher = mean(rows.map((r) => r.inScore - Math.max(...r.scores))) > 0;
const deeperExitsScoreLower = mean(rows.map((r) => r.scores[E - 1] - r.scores[0])) < 0;
// a threshold that splits the images: the best ΔPSNR on the curve at ≤ 70% of the FLOPs, thresholds inside the scores
const mid = curve
  .filter((c) => Number.isFinite(c.t) && c.flops <= 0.7 && c.flops > chosen.flops)
  .reduce((b, c) => (b === null || c.dPsnr > b.dPsnr ? c : b), null as (typeof curve)[number] | null);
const goesDeeper = (exits: number[]) => {
  const m = JPEG_QUALITIES.map((q) => meanExit(exits, q));
  const same = m.every((v) => v === m[0]);
  const mono = m.every((v, i) => i === 0 || v <= m[i - 1]);
  return {
    m,
    text: same
      ? 'every image leaves at the same exit, so this threshold says nothing either way'
      : mono
        ? 'yes: the mean exit does not decrease as the quality factor falls'
        : 'not consistently: the mean exit does not rise steadily as the quality factor falls',
  };
};
const deeperChosen = goesDeeper(chosen.exits);
const deeperMid = mid ? goesDeeper(mid.exits) : null;
const chosenIsExit0 = chosen.exits.every((k) => k === 0);
const positiveAtLast = JPEG_QUALITIES.every((q) => byQ(q, (r) => r.psnr[E - 1] - r.inPsnr) > 0);
const target2 = chosen.dPsnr >= last.dPsnr - 0.1 && chosen.flops <= 0.7;
const target3 = flopsSaving > 0 && wallSaving >= 0.8 * flopsSaving;

const what = size ? `${size}×${size} centre crops of` : 'the whole';
const md = `# RBQE early exit on held-out JPEG images

Generated by \`pnpm results:rbqe\` (packages/cli/scripts/results-rbqe.ts) from real runs of \`checkpoints/rbqe\`
(${E} exits, ${config.channels} maps per level, ${meta.steps ?? '?'} training steps) on ${what} five held-out images (astronaut,
camera, coffee, chelsea, motorcycle_left; grey), each JPEG-compressed by jpeg-js at quality ${JPEG_QUALITIES.join(', ')}:
${rows.length} image–quality pairs. Device: WebGPU (Dawn); the fixed-exit and trace runs took ${evalSeconds.toFixed(0)} s.
ΔPSNR and ΔSSIM are over the JPEG input (output clamped to [0, 1]); FLOPs are the engine's count for the exit
taken (quality score included) as a fraction of the last exit's.

## Fixed exits: ΔPSNR (dB) / ΔSSIM per quality factor

| quality | input PSNR | ${Array.from({ length: E }, (_, k) => `exit ${k} (${(rows[0].flops[k] / rows[0].flops[E - 1]).toFixed(2)} FLOPs)`).join(' | ')} |
|---|---|${Array.from({ length: E }, () => '---').join('|')}|
${JPEG_QUALITIES.map((q) => `| ${q} | ${byQ(q, (r) => r.inPsnr).toFixed(2)} | ${Array.from({ length: E }, (_, k) => `${f2(byQ(q, (r) => r.psnr[k] - r.inPsnr))} / ${f3(byQ(q, (r) => r.ssim[k] - r.inSsim))}`).join(' | ')} |`).join('\n')}

## Quality score per exit (mean; RBQE's no-reference score, computed on the GPU by the engine)

| quality | ${Array.from({ length: E }, (_, k) => `exit ${k}`).join(' | ')} | input |
|---|${Array.from({ length: E + 1 }, () => '---').join('|')}|
${JPEG_QUALITIES.map((q) => `| ${q} | ${Array.from({ length: E }, (_, k) => byQ(q, (r) => r.scores[k]).toFixed(3)).join(' | ')} | ${byQ(q, (r) => r.inScore).toFixed(3)} |`).join('\n')}

RBQE assumes the score rises as an image gets better, so that an image leaves once it is good enough. With this
model it ${deeperExitsScoreLower ? 'falls from exit 0 to the deeper exits (the deeper exits smooth more, and the blockiness term, the share of energy in the highest-order moments, drops with it), so a higher threshold does not pick better images: it only sends more of them to the last exit' : 'rises from exit 0 to the deeper exits on average'}.${inputScoresHigher ? ' On average the JPEG inputs themselves score higher than the best exit\u2019s output (last column): the score rewards the high-frequency energy the JPEG keeps over the smoother enhanced images.' : ''}

## Policies

| policy | mean ΔPSNR | mean ΔSSIM | FLOPs (fraction of last exit) |
|---|---|---|---|
| always last exit | ${f2(last.dPsnr)} | ${f3(last.dSsim)} | 1.00 |
| quality, threshold ${chosen.t.toFixed(4)} (chosen on the curve) | ${f2(chosen.dPsnr)} | ${f3(chosen.dSsim)} | ${chosen.flops.toFixed(2)} |
| quality, threshold 0.67 (RBQE's JPEG value) | ${f2(paper.dPsnr)} | ${f3(paper.dSsim)} | ${paper.flops.toFixed(2)} |
| oracle (best exit per image by PSNR) | ${f2(oracle.dPsnr)} | ${f3(oracle.dSsim)} | ${oracle.flops.toFixed(2)} |

The threshold is chosen on the curve below as the cheapest one within 0.1 dB of the last exit's mean ΔPSNR
(or, when none is, the one with the best ΔPSNR). The device-mode runs of the quality policy took exactly the exits
the traced scores predict for every image.

ΔPSNR–FLOPs curve (every threshold that changes a decision, thinned):

| threshold | FLOPs | ΔPSNR |
|---|---|---|
${curve
  .filter((_, i) => i % Math.max(1, Math.floor(curve.length / 15)) === 0 || i === curve.length - 1)
  .map(
    (c) =>
      `| ${Number.isFinite(c.t) ? c.t.toFixed(4) : c.t > 0 ? '+∞ (always last)' : '−∞ (always first)'} | ${c.flops.toFixed(2)} | ${f2(c.dPsnr)} |`,
  )
  .join('\n')}

## Exit distribution per quality (images at exit 0 / 1 / … )

| quality | chosen threshold ${chosen.t.toFixed(4)} | ${mid ? `threshold ${mid.t.toFixed(4)}` : '—'} | 0.67 |
|---|---|---|---|
${JPEG_QUALITIES.map((q) => `| ${q} | ${dist(chosen.exits, q)} | ${mid ? dist(mid.exits, q) : '—'} | ${dist(paper.exits, q)} |`).join('\n')}

Does heavier compression go deeper? At the chosen threshold: ${deeperChosen.text}. ${mid && deeperMid ? `At ${mid.t.toFixed(4)} (the best ΔPSNR on the curve at ≤ 70% of the FLOPs: ${f2(mid.dPsnr)} dB at ${(mid.flops * 100).toFixed(0)}%): ${deeperMid.text} (mean exit from quality 10 to 50: ${deeperMid.m.map((v) => v.toFixed(2)).join(', ')}). The exit-0 score rises with the quality factor on average (table above), which is what sends more compressed images deeper; per image the scores overlap too much for a steady order.` : ''} At 0.67 no exit reaches the threshold and every image runs to the last exit.

## Wall time (device mode, one image per run, median of ${repeats}, side by side)

| image | quality | exit | quality policy ms | always last ms |
|---|---|---|---|---|
${timing.map((t) => `| ${t.name} | ${t.q} | ${t.exit} | ${t.policyMs.toFixed(1)} | ${t.lastMs.toFixed(1)} |`).join('\n')}

Total: FLOPs saving ${(flopsSaving * 100).toFixed(1)}%, measured wall-time saving ${(wallSaving * 100).toFixed(1)}%.
The machine is shared (2 CPU cores, other jobs running: the load average was far above 2 during the run), so
single timings vary by a factor of two or more; the medians of three side-by-side runs are what is compared.

## Before / after (camera and astronaut at quality 10, 96×96 centre crops shown 3×)

${pics.map((p) => `![${p}](rbqe/${p})`).join(' ')}

Left to right for each image: clean, JPEG quality 10, the quality policy's exit, the last exit.

## Targets

- Positive ΔPSNR at every quality factor at the last exit: **${positiveAtLast ? 'met' : 'not met'}**.
- Quality policy within 0.1 dB of the last exit's mean ΔPSNR at ≤ 70% of its FLOPs: **${target2 ? 'met' : 'not met'}** (${f2(chosen.dPsnr)} vs ${f2(last.dPsnr)} dB at ${(chosen.flops * 100).toFixed(0)}%).${chosenIsExit0 ? ' Only trivially: at the chosen threshold every image leaves at exit 0, which a fixed exit 0 does as well; the early exit of this small model is nearly as good as its last, and the quality score does not rank the exits by quality (see above).' : ''}
- Measured wall-clock saving ≥ 80% of the FLOPs saving: **${target3 ? 'met' : 'not met'}** (${(wallSaving * 100).toFixed(1)}% of time vs ${(flopsSaving * 100).toFixed(1)}% of FLOPs).
`;
writeFileSync(join(root, 'docs', 'results-rbqe.md'), md);
writeFileSync(
  join(root, 'docs', 'results-rbqe.json'),
  `${JSON.stringify(
    {
      // repository-relative (no machine paths in result files)
      model: relative(root, modelDir).split(sep).join('/'),
      size: size || 'whole',
      rows: rows.map(({ outputs: _o, ...r }) => r),
      last,
      oracle: { ...oracle, exits: undefined },
      chosen: { ...chosen, exits: undefined },
      paper: { ...paper, exits: undefined },
      timing,
      evalSeconds,
      wallSaving,
      flopsSaving,
    },
    null,
    1,
  )}\n`,
);
console.log(md);
enh?.dispose();
device?.destroy();
