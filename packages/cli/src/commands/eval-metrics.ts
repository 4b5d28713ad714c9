// `offramp eval --metrics selective,ood,calibration`: the uncertainty metrics of a model's or a cascade's output
// (a cascade spec file as --model): accuracy and FLOPs, coverage at 5% risk, AURC, misclassification AUROC,
// OOD detection (FPR at 95% TPR, AUROC) against --ood-data, ECE with a reliability diagram.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Backend, buildModel, Cascade, createDevice, Runner } from '@offramp/core';
import { SCORE_KINDS, type ScoreKind } from '@offramp/policies';
import { METRIC_GROUPS, type MetricGroup, type RunMetrics, runMetrics } from '../cascade-metrics.js';
import { type CascadeSpec, isCascadeSpecPath, loadCascadeSpec } from '../cascade-spec.js';
import { datasetOfModel, loadEvalData } from '../data.js';
import { UsageError } from '../errors.js';
import type { ModeOption } from '../evaluate.js';
import { loadClassifier } from '../model.js';
import { reliabilityImages } from '../reliability-plot.js';
import type { Logger } from '../util/log.js';

export interface EvalMetricsOptions {
  model: string;
  data?: string;
  split?: 'train' | 'test';
  limit?: number;
  offset?: number;
  fetch?: boolean;
  /** Comma-separated metric groups. */
  metrics: string;
  oodData?: string;
  score?: string;
  batch: number;
  device: Backend;
  mode: ModeOption;
  out?: string;
}

export interface EvalMetricsResult {
  command: 'eval';
  cascade: { spec: string | null; stages: string[]; defer: string };
  data: { name: string; split: string; n: number };
  ood: { name: string; n: number } | null;
  mode: string;
  device: string;
  metrics: Omit<RunMetrics, 'calibration'> & {
    calibration?: Omit<NonNullable<RunMetrics['calibration']>, 'reliability'> & { bins: unknown[] };
  };
  files: string[];
}

/** Parses `--metrics`: a comma-separated list of selective, ood, calibration (or 'all'). */
export function parseMetricGroups(list: string): MetricGroup[] {
  const items = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new UsageError(`--metrics: give one or more of ${METRIC_GROUPS.join(', ')} (or all)`);
  if (items.length === 1 && items[0] === 'all') return [...METRIC_GROUPS];
  for (const i of items)
    if (!(METRIC_GROUPS as readonly string[]).includes(i))
      throw new UsageError(`--metrics: unknown metric group '${i}'; allowed: ${METRIC_GROUPS.join(', ')}, all`);
  return [...new Set(items)] as MetricGroup[];
}

export async function evalMetricsCommand(o: EvalMetricsOptions, log: Logger): Promise<EvalMetricsResult> {
  const groups = parseMetricGroups(o.metrics);
  const score = (o.score ?? 'maxProb') as ScoreKind;
  if (!SCORE_KINDS.includes(score))
    throw new UsageError(`--score: unknown score '${o.score}'; allowed: ${SCORE_KINDS.join(', ')}`);
  const spec: CascadeSpec | null = isCascadeSpecPath(o.model) ? await loadCascadeSpec(o.model) : null;
  const stageDirs = spec ? spec.stages.map((s) => s.dir) : [o.model];
  const device = await createDevice({ backend: o.device });
  const loaded: Awaited<ReturnType<typeof loadClassifier>>[] = [];
  for (const d of stageDirs) loaded.push(await loadClassifier(d));
  const runners = loaded.map(
    (c) => new Runner(device, buildModel(device, c.envelope.model, c.tensors), { maxBatch: o.batch }),
  );
  const cascade = new Cascade(
    runners.map((runner, k) => ({ runner, policy: spec?.stages[k].policy, name: loaded[k].name })),
  );
  const env = loaded[0].envelope;
  const dataSpec = o.data ?? datasetOfModel(env);
  if (!dataSpec)
    throw new UsageError(
      `--data is needed: the first stage's config.json does not say which dataset it was trained on`,
    );
  const data = await loadEvalData(env, loaded[0].dir, {
    spec: dataSpec,
    split: o.split,
    limit: o.limit,
    offset: o.offset,
    fetch: o.fetch,
    log,
  });
  let oodData: Awaited<ReturnType<typeof loadEvalData>> | null = null;
  if (groups.includes('ood')) {
    const oodSpec = o.oodData ?? (data.name === 'fashion-mnist' ? 'mnist' : undefined);
    if (!oodSpec)
      throw new UsageError(
        `--metrics ood needs --ood-data (a dataset name or file of out-of-distribution inputs); only fashion-mnist has a default (mnist)`,
      );
    oodData = await loadEvalData(env, loaded[0].dir, {
      spec: oodSpec,
      split: 'test',
      limit: o.limit,
      fetch: o.fetch,
      log,
    });
  } else if (o.oodData) throw new UsageError('--ood-data is only used with --metrics ood');
  const policy = spec?.defer ?? (await import('@offramp/core')).neverExit();
  log.info(
    `${log.c.bold('cascade')}  ${stageDirs.length} stage${stageDirs.length > 1 ? 's' : ''}: ${loaded.map((c) => c.name).join(' → ')}; defer: ${spec?.deferSpec ?? '-'}`,
  );
  log.info(
    `${log.c.bold('data')}     ${data.name} (${data.split}), ${data.n} samples${oodData ? `; OOD: ${oodData.name}, ${oodData.n} samples` : ''}`,
  );
  const res = await cascade.run(data.input, { policy, mode: o.mode });
  const oodRes = oodData ? await cascade.run(oodData.input, { policy, mode: o.mode }) : undefined;
  const m = runMetrics(res, data.labels, { groups, ood: oodRes, score });
  const pct = (x: number, d = 2) => `${(100 * x).toFixed(d)}%`;
  log.info(`${log.c.bold('mode')}     ${res.summary.mode} on ${device.describe()}`);
  log.info(
    `accuracy ${pct(m.accuracy)}, ${(m.flopsPerSample / 1e6).toFixed(3)} MFLOPs per sample, stage shares ${m.stageShare.map((x) => pct(x, 1)).join(' / ')}`,
  );
  if (m.selective)
    log.info(
      `selective (${score}): coverage at 5% risk ${pct(m.selective.coverageAt5)}, AURC ${m.selective.aurc.toFixed(5)}, misclassification AUROC ${m.selective.misclassificationAuroc.toFixed(4)}`,
    );
  if (m.ood) log.info(`ood (${score}): FPR at 95% TPR ${pct(m.ood.fpr95)}, AUROC ${m.ood.auroc.toFixed(4)}`);
  if (m.calibration) log.info(`calibration: ECE ${pct(m.calibration.ece)}, MCE ${pct(m.calibration.mce)} (15 bins)`);
  const files: string[] = [];
  if (o.out) {
    mkdirSync(o.out, { recursive: true });
    if (m.calibration) {
      const img = await reliabilityImages(
        [{ name: loaded.map((c) => c.name).join('+'), reliability: m.calibration.reliability }],
        `Reliability: ${data.name} (${data.n} samples)`,
      );
      writeFileSync(join(o.out, 'reliability.svg'), img.svg);
      writeFileSync(join(o.out, 'reliability.png'), img.png);
      files.push(join(o.out, 'reliability.svg'), join(o.out, 'reliability.png'));
    }
  }
  const { calibration, ...rest } = m;
  const out: EvalMetricsResult = {
    command: 'eval',
    cascade: { spec: spec?.file ?? null, stages: stageDirs, defer: spec?.deferSpec ?? '-' },
    data: { name: data.name, split: data.split, n: data.n },
    ood: oodData ? { name: oodData.name, n: oodData.n } : null,
    mode: res.summary.mode,
    device: device.describe(),
    metrics: {
      ...rest,
      ...(calibration
        ? { calibration: { ece: calibration.ece, mce: calibration.mce, bins: calibration.reliability.bins } }
        : {}),
    },
    files,
  };
  if (o.out) {
    writeFileSync(join(o.out, 'metrics.json'), `${JSON.stringify(out, null, 2)}\n`);
    files.push(join(o.out, 'metrics.json'));
    log.info(`${log.c.bold('results')}  ${files.join(', ')}`);
  }
  log.result(out);
  return out;
}
