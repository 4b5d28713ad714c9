// The decoder on ONNX Runtime (OrtDecoderLM) against DecoderLM on WebGPU (lavapipe), both driven by the one
// host generation loop with a per-token confidence policy and CALM propagation, on the shipped
// checkpoints/austen-decoder: the same greedy tokens and the same exit block for every token, a batch and
// each prompt alone. Skipped with a message only where onnxruntime-node cannot load.
import { join } from 'node:path';
import {
  createGpuDevice,
  createOrtCpu,
  DecoderLM,
  decoderGenerationModel,
  type GenerationModel,
  type GpuDevice,
  loadOrt,
  OrtDecoderLM,
} from '@offramp/core';
import { type LoadedDecoderDir, loadDecoderDir } from '@offramp/core/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPolicy } from '../registry.js';
import { generateTokens } from './generate.js';

const ortError = await loadOrt().then(
  () => null,
  (e: Error) => e,
);
if (ortError) console.warn(`skipping the ONNX Runtime decoder generation test: ${ortError.message}`);
const describeOrt = ortError ? describe.skip : describe;

const dir = join(import.meta.dirname, '../../../../checkpoints/austen-decoder');
const PROMPTS = ['It is a truth universally acknowledged', 'Mr. Darcy', 'She was not', 'The evening'];
const NEW = 24;

describeOrt('greedy generation with token exits: ONNX Runtime = WebGPU on checkpoints/austen-decoder', () => {
  let device: GpuDevice;
  let loaded: LoadedDecoderDir;
  let gpu: DecoderLM;
  let ort: OrtDecoderLM;
  beforeAll(async () => {
    device = await createGpuDevice();
    loaded = await loadDecoderDir(dir);
    gpu = new DecoderLM(device, loaded.config, loaded.tensors);
    ort = new OrtDecoderLM(await createOrtCpu({ threads: 1 }), loaded.config, loaded.tensors);
  });
  afterAll(async () => {
    gpu?.dispose();
    await ort?.dispose();
    device?.destroy();
  });

  const run = (model: GenerationModel, prompts: number[][], threshold: number) =>
    generateTokens(model, prompts, {
      maxNewTokens: NEW,
      policy: createPolicy('confidence', { threshold }),
    });

  it.each([0.5, 0.9])('confidence threshold %s: same tokens and exit blocks, batch and alone', async (threshold) => {
    const prompts = PROMPTS.map((p) => loaded.tokenizer!.encode(p));
    const onGpu = await run(decoderGenerationModel(gpu), prompts, threshold);
    const onOrt = await run(ort, prompts, threshold);
    expect(onOrt.tokens).toEqual(onGpu.tokens);
    expect(onOrt.exitBlocks).toEqual(onGpu.exitBlocks);
    expect(onOrt.blocksRun).toBe(onGpu.blocksRun);
    // the exits are used: some tokens leave early, and not all at one block
    const blocks = onOrt.exitBlocks.flatMap((b) => b.slice(1));
    expect(blocks.some((b) => b < loaded.config.numLayers - 1)).toBe(true);
    expect(new Set(blocks).size).toBeGreaterThan(1);
    for (const [i, p] of prompts.entries()) {
      const alone = await run(ort, [p], threshold);
      expect(alone.tokens[0], `prompt ${i} alone`).toEqual(onGpu.tokens[i]);
      expect(alone.exitBlocks[0], `prompt ${i} alone`).toEqual(onGpu.exitBlocks[i]);
    }
  });
});
