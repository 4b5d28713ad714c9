// `offramp calibrate`: picks a policy's threshold on a model and data set, for an accuracy-drop target, a
// compute budget, or a risk guarantee (Learn-then-Test), and writes a policy file that eval accepts.
import { resolve } from 'node:path';
import type { Backend } from '@offramp/core';
import { asUsage, RuntimeError, UsageError } from '../errors.js';
import { traceSession } from '../evaluate.js';
import { optionsText, pct, pp } from '../util/format.js';
import type { Logger } from '../util/log.js';
import { didYouMean } from '../util/suggest.js';

export const CALIBRATABLE = ['confidence', 'entropy', 'margin', 'saturation', 'gate', 'quality'] as const;

export interface CalibrateOptions {
  model: string;
  data?: string;
  split?: 'train' | 'test';
  policy: string;
  maxDrop?: number;
  budget?: number;
  risk?: string;
  method?: 'binomial' | 'hoeffding-bentkus';
  perExit?: boolean;
  batch: number;
  device: Backend;
  limit?: number;
  offset?: number;
  out?: string;
  fetch?: boolean;
}

export function parseRisk(s: string): { epsilon: number; delta: number } {
  const parts = s.split(',').map((x) => Number(x.trim()));
  if (parts.length !== 2 || parts.some((x) => !(x > 0 && x < 1))) {
    throw new UsageError(`--risk must be 'epsilon,delta' with both in (0, 1), e.g. --risk 0.05,0.1; got '${s}'`);
  }
  return { epsilon: parts[0], delta: parts[1] };
}

export async function calibrateCommand(o: CalibrateOptions, log: Logger) {
  const targets = [o.maxDrop !== undefined, o.budget !== undefined, o.risk !== undefined].filter(Boolean).length;
  if (targets !== 1)
    throw new UsageError(
      'give exactly one target: --max-drop D (accuracy points, e.g. 0.01), --budget B (compute fraction, e.g. 0.5) or --risk EPSILON,DELTA',
    );
  if (o.maxDrop !== undefined && !(o.maxDrop >= 0 && o.maxDrop < 1))
    throw new UsageError(`--max-drop must be in [0, 1), got ${o.maxDrop}`);
  if (o.budget !== undefined && !(o.budget > 0 && o.budget <= 1))
    throw new UsageError(`--budget must be in (0, 1], got ${o.budget}`);
  const risk = o.risk !== undefined ? parseRisk(o.risk) : null;
  const [name, extra] = o.policy.split(':');
  if (!(CALIBRATABLE as readonly string[]).includes(name)) {
    throw new UsageError(
      `policy '${name}' cannot be calibrated here${didYouMean(name, CALIBRATABLE)}: calibrate takes a single-threshold policy (${CALIBRATABLE.join(', ')}); sweep the others with \`offramp eval --sweep\``,
    );
  }
  const { parseOptionString } = await import('../policies.js');
  const base = extra ? parseOptionString(extra, `policy '${name}'`) : {};
  if (risk && o.perExit)
    throw new UsageError('--per-exit works with --max-drop and --budget; --risk tests one shared threshold');

  const P = await import('@offramp/policies');
  // calibrate on the training split of a named dataset unless told otherwise: the test split is for eval
  const { loaded, data, trace, close } = await traceSession({ ...o, split: o.split ?? 'train' }, log);
  try {
    let options: Record<string, unknown>;
    let feasible: boolean;
    let calibration: Record<string, unknown>;
    let method: 'max-drop' | 'budget' | 'learn-then-test';
    try {
      if (risk) {
        const cal = P.calibrateRisk(trace, name, { ...risk, method: o.method, options: base, maxBatch: o.batch });
        method = 'learn-then-test';
        feasible = cal.threshold !== null;
        // when nothing is certified, the most conservative threshold (never leave early) is written
        options = cal.options ?? { ...base, threshold: cal.tests[0]?.threshold };
        calibration = {
          method,
          epsilon: cal.epsilon,
          delta: cal.delta,
          p_value: cal.method,
          n: cal.n,
          certified: feasible,
          meanCost: cal.meanCost,
        };
      } else {
        const target = o.maxDrop !== undefined ? { maxDrop: o.maxDrop } : { budget: o.budget! };
        const ch = P.chooseThreshold(trace, name, target, { perExit: o.perExit, options: base, maxBatch: o.batch });
        method = o.maxDrop !== undefined ? 'max-drop' : 'budget';
        feasible = ch.feasible;
        options = ch.options;
        calibration = { method, ...target, per_exit: Boolean(o.perExit), n: data.n, feasible };
      }
    } catch (e) {
      throw asUsage(e);
    }
    const policy = P.createPolicy(name, options);
    const sim = P.simulate(policy, trace, { maxBatch: o.batch });
    const file = resolve(o.out ?? `${name}.policy.json`);
    await P.savePolicyFile(
      file,
      { name, options },
      {
        ...calibration,
        model: loaded.name,
        data: `${data.name}${data.split !== 'file' ? `:${data.split}` : ''}`,
        samples: data.n,
        accuracy: sim.accuracy,
        accuracy_drop: sim.accuracyDrop,
        mean_cost: sim.meanCost,
        date: new Date().toISOString(),
      },
    );
    log.info();
    log.info(`${log.c.bold(name)} ${optionsText(options)}`);
    log.info(
      `  accuracy ${pct(sim.accuracy)} (${pp(sim.accuracyDrop === null ? null : -sim.accuracyDrop)} vs full depth), disagreement with full depth ${pct(sim.disagreement)}, compute ${pct(sim.meanCost, 1)}, mean exit block ${sim.meanExitBlock.toFixed(2)}`,
    );
    if (!feasible)
      log.warn(
        risk
          ? `no threshold passed the risk test at epsilon ${risk.epsilon}, delta ${risk.delta} on ${data.n} samples: the file keeps the most conservative threshold (more samples or a larger epsilon help)`
          : 'the target could not be met: the file holds the closest setting',
      );
    log.info(`wrote ${file}; use it with \`offramp eval --policies file:${file}\``);
    const out = {
      command: 'calibrate' as const,
      policy: name,
      method,
      feasible,
      options,
      metrics: {
        accuracy: sim.accuracy,
        accuracyDrop: sim.accuracyDrop,
        disagreement: sim.disagreement,
        computeFraction: sim.meanCost,
        meanExitBlock: sim.meanExitBlock,
      },
      n: data.n,
      file,
    };
    log.result(out);
    if (!feasible && risk) throw new RuntimeError('calibration certified no threshold (see the warning above)');
    return out;
  } finally {
    close();
  }
}
