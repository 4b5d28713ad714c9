// The multi-exit embedder on the ONNX Runtime CPU path (real onnxruntime-node): every exit's embedding against
// the independent float64 forward (embedReference) and against the WebGPU path (lavapipe in CI), on random
// weights of several configs, ragged and padded rows, batch 1 and many; exit k alone = exit k of 'all'; batch
// invariance; one session per segment and bucket; a Runner on createDevice 'auto' over a software adapter
// takes the path, { ort: false } keeps the WebGPU kernels. (The config allows one pooling, 'mean'.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EncoderEmbedderConfig } from '../embeddings/config.js';
import { embed } from '../embeddings/embed.js';
import { buildEmbedder } from '../embeddings/model.js';
import { randomEmbedderWeights } from '../embeddings/random-weights.js';
import { embedReference } from '../embeddings/reference.js';
import type { GraphBuilder } from '../engine/graph.js';
import type { EarlyExitModel } from '../engine/model.js';
import { Runner } from '../engine/runner.js';
import { maskedMean } from '../kernels/masked-mean.js';
import { rmsNorm } from '../kernels/rms-norm.js';
import { createDevice, createGpuDevice } from '../runtime/create-device.js';
import type { Device } from '../runtime/device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { mulberry32, randn } from '../util/random.js';
import { createOrtCpu, isSoftwareAdapter, loadOrt, OrtCpuDevice } from './ort-cpu.js';
import { captureGraph, translateSegment } from './translate.js';

const ortError = await loadOrt().then(
  () => null,
  (e: Error) => e,
);
if (ortError) console.warn(`skipping the ONNX Runtime embedder tests: ${ortError.message}`);
const describeOrt = ortError ? describe.skip : describe;

/** Largest |ort − want| over the largest |want| of a vector: the ORT tests' 2e-4, relative to the scale. */
const REL_TOL = 2e-4;

const base = {
  architecture: 'encoder_embedder',
  pooling: 'mean',
} as const;
const configs: { name: string; cfg: EncoderEmbedderConfig }[] = [
  {
    name: 'd 16, 3 exits, pad id',
    cfg: {
      ...base,
      vocab_size: 50,
      max_position: 40,
      hidden_size: 16,
      num_layers: 3,
      num_heads: 2,
      intermediate_size: 24,
      layer_norm_eps: 1e-5,
      pad_token_id: 49,
      exit_blocks: [0, 1, 2],
      embedding_dim: 12,
      exit_embedding_dim: 4,
    },
  },
  {
    name: 'd 32, exits after blocks 1 and 3, p > d, no pad id',
    cfg: {
      ...base,
      vocab_size: 70,
      max_position: 64,
      hidden_size: 32,
      num_layers: 4,
      num_heads: 4,
      intermediate_size: 48,
      layer_norm_eps: 1e-6,
      exit_blocks: [1, 3],
      embedding_dim: 40,
      exit_embedding_dim: 3,
    },
  },
  {
    name: 'the shipped shape (d 64, 2 heads, p 64), one block per exit',
    cfg: {
      ...base,
      vocab_size: 120,
      max_position: 80,
      hidden_size: 64,
      num_layers: 3,
      num_heads: 2,
      intermediate_size: 128,
      layer_norm_eps: 1e-5,
      pad_token_id: 119,
      exit_blocks: [0, 1, 2],
      embedding_dim: 64,
      exit_embedding_dim: 4,
    },
  },
];

/** Ragged rows of ids that are never the pad id: lengths 1 … max_position (several buckets). */
function raggedRows(c: EncoderEmbedderConfig, seed: number): number[][] {
  const rand = mulberry32(seed);
  const top = c.pad_token_id ?? c.vocab_size;
  const lens = [1, 2, 5, 9, 17, 30, c.max_position - 3, c.max_position, 12, 7, 3];
  return lens.map((len) => Array.from({ length: len }, () => Math.floor(rand() * top)));
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

let gpu: GpuDevice;
let ortDev: OrtCpuDevice;
beforeAll(async () => {
  gpu = await createGpuDevice();
  if (!ortError) ortDev = new OrtCpuDevice(await createOrtCpu({ threads: 2 }));
});
afterAll(() => gpu?.destroy());

describeOrt.each(configs)('embedder on the ONNX Runtime path: $name', ({ cfg }) => {
  const weights = randomEmbedderWeights(cfg, 3);
  const rows = raggedRows(cfg, 11);
  const reference = rows.map((r) => embedReference(cfg, weights, r));
  const E = cfg.exit_blocks.length;
  const p = cfg.embedding_dim;
  const pad = cfg.pad_token_id;
  const row = (v: Float32Array, i: number) => v.subarray(i * p, (i + 1) * p);

  it("every exit ('all' and one at a time) matches the float64 reference and the WebGPU path; unit length", async () => {
    const model = buildEmbedder(ortDev, cfg, weights);
    const runner = new Runner(ortDev, model, { maxBatch: 64 });
    expect(runner.backend).toBe('ort-cpu');
    const gm = buildEmbedder(gpu, cfg, weights);
    const web = new Runner(gpu, gm, { maxBatch: 64 });
    expect(web.backend).toBe('webgpu');
    const inputs: { ids: number[][] }[] = [{ ids: rows }];
    // trailing pad ids are not tokens: the same embeddings (only configs with a pad id)
    if (pad !== undefined)
      inputs.push({ ids: rows.map((r) => [...r, pad, pad, pad].slice(0, Math.max(r.length, cfg.max_position))) });
    let worstRef = 0;
    let worstWeb = 0;
    for (const input of inputs) {
      const all = await embed(runner, input, { exit: 'all' });
      const w = await embed(web, input, { exit: 'all' });
      expect(all.exits).toEqual(Array.from({ length: E }, (_, j) => j));
      expect(all.dim).toBe(p);
      expect(all.flops).toEqual(w.flops);
      for (let j = 0; j < E; j++) {
        rows.forEach((_, i) => {
          const got = row(all.vectors[j], i);
          worstRef = Math.max(worstRef, relErr(got, reference[i][j]));
          worstWeb = Math.max(worstWeb, relErr(got, row(w.vectors[j], i)));
          expect(relErr(got, reference[i][j]), `row ${i} (${rows[i].length} tokens), exit ${j}`).toBeLessThan(REL_TOL);
          expect(relErr(got, row(w.vectors[j], i)), `row ${i}, exit ${j} vs WebGPU`).toBeLessThan(REL_TOL);
          expect(Math.hypot(...got)).toBeCloseTo(1, 5);
        });
        // exit j alone: the rows leave there, the same vectors as exit j of 'all', the same FLOPs as WebGPU
        const one = await embed(runner, input, { exit: j });
        const oneWeb = await embed(web, input, { exit: j });
        expect(one.exits).toEqual([j]);
        expect(Array.from(one.vectors[0])).toEqual(Array.from(all.vectors[j]));
        expect(one.flops).toEqual(oneWeb.flops);
        if (j > 0) expect(one.flops[0]).toBeGreaterThan((await embed(runner, input, { exit: j - 1 })).flops[0]);
      }
    }
    console.log(
      `  ${cfg.hidden_size}-wide embedder: ORT vs float64 ≤ ${worstRef.toExponential(2)}, vs WebGPU ≤ ${worstWeb.toExponential(2)} (relative to the largest component)`,
    );
    runner.dispose();
    web.dispose();
    model.dispose();
    gm.dispose();
  }, 120_000);

  it('batch 1 equals the batch; shuffled rows and chunks give the same vectors; one session per segment and bucket', async () => {
    const model = buildEmbedder(ortDev, cfg, weights);
    const runner = new Runner(ortDev, model, { maxBatch: 64 });
    const full = await embed(runner, { ids: rows }, { exit: 'all' });
    const longest = rows.findIndex((r) => r.length === cfg.max_position);
    // one row alone (its own, smaller bucket): within the tolerance of the reference
    for (const i of [0, 4, rows.length - 1]) {
      const alone = await embed(runner, { ids: [rows[i]] }, { exit: 'all' });
      for (let j = 0; j < E; j++) {
        expect(relErr(alone.vectors[j], reference[i][j])).toBeLessThan(REL_TOL);
        expect(relErr(alone.vectors[j], row(full.vectors[j], i))).toBeLessThan(REL_TOL);
      }
      // with the longest row (the batch's bucket), in a batch of two: bit for bit the batch's vectors
      const pair = await embed(runner, { ids: [rows[i], rows[longest]] }, { exit: 'all' });
      for (let j = 0; j < E; j++)
        expect(Array.from(row(pair.vectors[j], 0))).toEqual(Array.from(row(full.vectors[j], i)));
    }
    const rand = mulberry32(5);
    const order = rows.map((_, i) => i).sort(() => rand() - 0.5);
    const shuffled = await embed(runner, { ids: order.map((i) => rows[i]) }, { exit: 'all' });
    // chunks of 3 rows (embed runs 'all' chunk by chunk with row offsets)
    const small = new Runner(ortDev, model, { maxBatch: 3 });
    const chunked = await embed(small, { ids: rows }, { exit: 'all' });
    for (let j = 0; j < E; j++) {
      order.forEach((src, pos) => {
        expect(Array.from(row(shuffled.vectors[j], pos))).toEqual(Array.from(row(full.vectors[j], src)));
      });
      rows.forEach((_, i) => {
        expect(relErr(row(chunked.vectors[j], i), row(full.vectors[j], i))).toBeLessThan(REL_TOL);
      });
    }
    const buckets = new Set([
      model.bucket({ ids: rows }),
      ...[0, 4, rows.length - 1].map((i) => model.bucket({ ids: [rows[i]] })),
    ]);
    expect(runner.ort!.sessionCount).toBe(E * buckets.size);
    runner.dispose();
    small.dispose();
    model.dispose();
  }, 120_000);
});

describeOrt('embedder Runner on a device from createDevice', () => {
  it("'auto' on a software adapter takes the ONNX Runtime path; { ort: false } keeps the WebGPU kernels", async () => {
    const dev: Device = await createDevice({ backend: 'auto' });
    try {
      const { cfg } = configs[0];
      const weights = randomEmbedderWeights(cfg, 9);
      const model = buildEmbedder(dev, cfg, weights);
      const rows = raggedRows(cfg, 2);
      const auto = new Runner(dev, model);
      const forced = new Runner(dev, model, { ort: false });
      const soft = dev.kind === 'gpu' && isSoftwareAdapter((dev as GpuDevice).adapter);
      if (soft) expect(auto.backend).toBe('ort-cpu');
      expect(forced.backend).toBe(dev.kind === 'gpu' ? 'webgpu' : 'cpu-reference');
      const a = await embed(auto, { ids: rows }, { exit: 'all' });
      const b = await embed(forced, { ids: rows }, { exit: 'all' });
      for (let j = 0; j < cfg.exit_blocks.length; j++)
        rows.forEach((r, i) => {
          const want = embedReference(cfg, weights, r)[j];
          expect(relErr(a.vectors[j].subarray(i * 12, (i + 1) * 12), want)).toBeLessThan(REL_TOL);
          expect(relErr(b.vectors[j].subarray(i * 12, (i + 1) * 12), want)).toBeLessThan(REL_TOL);
        });
      auto.dispose();
      forced.dispose();
      model.dispose();
    } finally {
      dev.destroy();
    }
  }, 120_000);
});

describeOrt('the translations of the head kernels against the kernels themselves', () => {
  it('maskedMean (lengths 0, inside and beyond T) then rmsNorm over two rows per sample equal the references', async () => {
    const T = 7;
    const d = 6;
    const rand = mulberry32(17);
    const gain = randn(d / 2, rand, 1);
    // the head alone: inputs x (T·d) and lengths (1) per row → maskedMean → rmsNorm over rows of d/2
    const model = {
      numBlocks: 1,
      exitBlocks: [0],
      numClasses: d,
      program: (b: GraphBuilder) => ({
        stem: () => {},
        block: () => {},
        exit: () => {
          const x = b.input('x', T * d);
          const lengths = b.input('lengths', 1, 'u32');
          const pooled = b.scratch('pooled', d);
          b.op(maskedMean, { x, lengths, y: pooled }, (r) => ({ B: r, T, d }), { label: 'mean' });
          const y = b.scratch('y', d);
          b.op(rmsNorm, { x: pooled, weight: b.weight('gain'), y }, (r) => ({ rows: 2 * r, cols: d / 2, eps: 1e-3 }), {
            label: 'rms',
          });
          return { logits: y, classes: d, pooled, poolDim: d };
        },
      }),
    } as unknown as EarlyExitModel;
    const g = captureGraph(model, new Map([['gain', { shape: [d / 2], data: gain }]]), T);
    const tr = translateSegment(g, 0, false);
    const session = await ortDev.ortCpu.createSession(tr.bytes);
    const lens = [0, 1, 3, T, T + 5, 2];
    const n = lens.length;
    const x = randn(n * T * d, rand, 2);
    x[(0 * T + 3) * d + 1] = Number.NaN; // beyond row 0's one token: must not reach its mean
    x[(1 * T + 4) * d] = Number.POSITIVE_INFINITY; // beyond row 1's one token
    const Ctor = ortDev.ortCpu.ort.Tensor;
    const feeds = {
      x: new Ctor('float32', x, [n, T * d]),
      lengths: new Ctor('int32', Int32Array.from(lens), [n, 1]),
    };
    expect(tr.inputs.map((io) => io.name).sort()).toEqual(['lengths', 'x']);
    const out = await session.run(feeds);
    const pooled = new Float32Array(n * d);
    maskedMean.reference({ x, lengths: Uint32Array.from(lens), y: pooled }, { B: n, T, d }, maskedMean.resolveSpec());
    const y = new Float32Array(n * d);
    rmsNorm.reference({ x: pooled, weight: gain, y }, { rows: 2 * n, cols: d / 2, eps: 1e-3 }, rmsNorm.resolveSpec());
    const gotPooled = out[tr.pooled].data as Float32Array;
    const gotY = out[tr.logits].data as Float32Array;
    expect(gotPooled.every(Number.isFinite)).toBe(true);
    for (let i = 0; i < n * d; i++) {
      expect(Math.abs(gotPooled[i] - pooled[i]), `pooled ${i}`).toBeLessThan(1e-5 * (1 + Math.abs(pooled[i])));
      expect(Math.abs(gotY[i] - y[i]), `y ${i}`).toBeLessThan(1e-5 * (1 + Math.abs(y[i])));
    }
    await session.release();
  });
});
