// The shipped code-search embedder (checkpoints/code-search) on the ONNX Runtime CPU path against the same
// checkpoint on the machine's WebGPU adapter (lavapipe where there is no GPU), side by side in one process:
// loadEmbedder on an 'ort-cpu' device and on the WebGPU device, embedding N held-out code-search texts (half
// queries, half code, a seeded sample of the test split; the model reads up to 256 tokens) at every exit in one
// pass ('all', what `offramp index` does) and at the first exit alone (the rows leave after block 0). Texts/s
// from the median of ROUNDS rounds, the order of the two paths alternating each round, after one untimed
// warm-up round each (sessions and pipelines of every sequence bucket built). The two paths' embeddings are
// checked against each other (largest difference relative to the largest component, nearest code of each
// query). Writes bench/results/embed-ort.json; exits non-zero only when the paths disagree.
//   pnpm bench:embed   (env: EMBED_BENCH_N texts (default 128), EMBED_BENCH_ROUNDS (5), EMBED_BENCH_BATCH
//   (the runner's maxBatch, default 32 as loadEmbedder's), EMBED_BENCH_THREADS (ONNX Runtime's intra-op threads;
//   default its own choice))
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDevice, type EmbedResult, mulberry32 } from '@offramp/core';
import { loadCodeSearch } from '../src/data/code-search.js';
import { ensureDatasets } from '../src/data/fetch.js';
import { shuffleInPlace } from '../src/data/split.js';
import { type LoadedEmbedder, loadEmbedder } from '../src/embeddings/load.js';
import { dotScores } from '../src/embeddings/retrieval.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHECKPOINT = 'checkpoints/code-search';
const N = Number(process.env.EMBED_BENCH_N ?? 128);
const ROUNDS = Number(process.env.EMBED_BENCH_ROUNDS ?? 5);
const BATCH = Number(process.env.EMBED_BENCH_BATCH ?? 32);
const THREADS = process.env.EMBED_BENCH_THREADS ? Number(process.env.EMBED_BENCH_THREADS) : undefined;
const SEED = 20261202;
/** The ONNX Runtime tests' tolerance: largest |ort − webgpu| over the largest |webgpu| component. */
const REL_TOL = 2e-4;
for (const [k, v] of Object.entries({ EMBED_BENCH_N: N, EMBED_BENCH_ROUNDS: ROUNDS, EMBED_BENCH_BATCH: BATCH })) {
  if (!Number.isInteger(v) || v < (k === 'EMBED_BENCH_N' ? 2 : 1)) throw new Error(`${k} must be a positive integer`);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// fetches the code-search set into the data cache on first use (a few minutes), as the other scripts do
await ensureDatasets(['code-search'], { log: (line) => console.error(line) });
const data = loadCodeSearch();
const pairs = shuffleInPlace([...data.test], mulberry32(SEED)).slice(0, Math.ceil(N / 2));
const texts = [...pairs.map((p) => p.query), ...pairs.map((p) => p.code)].slice(0, N);
const nQueries = Math.min(pairs.length, N);

const loadBefore = loadavg();
const gpu = await createDevice({ backend: 'gpu' });
const ortDev = await createDevice({ backend: 'ort-cpu', threads: THREADS });
const dir = path.join(here, '../../..', CHECKPOINT);
const paths: Record<'ort' | 'webgpu', LoadedEmbedder> = {
  ort: await loadEmbedder(dir, ortDev, { maxBatch: BATCH }),
  webgpu: await loadEmbedder(dir, gpu, { maxBatch: BATCH }),
};
if (paths.ort.runner.backend !== 'ort-cpu' || paths.webgpu.runner.backend !== 'webgpu')
  throw new Error(`internal: runners on ${paths.ort.runner.backend} and ${paths.webgpu.runner.backend}`);
const tokens = paths.ort.tokenize(texts).map((r) => r.length);
console.log(
  `${CHECKPOINT}: ${texts.length} held-out texts (${nQueries} queries, ${texts.length - nQueries} code; ${(tokens.reduce((a, b) => a + b, 0) / tokens.length).toFixed(1)} tokens on average, ${tokens.filter((t) => t === paths.ort.config.max_position).length} cut at ${paths.ort.config.max_position}), batch ${BATCH}, ${ROUNDS} rounds`,
);
console.log(`ort: ${ortDev.describe()}\nwebgpu: ${gpu.describe()}`);

const EXITS: { name: string; exit: number | 'all' }[] = [
  { name: "every exit in one pass ('all')", exit: 'all' },
  { name: 'first exit alone (exit 0)', exit: 0 },
];
let failed = false;
const results = [];
for (const { name, exit } of EXITS) {
  const out: Partial<Record<'ort' | 'webgpu', EmbedResult>> = {};
  for (const k of ['ort', 'webgpu'] as const) out[k] = await paths[k].embedTexts(texts, { exit }); // warm-up
  const ms: Record<'ort' | 'webgpu', number[]> = { ort: [], webgpu: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? (['ort', 'webgpu'] as const) : (['webgpu', 'ort'] as const);
    for (const k of order) {
      const t0 = performance.now();
      await paths[k].embedTexts(texts, { exit });
      ms[k].push(performance.now() - t0);
    }
  }
  // agreement: every returned exit, every text; each query's nearest code
  const a = out.ort!;
  const b = out.webgpu!;
  const p = a.dim;
  let worst = 0;
  let top1Same = 0;
  let top1Total = 0;
  for (let j = 0; j < a.vectors.length; j++) {
    for (let i = 0; i < texts.length; i++) {
      let err = 0;
      let scale = 0;
      for (let k = i * p; k < (i + 1) * p; k++) {
        err = Math.max(err, Math.abs(a.vectors[j][k] - b.vectors[j][k]));
        scale = Math.max(scale, Math.abs(b.vectors[j][k]));
      }
      worst = Math.max(worst, err / scale);
    }
    const codesA = a.vectors[j].subarray(nQueries * p);
    const codesB = b.vectors[j].subarray(nQueries * p);
    if (codesA.length === 0) continue;
    for (let i = 0; i < nQueries; i++) {
      const best = (s: Float64Array) => s.reduce((m, v, k) => (v > s[m] ? k : m), 0);
      top1Total++;
      if (
        best(dotScores(a.vectors[j].subarray(i * p, (i + 1) * p), codesA, p)) ===
        best(dotScores(b.vectors[j].subarray(i * p, (i + 1) * p), codesB, p))
      )
        top1Same++;
    }
  }
  if (!(worst < REL_TOL)) {
    failed = true;
    console.error(`WRONG: ${name}: ORT and WebGPU embeddings differ by ${worst} (relative), over ${REL_TOL}`);
  }
  const rate = (k: 'ort' | 'webgpu') => texts.length / (median(ms[k]) / 1000);
  const row = {
    exit,
    textsPerSecond: { ort: +rate('ort').toFixed(1), webgpu: +rate('webgpu').toFixed(1) },
    medianMs: { ort: +median(ms.ort).toFixed(1), webgpu: +median(ms.webgpu).toFixed(1) },
    roundsMs: { ort: ms.ort.map((x) => +x.toFixed(1)), webgpu: ms.webgpu.map((x) => +x.toFixed(1)) },
    ortOverWebgpu: +(rate('ort') / rate('webgpu')).toFixed(2),
    agreement: { maxRelativeDiff: +worst.toExponential(2), nearestCodeSame: `${top1Same}/${top1Total}` },
  };
  results.push(row);
  console.log(
    `${name}: ORT ${row.textsPerSecond.ort} texts/s, WebGPU ${row.textsPerSecond.webgpu} texts/s → ${row.ortOverWebgpu}×; max relative difference ${row.agreement.maxRelativeDiff}, nearest code the same for ${row.agreement.nearestCodeSame} (query, exit)`,
  );
}

const cpuList = cpus();
const result = {
  benchmark: 'embed-ort',
  date: new Date().toISOString(),
  machine: { cpus: cpuList.length, model: cpuList[0]?.model, loadBefore, loadAfter: loadavg() },
  checkpoint: CHECKPOINT,
  texts: {
    count: texts.length,
    queries: nQueries,
    code: texts.length - nQueries,
    meanTokens: +(tokens.reduce((a, b) => a + b, 0) / tokens.length).toFixed(1),
    source: `code-search test split, seeded sample (seed ${SEED})`,
  },
  batch: BATCH,
  rounds: ROUNDS,
  ort: ortDev.describe(),
  webgpu: gpu.describe(),
  results,
};
mkdirSync(path.join(here, 'results'), { recursive: true });
writeFileSync(path.join(here, 'results', 'embed-ort.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log('wrote bench/results/embed-ort.json');
paths.ort.dispose();
paths.webgpu.dispose();
gpu.destroy();
ortDev.destroy();
if (failed) process.exit(1);
