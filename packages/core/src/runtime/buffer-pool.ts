// Reuses GPU buffers by size class and usage (an LRU-less free list per key), with peak statistics and
// release-all-and-retry when an allocation fails.
import { GpuError } from '../errors.js';

/** Size classes: exact below 4 KiB (rounded to 256 B), then powers of two with 4 steps per octave. */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, bytes);
  if (b <= 4096) return Math.ceil(b / 256) * 256;
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 4;
  return Math.ceil(b / step) * step;
}

export interface PoolStats {
  /** Bytes in buffers handed out now. */
  inUseBytes: number;
  /** Bytes held by the pool (in use + free). */
  allocatedBytes: number;
  peakInUseBytes: number;
  peakAllocatedBytes: number;
  allocations: number;
  reuses: number;
}

export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  private sizes = new WeakMap<GPUBuffer, number>();
  readonly stats: PoolStats = {
    inUseBytes: 0,
    allocatedBytes: 0,
    peakInUseBytes: 0,
    peakAllocatedBytes: 0,
    allocations: 0,
    reuses: 0,
  };

  constructor(
    private readonly device: GPUDevice,
    private readonly maxBufferSize: number,
  ) {}

  private key(size: number, usage: number): string {
    return `${size}:${usage}`;
  }

  acquire(bytes: number, usage: number, label?: string): GPUBuffer {
    const size = sizeClass(bytes);
    if (bytes > this.maxBufferSize) {
      throw new GpuError(
        `buffer '${label ?? '?'}' of ${bytes} bytes exceeds this device's maxBufferSize (${this.maxBufferSize} bytes); split the tensor`,
      );
    }
    const list = this.free.get(this.key(size, usage));
    let buf = list?.pop();
    if (buf) {
      this.stats.reuses++;
    } else {
      buf = this.create(Math.min(size, this.maxBufferSize), usage, label);
      this.stats.allocations++;
      this.stats.allocatedBytes += buf.size;
      this.stats.peakAllocatedBytes = Math.max(this.stats.peakAllocatedBytes, this.stats.allocatedBytes);
    }
    this.sizes.set(buf, buf.size);
    this.stats.inUseBytes += buf.size;
    this.stats.peakInUseBytes = Math.max(this.stats.peakInUseBytes, this.stats.inUseBytes);
    return buf;
  }

  private create(size: number, usage: number, label?: string): GPUBuffer {
    try {
      return this.device.createBuffer({ size, usage, label });
    } catch (e) {
      // allocation failure: drop every cached buffer and try once more
      this.releaseAll();
      try {
        return this.device.createBuffer({ size, usage, label });
      } catch (e2) {
        throw new GpuError(
          `could not allocate ${size} bytes for '${label ?? '?'}' even after emptying the buffer pool`,
          {
            cause: e2 ?? e,
          },
        );
      }
    }
  }

  /** Returns a buffer for reuse. The caller must have flushed pending work that uses it. */
  release(buf: GPUBuffer): void {
    const size = this.sizes.get(buf) ?? buf.size;
    this.stats.inUseBytes -= size;
    const k = this.key(buf.size, buf.usage);
    let list = this.free.get(k);
    if (!list) this.free.set(k, (list = []));
    list.push(buf);
  }

  /** Destroys every free buffer. */
  releaseAll(): void {
    for (const list of this.free.values()) {
      for (const b of list) {
        this.stats.allocatedBytes -= b.size;
        b.destroy();
      }
    }
    this.free.clear();
  }
}
