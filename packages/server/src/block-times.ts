// Per-block wall times of one engine batch, measured with the run's hooks (only for batches where some request
// asked for a trace). Host mode on the GPU (or the CPU reference kernels): a block's time runs from its
// beforeBlock to its afterBlock (for a block with an exit head: after the policy decided, signals readback
// included), as the playground measures it. ONNX Runtime CPU path: the blocks up to an exit run as one session
// call (a segment; the OrtRunner calls its first block's beforeBlock just before that call and the other hooks
// after it), so the segment's time, from its first block's start to its exit decision, is given to its exit
// block and its other blocks get 0. Device mode: the loop runs on the GPU with one readback and the hooks are replayed afterwards, so
// there are no per-block times (undefined).
import type { RunHooks, RunSummary } from '@offramp/core';

export interface BlockTimer {
  hooks: RunHooks;
  /** ms per block that ran (rowsPerBlock > 0), or undefined in device mode. */
  blockMs(summary: RunSummary): number[] | undefined;
}

/** Collects one run's block times; create one per run and pass its hooks to that run. */
export function blockTimer(): BlockTimer {
  const before: number[] = [];
  const after: number[] = [];
  const exitAt: boolean[] = [];
  return {
    hooks: {
      beforeBlock: (ctx) => {
        before[ctx.block] = performance.now();
      },
      afterBlock: (ctx, out) => {
        after[ctx.block] = performance.now();
        exitAt[ctx.block] = out.exit !== undefined;
      },
    },
    blockMs(summary) {
      if (summary.mode !== 'host') return undefined;
      const ran = summary.rowsPerBlock.filter((r) => r > 0).length;
      const ms: number[] = [];
      if (summary.backend === 'ort-cpu') {
        let segStart: number | undefined;
        for (let b = 0; b < ran; b++) {
          segStart ??= before[b];
          if (exitAt[b]) {
            if (segStart === undefined || after[b] === undefined)
              throw new Error(`internal: the segment ending at block ${b} ran without its hooks`);
            ms.push(after[b] - segStart);
            segStart = undefined;
          } else ms.push(0);
        }
        return ms;
      }
      for (let b = 0; b < ran; b++) {
        if (before[b] === undefined || after[b] === undefined)
          throw new Error(`internal: block ${b} ran in host mode without its hooks`);
        ms.push(after[b] - before[b]);
      }
      return ms;
    },
  };
}
