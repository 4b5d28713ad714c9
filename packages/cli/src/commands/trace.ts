// `offramp trace`: runs a model to full depth once on a data set and writes the trace (every sample's
// signals at every exit) to a JSON file, for offline sweeps and for training learned exit policies.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import type { Backend } from '@offramp/core';
import { UsageError } from '../errors.js';
import { traceSession } from '../evaluate.js';
import { duration, pct } from '../util/format.js';
import type { Logger } from '../util/log.js';

export interface TraceOptions {
  model: string;
  data?: string;
  split?: 'train' | 'test';
  batch: number;
  device: Backend;
  limit?: number;
  offset?: number;
  out: string;
  fetch?: boolean;
  /** Store every exit's logits in the file too. */
  logits?: boolean;
}

export interface TraceSummary {
  file: string;
  model: string;
  data: string;
  split: string;
  samples: number;
  exitBlocks: number[];
  costFractions: number[];
  /** SHA-256 of the weights and of the traced inputs and labels, as stored in the file. */
  weightsSha256: string;
  dataSha256: string;
  /** The file holds every exit's logits. */
  logits: boolean;
  /** Per exit: accuracy against the labels, and agreement with the full model's prediction. */
  accuracy: number[];
  agreement: number[];
  seconds: number;
}

export async function traceCommand(o: TraceOptions, log: Logger): Promise<TraceSummary> {
  if (!o.out) throw new UsageError('--out FILE is required: where the trace goes (e.g. --out imdb-train.trace.json)');
  const t0 = performance.now();
  const P = await import('@offramp/policies');
  const { loaded, data, device, trace, fingerprint, close } = await traceSession(
    { ...o, split: o.split ?? 'test' },
    log,
  );
  try {
    const E = trace.numExits;
    const accuracy = Array.from(
      { length: E },
      (_, e) => trace.samples.reduce((a, s) => a + (s.argmax[e] === s.label ? 1 : 0), 0) / trace.samples.length,
    );
    const agreement = Array.from(
      { length: E },
      (_, e) =>
        trace.samples.reduce((a, s) => a + (s.argmax[e] === s.finalPrediction ? 1 : 0), 0) / trace.samples.length,
    );
    const file = resolve(o.out);
    const doc = P.traceToJson(
      trace,
      {
        model: loaded.name,
        // relative to the trace file, so a trace moved with its model (or shared) names no machine's paths
        model_dir: relative(dirname(resolve(o.out)), loaded.dir) || '.',
        data: data.name,
        split: data.split,
        offset: o.offset ?? 0,
        device: device.describe(),
        created: new Date().toISOString(),
      },
      fingerprint,
    );
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(doc)}\n`);
    const seconds = (performance.now() - t0) / 1000;
    log.info();
    log.info(`${log.c.bold('exits')}    after blocks ${trace.exitBlocks.join(', ')} of ${trace.numBlocks}`);
    log.info(`${log.c.bold('cost')}     ${trace.costFractions.map((c) => pct(c)).join(' / ')} of full depth`);
    log.info(`${log.c.bold('accuracy')} ${accuracy.map((a) => pct(a)).join(' / ')} per exit`);
    log.info(`${log.c.bold('agree')}    ${agreement.map((a) => pct(a)).join(' / ')} with the full model`);
    log.info(`${log.c.bold('trace')}    ${file}${o.logits ? ' (with the logits of every exit)' : ''}`);
    log.info(
      log.c.dim(
        `weights sha256 ${fingerprint.weightsSha256.slice(0, 16)}…, data sha256 ${fingerprint.dataSha256.slice(0, 16)}…`,
      ),
    );
    log.info(log.c.dim(`done in ${duration(seconds * 1000)}`));
    const summary: TraceSummary = {
      file,
      model: loaded.name,
      data: data.name,
      split: data.split,
      samples: trace.samples.length,
      exitBlocks: trace.exitBlocks.slice(),
      costFractions: trace.costFractions.slice(),
      weightsSha256: fingerprint.weightsSha256,
      dataSha256: fingerprint.dataSha256,
      logits: Boolean(o.logits),
      accuracy,
      agreement,
      seconds,
    };
    log.result(summary);
    return summary;
  } finally {
    close();
  }
}
