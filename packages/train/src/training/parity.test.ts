// Export parity: small random tfjs models of each family (encoder with pooler and gate heads, CNN with two input
// channels and gates, MLP) are exported with saveModelDir, loaded into the engine on the GPU, and the engine's
// logits and gate probabilities at every exit must match the tfjs forward of the same exit within 1e-3.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildModel,
  type CnnClassifierConfig,
  createGpuDevice,
  definePolicy,
  type EncoderClassifierConfig,
  type GpuDevice,
  type MlpClassifierConfig,
  type ModelConfig,
  type ModelInput,
  mulberry32,
  Runner,
  randomWeights,
} from '@offramp/core';
import { loadModelDir, saveModelDir } from '@offramp/core/node';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { convFromTf, convToTf, createTfModel, exportWeights } from './models.js';

const encoderCfg: EncoderClassifierConfig = {
  architecture: 'encoder_classifier',
  vocab_size: 40,
  max_position: 32,
  hidden_size: 16,
  num_layers: 3,
  num_heads: 4,
  intermediate_size: 32,
  num_classes: 3,
  pad_token_id: 0,
  exits: { blocks: [0, 1, 2], head: 'pooler', gate: true, gate_hidden: 8 },
};
const cnnCfg: CnnClassifierConfig = {
  architecture: 'cnn_classifier',
  image_size: 12,
  in_channels: 2,
  stem_channels: 4,
  channels: [6, 8, 8],
  strides: [1, 2, 2],
  num_classes: 4,
  exits: { blocks: [0, 1, 2], head: 'linear', gate: true, gate_hidden: 5 },
};
const mlpCfg: MlpClassifierConfig = {
  architecture: 'mlp_classifier',
  input_size: 20,
  hidden_size: 12,
  num_layers: 4,
  num_classes: 5,
  exits: { blocks: [1, 2, 3], head: 'linear' },
};

interface Sample {
  ids?: number[];
  features?: Float32Array;
}

function samples(cfg: ModelConfig, n: number, seed: number): Sample[] {
  const rand = mulberry32(seed);
  if (cfg.architecture === 'encoder_classifier') {
    // lengths from 1 to 25, ids never 0 (padding) so that the engine and tfjs see the same valid lengths
    const lens = [1, 25, 7, 16, 3, 12, 20, 9];
    return Array.from({ length: n }, (_, i) => ({
      ids: Array.from({ length: lens[i % lens.length] }, () => 1 + Math.floor(rand() * (cfg.vocab_size - 1))),
    }));
  }
  const width = cfg.architecture === 'mlp_classifier' ? cfg.input_size : cfg.in_channels * cfg.image_size ** 2;
  return Array.from({ length: n }, () => ({ features: Float32Array.from({ length: width }, () => rand() * 2 - 1) }));
}

/** tfjs forward of every exit: logits (n, C) and σ(gate) (n) per exit. */
function tfjsExits(cfg: ModelConfig, model: ReturnType<typeof createTfModel>, xs: Sample[]) {
  return tf.tidy(() => {
    let out: ReturnType<typeof model.forward>;
    if (cfg.architecture === 'encoder_classifier') {
      const T = Math.max(...xs.map((s) => s.ids!.length));
      const ids = new Int32Array(xs.length * T);
      xs.forEach((s, i) => {
        ids.set(s.ids!, i * T);
      });
      out = model.forward({
        ids: tf.tensor2d(ids, [xs.length, T], 'int32'),
        lengths: tf.tensor1d(
          xs.map((s) => s.ids!.length),
          'int32',
        ),
      });
    } else {
      const w = xs[0].features!.length;
      const x = new Float32Array(xs.length * w);
      xs.forEach((s, i) => {
        x.set(s.features!, i * w);
      });
      out = model.forward({ x: tf.tensor2d(x, [xs.length, w]) });
    }
    return out.heads.map((h) => ({
      logits: h.logits.arraySync() as number[][],
      gate: h.gate ? (tf.sigmoid(h.gate).arraySync() as number[]) : undefined,
    }));
  });
}

/** A policy that never exits and records every exit's raw logits (host mode). */
const recordLogits = definePolicy((o: { sink: Map<string, Float32Array> }) => ({
  name: 'record-logits',
  needs: ['logits'] as const,
  init: () => null,
  decide: (ctx, s) => {
    const C = ctx.numClasses;
    for (let r = 0; r < s.count; r++)
      o.sink.set(`${s.sampleIds[r]}:${ctx.exitIndex}`, s.logits!.slice(r * C, (r + 1) * C));
    return new Uint8Array(s.count);
  },
}));

let gpu: GpuDevice;
let dir: string;
beforeAll(async () => {
  await initBackend('cpu', () => {});
  gpu = await createGpuDevice();
  dir = mkdtempSync(join(tmpdir(), 'offramp-parity-'));
});
afterAll(() => {
  gpu?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('conv filter layout', () => {
  it('convToTf and convFromTf are inverse and place (o, i, y, x) at (y, x, i, o)', () => {
    const shape = [3, 2, 3, 3];
    const data = Float32Array.from({ length: 54 }, (_, k) => k);
    const t = convToTf(data, shape);
    // element (o=2, i=1, y=0, x=2) of the engine layout
    expect(t[((0 * 3 + 2) * 2 + 1) * 3 + 2]).toBe(data[((2 * 2 + 1) * 3 + 0) * 3 + 2]);
    expect(Array.from(convFromTf(t, shape))).toEqual(Array.from(data));
  });
});

/** Random batch-norm scales, shifts and running statistics for every convolution of a CNN config. */
function randomBatchNorm(cfg: CnnClassifierConfig, seed: number): Map<string, { shape: number[]; data: Float32Array }> {
  const rand = mulberry32(seed);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const convs: [string, number][] = [
    ['stem.conv', cfg.stem_channels],
    ...cfg.channels.flatMap((c, i): [string, number][] => [
      [`blocks.${i}.conv1`, c],
      [`blocks.${i}.conv2`, c],
    ]),
  ];
  for (const [name, c] of convs) {
    const v = (lo: number, hi: number) => Float32Array.from({ length: c }, () => lo + (hi - lo) * rand());
    out.set(`${name}.bn.weight`, { shape: [c], data: v(0.5, 1.5) });
    out.set(`${name}.bn.bias`, { shape: [c], data: v(-0.3, 0.3) });
    out.set(`${name}.bn.mean`, { shape: [c], data: v(-0.5, 0.5) });
    out.set(`${name}.bn.var`, { shape: [c], data: v(0.2, 2) });
  }
  return out;
}

describe.each([
  { name: 'encoder (pooler + gates)', cfg: encoderCfg as ModelConfig, batchNorm: false },
  { name: 'cnn (2 channels, strides 1/2/2, gates)', cfg: cnnCfg as ModelConfig, batchNorm: false },
  { name: 'cnn with batch norm folded at export', cfg: cnnCfg as ModelConfig, batchNorm: true },
  {
    name: "cnn with exit heads on the flattened maps (exit_pool 'flatten')",
    cfg: { ...cnnCfg, exit_pool: 'flatten' } as ModelConfig,
    batchNorm: true,
  },
  { name: 'mlp', cfg: mlpCfg as ModelConfig, batchNorm: false },
])('$name', ({ cfg, batchNorm }) => {
  it('exports weights that the engine runs with the same logits and gates at every exit', async () => {
    const weights = new Map([
      ...randomWeights(cfg, 11),
      ...(batchNorm ? randomBatchNorm(cfg as CnnClassifierConfig, 3) : []),
    ]);
    const tfModel = createTfModel(cfg, { weights }, { batchNorm });
    expect(tfModel.trainParams.size).toBe(batchNorm ? 2 * (1 + 2 * (cfg as CnnClassifierConfig).channels.length) : 0);
    const outDir = join(dir, cfg.architecture);
    await saveModelDir(
      outDir,
      { offramp_format: 1, model: cfg, meta: { test: 'parity' } },
      await exportWeights(tfModel),
    );
    const loaded = await loadModelDir(outDir);
    const engineModel = buildModel(
      gpu,
      loaded.config.model,
      loaded.tensors as Map<string, { shape: number[]; data: Float32Array }>,
    );
    const runner = new Runner(gpu, engineModel, { maxBatch: 8 });
    try {
      const xs = samples(cfg, 8, 5);
      const want = tfjsExits(cfg, tfModel, xs);
      const input: ModelInput =
        cfg.architecture === 'encoder_classifier'
          ? { ids: xs.map((s) => s.ids!) }
          : { features: xs.map((s) => s.features!) };
      const sink = new Map<string, Float32Array>();
      const res = await runner.run(input, { policy: recordLogits({ sink }), mode: 'host', trace: true });

      const E = cfg.exits.blocks.length;
      let worst = 0;
      for (let i = 0; i < xs.length; i++) {
        for (let j = 0; j < E; j++) {
          const got = sink.get(`${i}:${j}`);
          expect(got, `engine logits of sample ${i} at exit ${j}`).toBeDefined();
          const ref = want[j].logits[i];
          expect(got!.length).toBe(ref.length);
          for (let c = 0; c < ref.length; c++) worst = Math.max(worst, Math.abs(got![c] - ref[c]));
          if (cfg.exits.gate) expect(Math.abs(res.samples[i].trace!.gate[j] - want[j].gate![i])).toBeLessThan(1e-3);
          else expect(res.samples[i].trace!.gate[j]).toBeNaN();
        }
        // the final output is the last exit's
        const last = want[E - 1].logits[i];
        for (let c = 0; c < last.length; c++) expect(Math.abs(res.samples[i].logits[c] - last[c])).toBeLessThan(1e-3);
      }
      expect(worst).toBeLessThan(1e-3);
      // the logits are not trivially small: the comparison means something
      const spread = Math.max(...want.flatMap((w) => w.logits.flat().map(Math.abs)));
      expect(spread).toBeGreaterThan(0.05);
    } finally {
      runner.dispose();
      engineModel.dispose();
      tfModel.dispose();
    }
  });
});
