// The layer graph of one compiled program: tensors (weights, per-row scratch, row-carried state, inputs)
// and ops (a kernel, its specialisation, bindings and parameters as a function of the live-row count r),
// in execution order, split into stem / blocks / exit heads. Models build it through `GraphBuilder`; the
// engine adds the early-exit bookkeeping (signals, decisions, retirement, compaction) around it.
import { ValidationError } from '../errors.js';
import type { DType } from '../runtime/dtype.js';
import type { Kernel, Params, Spec } from '../runtime/kernel.js';
import type { Tensor } from '../runtime/tensor.js';

export type TensorKind = 'weight' | 'scratch' | 'input' | 'carried' | 'system';

export interface TensorDecl {
  id: number;
  name: string;
  kind: TensorKind;
  dtype: DType;
  /** Elements per row (scratch, input, carried); total = perRow · maxRows + fixed. */
  perRow: number;
  fixed: number;
  /** Weights and system tensors are bound to a tensor at build time; others by the memory plan. */
  tensor?: Tensor;
}

export interface TRef {
  decl: TensorDecl;
  /** Element offset and length of a window (weights split over the binding limit). */
  offset?: number;
  length?: number;
}

export type SegmentKind = 'stem' | 'block' | 'head' | 'engine';

export interface OpDecl {
  kernel: Kernel<any>;
  spec: Spec;
  bind: Record<string, TRef>;
  /** Uniform parameters for r live rows. */
  params: (r: number) => Params;
  /** Floating-point operations per live row (multiply-add = 2). */
  flopsPerRow: number;
  segment: SegmentKind;
  /** Block index (stem: -1) or exit index (head). */
  index: number;
  label: string;
}

export interface CarriedDecl {
  name: string;
  /** Elements per row that currently hold data (≤ perRow; CNN feature maps shrink block by block). */
  width: number;
  buffers: [TensorDecl, TensorDecl];
  current: 0 | 1;
  /** Buffer holding the value at the start of a run (written by the host). */
  initial: 0 | 1;
}

export class GraphBuilder {
  readonly tensors: TensorDecl[] = [];
  readonly ops: OpDecl[] = [];
  readonly carried: CarriedDecl[] = [];
  /** Largest storage binding in bytes (the device's limit unless lowered, e.g. to test splitting). */
  bindingLimit?: number;
  /** Identity row indices 0..maxRows−1 (u32), for row gathers that do not reorder (pooling). */
  identity?: TRef;
  private segment: SegmentKind = 'stem';
  private segmentIndex = -1;

  constructor(
    readonly maxRows: number,
    private readonly weights: Map<string, Tensor>,
  ) {}

  private decl(name: string, kind: TensorKind, dtype: DType, perRow: number, fixed = 0, tensor?: Tensor): TensorDecl {
    const d: TensorDecl = { id: this.tensors.length, name, kind, dtype, perRow, fixed, tensor };
    this.tensors.push(d);
    return d;
  }

  /** A weight tensor of the model, by name. */
  weight(name: string): TRef {
    const t = this.weights.get(name);
    if (!t) throw new ValidationError(`model weight '${name}' is missing`);
    return { decl: this.decl(name, 'weight', t.dtype, 0, t.length, t) };
  }

  /**
   * A weight of rows of `rowWidth` elements as row windows that each fit one storage binding, with offsets
   * aligned for the device: one window unless the tensor exceeds the binding limit (large vocabularies).
   */
  weightRows(name: string, rowWidth: number): { ref: TRef; rowStart: number; rows: number }[] {
    const whole = this.weight(name);
    const t = whole.decl.tensor!;
    const totalRows = t.length / rowWidth;
    const limit = Math.min(this.bindingLimit ?? Number.POSITIVE_INFINITY, t.device.limits.maxStorageBufferBindingSize);
    if (t.byteLength <= limit) return [{ ref: whole, rowStart: 0, rows: totalRows }];
    const align = t.device.limits.minStorageBufferOffsetAlignment;
    const rowBytes = rowWidth * 4;
    const step = align / gcd(align, rowBytes); // rows per window must keep every window offset aligned
    const perWindow = Math.floor(limit / rowBytes / step) * step;
    if (perWindow < 1) {
      throw new ValidationError(
        `weight '${name}': rows of ${rowBytes} bytes cannot be split into windows of at most ${limit} bytes`,
      );
    }
    const out: { ref: TRef; rowStart: number; rows: number }[] = [];
    for (let r0 = 0; r0 < totalRows; r0 += perWindow) {
      const rows = Math.min(perWindow, totalRows - r0);
      out.push({ ref: { decl: whole.decl, offset: r0 * rowWidth, length: rows * rowWidth }, rowStart: r0, rows });
    }
    return out;
  }

  hasWeight(name: string): boolean {
    return this.weights.has(name);
  }

  /** Per-row scratch space (reused across ops by liveness). */
  scratch(name: string, perRow: number, dtype: DType = 'f32'): TRef {
    return { decl: this.decl(name, 'scratch', dtype, perRow) };
  }

  /** A per-row input written by the host at the start of a run (for the full batch). */
  input(name: string, perRow: number, dtype: DType = 'f32'): TRef {
    return { decl: this.decl(name, 'input', dtype, perRow) };
  }

  /** An engine-owned tensor with a fixed buffer. */
  system(name: string, tensor: Tensor): TRef {
    return { decl: this.decl(name, 'system', tensor.dtype, 0, tensor.length, tensor) };
  }

  /** State that travels with each row across blocks and is compacted with it (hidden state, lengths). */
  carry(name: string, perRow: number, dtype: DType = 'f32'): CarriedDecl {
    const c: CarriedDecl = {
      name,
      width: perRow,
      buffers: [this.decl(`${name}.0`, 'carried', dtype, perRow), this.decl(`${name}.1`, 'carried', dtype, perRow)],
      current: 0,
      initial: 0,
    };
    this.carried.push(c);
    return c;
  }

  /** The buffer holding the carried value now. */
  cur(c: CarriedDecl): TRef {
    return { decl: c.buffers[c.current] };
  }

  /** The other buffer, which becomes current: write the updated value (of `width` per row) into it. */
  next(c: CarriedDecl, width = c.width): TRef {
    if (width > c.buffers[0].perRow)
      throw new ValidationError(`carried '${c.name}': row width ${width} exceeds ${c.buffers[0].perRow}`);
    c.width = width;
    c.current = c.current === 0 ? 1 : 0;
    return { decl: c.buffers[c.current] };
  }

  enter(segment: SegmentKind, index: number): void {
    this.segment = segment;
    this.segmentIndex = index;
  }

  op<S extends Spec>(
    kernel: Kernel<S>,
    bind: Record<string, TRef>,
    params: (r: number) => Params,
    opts: { spec?: Partial<S>; flopsPerRow?: number; label?: string } = {},
  ): void {
    for (const n of kernel.bindingNames) {
      if (!bind[n]) throw new ValidationError(`op '${opts.label ?? kernel.name}': binding '${n}' not given`);
    }
    this.ops.push({
      kernel,
      spec: kernel.resolveSpec(opts.spec),
      bind,
      params,
      flopsPerRow: opts.flopsPerRow ?? 0,
      segment: this.segment,
      index: this.segmentIndex,
      label: opts.label ?? kernel.name,
    });
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
