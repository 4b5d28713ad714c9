// The device interface both backends implement: a WebGPU device (Dawn in Node, navigator.gpu in browsers)
// and a CPU device that runs every kernel's TypeScript reference.
import type { AnyTypedArray, DType } from './dtype.js';
import type { Kernel, Params, Spec } from './kernel.js';
import type { Bindable, Tensor } from './tensor.js';

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  description: string;
  isFallback: boolean;
}

export interface DeviceLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupsPerDimension: number;
  minStorageBufferOffsetAlignment: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupStorageSize: number;
  maxStorageBuffersPerShaderStage: number;
}

export interface Device {
  readonly kind: 'gpu' | 'cpu';
  readonly adapter: AdapterDescription;
  readonly features: ReadonlySet<string>;
  readonly limits: DeviceLimits;
  /** A new tensor; `data` (if given) is uploaded. */
  tensor(dtype: DType, shape: readonly number[], data?: ArrayLike<number>, label?: string): Tensor;
  /** Records one kernel dispatch (GPU: into the pending command encoder; CPU: runs the reference now). */
  dispatch<S extends Spec>(
    kernel: Kernel<S>,
    bindings: Record<string, Bindable>,
    params: Params,
    spec?: Partial<S>,
  ): void;
  /**
   * Records one dispatch whose workgroup counts are read on the device from `args` (u32 x, y, z at element
   * `offset`), written by an earlier kernel: either dispatchDims(kernel, params, spec) or zeros (the
   * dispatch is skipped). GPU: dispatchWorkgroupsIndirect; CPU: the reference runs unless a count is 0.
   */
  dispatchIndirect?<S extends Spec>(
    kernel: Kernel<S>,
    bindings: Record<string, Bindable>,
    params: Params,
    spec: Partial<S> | undefined,
    args: Tensor,
    offset: number,
  ): void;
  /** The workgroup counts (x, y, z) a dispatch of kernel with these params uses on this device. */
  dispatchDims?<S extends Spec>(kernel: Kernel<S>, params: Params, spec?: Partial<S>): [number, number, number];
  /** Submits pending work. Required before readbacks, writes and frees (done for you by those calls). */
  flush(): void;
  /** Flushes, waits for the GPU and throws the first GPU error recorded since the last check. */
  sync(): Promise<void>;
  read(t: Tensor): Promise<AnyTypedArray>;
  write(t: Tensor, data: ArrayLike<number>, offset?: number): void;
  free(t: Tensor): void;
  destroy(): void;
  /** A one-line description for logs: "gpu: mesa / llvmpipe (fallback)". */
  describe(): string;
}

export function describeAdapter(kind: string, a: AdapterDescription): string {
  return `${kind}: ${a.vendor || 'unknown vendor'} / ${a.architecture || 'unknown architecture'}${a.description ? ` / ${a.description}` : ''}${a.isFallback ? ' (fallback adapter)' : ''}`;
}
