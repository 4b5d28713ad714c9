// blockTimer from the hook calls a run makes, on a clock that advances by hand: host mode on the Runner (block
// start to exit decision), the ONNX Runtime path (a segment's time on its exit block, 0 on its other blocks) and
// device mode (no times). The expected figures are worked out from the clock readings below.
import type { BlockContext, ExecutionMode, RunSummary } from '@offramp/core';
import { afterEach, expect, test, vi } from 'vitest';
import { blockTimer } from './block-times.js';

let clock = 0;
afterEach(() => vi.restoreAllMocks());
const tick = (ms: number) => {
  clock += ms;
};
const ctx = (block: number, mode: ExecutionMode): BlockContext => ({ block, liveRows: 4, batchSize: 4, mode });
const summary = (mode: ExecutionMode, backend: RunSummary['backend'], rowsPerBlock: number[]): RunSummary => ({
  batchSize: 4,
  mode,
  exitCounts: [],
  rowsPerBlock,
  meanExitBlock: 0,
  flops: 0,
  fullDepthFlops: 0,
  readbacks: 0,
  wallMs: 0,
  backend,
});
const exit = { index: 0, signals: {} as any, exiting: new Int32Array() };

test('host mode on the Runner: each block from its beforeBlock to its afterBlock; blocks that did not run are left out', () => {
  clock = 100;
  vi.spyOn(performance, 'now').mockImplementation(() => clock);
  const t = blockTimer();
  const h = t.hooks;
  // 4 blocks, exits after blocks 1 and 3; every row leaves at block 1, so blocks 2-3 never run
  h.beforeBlock!(ctx(0, 'host'));
  tick(3);
  h.afterBlock!(ctx(0, 'host'), { liveRows: 4 });
  tick(1);
  h.beforeBlock!(ctx(1, 'host'));
  tick(5);
  h.afterBlock!(ctx(1, 'host'), { liveRows: 0, exit });
  expect(t.blockMs(summary('host', 'webgpu', [4, 4, 0, 0]))).toEqual([3, 5]);
});

test('ONNX Runtime path: a segment from its first beforeBlock to its exit decision, on the exit block', () => {
  clock = 0;
  vi.spyOn(performance, 'now').mockImplementation(() => clock);
  const t = blockTimer();
  const h = t.hooks;
  // segment 0 = blocks 0-1 (exit at 1): beforeBlock(0) before the session call, the rest after it
  h.beforeBlock!(ctx(0, 'host'));
  tick(10);
  h.afterBlock!(ctx(0, 'host'), { liveRows: 4 });
  h.beforeBlock!(ctx(1, 'host'));
  tick(2);
  h.afterBlock!(ctx(1, 'host'), { liveRows: 2, exit });
  tick(1);
  // segment 1 = blocks 2-3 (exit at 3)
  h.beforeBlock!(ctx(2, 'host'));
  tick(7);
  h.afterBlock!(ctx(2, 'host'), { liveRows: 2 });
  h.beforeBlock!(ctx(3, 'host'));
  tick(1);
  h.afterBlock!(ctx(3, 'host'), { liveRows: 0, exit });
  expect(t.blockMs(summary('host', 'ort-cpu', [4, 4, 2, 2]))).toEqual([0, 12, 0, 8]);
});

test('device mode: no per-block times, whatever the replayed hooks say', () => {
  const t = blockTimer();
  t.hooks.beforeBlock!(ctx(0, 'device'));
  t.hooks.afterBlock!(ctx(0, 'device'), { liveRows: 0, exit });
  expect(t.blockMs(summary('device', 'webgpu', [4]))).toBeUndefined();
});
