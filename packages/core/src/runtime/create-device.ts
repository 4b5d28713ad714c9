// Creates a Device: WebGPU through navigator.gpu (browsers) or Dawn's `webgpu` package (Node), or the CPU
// reference device, or the ONNX Runtime CPU path. Requests the adapter's real limits and its optional features.
//   'auto': a hardware WebGPU adapter → WebGPU. Only a software rasteriser (lavapipe/llvmpipe, SwiftShader: read
//   from the adapter info) → that WebGPU device with the ONNX Runtime CPU path attached: the Runner runs the
//   classifiers on ONNX Runtime (about 16× faster than WGSL through a rasteriser on the same cores), every other
//   kernel (decoders, Mamba) stays on the adapter. No adapter → the ONNX Runtime device, else the CPU reference.
import { GpuError, ValidationError } from '../errors.js';
import { attachOrtCpu, createOrtCpu, isSoftwareAdapter, OrtCpuDevice } from '../ort/ort-cpu.js';
import { CpuDevice } from './cpu-device.js';
import type { Device } from './device.js';
import { GpuDevice } from './gpu-device.js';

export type Backend = 'gpu' | 'cpu' | 'ort-cpu' | 'auto';
export interface CreateDeviceOptions {
  /**
   * 'gpu' fails if no adapter works; 'ort-cpu' fails if onnxruntime-node cannot load; 'cpu' is the reference
   * device; 'auto' (default) picks the fastest that works (see the file comment).
   */
  backend?: Backend;
  /** Intra-op threads of the ONNX Runtime CPU path (default: ONNX Runtime's own choice). */
  threads?: number;
  powerPreference?: GPUPowerPreference;
  /** Submit and check each dispatch separately so a GPU error names exactly one kernel. */
  debug?: boolean;
}

// Dawn instances must outlive every device made from them; they are never released.
const dawnInstances: unknown[] = [];
const OPTIONAL_FEATURES = ['shader-f16', 'timestamp-query', 'subgroups'];

async function getGpu(): Promise<GPU | null> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (typeof process === 'undefined' || !process.versions?.node) return null;
  try {
    const mod = (await import('webgpu')) as { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
    for (const [k, v] of Object.entries(mod.globals)) {
      if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    }
    const gpu = mod.create([]);
    dawnInstances.push(gpu);
    return gpu;
  } catch (e) {
    throw new GpuError(`could not load the 'webgpu' package (Dawn for Node): ${(e as Error).message}`, { cause: e });
  }
}

export async function createDevice(options: CreateDeviceOptions = {}): Promise<Device> {
  const backend = options.backend ?? 'auto';
  if (!['gpu', 'cpu', 'ort-cpu', 'auto'].includes(backend)) {
    throw new ValidationError(`unknown backend '${backend}': use 'gpu', 'ort-cpu', 'cpu' or 'auto'`);
  }
  if (backend === 'cpu') return new CpuDevice();
  if (backend === 'ort-cpu') return new OrtCpuDevice(await createOrtCpu({ threads: options.threads }));
  let gpu: GpuDevice;
  try {
    gpu = await createGpuDevice(options);
  } catch (e) {
    if (backend === 'gpu') throw e;
    try {
      return new OrtCpuDevice(await createOrtCpu({ threads: options.threads }));
    } catch {
      return new CpuDevice();
    }
  }
  if (backend === 'auto' && isSoftwareAdapter(gpu.adapter)) {
    try {
      attachOrtCpu(gpu, await createOrtCpu({ threads: options.threads }));
    } catch {
      // onnxruntime-node is not installed or cannot load here: the classifiers run on the adapter
    }
  }
  return gpu;
}

export async function createGpuDevice(options: CreateDeviceOptions = {}): Promise<GpuDevice> {
  const gpu = await getGpu();
  if (!gpu) throw new GpuError('WebGPU is not available here (no navigator.gpu and not Node.js)');
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference });
  if (!adapter) {
    throw new GpuError(
      'no WebGPU adapter found. Without a GPU, install Mesa >= 24 lavapipe (mesa-vulkan-drivers) and libvulkan1; `pnpm bootstrap` does this on Debian',
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const k of [
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupSizeY',
    'maxComputeWorkgroupsPerDimension',
    'maxStorageBuffersPerShaderStage',
  ]) {
    const v = (adapter.limits as unknown as Record<string, number>)[k];
    if (typeof v === 'number') requiredLimits[k] = v;
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const info = (adapter as unknown as { info?: GPUAdapterInfo }).info;
  const desc = {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    description: info?.description ?? '',
    isFallback: Boolean(
      (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
        (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter,
    ),
  };
  return new GpuDevice(device, desc, [gpu, adapter], { debug: options.debug });
}
