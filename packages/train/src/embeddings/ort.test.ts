// The shipped code-search checkpoint on the ONNX Runtime CPU path (loadEmbedder on an 'ort-cpu' device) against
// the same checkpoint on the WebGPU kernels (lavapipe in CI): the embeddings of real texts agree at every exit,
// every query finds the same nearest code, exit k alone is exit k of 'all', and a text embeds the same alone
// as in a batch. Real texts are held-out pairs of the code-search set when it is cached ($OFFRAMP_DATA_DIR or
// .data/), else a fixed handful.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createDevice,
  type Device,
  embedReference,
  type GpuDevice,
  isSoftwareAdapter,
  loadOrt,
  mulberry32,
  parseSafetensors,
} from '@offramp/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCodeSearch } from '../data/code-search.js';
import { type LoadedEmbedder, loadEmbedder } from './load.js';
import { dotScores } from './retrieval.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const dir = path.join(root, 'checkpoints', 'code-search');
const ortError = await loadOrt().then(
  () => null,
  (e: Error) => e,
);
if (ortError) console.warn(`skipping the ONNX Runtime embedder checkpoint test: ${ortError.message}`);
const describeOrt = ortError ? describe.skip : describe;

/** Largest |ort − webgpu| over the largest |webgpu| of a vector (the ONNX Runtime tests' 2e-4). */
const REL_TOL = 2e-4;
const N = 40;

function realTexts(): { queries: string[]; codes: string[]; source: string } {
  try {
    const test = loadCodeSearch().test;
    const rand = mulberry32(7);
    const pick = Array.from({ length: N }, () => test[Math.floor(rand() * test.length)]);
    return {
      queries: pick.map((r) => r.query),
      codes: pick.map((r) => r.code),
      source: `${N} held-out code-search pairs`,
    };
  } catch {
    const pairs: [string, string][] = [
      ['Return the number of bytes in the file.', 'def size(path):\n    return os.stat(path).st_size'],
      [
        'Read a whole text file.',
        'def read_file(path, encoding="utf-8"):\n    with open(path, encoding=encoding) as f:\n        return f.read()',
      ],
      [
        'Parse the headers of an HTTP request.',
        'def parse_headers(raw):\n    return dict(l.split(": ", 1) for l in raw)',
      ],
      ['Join a list of words with commas.', 'def join(words):\n    return ", ".join(words)'],
      ['Square every number in a list.', 'def squares(xs):\n    return [x * x for x in xs]'],
      ['Count the lines of a file.', `def count_lines(path):\n    n = 0\n${'    n = n + 1\n'.repeat(80)}    return n`],
    ];
    return { queries: pairs.map((p) => p[0]), codes: pairs.map((p) => p[1]), source: 'fixed texts (no data cached)' };
  }
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let err = 0;
  let scale = 0;
  for (let k = 0; k < want.length; k++) {
    err = Math.max(err, Math.abs(got[k] - want[k]));
    scale = Math.max(scale, Math.abs(want[k]));
  }
  return err / scale;
}

/** Indices of the k best scores, best first. */
function topK(s: Float64Array, k: number): number[] {
  return [...s.keys()].sort((a, b) => s[b] - s[a]).slice(0, k);
}

let ortDev: Device;
let gpu: Device;
let ort: LoadedEmbedder;
let web: LoadedEmbedder;
beforeAll(async () => {
  if (ortError) return;
  ortDev = await createDevice({ backend: 'ort-cpu', threads: 2 });
  gpu = await createDevice({ backend: 'gpu' });
  ort = await loadEmbedder(dir, ortDev, { maxBatch: 64 });
  web = await loadEmbedder(dir, gpu, { maxBatch: 64 });
});
afterAll(() => {
  ort?.dispose();
  web?.dispose();
  gpu?.destroy();
});

describeOrt('the shipped code-search embedder on the ONNX Runtime path', () => {
  it('agrees with the WebGPU path on real texts at every exit and finds the same nearest neighbours', async () => {
    expect(ort.runner.backend).toBe('ort-cpu');
    expect(web.runner.backend).toBe('webgpu');
    const { queries, codes, source } = realTexts();
    const texts = [...queries, ...codes];
    const a = await ort.embedTexts(texts, { exit: 'all' });
    const b = await web.embedTexts(texts, { exit: 'all' });
    const p = a.dim;
    const n = queries.length;
    const E = ort.config.exit_blocks.length;
    expect(a.exits).toEqual(b.exits);
    expect(a.flops).toEqual(b.flops);
    let worst = 0;
    let compared = 0;
    for (let j = 0; j < E; j++) {
      for (let i = 0; i < texts.length; i++) {
        const x = a.vectors[j].subarray(i * p, (i + 1) * p);
        const e = relErr(x, b.vectors[j].subarray(i * p, (i + 1) * p));
        worst = Math.max(worst, e);
        expect(e, `text ${i}, exit ${j}`).toBeLessThan(REL_TOL);
        expect(Math.hypot(...x)).toBeCloseTo(1, 5);
      }
      // each query against every code: the same nearest code on both paths (where the WebGPU path's top two
      // are not within the paths' difference), and the same top 5 as a set
      const codesA = a.vectors[j].subarray(n * p);
      const codesB = b.vectors[j].subarray(n * p);
      for (let i = 0; i < n; i++) {
        const sa = dotScores(a.vectors[j].subarray(i * p, (i + 1) * p), codesA, p);
        const sb = dotScores(b.vectors[j].subarray(i * p, (i + 1) * p), codesB, p);
        const [ta, tb] = [topK(sa, 5), topK(sb, 5)];
        if (sb[tb[0]] - sb[tb[1]] > 1e-4) {
          expect(ta[0], `query ${i}, exit ${j}`).toBe(tb[0]);
          compared++;
        }
        if (sb[tb[4]] - sb[topK(sb, 6)[5]] > 1e-4) expect(new Set(ta)).toEqual(new Set(tb));
        for (let k = 0; k < codesA.length / p; k++) expect(Math.abs(sa[k] - sb[k])).toBeLessThan(1e-4);
      }
    }
    expect(compared).toBeGreaterThan(0.8 * n * E);
    console.log(
      `  code-search on ${source}: ORT vs WebGPU ≤ ${worst.toExponential(2)} relative; top-1 compared for ${compared} of ${n * E} (query, exit)`,
    );
  }, 300_000);

  it("exit k alone equals exit k of 'all'; a text embeds the same alone as in a batch and as the float64 forward", async () => {
    const { queries, codes } = realTexts();
    const texts = [...queries.slice(0, 8), ...codes.slice(0, 8)];
    const all = await ort.embedTexts(texts, { exit: 'all' });
    const p = all.dim;
    for (let j = 0; j < all.exits.length; j++) {
      const one = await ort.embedTexts(texts, { exit: j });
      expect(Array.from(one.vectors[0])).toEqual(Array.from(all.vectors[j]));
    }
    for (const i of [0, 9, texts.length - 1]) {
      const alone = await ort.embedTexts([texts[i]], { exit: 'all' });
      for (let j = 0; j < all.exits.length; j++)
        expect(relErr(alone.vectors[j], all.vectors[j].subarray(i * p, (i + 1) * p))).toBeLessThan(REL_TOL);
    }
    const { tensors } = parseSafetensors(new Uint8Array(readFileSync(path.join(dir, 'model.safetensors'))));
    const weights = new Map([...tensors].map(([k, t]) => [k, { shape: t.shape, data: Float32Array.from(t.data) }]));
    const ids = ort.tokenize(texts);
    for (const i of [0, 8]) {
      const want = embedReference(ort.config, weights, ids[i]);
      for (let j = 0; j < all.exits.length; j++)
        expect(relErr(all.vectors[j].subarray(i * p, (i + 1) * p), want[j])).toBeLessThan(REL_TOL);
    }
  }, 120_000);

  it("loadEmbedder on createDevice 'auto' takes the ONNX Runtime path on a software adapter; { ort: false } does not", async () => {
    const dev = await createDevice({ backend: 'auto' });
    const soft = dev.kind === 'gpu' && isSoftwareAdapter((dev as GpuDevice).adapter);
    const a = await loadEmbedder(dir, dev);
    const b = await loadEmbedder(dir, dev, { ort: false });
    try {
      if (soft) expect(a.runner.backend).toBe('ort-cpu');
      expect(b.runner.backend).toBe(dev.kind === 'gpu' ? 'webgpu' : 'cpu-reference');
      const x = await a.embedTexts(['Return the size of a file.'], { exit: 0 });
      const y = await b.embedTexts(['Return the size of a file.'], { exit: 0 });
      expect(relErr(x.vectors[0], y.vectors[0])).toBeLessThan(REL_TOL);
    } finally {
      a.dispose();
      b.dispose();
      dev.destroy();
    }
  }, 120_000);
});
