// Per-kernel profile of one compiled program for the engine benchmark: every op of a full-depth batch is
// dispatched on its own with all rows live, submitted and awaited, and timed; times are grouped by the op's
// role in the model (block index and exit index folded), with the GFLOP/s each group reaches.
import type { ModelInput } from '../src/engine/model.js';
import { neverExit } from '../src/engine/policy.js';
import type { Runner } from '../src/engine/runner.js';
import type { GpuDevice } from '../src/runtime/gpu-device.js';

export interface KernelProfile {
  kernel: string;
  ms: number;
  count: number;
  gflops: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** `blocks.3.attn.qkv` → `matmul attn.qkv`; exit and engine ops by their role. */
function role(kernel: string, label: string): string {
  const l = label
    .replace(/^blocks\.\d+\./, '')
    .replace(/^exits\.\d+\./, 'exit.')
    .replace(/^exit\d+\./, 'exit.');
  return `${kernel} ${l}`;
}

export async function profileProgram(
  dev: GpuDevice,
  runner: Runner,
  input: ModelInput,
  reps: number,
): Promise<{ byKernel: KernelProfile[]; totalMs: number; emptySyncMs: number }> {
  // a real run first, so that every buffer holds the values of a full-depth batch
  await runner.run(input, { policy: neverExit(), mode: 'device' });
  const rows = runner.model.batchSize(input);
  const prog = runner.program(runner.model.bucket(input));
  const empty: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await dev.sync();
    empty.push(performance.now() - t0);
  }
  const groups = new Map<string, { ms: number; count: number; flops: number }>();
  for (let k = 0; k < prog.ops.length; k++) {
    const op = prog.ops[k];
    const ts: number[] = [];
    for (let i = 0; i < reps + 1; i++) {
      const t0 = performance.now();
      prog.runOpEager(k, rows);
      await dev.sync();
      if (i > 0) ts.push(performance.now() - t0);
    }
    const key = role(op.kernel.name, op.label);
    const g = groups.get(key) ?? { ms: 0, count: 0, flops: 0 };
    g.ms += median(ts);
    g.count++;
    g.flops += op.flopsPerRow * rows;
    groups.set(key, g);
  }
  const byKernel = [...groups.entries()]
    .map(([kernel, g]) => ({
      kernel,
      ms: Number(g.ms.toFixed(2)),
      count: g.count,
      gflops: g.flops > 0 ? Number((g.flops / g.ms / 1e6).toFixed(3)) : 0,
    }))
    .sort((a, b) => b.ms - a.ms);
  return {
    byKernel,
    totalMs: Number(byKernel.reduce((a, k) => a + k.ms, 0).toFixed(2)),
    emptySyncMs: Number(median(empty).toFixed(3)),
  };
}
