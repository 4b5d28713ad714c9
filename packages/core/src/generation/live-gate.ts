// Dispatches gated on whether any row of a decode step is live (generation/gpu-loop.ts): each gated
// dispatch is recorded as an indirect dispatch whose workgroup counts come from a small table, one slot per
// distinct grid; the dispatchGate kernel, run after each exit decision (and at each step's start), writes
// every slot's full grid when some row is live and zeros otherwise. Grids are found as the dispatches are
// recorded: a new one is put into the table by a dispatchGate call in the same command stream (no host
// write, so a submission of N steps stays one submission).
import { ValidationError } from '../errors.js';
import { dispatchGate } from '../kernels/dispatch-gate.js';
import type { DispatchFn } from '../models/decoder-lm.js';
import type { Device } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';

/** Most distinct grids one gate holds (a decoder step has about 15). */
export const GATE_SLOTS = 64;

export class LiveGate {
  private readonly slots = new Map<string, number>();
  private readonly dims: Tensor;
  private readonly args: Tensor;

  /** live: (rows) u32, nonzero for a live row. Needs a device with indirect dispatch. */
  constructor(
    private readonly dev: Device,
    private readonly live: Tensor,
    private readonly rows: number,
  ) {
    if (!dev.dispatchIndirect || !dev.dispatchDims)
      throw new ValidationError(`LiveGate: the device (${dev.describe()}) has no indirect dispatch`);
    this.dims = dev.tensor('u32', [3 * GATE_SLOTS], undefined, 'gate.dims');
    this.args = dev.tensor('u32', [3 * GATE_SLOTS], undefined, 'gate.args');
  }

  /** Whether a device can gate (it has indirect dispatch). */
  static supported(dev: Device): boolean {
    return dev.dispatchIndirect !== undefined && dev.dispatchDims !== undefined;
  }

  /** Re-evaluates every slot from the live mask (after the mask changed). */
  update(): void {
    if (this.slots.size === 0) return;
    this.gate(0, 0, [0, 0, 0]);
  }

  /** Records a dispatch that runs only if some row was live at the last update. */
  readonly run: DispatchFn = (kernel, bindings, params, spec) => {
    const d = this.dev.dispatchDims!(kernel, params, spec);
    const key = d.join(',');
    let slot = this.slots.get(key);
    if (slot === undefined) {
      if (this.slots.size >= GATE_SLOTS)
        throw new ValidationError(`LiveGate: more than ${GATE_SLOTS} distinct dispatch grids in one loop`);
      slot = this.slots.size;
      this.slots.set(key, slot);
      this.gate(1, slot, d);
    }
    this.dev.dispatchIndirect!(kernel, bindings, params, spec, this.args, 3 * slot);
  };

  private gate(put: number, slot: number, [x, y, z]: number[]): void {
    this.dev.dispatch(
      dispatchGate,
      { live: this.live, dims: this.dims, args: this.args },
      { rows: this.rows, count: this.slots.size, put, slot, x, y, z },
    );
  }

  dispose(): void {
    this.dims.dispose();
    this.args.dispose();
  }
}
