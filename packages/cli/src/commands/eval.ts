// `offramp eval`: evaluates exit policies on a model and data set (trace once, replay offline, re-run the
// chosen settings for real), prints the tables and writes the result files.
import { join } from 'node:path';
import type { Backend } from '@offramp/core';
import { RuntimeError } from '../errors.js';
import { type EvalConfig, type EvalResult, type MeasureMode, type ModeOption, runEvaluation } from '../evaluate.js';
import { printEvaluation, writeResults } from '../report.js';
import { duration } from '../util/format.js';
import type { Logger } from '../util/log.js';

export interface EvalCommandOptions {
  model: string;
  data?: string;
  split?: 'train' | 'test';
  policies?: string[];
  sweep?: boolean;
  grid?: number;
  batch: number;
  device: Backend;
  mode: ModeOption;
  measure: MeasureMode;
  repeats: number;
  maxDrop: number;
  out?: string;
  limit?: number;
  offset?: number;
  fetch?: boolean;
  /** A trace file from `offramp trace` to use instead of recording the trace. */
  trace?: string;
}

export function defaultOutDir(model: string, data: string | undefined): string {
  const base = model.replace(/\/+$/, '').split('/').pop() || 'model';
  const d = (data ?? 'data')
    .split('/')
    .pop()!
    .replace(/\.(jsonl|csv|ndjson)$/i, '');
  return join('offramp-eval', `${base}-${d}`);
}

export async function evalCommand(o: EvalCommandOptions, log: Logger, command = 'eval'): Promise<EvalResult> {
  const cfg: EvalConfig = {
    model: o.model,
    data: o.data,
    split: o.split,
    limit: o.limit,
    offset: o.offset,
    fetch: o.fetch,
    policies: o.policies,
    sweep: o.sweep,
    gridSize: o.grid,
    batch: o.batch,
    device: o.device,
    mode: o.mode,
    measure: o.measure,
    repeats: o.repeats,
    maxDrop: o.maxDrop,
    traceFile: o.trace,
    log,
  };
  const r = await runEvaluation(cfg);
  r.command = command;
  printEvaluation(r, log);
  const files = await writeResults(r, o.out ?? defaultOutDir(o.model, r.data.name), log);
  log.info();
  log.info(`${log.c.bold('plot')}     ${files.png} (${files.pngWidth}×${files.pngHeight}), ${files.svg}`);
  log.info(`${log.c.bold('report')}   ${files.markdown}, ${files.html}`);
  log.info(`${log.c.bold('results')}  ${files.json}, ${files.csv}`);
  log.info(
    log.c.dim(
      `done in ${duration(r.timings.totalMs)} (trace ${duration(r.timings.traceMs)}, real runs ${duration(r.timings.measureMs)})`,
    ),
  );
  log.result(r);
  if (!r.checks.exitsMatch)
    throw new RuntimeError(
      `the real runs' exits differ from the simulated ones for ${r.checks.mismatchedPoints.join(', ')}: the results above are not trustworthy for those settings`,
    );
  return r;
}
