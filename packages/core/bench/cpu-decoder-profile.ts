// Why OrtDecoderLM generates slower with exits than at full depth at batch 8 on checkpoints/austen-decoder:
// greedy generation of NEW tokens after 8 prompts, full depth and with the CALM exit of bench/cpu-decoder.ts
// (max prob ≥ 0.5, propagation), under four session-option variants (ORT's defaults here; memory pattern off;
// arena and memory pattern off; one intra-op thread), interleaved in rounds with the order rotated. Prints per
// variant the median time of one generation, tokens/s, the session calls it made and the median time inside
// them (the rest is host work). Not part of bench:cpu:
//   tsx --conditions=@offramp/source bench/cpu-decoder-profile.ts [rounds]

import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { GenerationExit } from '../src/generation/interface.js';
import { createOrtCpu } from '../src/ort/ort-cpu.js';
import { OrtDecoderLM } from '../src/ort/ort-decoder.js';
import { CHECKPOINTS } from '../src/testing-internal/checkpoint-data.js';
import { loadDecoderDir } from '../src/weights/decoder-dir.js';

const PROMPTS = [
  'It is a truth universally',
  'Mr. Darcy was',
  'She was not',
  'The evening passed',
  'Elizabeth could not',
  'My dear Mr. Bennet',
  'They walked on',
  'Her sister had',
];
const NEW = 48;
const loaded = await loadDecoderDir(join(CHECKPOINTS, 'austen-decoder'));
const tok = loaded.tokenizer!;
const exit: GenerationExit = { decide: (s) => Array.from(s.maxProb, (p) => p >= 0.5) };
const variants: Record<string, Record<string, unknown>> = {
  // extra session options merged over OrtCpu's
  base: {},
  noMemPattern: { enableMemPattern: false },
  noArena: { enableCpuMemArena: false, enableMemPattern: false },
  threads1: { intraOpNumThreads: 1 },
};
const models: Record<string, OrtDecoderLM> = {};
let calls = 0;
let inRun = 0;
for (const [k, extra] of Object.entries(variants)) {
  const o = await createOrtCpu();
  const base = o.sessionOptions.bind(o);
  (o as any).sessionOptions = () => ({ ...base(), ...extra });
  const cs = o.createSession.bind(o);
  (o as any).createSession = async (b: Uint8Array) => {
    const s = await cs(b);
    const run = s.run.bind(s);
    (s as any).run = async (f: any, g: any) => {
      calls++;
      const t = performance.now();
      const r = await run(f, g);
      inRun += performance.now() - t;
      return r;
    };
    return s;
  };
  models[k] = new OrtDecoderLM(o, loaded.config, loaded.tensors);
}
const prompts = PROMPTS.map((p) => tok.encode(p));
async function gen(m: OrtDecoderLM, ex?: GenerationExit) {
  const cache = m.newCache(prompts.length, Math.max(...prompts.map((p) => p.length)) + NEW);
  let z = await m.prefill(prompts, cache);
  const V = m.vocabSize;
  let next = prompts.map((_, b) => {
    let a = 0;
    for (let v = 1; v < V; v++) if (z[b * V + v] > z[b * V + a]) a = v;
    return a;
  });
  for (let k = 1; k < NEW; k++) {
    const r = await m.step(next, cache, ex);
    z = r.logits;
    next = prompts.map((_, b) => {
      let a = 0;
      for (let v = 1; v < V; v++) if (z[b * V + v] > z[b * V + a]) a = v;
      return a;
    });
  }
  cache.dispose();
}
const keys: string[] = [];
for (const k of Object.keys(models)) for (const e of ['full', 'exit']) keys.push(`${k}/${e}`);
for (const key of keys) {
  const [k, e] = key.split('/');
  await gen(models[k], e === 'exit' ? exit : undefined);
}
const ms: Record<string, number[]> = {};
const st: Record<string, number[][]> = {};
const R = Number(process.argv[2] ?? 4);
console.log(`load ${loadavg()[0]}`);
for (let r = 0; r < R; r++)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[(i + r) % keys.length];
    const [k, e] = key.split('/');
    calls = 0;
    inRun = 0;
    const t = performance.now();
    await gen(models[k], e === 'exit' ? exit : undefined);
    const dt = performance.now() - t;
    (ms[key] ??= []).push(dt);
    (st[key] ??= []).push([calls, inRun]);
  }
const med = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
for (const key of keys)
  console.log(
    key,
    'ms',
    med(ms[key]).toFixed(0),
    'tok/s',
    (((8 * NEW) / med(ms[key])) * 1000).toFixed(0),
    'calls',
    st[key][0][0],
    'in run ms',
    med(st[key].map((x) => x[1])).toFixed(0),
  );
console.log(`load ${loadavg()[0]}`);
