// createDevice's backends: 'ort-cpu' gives the ONNX Runtime device, 'auto' on a software rasteriser (this
// machine's lavapipe) keeps the WebGPU device for kernels and attaches the ONNX Runtime path for the Runner,
// 'gpu' and 'cpu' are untouched; the adapter test reads the adapter info.
import { describe, expect, it } from 'vitest';
import { neverExit } from '../engine/policy.js';
import { Runner } from '../engine/runner.js';
import type { MlpClassifierConfig } from '../models/config.js';
import { buildModel, randomWeights } from '../models/index.js';
import { CpuDevice } from '../runtime/cpu-device.js';
import { createDevice, createGpuDevice } from '../runtime/create-device.js';
import { executionPath, isSoftwareAdapter, loadOrt, OrtCpuDevice, ortCpuOf } from './ort-cpu.js';

const ortError = await loadOrt().then(
  () => null,
  (e: Error) => e,
);
if (ortError) console.warn(`skipping the ONNX Runtime device tests: ${ortError.message}`);

const cfg: MlpClassifierConfig = {
  architecture: 'mlp_classifier',
  input_size: 8,
  hidden_size: 8,
  num_layers: 2,
  num_classes: 3,
  exits: { blocks: [0, 1], head: 'linear' },
};

describe('software adapters', () => {
  it('are told from the adapter info', () => {
    const a = (vendor: string, architecture: string, description: string, isFallback = false) => ({
      vendor,
      architecture,
      description,
      isFallback,
    });
    expect(isSoftwareAdapter(a('mesa', 'software', 'llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)'))).toBe(true);
    expect(isSoftwareAdapter(a('google', 'swiftshader', ''))).toBe(true);
    expect(isSoftwareAdapter(a('', '', 'SwiftShader Device (Subzero)'))).toBe(true);
    expect(isSoftwareAdapter(a('nvidia', 'ampere', 'NVIDIA GeForce RTX 3080', true))).toBe(true);
    expect(isSoftwareAdapter(a('nvidia', 'ampere', 'NVIDIA GeForce RTX 3080'))).toBe(false);
    expect(isSoftwareAdapter(a('intel', 'gen-12lp', 'Mesa Intel(R) Xe Graphics'))).toBe(false);
    expect(isSoftwareAdapter(a('amd', 'rdna-3', 'AMD Radeon RX 7900 (RADV NAVI31)'))).toBe(false);
  });
});

describe.skipIf(Boolean(ortError))('createDevice with the ONNX Runtime path', () => {
  it("'ort-cpu' gives the ONNX Runtime device and the Runner runs on it", async () => {
    const dev = await createDevice({ backend: 'ort-cpu', threads: 1 });
    expect(dev).toBeInstanceOf(OrtCpuDevice);
    expect(dev.describe()).toMatch(/^ort-cpu: onnxruntime \/ cpu/);
    expect(executionPath(dev)).toBe('ort-cpu');
    const model = buildModel(dev, cfg, randomWeights(cfg, 2));
    const runner = new Runner(dev, model);
    const res = await runner.run({ features: new Float32Array(16).fill(0.5) }, { policy: neverExit() });
    expect(res.summary.backend).toBe('ort-cpu');
    expect(res.samples).toHaveLength(2);
  });

  it("'auto' on this machine's adapter: ONNX Runtime for the Runner exactly when the adapter is software", async () => {
    const probe = await createGpuDevice();
    const software = isSoftwareAdapter(probe.adapter);
    console.log(`adapter: ${probe.describe()} → software: ${software}`);
    const dev = await createDevice({ backend: 'auto' });
    expect(dev.kind).toBe('gpu'); // kernels (decoders, Mamba) stay on the adapter
    expect(executionPath(dev)).toBe(software ? 'ort-cpu' : 'webgpu');
    if (software)
      expect(dev.describe()).toMatch(
        /^gpu: .*; classifiers, embedders and language models run on ort-cpu: onnxruntime-node/,
      );
    const model = buildModel(dev, cfg, randomWeights(cfg, 2));
    const runner = new Runner(dev, model);
    const x = { features: new Float32Array(16).fill(0.5) };
    const auto = await runner.run(x, { policy: neverExit() });
    expect(auto.summary.backend).toBe(software ? 'ort-cpu' : 'webgpu');
    // device mode asks for the WGSL form: the GPU runs it, with the same outputs
    const device = await runner.run(x, { policy: neverExit(), mode: 'device' });
    expect(device.summary.backend).toBe('webgpu');
    for (let i = 0; i < 2; i++)
      for (let c = 0; c < 3; c++)
        expect(Math.abs(device.samples[i].logits[c] - auto.samples[i].logits[c])).toBeLessThan(2e-4);
    // { ort: false } keeps a runner on the device's kernels (models the ONNX path does not translate)
    const own = new Runner(dev, model, { ort: false });
    expect(own.backend).toBe('webgpu');
    const hostOwn = await own.run(x, { policy: neverExit(), mode: 'host' });
    expect(hostOwn.summary.backend).toBe('webgpu');
    for (let i = 0; i < 2; i++)
      expect(Array.from(hostOwn.samples[i].logits)).toEqual(Array.from(device.samples[i].logits));
    own.dispose();
    runner.dispose();
    model.dispose();
  });

  it("'gpu' and 'cpu' are not given the ONNX Runtime path", async () => {
    const g = await createDevice({ backend: 'gpu' });
    expect(ortCpuOf(g)).toBeUndefined();
    expect(executionPath(g)).toBe('webgpu');
    const c = await createDevice({ backend: 'cpu' });
    expect(c).toBeInstanceOf(CpuDevice);
    expect(c).not.toBeInstanceOf(OrtCpuDevice);
    expect(executionPath(c)).toBe('cpu-reference');
  });

  it('rejects unknown backends with the allowed ones', async () => {
    await expect(createDevice({ backend: 'tpu' as never })).rejects.toThrow(
      /unknown backend 'tpu': use 'gpu', 'ort-cpu', 'cpu' or 'auto'/,
    );
  });
});
