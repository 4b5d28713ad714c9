// CPU device: tensors are typed arrays and a dispatch runs the kernel's TypeScript reference, so every
// model also runs where no WebGPU exists (and GPU results can be checked against it).
import { ValidationError } from '../errors.js';
import { checkTensorData, resolveBinding } from './bindings.js';
import { type AdapterDescription, type Device, type DeviceLimits, describeAdapter } from './device.js';
import { type AnyTypedArray, allocTyped, type DType } from './dtype.js';
import type { Kernel, Params, Spec } from './kernel.js';
import { type Bindable, Tensor } from './tensor.js';

export class CpuDevice implements Device {
  readonly kind = 'cpu' as const;
  readonly adapter: AdapterDescription = {
    vendor: 'offramp',
    architecture: 'cpu-reference',
    description: 'TypeScript reference kernels',
    isFallback: false,
  };
  readonly features: ReadonlySet<string> = new Set();
  readonly limits: DeviceLimits = {
    maxStorageBufferBindingSize: 2 ** 31 - 4,
    maxBufferSize: 2 ** 31 - 4,
    maxComputeWorkgroupsPerDimension: 2 ** 31 - 1,
    minStorageBufferOffsetAlignment: 4,
    maxComputeInvocationsPerWorkgroup: 1024,
    maxComputeWorkgroupStorageSize: 1 << 20,
    maxStorageBuffersPerShaderStage: 1 << 10,
  };
  dispatchCount = 0;

  describe(): string {
    return describeAdapter('cpu', this.adapter);
  }

  tensor(dtype: DType, shape: readonly number[], data?: ArrayLike<number>, label?: string): Tensor {
    const n = checkTensorData(shape, data, label);
    const a = allocTyped(dtype, n);
    if (data) a.set(data as ArrayLike<number>);
    return new Tensor(this, dtype, shape, a, label);
  }

  dispatch<S extends Spec>(
    kernel: Kernel<S>,
    bindings: Record<string, Bindable>,
    params: Params,
    spec?: Partial<S>,
  ): void {
    const s = kernel.resolveSpec(spec);
    kernel.checkParams(params);
    const sizes = kernel.sizes(params, s);
    const views: Record<string, AnyTypedArray> = {};
    for (const name of kernel.bindingNames) {
      const v = resolveBinding(this, kernel, name, bindings, sizes);
      views[name] = (v.tensor.handle as AnyTypedArray).subarray(v.offset, v.offset + v.length);
    }
    kernel.reference(views, params, s);
    this.dispatchCount++;
  }

  dispatchIndirect<S extends Spec>(
    kernel: Kernel<S>,
    bindings: Record<string, Bindable>,
    params: Params,
    spec: Partial<S> | undefined,
    args: Tensor,
    offset: number,
  ): void {
    if (args.dtype !== 'u32' || !Number.isInteger(offset) || offset < 0 || offset + 3 > args.length)
      throw new ValidationError(
        `kernel '${kernel.name}': indirect arguments must be 3 u32 inside a u32 tensor; got offset ${offset} in ${args}`,
      );
    const a = (args.handle as AnyTypedArray).subarray(offset, offset + 3);
    if (a[0] === 0 || a[1] === 0 || a[2] === 0) return;
    const full = this.dispatchDims(kernel, params, spec);
    if (a[0] !== full[0] || a[1] !== full[1] || a[2] !== full[2])
      throw new ValidationError(
        `kernel '${kernel.name}': the CPU device runs an indirect dispatch in full or not at all; its arguments are [${Array.from(a).join(', ')}], the full grid is [${full.join(', ')}]`,
      );
    this.dispatch(kernel, bindings, params, spec);
  }

  dispatchDims<S extends Spec>(kernel: Kernel<S>, params: Params, spec?: Partial<S>): [number, number, number] {
    return kernel.dispatch(params, kernel.resolveSpec(spec));
  }

  flush(): void {}
  async sync(): Promise<void> {}
  async read(t: Tensor): Promise<AnyTypedArray> {
    return (t.handle as AnyTypedArray).slice();
  }
  write(t: Tensor, data: ArrayLike<number>, offset = 0): void {
    if (offset + data.length > t.length)
      throw new ValidationError(`write of ${data.length} values at ${offset} overflows ${t}`);
    (t.handle as AnyTypedArray).set(data as ArrayLike<number>, offset);
  }
  free(): void {}
  destroy(): void {}
}
