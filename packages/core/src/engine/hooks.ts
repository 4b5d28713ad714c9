// Hooks observe the early-exit loop; they never decide. All are optional.
// When they run:
//   * host mode: during the run, in loop order: beforeBlock before a block's work is recorded, afterBlock
//     after it (for a block with an exit head: after the policy decided), onExit once per sample as it
//     leaves, onRunEnd when the batch's results are back.
//   * device mode: the loop runs on the GPU with one readback at the end, so the same calls, with the same
//     arguments, are replayed in loop order from that readback just before onRunEnd.
import type { ExitSignals } from './policy.js';

export type ExecutionMode = 'host' | 'device';

export interface BlockContext {
  /** 0-based block index. */
  block: number;
  /** Rows still running when the block starts. */
  liveRows: number;
  batchSize: number;
  mode: ExecutionMode;
}

export interface BlockOutput {
  /** Rows still running after the block (and after its exit decision, if it has an exit head). */
  liveRows: number;
  /** Present when an exit head follows this block. */
  exit?: {
    index: number;
    signals: ExitSignals;
    /** Sample ids leaving here. */
    exiting: Int32Array;
  };
}

export interface RunSummary {
  batchSize: number;
  mode: ExecutionMode;
  /** Samples that left at each exit. */
  exitCounts: number[];
  /** Rows that ran each block. */
  rowsPerBlock: number[];
  meanExitBlock: number;
  /** FLOPs actually spent by the batch, and what full depth would have cost. */
  flops: number;
  fullDepthFlops: number;
  /** Host round trips (readbacks) used. */
  readbacks: number;
  wallMs: number;
  /** The path that ran: WebGPU kernels, ONNX Runtime on the CPU, or the CPU reference kernels. */
  backend?: 'webgpu' | 'ort-cpu' | 'cpu-reference';
}

export interface RunHooks {
  beforeBlock?(ctx: BlockContext): void;
  afterBlock?(ctx: BlockContext, out: BlockOutput): void;
  onExit?(sampleId: number, info: { exitIndex: number; block: number }): void;
  onRunEnd?(summary: RunSummary): void;
}
