// Streamed generation throughput of the completions routes, side by side in one run: MambaLM.generate
// without HTTP, one stream and 4 concurrent streams through the openai client, at full depth and with early
// exit, and 4 concurrent streams on a scheduler with one slot (no batching). Greedy, 200 tokens a stream;
// cases interleaved (order rotated each round), median of the rounds; prints a Markdown table.
//   pnpm --filter @offramp/server exec tsx --conditions=@offramp/source bench/completions-bench.ts [--tokens N] [--rounds R]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createDevice } from '@offramp/core';
import fastify from 'fastify';
import OpenAI from 'openai';
import { completionsPlugin, createLoadedLm, loadLm } from '../src/completions.js';

const MODEL_DIR = fileURLToPath(new URL('../../../checkpoints/austen-mamba', import.meta.url));
const PROMPTS = [
  'It is a truth universally acknowledged, that a single man',
  'Emma Woodhouse, handsome, clever, and rich,',
  'Sir Walter Elliot, of Kellynch Hall,',
  'The family of Dashwood had long been settled in Sussex.',
];

interface StreamStats {
  tokens: number;
  firstMs: number;
  ms: number;
  depth: number;
}

async function main() {
  const i = process.argv.indexOf('--tokens');
  const tokens = i > 0 ? Number(process.argv[i + 1]) : 200;
  const r = process.argv.indexOf('--rounds');
  const rounds = r > 0 ? Number(process.argv[r + 1]) : 3;
  const device = await createDevice();
  const lm = await loadLm(device, MODEL_DIR, { maxBatch: 16 });
  const serial = createLoadedLm(lm.model, lm.tokenizer, { maxBatch: 1 });
  const app = fastify();
  await app.register(completionsPlugin({ models: { austen: lm, 'austen-serial': serial } }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${addr.port}/v1`, apiKey: 'unused', maxRetries: 0 });

  const stream = async (model: string, prompt: string, policy?: string): Promise<StreamStats> => {
    const t0 = performance.now();
    const s = await client.completions.create({
      model,
      prompt,
      max_tokens: tokens,
      temperature: 0,
      stream: true,
      ...(policy ? { offramp: { policy, skip: 'partial' } } : {}),
    } as OpenAI.Completions.CompletionCreateParamsStreaming);
    let first = 0;
    let n = 0;
    let depth = 1;
    for await (const c of s as AsyncIterable<
      OpenAI.Completions.Completion & { offramp: { exit_blocks: number[]; depth_fraction: number } }
    >) {
      if (!first && c.choices[0]?.text) first = performance.now() - t0;
      n += c.offramp.exit_blocks.length;
      depth = c.offramp.depth_fraction;
    }
    return { tokens: n, firstMs: first, ms: performance.now() - t0, depth };
  };
  const scenario = async (streams: number, model: string, policy?: string) => {
    const before = (model === 'austen' ? lm : serial).scheduler.stats();
    const t0 = performance.now();
    const r = await Promise.all(PROMPTS.slice(0, streams).map((p) => stream(model, p, policy)));
    const ms = performance.now() - t0;
    const after = (model === 'austen' ? lm : serial).scheduler.stats();
    const n = r.reduce((a, x) => a + x.tokens, 0);
    return {
      all: n / (ms / 1000),
      each: r.reduce((a, x) => a + x.tokens / (x.ms / 1000), 0) / r.length,
      first: r.reduce((a, x) => a + x.firstMs, 0) / r.length,
      depth: r.reduce((a, x) => a + x.depth, 0) / r.length,
      rows: (after.stepRows - before.stepRows) / (after.steps - before.steps),
    };
  };
  const direct = async () => {
    const t0 = performance.now();
    const g = await lm.model.generate([Array.from(lm.tokenizer.encode(PROMPTS[0]))], { maxNewTokens: tokens });
    const tps = g.tokens[0].length / ((performance.now() - t0) / 1000);
    return { all: tps, each: tps, first: Number.NaN, depth: 1, rows: 1 };
  };
  const cases: [string, () => ReturnType<typeof direct>][] = [
    ['MambaLM.generate, no HTTP, full depth', direct],
    ['1 stream, full depth', () => scenario(1, 'austen')],
    ['1 stream, confidence >= 0.5, partial', () => scenario(1, 'austen', 'confidence:threshold=0.5')],
    ['1 stream, fixed exit after block 3', () => scenario(1, 'austen', 'fixed:block=3')],
    ['4 streams, full depth, batched', () => scenario(4, 'austen')],
    ['4 streams, confidence >= 0.5, partial, batched', () => scenario(4, 'austen', 'confidence:threshold=0.5')],
    ['4 streams, fixed exit after block 3, batched', () => scenario(4, 'austen', 'fixed:block=3')],
    ['4 streams, full depth, one slot (no batching)', () => scenario(4, 'austen-serial')],
  ];
  await scenario(4, 'austen'); // warm-up: pipelines compiled, buffers pooled
  const runs: Awaited<ReturnType<typeof direct>>[][] = cases.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < cases.length; k++) {
      const c = (k + round) % cases.length; // rotate the order each round
      runs[c].push(await cases[c][1]());
    }
  }
  const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const f = (x: number, d = 1) => (Number.isNaN(x) ? '' : x.toFixed(d));
  console.log(`device: ${device.describe()}; ${tokens} tokens a stream, greedy; median of ${rounds} rounds`);
  console.log('| case | tokens/s, all streams | tokens/s per stream | first token (ms) | blocks run | rows per step |');
  console.log('|---|---:|---:|---:|---:|---:|');
  cases.forEach(([label], c) => {
    const m = (k: 'all' | 'each' | 'first' | 'depth' | 'rows') => median(runs[c].map((r) => r[k]));
    console.log(
      `| ${label} | ${f(m('all'))} | ${f(m('each'))} | ${f(m('first'), 0)} | ${f(m('depth') * 100)} % | ${f(m('rows'), 2)} |`,
    );
  });
  // the results, to a file beside the server benchmark's
  const out = fileURLToPath(new URL('./results/completions.json', import.meta.url));
  mkdirSync(dirname(out), { recursive: true });
  const rows = cases.map(([label], c) => {
    const m = (k: 'all' | 'each' | 'first' | 'depth' | 'rows') => median(runs[c].map((r) => r[k]));
    return {
      case: label,
      tokens_per_s: m('all'),
      tokens_per_s_per_stream: m('each'),
      first_token_ms: m('first'),
      blocks_run: m('depth'),
      rows_per_step: m('rows'),
    };
  });
  writeFileSync(
    out,
    `${JSON.stringify({ device: device.describe(), tokens, rounds, date: new Date().toISOString(), rows }, null, 1)}\n`,
  );
  console.log(`results: packages/server/bench/results/completions.json`);
  await app.close();
  lm.model.dispose();
  device.destroy();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
