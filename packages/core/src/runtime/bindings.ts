// Checks shared by both devices: a tensor's initial data, and each kernel binding's presence, device,
// dtype and length.
import { ValidationError } from '../errors.js';
import type { Device } from './device.js';
import type { DType } from './dtype.js';
import type { Kernel } from './kernel.js';
import { asView, type Bindable, shapeSize, type TensorView } from './tensor.js';

/** Elements of `shape`, after checking that `data` (if any) has exactly that many values. */
export function checkTensorData(shape: readonly number[], data: ArrayLike<number> | undefined, label?: string): number {
  const n = shapeSize(shape);
  if (data && data.length !== n) {
    throw new ValidationError(
      `tensor '${label ?? '?'}': ${data.length} values given for shape [${shape.join(', ')}] (${n} elements)`,
    );
  }
  return n;
}

export function checkBinding(
  kernel: Kernel<any>,
  name: string,
  dtype: DType,
  length: number,
  need: number | undefined,
): void {
  const want = kernel.bindings[name].type;
  if (dtype !== want && !kernel.bindings[name].raw) {
    throw new ValidationError(`kernel '${kernel.name}': binding '${name}' must be ${want}, got ${dtype}`);
  }
  if (need !== undefined && length < need) {
    throw new ValidationError(
      `kernel '${kernel.name}': binding '${name}' has ${length} elements, needs at least ${need} for these parameters`,
    );
  }
}

/** The view bound to `name`, checked against the kernel's declaration and the required size. */
export function resolveBinding(
  device: Device,
  kernel: Kernel<any>,
  name: string,
  bindings: Record<string, Bindable>,
  sizes: Record<string, number>,
): TensorView {
  const b = bindings[name];
  if (!b)
    throw new ValidationError(
      `kernel '${kernel.name}': binding '${name}' is missing (expects ${kernel.bindingNames.join(', ')})`,
    );
  const v = asView(b);
  checkBinding(kernel, name, v.tensor.dtype, v.length, sizes[name]);
  if (v.tensor.device !== device)
    throw new ValidationError(`kernel '${kernel.name}': binding '${name}' lives on another device`);
  return v;
}
