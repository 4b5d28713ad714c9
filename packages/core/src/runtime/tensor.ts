// A tensor: a dtype, a shape and storage on one device (a GPUBuffer or, on the CPU device, a typed array).
import { ValidationError } from '../errors.js';
import type { Device } from './device.js';
import type { AnyTypedArray, DType } from './dtype.js';

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  disposed = false;
  constructor(
    readonly device: Device,
    readonly dtype: DType,
    readonly shape: readonly number[],
    /** GPUBuffer on a GPU device, a typed array on the CPU device. */
    readonly handle: GPUBuffer | AnyTypedArray,
    readonly label?: string,
  ) {}

  get length(): number {
    return shapeSize(this.shape);
  }
  get byteLength(): number {
    return this.length * 4;
  }

  /** Copies the tensor back to the host. */
  read(): Promise<AnyTypedArray> {
    return this.device.read(this);
  }
  write(data: ArrayLike<number>, offset = 0): void {
    this.device.write(this, data, offset);
  }
  dispose(): void {
    if (!this.disposed) this.device.free(this);
    this.disposed = true;
  }
  toString(): string {
    return `Tensor(${this.label ?? `#${this.id}`}, ${this.dtype}[${this.shape.join('×')}])`;
  }
}

/** A window of a tensor, in elements; GPU offsets must be multiples of the storage offset alignment. */
export interface TensorView {
  tensor: Tensor;
  offset: number;
  length: number;
}
export type Bindable = Tensor | TensorView;

export function asView(b: Bindable): TensorView {
  return b instanceof Tensor ? { tensor: b, offset: 0, length: b.length } : b;
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0)
      throw new ValidationError(`invalid tensor shape [${shape.join(', ')}]: dimensions must be non-negative integers`);
    n *= d;
  }
  return n;
}
