// The Austen Mamba's decode loop on the device (mambaGenerateOnDevice) against its host loop
// (MambaLM.generate: a readback per step, and per exit for threshold rules), greedy, side by side in one
// run: full depth, a fixed exit after block 3, maxProb ≥ 0.35 exits and the shipped Mamba exit classifiers at
// σ ≥ 0.97 (freeze), at batch 1, 8 and 32.
// Per case and batch: median tokens/s of `reps` interleaved timed runs (order rotated per repetition) and
// their range, wall speed-up over the host loop at full depth, blocks the tokens needed per token and the
// compute speed-up they allow (L / that), wall / compute, blocks the device ran per token (the device loop
// runs every block on every row except after a fixed exit), readbacks per generated token, and whether
// the device loop's tokens equal the host loop's with the same rule.
//
// Part of `pnpm bench:generate` (mambaDeviceLoopRows, after the Mamba host rows); alone:
//   pnpm --filter @offramp/core run bench:generate:mamba-loop [--mamba DIR] [--batches 1,8,32]
//       [--new-tokens 64] [--prompt-len 48] [--reps 3] [--steps-per-submit 16] [--out FILE]
// writes bench/results/generate-mamba-loop.json (prompts: held-out Austen windows, as bench:generate).
import './dawn-globals.js';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createGpuDevice } from '../src/runtime/create-device.js';
import type { Device } from '../src/runtime/device.js';
import { machineInfo, median } from './harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');

export interface MambaLoopRow {
  batch: number;
  strategy: string;
  loop: 'host' | 'device';
  tokensPerSecond: { median: number; min: number; max: number };
  /** Over the host loop at full depth, same batch. */
  wallSpeedup: number;
  /** Over the host loop with the same rule, same batch. */
  wallSpeedupOverHostSameRule: number;
  /** Process CPU time (on a CPU rasteriser it includes the rasteriser's threads) of the host loop at full depth over this. */
  cpuSpeedup: number;
  /** Blocks the generated tokens needed, per token after the first. */
  blocksPerToken: number;
  /** L / blocksPerToken. */
  computeSpeedup: number;
  wallOverCompute: number;
  /** Blocks actually run per token (device loop: all L on every row, except after a fixed exit). */
  blocksComputedPerToken: number;
  readbacksPerToken: number;
  identicalToHost: boolean;
}

/** What the benchmark uses of @offramp/mamba (imported from its sources at run time). */
type Exit = { rule: { kind: string; block?: number; threshold?: number }; skip?: 'freeze' | 'partial' };
interface MambaModel {
  L: number;
  generate(
    p: number[][],
    o: { maxNewTokens: number; exit?: Exit; classifiers?: unknown },
  ): Promise<{ tokens: number[][]; exitBlocks: number[][]; depthFraction: number }>;
  dispose(): void;
}
interface LoopResult {
  tokens: number[][];
  exitBlocks: number[][];
  blocksRun: number;
  blocksComputed: number;
  readbacks: number;
}
interface MambaPackage {
  mambaGenerateOnDevice(
    m: MambaModel,
    p: number[][],
    o: { maxNewTokens: number; exit?: Exit; stepsPerSubmit?: number; classifiers?: unknown },
  ): Promise<LoopResult>;
  readExitClassifiers(bytes: Uint8Array): { config: unknown; tensors: unknown };
  ExitClassifiers: new (d: Device, config: unknown, tensors: unknown) => { dispose(): void };
}

/** Device-loop rows of the Mamba checkpoint in `dir` on `prompts` (at least max(batches) of them). */
export async function mambaDeviceLoopRows(o: {
  device: Device;
  dir: string;
  prompts: number[][];
  batches: number[];
  newTokens: number;
  reps: number;
  stepsPerSubmit?: number;
  log: (s: string) => void;
}): Promise<{ model: Record<string, unknown>; stepsPerSubmit: number; rows: MambaLoopRow[] }> {
  const mambaSrc = '../../mamba/src/index.js'; // a path, not a dependency: @offramp/mamba depends on core
  const nodeSrc = '../../mamba/src/node.js';
  const pkg = (await import(mambaSrc)) as MambaPackage;
  const { loadMambaLM } = (await import(nodeSrc)) as {
    loadMambaLM(d: Device, dir: string): Promise<{ model: MambaModel }>;
  };
  const { model: lm } = await loadMambaLM(o.device, o.dir);
  const N = o.stepsPerSubmit ?? 16;
  const NEW = o.newTokens;
  const L = lm.L;
  const rules: [string, Exit | undefined, unknown?][] = [
    ['full depth', undefined],
    ['fixed exit after block 3', { rule: { kind: 'fixed', block: 3 } }],
    ['maxProb ≥ 0.35, freeze', { rule: { kind: 'maxProb', threshold: 0.35 }, skip: 'freeze' }],
  ];
  // the shipped DYNAMAX Mamba exit classifiers, when the folder has them
  const clsFile = path.join(o.dir, 'exit-classifier-mamba.safetensors');
  const cls = existsSync(clsFile)
    ? (() => {
        const r = pkg.readExitClassifiers(readFileSync(clsFile));
        return new pkg.ExitClassifiers(o.device, r.config, r.tensors);
      })()
    : null;
  if (cls)
    rules.push([
      'Mamba classifier σ ≥ 0.97, freeze',
      { rule: { kind: 'classifier', threshold: 0.97 }, skip: 'freeze' },
      cls,
    ]);
  type Run = { tokens: number[][]; blocksRun: number; blocksComputed: number; readbacks: number };
  const cases: { name: string; loop: 'host' | 'device'; rule: number; run(p: number[][]): Promise<Run> }[] = [];
  rules.forEach(([name, exit, classifiers], i) => {
    cases.push({
      name,
      loop: 'host',
      rule: i,
      async run(p) {
        const r = await lm.generate(p, { maxNewTokens: NEW, exit, classifiers });
        const blocks = r.depthFraction * L * p.length * (NEW - 1);
        return { tokens: r.tokens, blocksRun: blocks, blocksComputed: blocks, readbacks: 0 };
      },
    });
  });
  rules.forEach(([name, exit, classifiers], i) => {
    cases.push({
      name,
      loop: 'device',
      rule: i,
      run: (p) => pkg.mambaGenerateOnDevice(lm, p, { maxNewTokens: NEW, exit, stepsPerSubmit: N, classifiers }),
    });
  });
  const rows: MambaLoopRow[] = [];
  try {
    for (const B of o.batches) {
      const ps = o.prompts.slice(0, B);
      const first: Run[] = [];
      // warm-up, the outputs compared, and the readbacks counted (every device read, the prefill's excluded)
      const dev = o.device as Device & { read: Device['read'] };
      const read = dev.read;
      for (const c of cases) {
        let reads = 0;
        dev.read = (t) => {
          reads++;
          return read.call(dev, t);
        };
        try {
          first.push({ ...(await c.run(ps)), readbacks: 0 });
        } finally {
          dev.read = read;
        }
        first[first.length - 1].readbacks = reads - 1;
      }
      const ms: number[][] = cases.map(() => []);
      const cpu: number[][] = cases.map(() => []);
      for (let r = 0; r < o.reps; r++)
        for (let i = 0; i < cases.length; i++) {
          const k = (i + r) % cases.length;
          const a = performance.now();
          const c = process.cpuUsage();
          await cases[k].run(ps);
          ms[k].push(performance.now() - a);
          const dc = process.cpuUsage(c);
          cpu[k].push((dc.user + dc.system) / 1000);
        }
      const hostFull = median(ms[0]);
      const gen = B * (NEW - 1);
      cases.forEach((c, k) => {
        const tps = ms[k].map((x) => (B * NEW) / (x / 1000));
        const hostSame = cases.findIndex((h) => h.loop === 'host' && h.rule === c.rule);
        const blocksPerToken = first[k].blocksRun / gen;
        const wallSpeedup = hostFull / median(ms[k]);
        const computeSpeedup = L / blocksPerToken;
        const row: MambaLoopRow = {
          batch: B,
          strategy: c.name,
          loop: c.loop,
          tokensPerSecond: { median: median(tps), min: Math.min(...tps), max: Math.max(...tps) },
          wallSpeedup,
          wallSpeedupOverHostSameRule: median(ms[hostSame]) / median(ms[k]),
          cpuSpeedup: median(cpu[0]) / median(cpu[k]),
          blocksPerToken,
          computeSpeedup,
          wallOverCompute: wallSpeedup / computeSpeedup,
          blocksComputedPerToken: first[k].blocksComputed / gen,
          readbacksPerToken: first[k].readbacks / NEW,
          identicalToHost: JSON.stringify(first[k].tokens) === JSON.stringify(first[hostSame].tokens),
        };
        if (!row.identicalToHost)
          throw new Error(`bench: Mamba ${c.loop} loop '${c.name}' at batch ${B} differs from the host loop's tokens`);
        rows.push(row);
        o.log(
          `  Mamba ${c.loop} loop batch ${B} ${c.name}: ${row.tokensPerSecond.median.toFixed(1)} tok/s (${row.tokensPerSecond.min.toFixed(1)}-${row.tokensPerSecond.max.toFixed(1)}), wall ×${wallSpeedup.toFixed(2)} (×${row.wallSpeedupOverHostSameRule.toFixed(2)} over the host loop), cpu ×${row.cpuSpeedup.toFixed(2)}, compute ×${computeSpeedup.toFixed(2)}, wall/compute ${row.wallOverCompute.toFixed(2)}`,
        );
      });
    }
  } finally {
    cls?.dispose();
    lm.dispose();
  }
  return { model: { path: path.relative(root, o.dir) || o.dir, numLayers: L }, stepsPerSubmit: N, rows };
}

/** Standalone run: the device-loop rows alone, on held-out Austen windows. */
async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      mamba: { type: 'string' },
      batches: { type: 'string', default: '1,8,32' },
      'new-tokens': { type: 'string', default: '64' },
      'prompt-len': { type: 'string', default: '48' },
      reps: { type: 'string', default: '3' },
      'steps-per-submit': { type: 'string', default: '16' },
      out: { type: 'string' },
    },
  });
  const int = (name: string, v: string, min = 1): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      console.error(`bench:generate:mamba-loop: --${name} must be an integer ≥ ${min}, got '${v}'`);
      process.exit(2);
    }
    return n;
  };
  const batches = args.batches!.split(',').map((x) => int('batches', x.trim()));
  const NEW = int('new-tokens', args['new-tokens']!, 2);
  const PROMPT = int('prompt-len', args['prompt-len']!);
  const reps = int('reps', args.reps!);
  const N = int('steps-per-submit', args['steps-per-submit']!);
  const log = (s: string) => console.error(`[bench:generate:mamba-loop] ${s}`);
  const dir = path.resolve(
    process.env.INIT_CWD ?? process.cwd(),
    args.mamba ?? path.join(root, 'checkpoints/austen-mamba'),
  );
  const trainSrc = '../../train/src/index.js'; // a path, not a dependency: @offramp/train depends on core
  const train = (await import(trainSrc)) as {
    isDatasetCached(name: string): boolean;
    fetchDatasets(o: { names: string[] }): Promise<{ failed: { message: string }[] }>;
    loadAusten(): { heldOut: { title: string; text: string } };
    CharTokenizer: { load(p: string): { encode(s: string): ArrayLike<number> } };
  };
  if (!train.isDatasetCached('austen')) {
    log('the Austen corpus is not in the data cache; fetching it');
    const r = await train.fetchDatasets({ names: ['austen'] });
    if (r.failed.length) throw new Error(`fetching the Austen corpus failed: ${r.failed[0].message}`);
  }
  const held = train.loadAusten().heldOut;
  const ids = Array.from(train.CharTokenizer.load(path.join(dir, 'char-tokenizer.json')).encode(held.text));
  const maxB = Math.max(...batches);
  const stride = Math.floor((ids.length - PROMPT) / maxB);
  const prompts = Array.from({ length: maxB }, (_, b) => ids.slice(b * stride, b * stride + PROMPT));
  const device = await createGpuDevice();
  log(`adapter: ${device.describe()}`);
  const t0 = performance.now();
  const r = await mambaDeviceLoopRows({ device, dir, prompts, batches, newTokens: NEW, reps, stepsPerSubmit: N, log });
  const result = {
    benchmark: 'generate-mamba-loop',
    date: new Date().toISOString(),
    machine: machineInfo(),
    adapter: device.describe(),
    settings: {
      batches,
      newTokens: NEW,
      promptLength: PROMPT,
      repetitions: reps,
      stepsPerSubmit: N,
      promptSource: `held-out Austen (${held.title}), ${PROMPT}-character windows ${stride} characters apart`,
      decoding: 'greedy',
      timing:
        'wall-clock of a whole generation call (prefill included) per repetition; cases interleaved, order rotated per repetition; tokens/s = batch × new tokens / time; median and range over repetitions',
    },
    ...r,
  };
  const out = path.resolve(args.out ?? path.join(here, 'results', 'generate-mamba-loop.json'));
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${path.relative(process.cwd(), out)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  device.destroy();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
