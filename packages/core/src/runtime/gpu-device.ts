// WebGPU device: buffer pool, pipeline cache, one pending command encoder (flushed before readbacks, writes
// and frees), a staging pool for readbacks, and GPU errors turned into exceptions that name the kernels.
import { GpuError, ValidationError } from '../errors.js';
import { checkTensorData, resolveBinding } from './bindings.js';
import { BufferPool, type PoolStats } from './buffer-pool.js';
import { type AdapterDescription, type Device, type DeviceLimits, describeAdapter } from './device.js';
import { type AnyTypedArray, allocTyped, type DType, viewTyped } from './dtype.js';
import { foldDispatch, type Kernel, type Params, type Spec } from './kernel.js';
import { PipelineCache } from './pipeline-cache.js';
import { type Bindable, Tensor } from './tensor.js';

const STORAGE_USAGE = 0x80 | 0x04 | 0x08 | 0x100; // STORAGE | COPY_SRC | COPY_DST | INDIRECT
const UNIFORM_USAGE = 0x40 | 0x08; // UNIFORM | COPY_DST
const READBACK_USAGE = 0x01 | 0x08; // MAP_READ | COPY_DST

export interface GpuDeviceOptions {
  /** Submit and check every dispatch on its own so an error names exactly one kernel (slow). */
  debug?: boolean;
}

interface PendingCheck {
  kernels: string[];
  errors: Promise<(GPUError | null)[]>;
}

export class GpuDevice implements Device {
  readonly kind = 'gpu' as const;
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  readonly limits: DeviceLimits;
  readonly features: ReadonlySet<string>;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private kernelsInFlight: string[] = [];
  private toRelease: GPUBuffer[] = [];
  private checks: PendingCheck[] = [];
  private lossReason: string | null = null;
  private destroyed = false;
  dispatchCount = 0;

  constructor(
    readonly gpu: GPUDevice,
    readonly adapter: AdapterDescription,
    /** Kept so the Dawn instance and adapter live as long as the device (collecting them crashes Dawn). */
    readonly keepAlive: unknown[],
    readonly options: GpuDeviceOptions = {},
  ) {
    const l = gpu.limits;
    this.limits = {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    };
    this.features = new Set(gpu.features as unknown as Iterable<string>);
    this.pool = new BufferPool(gpu, l.maxBufferSize);
    this.pipelines = new PipelineCache(gpu);
    gpu.lost.then((info) => {
      if (!this.destroyed) this.lossReason = `${info.reason}: ${info.message}`;
    });
  }

  /** Why the device was lost ("reason: message"), or null while it is usable (or after destroy()). */
  get lostReason(): string | null {
    return this.lossReason;
  }

  /** Whether destroy() has been called. */
  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** A copy of the buffer pool's byte counts (for metrics; changing it changes nothing). */
  memoryStats(): PoolStats {
    return { ...this.pool.stats };
  }

  describe(): string {
    return describeAdapter('gpu', this.adapter);
  }

  private alive(): void {
    if (this.lossReason) throw new GpuError(`the GPU device was lost (${this.lossReason}); create a new device`);
    if (this.destroyed) throw new GpuError('the device was destroyed');
  }

  tensor(dtype: DType, shape: readonly number[], data?: ArrayLike<number>, label?: string): Tensor {
    this.alive();
    const n = checkTensorData(shape, data, label);
    const buf = this.pool.acquire(Math.max(4, n * 4), STORAGE_USAGE, label);
    const t = new Tensor(this, dtype, shape, buf, label);
    if (data) this.write(t, data);
    return t;
  }

  /** Opens (or continues) the pending compute pass. */
  computePass(): GPUComputePassEncoder {
    this.alive();
    if (!this.encoder) {
      this.gpu.pushErrorScope('out-of-memory');
      this.gpu.pushErrorScope('validation');
      this.encoder = this.gpu.createCommandEncoder();
    }
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    return this.pass;
  }

  /** The pending command encoder with no pass open, for copies. */
  commandEncoder(): GPUCommandEncoder {
    this.computePass();
    this.pass!.end();
    this.pass = null;
    return this.encoder!;
  }

  /** Records kernel names for error messages. */
  noteKernel(name: string): void {
    if (this.kernelsInFlight.length < 64) this.kernelsInFlight.push(name);
    else if (this.kernelsInFlight.length === 64) this.kernelsInFlight.push('...');
  }

  /** Releases a buffer to the pool once the pending work has been submitted. */
  releaseAfterFlush(buf: GPUBuffer): void {
    this.toRelease.push(buf);
  }

  dispatch<S extends Spec>(
    kernel: Kernel<S>,
    bindings: Record<string, Bindable>,
    params: Params,
    spec?: Partial<S>,
  ): void {
    this.record(kernel, bindings, params, spec);
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
    this.record(kernel, bindings, params, spec, { args, offset });
  }

  dispatchDims<S extends Spec>(kernel: Kernel<S>, params: Params, spec?: Partial<S>): [number, number, number] {
    const d = kernel.dispatch(params, kernel.resolveSpec(spec));
    return kernel.linear ? foldDispatch(d[0], this.limits.maxComputeWorkgroupsPerDimension) : d;
  }

  private record<S extends Spec>(
    kernel: Kernel<S>,
    bindings: Record<string, Bindable>,
    params: Params,
    spec: Partial<S> | undefined,
    indirect?: { args: Tensor; offset: number },
  ): void {
    this.alive();
    const s = kernel.resolveSpec(spec);
    kernel.checkParams(params);
    const sizes = kernel.sizes(params, s);
    const entries: GPUBindGroupEntry[] = [];
    const packed = kernel.packParams(params);
    const uniform = this.pool.acquire(packed.byteLength, UNIFORM_USAGE, `${kernel.name}.params`);
    this.gpu.queue.writeBuffer(uniform, 0, packed);
    entries.push({ binding: 0, resource: { buffer: uniform, size: packed.byteLength } });
    kernel.bindingNames.forEach((name, i) => {
      const v = resolveBinding(this, kernel, name, bindings, sizes);
      const bytes = Math.max(4, v.length * 4);
      if (bytes > this.limits.maxStorageBufferBindingSize) {
        throw new ValidationError(
          `kernel '${kernel.name}': binding '${name}' is ${bytes} bytes, over this device's maxStorageBufferBindingSize (${this.limits.maxStorageBufferBindingSize}); split it`,
        );
      }
      entries.push({
        binding: i + 1,
        resource: { buffer: v.tensor.handle as GPUBuffer, offset: v.offset * 4, size: bytes },
      });
    });
    const pass = this.computePass();
    const { pipeline, layout } = this.pipelines.get(kernel, s);
    this.noteKernel(kernel.name);
    const bg = this.gpu.createBindGroup({ layout, entries });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bg);
    const d = kernel.dispatch(params, s);
    const [x, y, z] = kernel.linear ? foldDispatch(d[0], this.limits.maxComputeWorkgroupsPerDimension) : d;
    const lim = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > lim || y > lim || z > lim) {
      throw new ValidationError(
        `kernel '${kernel.name}': dispatch [${x}, ${y}, ${z}] exceeds ${lim} workgroups per dimension`,
      );
    }
    if (indirect) pass.dispatchWorkgroupsIndirect(indirect.args.handle as GPUBuffer, indirect.offset * 4);
    else if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
    this.dispatchCount++;
    this.releaseAfterFlush(uniform);
    if (this.options.debug) this.flush();
  }

  flush(): void {
    if (!this.encoder) return;
    if (this.pass) this.pass.end();
    this.pass = null;
    const cb = this.encoder.finish();
    this.encoder = null;
    this.gpu.queue.submit([cb]);
    const errors = Promise.all([this.gpu.popErrorScope(), this.gpu.popErrorScope()]);
    this.checks.push({ kernels: this.kernelsInFlight, errors });
    this.kernelsInFlight = [];
    for (const b of this.toRelease) this.pool.release(b);
    this.toRelease = [];
  }

  async sync(): Promise<void> {
    this.flush();
    await this.gpu.queue.onSubmittedWorkDone();
    await this.checkErrors();
  }

  private async checkErrors(): Promise<void> {
    const checks = this.checks;
    this.checks = [];
    for (const c of checks) {
      const errs = (await c.errors).filter((e): e is GPUError => e !== null);
      if (errs.length) {
        const which = c.kernels.length
          ? `in work containing kernel(s) ${[...new Set(c.kernels)].join(', ')}`
          : 'in buffer/copy work';
        throw new GpuError(`GPU error ${which}: ${errs.map((e) => e.message).join('; ')}`);
      }
    }
    this.alive();
  }

  async read(t: Tensor): Promise<AnyTypedArray> {
    return this.readRange(t, 0, t.length);
  }

  /** Reads `length` elements starting at element `offset`. */
  async readRange(t: Tensor, offset: number, length: number): Promise<AnyTypedArray> {
    this.alive();
    const bytes = length * 4;
    if (bytes === 0) return allocTyped(t.dtype, 0);
    const staging = this.pool.acquire(bytes, READBACK_USAGE, 'readback');
    this.commandEncoder().copyBufferToBuffer(t.handle as GPUBuffer, offset * 4, staging, 0, Math.ceil(bytes / 4) * 4);
    this.flush();
    try {
      await staging.mapAsync(0x0001 /* GPUMapMode.READ */, 0, bytes);
    } catch (e) {
      await this.checkErrors();
      throw new GpuError(`readback of ${t} failed: ${(e as Error).message}`, { cause: e });
    }
    const out = viewTyped(t.dtype, staging.getMappedRange(0, bytes).slice(0));
    staging.unmap();
    this.pool.release(staging);
    await this.checkErrors();
    return out;
  }

  write(t: Tensor, data: ArrayLike<number>, offset = 0): void {
    this.alive();
    if (offset + data.length > t.length) {
      throw new ValidationError(`write of ${data.length} values at ${offset} overflows ${t}`);
    }
    this.flush(); // queue writes must not overtake recorded work
    const arr =
      ArrayBuffer.isView(data) && (data as AnyTypedArray).BYTES_PER_ELEMENT === 4
        ? (data as AnyTypedArray)
        : toTyped(t.dtype, data);
    this.gpu.queue.writeBuffer(t.handle as GPUBuffer, offset * 4, arr.buffer, arr.byteOffset, arr.byteLength);
  }

  free(t: Tensor): void {
    if (this.destroyed) return;
    this.flush();
    this.pool.release(t.handle as GPUBuffer);
  }

  destroy(): void {
    if (this.destroyed) return;
    try {
      this.flush();
    } catch {
      /* the device may already be lost */
    }
    this.destroyed = true;
    this.pool.releaseAll();
    this.gpu.destroy();
  }
}

function toTyped(dtype: DType, data: ArrayLike<number>): AnyTypedArray {
  const a = allocTyped(dtype, data.length);
  for (let i = 0; i < data.length; i++) a[i] = data[i];
  return a;
}
