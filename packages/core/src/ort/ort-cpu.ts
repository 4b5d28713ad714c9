// The ONNX Runtime CPU execution path: loading onnxruntime-node (an optional dependency), its session options,
// and the device that selects it. `OrtCpuDevice` is the CPU reference device (tensors are typed arrays, kernels
// run their TypeScript references) whose Runner runs classifiers segment by segment on ONNX Runtime.
import { OfframpError, ValidationError } from '../errors.js';
import { CpuDevice } from '../runtime/cpu-device.js';
import { type AdapterDescription, type Device, describeAdapter } from '../runtime/device.js';

/** The part of onnxruntime-node's API this path uses. */
export interface OrtModule {
  InferenceSession: {
    create(bytes: Uint8Array, options?: Record<string, unknown>): Promise<OrtSession>;
  };
  Tensor: new (type: 'float32' | 'int32', data: Float32Array | Int32Array, dims: readonly number[]) => OrtTensor;
}
export interface OrtTensor {
  readonly data: Float32Array | Int32Array;
  readonly dims: readonly number[];
  dispose?(): void;
}
export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>, fetches?: string[]): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

export interface OrtCpuOptions {
  /** Threads for one operator (ONNX Runtime's intra-op pool). Default: ONNX Runtime's own (the physical cores). */
  threads?: number;
  /**
   * Let idle intra-op threads spin (ONNX Runtime's default). Off by default here: each segment's session has its
   * own thread pool, and pools spinning after their segment steal the cores from the next one.
   */
  spinning?: boolean;
}

/** Thrown when onnxruntime-node cannot be loaded here; the rest of Offramp works without it. */
export class OrtUnavailableError extends OfframpError {}

let loaded: Promise<OrtModule> | null = null;

/** Loads onnxruntime-node once; throws OrtUnavailableError with what to do when it cannot. */
export function loadOrt(): Promise<OrtModule> {
  if (!loaded) {
    loaded = (async () => {
      if (typeof process === 'undefined' || !process.versions?.node)
        throw new OrtUnavailableError('the ONNX Runtime CPU path needs Node.js (onnxruntime-node)');
      try {
        const name = 'onnxruntime-node';
        const mod = (await import(/* @vite-ignore */ name)) as OrtModule & { default?: OrtModule };
        const ort = mod.InferenceSession ? mod : mod.default;
        if (!ort?.InferenceSession) throw new Error('the module has no InferenceSession');
        return ort;
      } catch (e) {
        throw new OrtUnavailableError(
          `onnxruntime-node could not be loaded (${(e as Error).message}); the ONNX Runtime CPU path is unavailable. Install it (it is an optional dependency of @offramp/core; its CPU binary ships in the package, its install script may stay disabled) or use backend 'gpu' or 'cpu'`,
          { cause: e },
        );
      }
    })();
    loaded.catch(() => {
      loaded = null;
    });
  }
  return loaded;
}

/** A loaded ONNX Runtime with the session options of this path. */
export class OrtCpu {
  readonly threads?: number;
  readonly spinning: boolean;
  constructor(
    readonly ort: OrtModule,
    options: OrtCpuOptions = {},
  ) {
    if (
      options.threads !== undefined &&
      (!Number.isInteger(options.threads) || options.threads < 1 || options.threads > 256)
    )
      throw new ValidationError(`threads must be an integer in [1, 256], got ${options.threads}`);
    this.threads = options.threads;
    this.spinning = options.spinning ?? false;
  }

  sessionOptions(): Record<string, unknown> {
    return {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      interOpNumThreads: 1,
      logSeverityLevel: 3,
      ...(this.threads ? { intraOpNumThreads: this.threads } : {}),
      extra: {
        session: { intra_op: { allow_spinning: this.spinning ? '1' : '0' }, inter_op: { allow_spinning: '0' } },
      },
    };
  }

  createSession(bytes: Uint8Array): Promise<OrtSession> {
    return this.ort.InferenceSession.create(bytes, this.sessionOptions());
  }

  describe(): string {
    return `ort-cpu: onnxruntime-node CPU execution provider, ${this.threads ? `${this.threads} threads` : 'default threads'}`;
  }
}

export async function createOrtCpu(options: OrtCpuOptions = {}): Promise<OrtCpu> {
  return new OrtCpu(await loadOrt(), options);
}

/** The CPU device whose Runner runs on ONNX Runtime (other kernels run the TypeScript references). */
export class OrtCpuDevice extends CpuDevice {
  override readonly adapter: AdapterDescription;
  constructor(readonly ortCpu: OrtCpu) {
    super();
    this.adapter = {
      vendor: 'onnxruntime',
      architecture: 'cpu',
      description: `onnxruntime-node CPU EP${ortCpu.threads ? `, ${ortCpu.threads} threads` : ''}`,
      isFallback: false,
    };
  }
  override describe(): string {
    return describeAdapter('ort-cpu', this.adapter);
  }
}

const ATTACHED = Symbol.for('offramp.ortCpu');

/** Attaches the ONNX Runtime path to another device (a WebGPU device on a software adapter). */
export function attachOrtCpu(device: Device, ortCpu: OrtCpu): void {
  Object.defineProperty(device, ATTACHED, { value: ortCpu, enumerable: false });
  // logs that print the device say which path the classifiers take
  const base = device.describe.bind(device);
  Object.defineProperty(device, 'describe', {
    value: () => `${base()}; classifiers, embedders and language models run on ${ortCpu.describe()}`,
    enumerable: false,
  });
}

/** The ONNX Runtime path a Runner on `device` uses for classifiers, if any. */
export function ortCpuOf(device: Device): OrtCpu | undefined {
  if (device instanceof OrtCpuDevice) return device.ortCpu;
  return (device as unknown as Record<symbol, OrtCpu | undefined>)[ATTACHED];
}

/** Which execution path a Runner on `device` takes for the classifiers. */
export function executionPath(device: Device): 'ort-cpu' | 'webgpu' | 'cpu-reference' {
  if (ortCpuOf(device)) return 'ort-cpu';
  return device.kind === 'gpu' ? 'webgpu' : 'cpu-reference';
}

/** True for software rasterisers (lavapipe/llvmpipe, SwiftShader, WARP) and adapters marked fallback. */
export function isSoftwareAdapter(a: AdapterDescription): boolean {
  if (a.isFallback) return true;
  const text = `${a.vendor} ${a.architecture} ${a.description}`;
  return /llvmpipe|lavapipe|swiftshader|software|microsoft basic render|\bwarp\b/i.test(text);
}
