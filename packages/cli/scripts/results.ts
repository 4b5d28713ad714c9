// Writes docs/results.md from real runs: for each shipped classification checkpoint (model × recipe) and
// each built-in policy, the full-depth accuracy and the least compute (mean FLOPs as a fraction of full
// depth) at ≤ 1 point accuracy drop on the held-out split, from `offramp eval` (trace once, sweep offline;
// the sweep replays the engine's loop exactly, see @offramp/policies' simulate).
//   pnpm results [--limit N] [--models fashion-cnn,imdb-encoder,...] [--reuse]
// --reuse takes a model's previous run (.data/results/NAME/results.json) when it is newer than the model's
// weights and config and covers the same sample count, instead of evaluating it again.
// --traces DIR passes DIR/NAME.trace.json (recorded by `offramp trace` on the same weights and data; eval
// checks both hashes) to eval instead of recording the trace again; --repeats N sets eval's timed passes of
// the full-depth run (default 3). Neither changes the figures: the sweep replays the trace either way.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type EvalResultJson, evalResultSchema } from '../src/schema.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'packages', 'cli', 'dist', 'bin.js');
const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const limit = arg('--limit');
const reuse = process.argv.includes('--reuse');
const tracesDir = arg('--traces');
const repeats = arg('--repeats');
const wanted = (
  arg('--models') ?? 'fashion-cnn,imdb-encoder,imdb-two-stage,imdb-self-distill,imdb-dual-head,imdb-ponder,imdb-gates'
).split(',');
const TARGETS: Record<string, number> = { 'fashion-mnist': 2.0, imdb: 1.8 };
const MAX_DROP = 0.01;
/** A stricter drop, where adapting per input matters more than picking one exit for everyone. */
const STRICT_DROP = 0.0025;

if (!existsSync(bin))
  execFileSync('pnpm', ['--filter', '@offramp/cli...', 'run', 'build'], { cwd: root, stdio: 'inherit' });

interface Row {
  model: string;
  recipe: string;
  data: string;
  n: number;
  full: number;
  policy: string;
  setting: string;
  accuracy: number;
  compute: number;
  /** Least compute within STRICT_DROP (null if no setting). */
  strict: number | null;
}
const rows: Row[] = [];
const runs: { model: string; adapter: string; n: number; totalMs: number; traceMs: number }[] = [];
for (const name of wanted) {
  const dir = join(root, 'checkpoints', name);
  if (!existsSync(join(dir, 'config.json'))) {
    console.error(`results: checkpoints/${name} is missing; skipped (train it with \`pnpm train:${name}\`)`);
    continue;
  }
  const meta = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).meta ?? {};
  const outDir = join(root, '.data', 'results', name);
  const previous = join(outDir, 'results.json');
  const newer = (f: string) =>
    existsSync(f) &&
    ['model.safetensors', 'config.json'].every((w) => statSync(f).mtimeMs > statSync(join(dir, w)).mtimeMs);
  let res: EvalResultJson | null = null;
  if (reuse && newer(previous)) {
    const r = evalResultSchema.parse(JSON.parse(readFileSync(previous, 'utf8')));
    if (!limit || r.data.n === Number(limit)) {
      res = r;
      console.error(`results: ${name}: reusing ${previous}`);
    }
  }
  if (!res) {
    console.error(`results: evaluating ${name} ...`);
    const args = [
      bin,
      'eval',
      '--model',
      dir,
      '--policies',
      'all',
      '--sweep',
      '--measure',
      'none',
      '--max-drop',
      String(MAX_DROP),
      '--json',
      '--quiet',
      '--out',
      outDir,
    ];
    if (limit) args.push('--limit', limit);
    if (repeats) args.push('--repeats', repeats);
    const traceFile = tracesDir ? join(tracesDir, `${name}.trace.json`) : undefined;
    if (traceFile && existsSync(traceFile)) {
      args.push('--trace', traceFile);
      console.error(`results: ${name}: trace from ${traceFile}`);
    }
    const out = execFileSync('node', args, {
      cwd: root,
      encoding: 'utf8',
      maxBuffer: 1 << 28,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    res = evalResultSchema.parse(JSON.parse(out));
  }
  runs.push({
    model: name,
    adapter: res.device.adapter,
    n: res.data.n,
    totalMs: res.timings.totalMs,
    traceMs: res.timings.traceMs,
  });
  for (const fam of res.policies) {
    const ok = fam.points.filter((p) => p.accuracyDrop !== null && p.accuracyDrop <= MAX_DROP + 1e-12);
    if (!ok.length) continue;
    const best = ok.reduce((a, b) => (b.computeFraction < a.computeFraction ? b : a));
    const okStrict = fam.points.filter((p) => p.accuracyDrop !== null && p.accuracyDrop <= STRICT_DROP + 1e-12);
    const strict = okStrict.length ? Math.min(...okStrict.map((p) => p.computeFraction)) : null;
    rows.push({
      model: name,
      recipe: String(meta.recipe ?? '?'),
      data: res.data.name,
      n: res.data.n,
      full: res.full.accuracy ?? Number.NaN,
      policy: fam.family,
      setting: best.label,
      accuracy: best.accuracy ?? Number.NaN,
      compute: best.computeFraction,
      strict,
    });
  }
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const lines: string[] = [];
lines.push('# Results: compute saved by exit policies on the shipped checkpoints', '');
lines.push(
  `Generated by \`pnpm results\` (packages/cli/scripts/results.ts) from real runs of \`offramp eval\` on ${new Date().toISOString().slice(0, 10)}.`,
  `For each model × recipe × policy: full-depth accuracy on the held-out split, and the least compute (mean FLOPs`,
  `as a fraction of full depth, counted from what each sample ran) among the policy's swept settings whose accuracy`,
  `is at most ${MAX_DROP * 100} point below full depth. Reduction = 1 / compute fraction. The settings are chosen on`,
  'the same split they are reported on (an optimistic operating point; `offramp calibrate` chooses on the train split).',
  `The last column is the reduction within ${STRICT_DROP * 100} point, where deciding per input matters more than picking one`,
  'exit for everyone (`static` is that fixed-exit baseline; `oracle` knows the final prediction: a bound, not a policy).',
  '',
);
for (const r of runs)
  lines.push(
    `- \`${r.model}\`: ${r.n} held-out samples, ${r.adapter}, ${(r.totalMs / 1000).toFixed(0)} s (trace ${(r.traceMs / 1000).toFixed(0)} s${r.traceMs < 0.05 * r.totalMs ? ', read from a file recorded by `offramp trace`' : ''})`,
  );
lines.push(
  '',
  `| model | recipe | policy | setting | full-depth acc. | acc. at setting | compute | reduction | reduction at ≤ ${STRICT_DROP * 100} pt |`,
  '|---|---|---|---|---:|---:|---:|---:|---:|',
);
for (const r of rows.sort((a, b) => a.model.localeCompare(b.model) || a.compute - b.compute)) {
  lines.push(
    `| ${r.model} | ${r.recipe} | ${r.policy} | \`${r.setting}\` | ${pct(r.full)} | ${pct(r.accuracy)} | ${pct(r.compute)} | ${(1 / r.compute).toFixed(2)}× | ${r.strict === null ? '—' : `${(1 / r.strict).toFixed(2)}×`} |`,
  );
}
lines.push('', '## Against the targets', '');
for (const [data, target] of Object.entries(TARGETS)) {
  // the oracle knows the final prediction: an upper bound, not a policy that can run
  const cand = rows.filter((r) => r.data === data && r.policy !== 'oracle');
  if (!cand.length) {
    lines.push(`- ${data}: no checkpoint evaluated.`);
    continue;
  }
  const best = cand.reduce((a, b) => (b.compute < a.compute ? b : a));
  const red = 1 / best.compute;
  lines.push(
    `- ${data}: best ${red.toFixed(2)}× (${best.model}, ${best.policy} \`${best.setting}\`) against a target of ≥ ${target}× at ≤ 1 point drop: **${red >= target ? 'met' : 'not met'}**.`,
  );
  // the fixed-exit baseline: one exit for every input, no policy
  const statics = cand.filter((r) => r.policy === 'static');
  const stat = statics.length ? statics.reduce((a, b) => (b.compute < a.compute ? b : a)) : null;
  const adaptive = cand.filter((r) => r.policy !== 'static');
  const bestAdaptive = adaptive.length ? adaptive.reduce((a, b) => (b.compute < a.compute ? b : a)) : null;
  if (stat)
    lines.push(
      `  The fixed-exit baseline (every input leaves at the same exit, \`${stat.setting}\` on ${stat.model}) gives ${(1 / stat.compute).toFixed(2)}× within the same drop; the best per-input policy ${bestAdaptive ? `${(1 / bestAdaptive.compute).toFixed(2)}× (${bestAdaptive.model}, ${bestAdaptive.policy})` : 'none'}.`,
    );
  const strictRows = adaptive.filter((r) => r.strict !== null);
  const strictStatic = statics.filter((r) => r.strict !== null);
  if (strictRows.length) {
    const s = strictRows.reduce((a, b) => (b.strict! < a.strict! ? b : a));
    const ss = strictStatic.length ? strictStatic.reduce((a, b) => (b.strict! < a.strict! ? b : a)) : null;
    lines.push(
      `  Within ${STRICT_DROP * 100} point: the best per-input policy gives ${(1 / s.strict!).toFixed(2)}× (${s.model}, ${s.policy}), a fixed exit ${ss ? `${(1 / ss.strict!).toFixed(2)}×` : '1.00× (only full depth is that accurate)'}.`,
    );
  }
}
mkdirSync(join(root, 'docs'), { recursive: true });
writeFileSync(join(root, 'docs', 'results.md'), `${lines.join('\n')}\n`);
console.error(`results: wrote docs/results.md (${rows.length} rows)`);
