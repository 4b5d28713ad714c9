// Generation benchmark: tokens/s of full-depth greedy decoding against token-level exits (CALM state
// propagation through DecoderLM.step, with maxProb / margin / saturation rules at a few thresholds) and
// self-speculative decoding (greedy; the best (k, draft exit) of a small sweep per batch size; adaptive k),
// side by side in one run, at batch 1, 8 and 32. Per strategy and batch: median tokens/s of `--reps`
// interleaved timed runs (and their range), blocks run per generated token, compute speed-up (blocks),
// wall-clock speed-up, their ratio, agreement with full-depth greedy output (by sequence: the fraction of
// generated positions holding the full model's token when each strategy runs free; and teacher-forced for
// token exits: the exit's token given the full model's prefix), perplexity of the generated text under the
// full model, and the acceptance rate of speculative decoding.
//
// Each strategy is a `Strategy` record (name + run(prompts, opts) → tokens + blocks): a new one is a row.
//
//   pnpm bench:generate [--model DIR | --random] [--batches 1,8,32] [--new-tokens 64] [--prompt-len 48]
//                       [--reps 3] [--sweep-ks 1,2,3,4,6] [--sweep-tokens 32] [--sweep-reps 1] [--out FILE] [--doc]
//                       [--only NAME,NAME] [--merge]
// --only runs the strategies whose name contains one of the given parts (full depth always runs: it is every
// ratio's baseline; the speculative sweep runs only when a speculative row is chosen; no Mamba rows);
// --merge replaces those rows (by batch and name) in the existing result file and keeps the others, each
// row's ratios measured against the full depth of its own run.
// Random model sizes: --layers 6 --width 256 --heads 4 --kv-heads 2 --vocab 96 --exits 1,2,3
// Results go to bench/results/generate.json (generate-random.json with --random); progress goes to stderr.
import './dawn-globals.js';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type AdaptiveKOptions,
  type SpeculativeResult,
  speculativeGenerate,
  sweepSpeculative,
} from '../src/generation/speculative.js';
import { type GenerationStrategy, generateWithStrategy } from '../src/generation/strategies.js';
import { parseDecoderConfig } from '../src/models/decoder-config.js';
import { type DecoderExitOptions, DecoderLM } from '../src/models/decoder-lm.js';
import { randomDecoderWeights } from '../src/models/decoder-random.js';
import { argmaxOf } from '../src/models/sampling.js';
import { createGpuDevice } from '../src/runtime/create-device.js';
import { mulberry32 } from '../src/util/random.js';
import { loadDecoderLM } from '../src/weights/decoder-dir.js';
import { mambaDeviceLoopRows } from './generate-mamba-loop.js';
import { writeGenerationDoc } from './generation-doc.js';
import { machineInfo, median } from './harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    random: { type: 'boolean', default: false },
    batches: { type: 'string', default: '1,8,32' },
    'new-tokens': { type: 'string', default: '64' },
    'prompt-len': { type: 'string', default: '48' },
    reps: { type: 'string', default: '3' },
    out: { type: 'string' },
    doc: { type: 'boolean', default: false },
    layers: { type: 'string', default: '6' },
    width: { type: 'string', default: '256' },
    heads: { type: 'string', default: '4' },
    'kv-heads': { type: 'string', default: '2' },
    vocab: { type: 'string', default: '96' },
    exits: { type: 'string', default: '1,2,3' },
    'sweep-ks': { type: 'string', default: '1,2,3,4,6' },
    'sweep-tokens': { type: 'string', default: '32' },
    'sweep-reps': { type: 'string', default: '1' },
    mamba: { type: 'string' },
    only: { type: 'string' },
    merge: { type: 'boolean', default: false },
  },
});

const int = (name: string, v: string, min = 1): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`bench:generate: --${name} must be an integer ≥ ${min}, got '${v}'`);
    process.exit(2);
  }
  return n;
};
const intList = (name: string, v: string, min = 1) => v.split(',').map((x) => int(name, x.trim(), min));
const BATCHES = intList('batches', args.batches!);
const NEW = int('new-tokens', args['new-tokens']!, 2);
const PROMPT = int('prompt-len', args['prompt-len']!);
const REPS = int('reps', args.reps!);
if (REPS < 3) console.error('bench:generate: note: fewer than 3 repetitions; medians are less reliable');
const SWEEP_KS = intList('sweep-ks', args['sweep-ks']!);
const SWEEP_REPS = int('sweep-reps', args['sweep-reps']!);
const SWEEP_NEW = Math.min(NEW, int('sweep-tokens', args['sweep-tokens']!, 2));
const log = (s: string) => console.error(`[bench:generate] ${s}`);

const device = await createGpuDevice();
log(`adapter: ${device.describe()}`);

/** What the benchmark uses of @offramp/train (imported from its sources at run time). */
interface TrainData {
  isDatasetCached(name: string): boolean;
  fetchDatasets(o: { names: string[] }): Promise<{ failed: { message: string }[] }>;
  loadAusten(): { heldOut: { title: string; text: string } };
}

// ---- the model and prompts ----
let model: DecoderLM;
let modelInfo: Record<string, unknown>;
let decoderDir = '';
let prompts: number[][];
let promptSource: string;
if (args.random) {
  const L = int('layers', args.layers!);
  const raw = {
    hidden_size: int('width', args.width!),
    num_hidden_layers: L,
    num_attention_heads: int('heads', args.heads!),
    num_key_value_heads: int('kv-heads', args['kv-heads']!),
    intermediate_size: Math.round((int('width', args.width!) * 8) / 3 / 8) * 8,
    vocab_size: int('vocab', args.vocab!, 2),
    max_position_embeddings: 1024,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    offramp: { exits: intList('exits', args.exits!, 0).filter((e) => e < L - 1) },
  };
  const config = parseDecoderConfig(raw);
  model = new DecoderLM(device, config, randomDecoderWeights(config, 1));
  modelInfo = { kind: 'random', config: raw };
  const rand = mulberry32(7);
  prompts = Array.from({ length: Math.max(...BATCHES) }, () =>
    Array.from({ length: PROMPT }, () => Math.floor(rand() * config.vocabSize)),
  );
  promptSource = `random token ids (length ${PROMPT})`;
} else {
  // a relative --model is relative to where pnpm was started (INIT_CWD), not to packages/core
  const dir = path.resolve(
    process.env.INIT_CWD ?? process.cwd(),
    args.model ?? path.join(root, 'checkpoints/austen-decoder'),
  );
  if (!existsSync(path.join(dir, 'config.json'))) {
    console.error(
      `bench:generate: no decoder checkpoint at ${dir} (config.json missing). Train it (the austen-decoder checkpoint), pass --model DIR, or run with --random.`,
    );
    process.exit(2);
  }
  const { model: m, loaded } = await loadDecoderLM(dir, device);
  model = m;
  modelInfo = { kind: 'checkpoint', path: path.relative(root, dir) || dir, config: loaded.rawConfig };
  decoderDir = dir;
  const tok = loaded.tokenizer;
  if (tok?.kind === 'char') {
    // held-out Austen text (Persuasion), through the package's loader (source import: no build needed)
    const trainSrc = '../../train/src/index.js'; // a path, not a dependency: @offramp/train depends on core
    const train = (await import(trainSrc)) as TrainData;
    if (!train.isDatasetCached('austen')) {
      log('the Austen corpus is not in the data cache; fetching it');
      const r = await train.fetchDatasets({ names: ['austen'] });
      if (r.failed.length) throw new Error(`bench:generate: fetching the Austen corpus failed: ${r.failed[0].message}`);
    }
    const held = train.loadAusten().heldOut;
    const ids = tok.encode(held.text);
    const stride = Math.floor((ids.length - PROMPT) / Math.max(...BATCHES));
    prompts = Array.from({ length: Math.max(...BATCHES) }, (_, b) => ids.slice(b * stride, b * stride + PROMPT));
    promptSource = `held-out Austen (${held.title}), ${PROMPT}-character windows ${stride} characters apart`;
  } else {
    const rand = mulberry32(7);
    prompts = Array.from({ length: Math.max(...BATCHES) }, () =>
      Array.from({ length: PROMPT }, () => Math.floor(rand() * model.V)),
    );
    promptSource = `random token ids (length ${PROMPT}; the folder has no char tokenizer)`;
  }
}
const L = model.L;
const early = model.exits.slice(0, -1);
if (early.length === 0) {
  console.error('bench:generate: the model has no early exit; token exits and speculative decoding need one');
  process.exit(2);
}
log(`model: ${JSON.stringify(modelInfo.kind)} L=${L} d=${model.d} V=${model.V} exits=[${model.exits.join(', ')}]`);

// ---- strategies ----
interface RunOptions {
  maxNewTokens: number;
}
interface StrategyRun {
  tokens: number[][];
  /** Blocks run for the generated tokens after the first (the prefill is not counted). */
  blocks: number;
  /** Strategy-specific figures (acceptance rate, mean k, propagated blocks ...). */
  extra?: Record<string, number>;
}
interface Strategy {
  name: string;
  family: string;
  params: Record<string, unknown>;
  run(prompts: number[][], o: RunOptions): Promise<StrategyRun>;
  /** Agreement with the full model's next token given the full model's prefix (optional). */
  teacherForced?(prompts: number[][], full: number[][]): Promise<number>;
}

/** Prefill, then one DecoderLM.step per token (full depth without an exit rule; CALM exits with one). */
async function stepLoop(prompts: number[][], n: number, exit?: DecoderExitOptions): Promise<StrategyRun> {
  const { logits, cache } = await model.prefill(prompts, undefined, PROMPT + n);
  try {
    const V = model.V;
    let next = prompts.map((_, b) => argmaxOf(logits, b * V, V));
    const tokens = next.map((t) => [t]);
    let blocks = 0;
    let propagated = 0;
    for (let i = 1; i < n; i++) {
      const r = await model.step(next, cache, exit);
      blocks += r.blocksRun;
      propagated += r.propagatedBlocks;
      next = prompts.map((_, b) => argmaxOf(r.logits, b * V, V));
      next.forEach((t, b) => {
        tokens[b].push(t);
      });
    }
    return { tokens, blocks, extra: { propagatedBlocksPerToken: propagated / (prompts.length * (n - 1)) } };
  } finally {
    cache.dispose();
  }
}

/** Token-exit agreement given the full model's prefix: step on the full tokens, compare each argmax. */
async function forcedAgreement(prompts: number[][], full: number[][], exit: DecoderExitOptions): Promise<number> {
  const { cache } = await model.prefill(prompts, undefined, PROMPT + NEW);
  try {
    let same = 0;
    let count = 0;
    for (let i = 0; i + 1 < full[0].length; i++) {
      const r = await model.step(
        full.map((t) => t[i]),
        cache,
        exit,
      );
      full.forEach((t, b) => {
        same += argmaxOf(r.logits, b * model.V, model.V) === t[i + 1] ? 1 : 0;
        count++;
      });
    }
    return same / count;
  } finally {
    cache.dispose();
  }
}

const fullDepth: Strategy = {
  name: 'full depth',
  family: 'full',
  params: {},
  run: (p, o) => stepLoop(p, o.maxNewTokens),
};

function tokenExit(kind: 'maxProb' | 'margin' | 'saturation', threshold: number): Strategy {
  const exit: DecoderExitOptions = { rule: { kind, threshold }, skip: 'propagate' };
  return {
    name: `CALM ${kind} ≥ ${threshold}`,
    family: 'token exit (CALM propagation)',
    params: { rule: kind, threshold },
    run: (p, o) => stepLoop(p, o.maxNewTokens, exit),
    teacherForced: (p, full) => forcedAgreement(p, full, exit),
  };
}

function speculative(k: number, draftExit: number, adaptive?: AdaptiveKOptions): Strategy {
  return {
    name: adaptive ? `speculative E=${draftExit + 1}, adaptive k` : `speculative E=${draftExit + 1}, k=${k}`,
    family: 'self-speculative (greedy)',
    params: { k, draftExit, E: draftExit + 1, adaptive: adaptive ?? false },
    run: async (p, o) => {
      const r: SpeculativeResult = await speculativeGenerate(model, p, {
        maxNewTokens: o.maxNewTokens,
        k,
        draftExit,
        adaptive: adaptive ?? false,
      });
      const ks = r.rows.flatMap((x) => x.ks);
      return {
        tokens: r.tokens,
        blocks: r.blocks,
        extra: {
          acceptanceRate: r.acceptanceRate,
          meanK: ks.reduce((a, b) => a + b, 0) / Math.max(1, ks.length),
          tokensPerRound: r.rows.reduce((a, x) => a + x.tokens - 1, 0) / r.rows.reduce((a, x) => a + x.rounds, 0),
        },
      };
    },
    teacherForced: async () => 1,
  };
}

/**
 * A strategy of generateWithStrategy: CALM in the device loop (exit decisions, sampling and N steps per
 * submission on the GPU), deferred K/V recomputation (EE-LLM) and SkipDecode.
 */
function loopStrategy(
  strategy: GenerationStrategy,
  label: string,
  family: string,
  extra: {
    rule?: { kind: 'maxProb' | 'margin'; threshold: number };
    hMin?: number;
    fused?: boolean;
    gate?: boolean;
  },
): Strategy {
  const stepsPerSubmit = 16;
  return {
    name: label,
    family,
    params: { strategy, ...extra, stepsPerSubmit },
    run: async (p, o) => {
      const r = await generateWithStrategy(model, p, {
        strategy,
        maxNewTokens: o.maxNewTokens,
        exit: extra.rule ? { rule: extra.rule } : undefined,
        schedule: extra.hMin !== undefined ? { hMin: extra.hMin } : undefined,
        fused: extra.fused,
        gate: extra.gate,
        stepsPerSubmit,
      });
      return {
        tokens: r.tokens,
        blocks: r.blocksRun,
        extra: { blocksComputedPerToken: r.blocksComputed / (p.length * Math.max(1, o.maxNewTokens - 1)) },
      };
    },
    teacherForced: extra.rule
      ? (p, full) => forcedAgreement(p, full, { rule: extra.rule!, skip: 'propagate' })
      : undefined,
  };
}

const loopStrategies: Strategy[] = [
  // the device loop at full depth: what the loop itself gains (one submission and readback per 16 tokens),
  // apart from any exit; the baseline of every ratio stays the host step loop at full depth
  loopStrategy('calm', 'full depth, device loop', 'full depth, device loop (N = 16)', {}),
  loopStrategy('calm', 'CALM maxProb ≥ 0.9, device loop', 'token exit, device loop (CALM, N = 16)', {
    rule: { kind: 'maxProb', threshold: 0.9 },
  }),
  loopStrategy('calm', 'CALM maxProb ≥ 0.7, device loop', 'token exit, device loop (CALM, N = 16)', {
    rule: { kind: 'maxProb', threshold: 0.7 },
  }),
  loopStrategy('calm', 'CALM maxProb ≥ 0.5, device loop', 'token exit, device loop (CALM, N = 16)', {
    rule: { kind: 'maxProb', threshold: 0.5 },
  }),
  // with the dispatch gate forced on: a step's heavy dispatches after the first exit are indirect and skipped
  // once every row has left (the default leaves it off on a software adapter like this one, see gpu-loop.ts)
  ...[0.7, 0.5].map((threshold) =>
    loopStrategy('calm', `CALM maxProb ≥ ${threshold}, device loop, gated`, 'token exit, device loop (CALM, N = 16)', {
      rule: { kind: 'maxProb', threshold },
      gate: true,
    }),
  ),
  // fused: the owed blocks ride in the next step's dispatches; unfused: a pass of their own before it
  ...[0.9, 0.5].flatMap((threshold) => [
    loopStrategy('recompute', `recompute maxProb ≥ ${threshold}`, 'token exit (EE-LLM recomputation)', {
      rule: { kind: 'maxProb', threshold },
    }),
    loopStrategy('recompute', `recompute maxProb ≥ ${threshold}, unfused`, 'token exit (EE-LLM recomputation)', {
      rule: { kind: 'maxProb', threshold },
      fused: false,
    }),
  ]),
  // 1 warm-up block always runs; the top h(t) blocks fall from L − 1 to hMin over the generated tokens
  ...[...new Set([Math.max(1, L - 3), Math.max(1, Math.floor((L - 1) / 3))])].map((hMin) =>
    loopStrategy('skipdecode', `SkipDecode 1 + top ${L - 1}→${hMin}`, 'SkipDecode (device loop)', { hMin }),
  ),
];

const exitStrategies: Strategy[] = [
  tokenExit('maxProb', 0.9),
  tokenExit('maxProb', 0.7),
  tokenExit('maxProb', 0.5),
  tokenExit('margin', 0.5),
  tokenExit('margin', 0.3),
  tokenExit('saturation', 0.99),
  tokenExit('saturation', 0.95),
];

/** NLL (nats per token) of the generated tokens under the full model. */
async function perplexity(ps: number[][], gen: number[][]): Promise<number> {
  const seqs = ps.map((p, b) => p.concat(gen[b]));
  const s = await model.score(seqs);
  const last = s.exits.length - 1;
  let nll = 0;
  let n = 0;
  let off = 0;
  seqs.forEach((q, b) => {
    // position t predicts token t + 1; generated tokens start at index ps[b].length
    for (let t = ps[b].length - 1; t < q.length - 1; t++) {
      nll += s.tokenNll[last][off + t];
      n++;
    }
    off += q.length - 1;
  });
  return Math.exp(nll / n);
}

interface Row {
  batch: number;
  strategy: string;
  family: string;
  params: Record<string, unknown>;
  tokensPerSecond: { median: number; min: number; max: number };
  msPerRun: number[];
  /** CPU time of this process per run (on a software adapter the GPU work runs on this process's threads). */
  cpuMsPerRun: number[];
  /** Full depth's median CPU time ÷ this strategy's: a load-robust cost ratio on a software adapter. */
  cpuSpeedup: number;
  blocksPerToken: number;
  computeSpeedup: number;
  wallSpeedup: number;
  wallOverCompute: number;
  agreementSequence: number;
  agreementTeacherForced: number | null;
  identicalToFull: boolean;
  perplexity: number;
  extra: Record<string, number>;
}

const ONLY = args.only
  ?.split(',')
  .map((x) => x.trim())
  .filter((x) => x);
const rows: Row[] = [];
const sweeps: Record<string, unknown> = {};
const t0 = performance.now();
for (const B of BATCHES) {
  const ps = prompts.slice(0, B);
  const chosen = (s: Strategy) => s === fullDepth || !ONLY || ONLY.some((x) => s.name.includes(x));
  const speculativeChosen = !ONLY || ONLY.some((x) => 'speculative'.includes(x) || x.includes('speculative'));
  if (!speculativeChosen) {
    const strategies = [fullDepth, ...exitStrategies, ...loopStrategies].filter(chosen);
    await measure(B, ps, strategies);
    continue;
  }
  log(`batch ${B}: sweep of (k, E) for speculative decoding over ${SWEEP_NEW} tokens`);
  const points = await sweepSpeculative(model, ps, {
    maxNewTokens: SWEEP_NEW,
    ks: SWEEP_KS,
    adaptive: false,
    repeats: SWEEP_REPS,
    onPoint: (p) =>
      log(
        `  E=${p.draftExit + 1} k=${p.k}: ${p.tokensPerSecond.toFixed(1)} tok/s, acceptance ${p.acceptanceRate.toFixed(3)}`,
      ),
  });
  sweeps[String(B)] = points;
  const best = points[0];
  const strategies: Strategy[] = [
    fullDepth,
    ...exitStrategies,
    ...loopStrategies,
    speculative(best.k, best.draftExit),
    speculative(best.k, best.draftExit, { min: 1, max: 8 }),
  ].filter(chosen);
  await measure(B, ps, strategies);
}

/** Warm-up, REPS interleaved timed runs and the figures of each strategy at batch B (rows pushed). */
async function measure(B: number, ps: number[][], strategies: Strategy[]): Promise<void> {
  // warm-up / reference run of each (untimed): tokens for agreement and perplexity
  const first = new Map<Strategy, StrategyRun>();
  for (const s of strategies) {
    first.set(s, await s.run(ps, { maxNewTokens: NEW }));
    log(`  batch ${B}: warm-up ${s.name}`);
  }
  const times = new Map<Strategy, number[]>(strategies.map((s) => [s, []]));
  const cpu = new Map<Strategy, number[]>(strategies.map((s) => [s, []]));
  for (let r = 0; r < REPS; r++) {
    // interleaved, rotating the order each repetition so load falls on all
    const order = strategies.map((_, i) => strategies[(i + r) % strategies.length]);
    for (const s of order) {
      const a = performance.now();
      const c = process.cpuUsage();
      await s.run(ps, { maxNewTokens: NEW });
      times.get(s)!.push(performance.now() - a);
      const dc = process.cpuUsage(c);
      cpu.get(s)!.push((dc.user + dc.system) / 1000);
    }
    log(`  batch ${B}: repetition ${r + 1}/${REPS} done (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  const full = first.get(fullDepth)!;
  const fullTps = (B * NEW) / (median(times.get(fullDepth)!) / 1000);
  const fullCpu = median(cpu.get(fullDepth)!);
  for (const s of strategies) {
    const run = first.get(s)!;
    const ms = times.get(s)!;
    const tps = ms.map((x) => (B * NEW) / (x / 1000));
    const blocksPerToken = run.blocks / (B * (NEW - 1));
    let same = 0;
    run.tokens.forEach((t, b) => {
      t.forEach((x, i) => {
        same += x === full.tokens[b][i] ? 1 : 0;
      });
    });
    const tpsMed = median(tps);
    const computeSpeedup = L / blocksPerToken;
    const wallSpeedup = tpsMed / fullTps;
    const row: Row = {
      batch: B,
      strategy: s.name,
      family: s.family,
      params: s.params,
      tokensPerSecond: { median: tpsMed, min: Math.min(...tps), max: Math.max(...tps) },
      msPerRun: ms,
      cpuMsPerRun: cpu.get(s)!,
      cpuSpeedup: fullCpu / median(cpu.get(s)!),
      blocksPerToken,
      computeSpeedup,
      wallSpeedup,
      wallOverCompute: wallSpeedup / computeSpeedup,
      agreementSequence: same / (B * NEW),
      agreementTeacherForced: s === fullDepth ? 1 : s.teacherForced ? await s.teacherForced(ps, full.tokens) : null,
      identicalToFull: JSON.stringify(run.tokens) === JSON.stringify(full.tokens),
      perplexity: await perplexity(ps, run.tokens),
      extra: run.extra ?? {},
    };
    if (s.family.startsWith('self-speculative') && !row.identicalToFull)
      throw new Error(`bench:generate: ${s.name} at batch ${B} differs from full-depth greedy output (it must not)`);
    rows.push(row);
    log(
      `  batch ${B} ${s.name}: ${tpsMed.toFixed(1)} tok/s (${row.tokensPerSecond.min.toFixed(1)}-${row.tokensPerSecond.max.toFixed(1)}), wall ×${wallSpeedup.toFixed(2)}, cpu ×${row.cpuSpeedup.toFixed(2)}, compute ×${computeSpeedup.toFixed(2)}, agreement ${row.agreementSequence.toFixed(3)}`,
    );
  }
}

// ---- the Austen Mamba on the same prompts: token exits with frozen or partially updated state ----
interface MambaRow {
  batch: number;
  strategy: string;
  tokensPerSecond: { median: number; min: number; max: number };
  wallSpeedup: number;
  cpuSpeedup: number;
  blocksPerToken: number;
  computeSpeedup: number;
  wallOverCompute: number;
  agreementSequence: number;
}
const mambaRows: MambaRow[] = [];
let mambaInfo: Record<string, unknown> | null = null;
const mambaDir =
  args.mamba === 'none' || args.random
    ? null
    : path.resolve(process.env.INIT_CWD ?? process.cwd(), args.mamba ?? path.join(root, 'checkpoints/austen-mamba'));
if (mambaDir && modelInfo.kind === 'checkpoint' && !ONLY) {
  const same = (a: string, b: string) =>
    existsSync(a) && existsSync(b) && readFileSync(a, 'utf8') === readFileSync(b, 'utf8');
  const decoderTok = path.join(decoderDir, 'char-tokenizer.json');
  if (!same(path.join(mambaDir, 'char-tokenizer.json'), decoderTok)) {
    log(`skipping the Mamba rows: ${mambaDir} has no char tokenizer equal to the decoder's (the prompts are shared)`);
  } else {
    const mambaNode = '../../mamba/src/node.js'; // a path, not a dependency: @offramp/mamba depends on core
    type Mamba = {
      L: number;
      generate(
        p: number[][],
        o: { maxNewTokens: number; sampling?: { temperature: number }; exit?: unknown },
      ): Promise<{ tokens: number[][]; depthFraction: number }>;
      dispose(): void;
    };
    const { loadMambaLM } = (await import(mambaNode)) as {
      loadMambaLM(d: unknown, dir: string): Promise<{ model: Mamba }>;
    };
    const { model: mamba } = await loadMambaLM(device, mambaDir);
    mambaInfo = { path: path.relative(root, mambaDir) || mambaDir, numLayers: mamba.L };
    const cases: [string, unknown][] = [
      ['full depth', undefined],
      ['maxProb ≥ 0.35, freeze', { rule: { kind: 'maxProb', threshold: 0.35 }, skip: 'freeze' }],
      ['maxProb ≥ 0.35, partial', { rule: { kind: 'maxProb', threshold: 0.35 }, skip: 'partial' }],
      ['entropy ≤ 0.5, freeze', { rule: { kind: 'entropy', threshold: 0.5 }, skip: 'freeze' }],
      ['fixed exit after block 3', { rule: { kind: 'fixed', block: 3 }, skip: 'freeze' }],
    ];
    for (const B of BATCHES) {
      const ps = prompts.slice(0, B);
      const run = (exit: unknown) => mamba.generate(ps, { maxNewTokens: NEW, sampling: { temperature: 0 }, exit });
      const first: { tokens: number[][]; depthFraction: number }[] = [];
      for (const [, exit] of cases) first.push(await run(exit));
      const ms: number[][] = cases.map(() => []);
      const cpu: number[][] = cases.map(() => []);
      for (let r = 0; r < REPS; r++)
        for (let i = 0; i < cases.length; i++) {
          const k = (i + r) % cases.length;
          const a = performance.now();
          const c = process.cpuUsage();
          await run(cases[k][1]);
          ms[k].push(performance.now() - a);
          const dc = process.cpuUsage(c);
          cpu[k].push((dc.user + dc.system) / 1000);
        }
      const fullMs = median(ms[0]);
      const fullCpu = median(cpu[0]);
      cases.forEach(([name], k) => {
        const tps = ms[k].map((x) => (B * NEW) / (x / 1000));
        let same = 0;
        first[k].tokens.forEach((t, b) => {
          t.forEach((x, i) => {
            same += x === first[0].tokens[b][i] ? 1 : 0;
          });
        });
        const computeSpeedup = 1 / first[k].depthFraction;
        const wallSpeedup = fullMs / median(ms[k]);
        mambaRows.push({
          batch: B,
          strategy: name,
          tokensPerSecond: { median: median(tps), min: Math.min(...tps), max: Math.max(...tps) },
          wallSpeedup,
          cpuSpeedup: fullCpu / median(cpu[k]),
          blocksPerToken: first[k].depthFraction * mamba.L,
          computeSpeedup,
          wallOverCompute: wallSpeedup / computeSpeedup,
          agreementSequence: same / (B * NEW),
        });
        log(
          `  Mamba batch ${B} ${name}: ${median(tps).toFixed(1)} tok/s, wall ×${wallSpeedup.toFixed(2)}, compute ×${computeSpeedup.toFixed(2)}, agreement ${(same / (B * NEW)).toFixed(3)}`,
        );
      });
    }
    mamba.dispose();
  }
}

// ---- the Austen Mamba's decode loop on the device against its host loop (generate-mamba-loop.ts) ----
const mambaLoop =
  mambaDir && mambaInfo
    ? await mambaDeviceLoopRows({ device, dir: mambaDir, prompts, batches: BATCHES, newTokens: NEW, reps: REPS, log })
    : null;

const result = {
  benchmark: 'generate',
  date: new Date().toISOString(),
  machine: machineInfo(),
  adapter: device.describe(),
  model: { ...modelInfo, numLayers: L, hiddenSize: model.d, vocabSize: model.V, exits: model.exits },
  settings: {
    batches: BATCHES,
    newTokens: NEW,
    promptLength: PROMPT,
    repetitions: REPS,
    promptSource,
    decoding: 'greedy',
    timing:
      'wall-clock of a whole generation call (prefill included) per repetition; strategies interleaved, order rotated per repetition; tokens/s = batch × new tokens / time; median and range over repetitions',
    blocks:
      'blocks run for generated tokens after the first (prefill excluded), summed over rows; CALM propagation K/V-only work is not counted as blocks (see extra.propagatedBlocksPerToken)',
    agreementSequence:
      'fraction of generated positions equal to full-depth greedy output at the same position, each strategy running free (by sequence)',
    agreementTeacherForced:
      'token exits: fraction of positions whose exit token equals the full model’s next token given the full model’s prefix; speculative decoding is lossless (1 by construction, checked by identicalToFull)',
    sweep: `batch-wise sweep over k ∈ {${SWEEP_KS.join(', ')}} × draft exits {${early.join(', ')}} on ${SWEEP_NEW} tokens, median of ${SWEEP_REPS} run(s) each; the fastest (k, E) is used`,
    adaptiveK:
      'per row, k ∈ [1, 8] maximising (1 − α^{k+1})/(1 − α) / ((k + 1)·E + L − E) with α the decayed (0.7) acceptance estimate, prior 0.5',
  },
  sweeps,
  rows,
  mamba: mambaInfo ? { model: mambaInfo, rows: mambaRows } : null,
  mambaDeviceLoop: mambaLoop,
};
const outPath = path.resolve(
  args.out ?? path.join(here, 'results', args.random ? 'generate-random.json' : 'generate.json'),
);
mkdirSync(path.dirname(outPath), { recursive: true });
if (args.merge && existsSync(outPath)) {
  // keep the other rows, the sweeps and the Mamba rows of the file; replace (or add) the rows measured now
  const old = JSON.parse(readFileSync(outPath, 'utf8')) as typeof result & { merged?: unknown[] };
  const key = (r: Row) => `${r.batch}\u0000${r.strategy}`;
  const fresh = new Map(rows.map((r) => [key(r), r]));
  const kept = old.rows.map((r) => fresh.get(key(r)) ?? r);
  for (const r of rows) if (!old.rows.some((o) => key(o) === key(r))) kept.push(r);
  const note = { date: result.date, rows: rows.map((r) => `batch ${r.batch}: ${r.strategy}`), machine: result.machine };
  writeFileSync(outPath, `${JSON.stringify({ ...old, rows: kept, merged: [...(old.merged ?? []), note] }, null, 2)}\n`);
} else writeFileSync(outPath, `${JSON.stringify(result, null, 2)}\n`);
log(`wrote ${path.relative(process.cwd(), outPath)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
if (args.doc) {
  const doc = writeGenerationDoc(root);
  log(`wrote ${path.relative(process.cwd(), doc)}`);
}
model.dispose();
device.destroy();
