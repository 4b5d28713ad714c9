// `offramp eval` with a cascade spec: strict spec validation (paths relative to the spec and inside its folder,
// no unknown keys, valid policies), and an end-to-end run whose metrics equal an independent computation from
// each stage model run alone, softmaxes averaged in float64 here.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildModel, CpuDevice, type MlpClassifierConfig, neverExit, Runner, randomWeights } from '@offramp/core';
import { saveModelDir } from '@offramp/core/node';
import { aurc, coverageAtRisk, ece, oodDetection } from '@offramp/policies';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCascadeSpec, parseCascadeSpec } from './cascade-spec.js';
import { evalMetricsCommand, parseMetricGroups } from './commands/eval-metrics.js';
import { Logger } from './util/log.js';

const cfg = (hidden: number): MlpClassifierConfig => ({
  architecture: 'mlp_classifier',
  input_size: 16,
  hidden_size: hidden,
  num_layers: 2,
  num_classes: 3,
  exits: { blocks: [0, 1], head: 'linear' },
});
let dir: string;
const cfgs = [cfg(12), cfg(20)];
const weights = cfgs.map((c, k) => randomWeights(c, 90 + k));
const rows = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => ({
    image: Array.from({ length: 16 }, (_, j) => Math.sin(seed * 7 + i * 1.3 + j * 0.7) * 2),
    label: (i * 7 + seed) % 3,
  }));
const test = rows(40, 1);
const oodRows = rows(25, 9);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'offramp-cascade-'));
  mkdirSync(join(dir, 'spec', 'members'), { recursive: true });
  for (const [k, c] of cfgs.entries())
    await saveModelDir(join(dir, 'spec', 'members', `m${k}`), { offramp_format: 1, model: c, meta: {} }, weights[k]);
  await saveModelDir(join(dir, 'outside'), { offramp_format: 1, model: cfgs[0], meta: {} }, weights[0]);
  const toJsonl = (r: unknown[]) => `${r.map((x) => JSON.stringify(x)).join('\n')}\n`;
  writeFileSync(join(dir, 'test.jsonl'), toJsonl(test));
  writeFileSync(join(dir, 'ood.jsonl'), toJsonl(oodRows));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const specFile = () => join(dir, 'spec', 'cascade.json');
const parse = (obj: unknown) => parseCascadeSpec(JSON.stringify(obj), specFile());

describe('cascade spec', () => {
  it('resolves stage folders against the spec file and reads policies', async () => {
    const s = await parse({
      offramp_cascade: 1,
      stages: [{ model: 'members/m0', policy: 'confidence:threshold=0.9' }, { model: './members/m1' }],
      defer: 'window:wLo=0.4,wHi=0.8',
    });
    expect(s.stages.map((x) => x.dir)).toEqual([join(dir, 'spec/members/m0'), join(dir, 'spec/members/m1')]);
    expect(s.stages[0].policy?.name).toBe('confidence');
    expect(s.defer.name).toBe('window');
    expect((await parse({ offramp_cascade: 1, stages: [{ model: 'members/m0' }] })).defer.name).toBe('never');
  });

  it('refuses bad specs, saying what is wrong and what is allowed', async () => {
    await expect(parse({ offramp_cascade: 2, stages: [{ model: 'members/m0' }] })).rejects.toThrow(
      /offramp_cascade: .*must be 1/,
    );
    await expect(parse({ offramp_cascade: 1, stages: [] })).rejects.toThrow(/stages: must list 1 to 16 stages/);
    await expect(parse({ offramp_cascade: 1, stages: [{ model: 'members/m0', extra: 1 }] })).rejects.toThrow(
      /stages.0: unknown key 'extra'; allowed: model, policy/,
    );
    await expect(parse({ offramp_cascade: 1, stages: [{ model: 'members/m0' }], deffer: 'x' })).rejects.toThrow(
      /unknown key 'deffer'; allowed: offramp_cascade, stages, defer/,
    );
    await expect(parse({ offramp_cascade: 1, stages: [{ model: '../outside' }] })).rejects.toThrow(
      /outside the folder/,
    );
    await expect(parse({ offramp_cascade: 1, stages: [{ model: join(dir, 'outside') }] })).rejects.toThrow(
      /outside the folder/,
    );
    symlinkSync(join(dir, 'outside'), join(dir, 'spec', 'link'));
    await expect(parse({ offramp_cascade: 1, stages: [{ model: 'link' }] })).rejects.toThrow(/outside the folder/);
    await expect(parse({ offramp_cascade: 1, stages: [{ model: 'members' }] })).rejects.toThrow(
      /'members' is not a model folder \(no config.json/,
    );
    await expect(
      parse({ offramp_cascade: 1, stages: [{ model: 'members/m0' }], defer: 'window:wLo=0.9,wHi=0.1' }),
    ).rejects.toThrow(/defer: .*wLo ≤ wHi/);
    await expect(parseCascadeSpec('{"offramp_cascade": 1,', specFile())).rejects.toThrow(/cascade spec/);
    expect(() => parseMetricGroups('selective,oops')).toThrow(/unknown metric group 'oops'; allowed: selective, ood/);
    expect(parseMetricGroups('all')).toEqual(['selective', 'ood', 'calibration']);
  });
});

describe('offramp eval with a cascade spec', () => {
  it('reports the metrics of the combined output, equal to an independent computation', async () => {
    writeFileSync(
      specFile(),
      JSON.stringify({ offramp_cascade: 1, stages: [{ model: 'members/m0' }, { model: 'members/m1' }] }),
    );
    expect((await loadCascadeSpec(specFile())).stages).toHaveLength(2);
    const out = join(dir, 'out');
    const r = await evalMetricsCommand(
      {
        model: specFile(),
        data: join(dir, 'test.jsonl'),
        oodData: join(dir, 'ood.jsonl'),
        metrics: 'selective,ood,calibration',
        batch: 16,
        device: 'cpu',
        mode: 'auto',
        out,
      },
      new Logger({ quiet: true }),
    );
    // independent: each model alone on the CPU device, softmaxes averaged in float64
    const dev = new CpuDevice();
    const probsOf = async (data: typeof test) => {
      const per = await Promise.all(
        cfgs.map(async (c, k) => {
          const res = await new Runner(dev, buildModel(dev, c, weights[k])).run(
            { features: data.map((x) => Float32Array.from(x.image)) },
            { policy: neverExit() },
          );
          return res.samples.map((s) => Array.from(s.logits));
        }),
      );
      return data.map((_, i) => {
        const sm = per.map((z) => {
          const m = Math.max(...z[i]);
          const e = z[i].map((v) => Math.exp(v - m));
          const t = e.reduce((a, b) => a + b, 0);
          return e.map((v) => v / t);
        });
        return [0, 1, 2].map((j) => (sm[0][j] + sm[1][j]) / 2);
      });
    };
    const p = await probsOf(test);
    const conf = p.map((x) => Math.max(...x));
    const correct = p.map((x, i) => (x.indexOf(Math.max(...x)) === test[i].label ? 1 : 0));
    const oodConf = (await probsOf(oodRows)).map((x) => Math.max(...x));
    const m = r.metrics;
    expect(r.data.n).toBe(40);
    expect(m.accuracy).toBeCloseTo(correct.reduce((a: number, b) => a + b, 0) / 40, 12);
    expect(m.stageShare).toEqual([1, 1]);
    expect(m.selective!.aurc).toBeCloseTo(aurc(conf, correct), 5);
    expect(m.selective!.coverageAt5).toBeCloseTo(coverageAtRisk(conf, correct, 0.05).coverage, 5);
    expect(m.ood!.auroc).toBeCloseTo(oodDetection(conf, oodConf).auroc, 5);
    expect(m.calibration!.ece).toBeCloseTo(ece(conf, correct, 15), 5);
    expect(r.files.map((f) => f.slice(out.length + 1)).sort()).toEqual([
      'metrics.json',
      'reliability.png',
      'reliability.svg',
    ]);
  });

  it('needs --ood-data for ood metrics on data without a default', async () => {
    await expect(
      evalMetricsCommand(
        { model: specFile(), data: join(dir, 'test.jsonl'), metrics: 'ood', batch: 16, device: 'cpu', mode: 'auto' },
        new Logger({ quiet: true }),
      ),
    ).rejects.toThrow(/--metrics ood needs --ood-data/);
  });
});
