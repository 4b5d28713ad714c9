// Recipe losses against independent plain-TypeScript formulas on small random logits, the stage split of the
// two-stage recipe, and the exit-cost fractions. tfjs runs on its CPU backend here.
import { buildModel, type CnnClassifierConfig, CpuDevice, mulberry32, Runner, randomWeights } from '@offramp/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { createTfModel, type HeadOutput } from './models.js';
import {
  binaryKl,
  createRecipe,
  crossEntropyRows,
  exitCostFractions,
  exitDistribution,
  gateLoss,
  geometricPrior,
  ponderLoss,
  softKl,
} from './recipes.js';

beforeAll(async () => {
  await initBackend('cpu', () => {});
});

const rand = mulberry32(99);
const B = 5;
const C = 4;
const E = 3;
const logitsJs = Array.from({ length: E }, () =>
  Array.from({ length: B }, () => Array.from({ length: C }, () => (rand() - 0.5) * 6)),
);
const gatesJs = Array.from({ length: E }, () => Array.from({ length: B }, () => (rand() - 0.5) * 6));
const labelsJs = Array.from({ length: B }, (_, i) => i % C);

const logSoftmax = (z: number[], T = 1) => {
  const s = z.map((v) => v / T);
  const m = Math.max(...s);
  const lse = m + Math.log(s.reduce((a, v) => a + Math.exp(v - m), 0));
  return s.map((v) => v - lse);
};
const ce = (z: number[], y: number) => -logSoftmax(z)[y];
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;

/** p_i = h_i Π_{j<i} (1 − h_j), h_last = 1; also the survival before each exit. */
function exitDistJs(g: number[]): { p: number[]; surv: number[] } {
  const p: number[] = [];
  const surv: number[] = [];
  let s = 1;
  g.forEach((x, i) => {
    const h = i === g.length - 1 ? 1 : sigmoid(x);
    surv.push(s);
    p.push(h * s);
    s *= 1 - h;
  });
  return { p, surv };
}

const t2 = (a: number[][]) => tf.tensor2d(a) as tf.Tensor2D;
const labels = () => tf.tensor1d(labelsJs, 'int32') as tf.Tensor1D;
const scalar = async (t: tf.Tensor) => ((await t.data()) as Float32Array)[0];

describe('loss pieces', () => {
  it('crossEntropyRows is −log softmax at the label', async () => {
    const got = (await crossEntropyRows(t2(logitsJs[0]), labels()).data()) as Float32Array;
    logitsJs[0].forEach((z, i) => {
      expect(got[i]).toBeCloseTo(ce(z, labelsJs[i]), 5);
    });
  });

  it('softKl = T²·mean KL(softmax(t/T) ‖ softmax(s/T)) and sends no gradient to the teacher', async () => {
    const T = 2;
    const want = mean(
      logitsJs[0].map((s, i) => {
        const lt = logSoftmax(logitsJs[2][i], T);
        const ls = logSoftmax(s, T);
        return lt.reduce((a, v, c) => a + Math.exp(v) * (v - ls[c]), 0);
      }),
    );
    expect(await scalar(softKl(t2(logitsJs[0]), t2(logitsJs[2]), T))).toBeCloseTo(T * T * want, 5);
    const gTeacher = tf.grad((t: tf.Tensor) => softKl(t2(logitsJs[0]), t as tf.Tensor2D, T))(t2(logitsJs[2]));
    expect(Math.max(...((await tf.abs(gTeacher).data()) as Float32Array))).toBe(0);
    const gStudent = tf.grad((s: tf.Tensor) => softKl(s as tf.Tensor2D, t2(logitsJs[2]), T))(t2(logitsJs[0]));
    expect(Math.max(...((await tf.abs(gStudent).data()) as Float32Array))).toBeGreaterThan(1e-4);
  });

  it('binaryKl = T²/N Σ_rows Σ_c KL_Bernoulli(σ(t/T) ‖ σ(s/T))', async () => {
    const T = 2;
    let sum = 0;
    logitsJs[1].forEach((s, i) => {
      s.forEach((sc, c) => {
        const pt = sigmoid(logitsJs[2][i][c] / T);
        const ps = sigmoid(sc / T);
        sum += pt * Math.log(pt / ps) + (1 - pt) * Math.log((1 - pt) / (1 - ps));
      });
    });
    expect(await scalar(binaryKl(t2(logitsJs[1]), t2(logitsJs[2]), T))).toBeCloseTo((T * T * sum) / B, 5);
  });

  it('exitDistribution gives p_i = h_i Π(1 − h_j) with the last exit taking the rest', async () => {
    const { p, survival } = exitDistribution(gatesJs.map((g) => tf.tensor1d(g) as tf.Tensor1D));
    const pj = (await p.array()) as number[][];
    const sj = (await survival.array()) as number[][];
    for (let i = 0; i < B; i++) {
      const want = exitDistJs(gatesJs.map((g) => g[i]));
      want.p.forEach((v, j) => {
        expect(pj[i][j]).toBeCloseTo(v, 6);
      });
      want.surv.forEach((v, j) => {
        expect(sj[i][j]).toBeCloseTo(v, 6);
      });
      expect(pj[i].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    }
  });

  it('geometricPrior is λ(1 − λ)^i normalised over the exits', () => {
    const q = geometricPrior(4, 0.25);
    const raw = [0, 1, 2, 3].map((i) => 0.25 * 0.75 ** i);
    const s = raw.reduce((a, b) => a + b, 0);
    raw.forEach((r, i) => {
      expect(q[i]).toBeCloseTo(r / s, 6);
    });
  });

  it('ponderLoss = mean Σ p_i·CE_i + β·KL(p ‖ q), with p_i = ε/E once the spent mass exceeds 1 − ε', async () => {
    const o = { beta: 0.5, lambdaP: 1 / E, epsilon: 0.05 };
    // one row with a near-certain first halt exercises the truncation
    const gates = gatesJs.map((g, j) => g.map((v, i) => (i === 0 && j === 0 ? 8 : v)));
    const q = Array.from(geometricPrior(E, o.lambdaP));
    const perRow = labelsJs.map((y, i) => {
      const { p, surv } = exitDistJs(gates.map((g) => g[i]));
      const pt = p.map((v, j) => (1 - surv[j] > 1 - o.epsilon ? o.epsilon / E : v));
      const expCe = pt.reduce((a, v, j) => a + v * ce(logitsJs[j][i], y), 0);
      const kl = pt.reduce((a, v, j) => a + v * (Math.log(Math.max(v, 1e-8)) - Math.log(q[j])), 0);
      return expCe + o.beta * kl;
    });
    const got = ponderLoss(
      logitsJs.map((z) => t2(z)),
      gates.map((g) => tf.tensor1d(g) as tf.Tensor1D),
      labels(),
      o,
    );
    expect(await scalar(got)).toBeCloseTo(mean(perRow), 5);
    // differentiable with respect to the gate logits despite the truncation
    const g = tf.grad((x: tf.Tensor) =>
      ponderLoss(
        logitsJs.map((z) => t2(z)),
        [x as tf.Tensor1D, ...gates.slice(1).map((v) => tf.tensor1d(v) as tf.Tensor1D)],
        labels(),
        o,
      ),
    )(tf.tensor1d(gates[0]));
    expect(Number.isFinite(await scalar(tf.sum(g)))).toBe(true);
  });

  it('gateLoss = mean Σ P_l·CE_l + w·Σ P_l·cost_l + (1/E)·Σ CE_l', async () => {
    const costs = [0.3, 0.6, 1];
    const w = 0.1;
    const perRow = labelsJs.map((y, i) => {
      const { p } = exitDistJs(gatesJs.map((g) => g[i]));
      const ces = logitsJs.map((z) => ce(z[i], y));
      return p.reduce((a, v, j) => a + v * ces[j] + w * v * costs[j], 0) + ces.reduce((a, b) => a + b, 0) / E;
    });
    const got = gateLoss(
      logitsJs.map((z) => t2(z)),
      gatesJs.map((g) => tf.tensor1d(g) as tf.Tensor1D),
      labels(),
      costs,
      w,
    );
    expect(await scalar(got)).toBeCloseTo(mean(perRow), 5);
  });
});

describe('recipes', () => {
  const cfg = {
    architecture: 'mlp_classifier' as const,
    input_size: 6,
    hidden_size: 5,
    num_layers: 3,
    num_classes: C,
    exits: { blocks: [0, 1, 2], head: 'linear' as const, gate: true, gate_hidden: 4 },
  };
  const heads = (): HeadOutput[] =>
    logitsJs.map((z, j) => ({
      logits: t2(z),
      gate: tf.tensor1d(gatesJs[j]) as tf.Tensor1D,
      z: tf.zeros([B, 5]) as tf.Tensor2D,
    }));

  it('joint weights exit i by i / Σ i (PABEE)', async () => {
    const model = createTfModel(cfg, { seed: 1 });
    const r = createRecipe('joint', model);
    const want = logitsJs.reduce((a, z, j) => a + (j + 1) * mean(z.map((row, i) => ce(row, labelsJs[i]))), 0) / 6;
    expect(await scalar(r.loss(0, heads(), labels(), 0).loss)).toBeCloseTo(want, 5);
    model.dispose();
  });

  it('two-stage trains backbone + final head, then only the other heads', async () => {
    const model = createTfModel(cfg, { seed: 1 });
    const r = createRecipe('two-stage', model);
    expect(r.stages.map((s) => s.name)).toEqual(['backbone', 'exits']);
    const names = [...model.params.keys()];
    expect(names.filter(r.stages[0].trainable).sort()).toEqual(
      names.filter((n) => !n.startsWith('exits.') || n.startsWith('exits.2.')).sort(),
    );
    expect(names.filter(r.stages[1].trainable).sort()).toEqual(
      names.filter((n) => n.startsWith('exits.0.') || n.startsWith('exits.1.')).sort(),
    );
    expect(r.stages[1].frozenBackbone).toBe(true);
    const last = mean(logitsJs[2].map((row, i) => ce(row, labelsJs[i])));
    expect(await scalar(r.loss(0, heads(), labels(), 0).loss)).toBeCloseTo(last, 5);
    const others = [0, 1].reduce((a, j) => a + mean(logitsJs[j].map((row, i) => ce(row, labelsJs[i]))), 0);
    expect(await scalar(r.loss(1, heads(), labels(), 0).loss)).toBeCloseTo(others, 5);
    model.dispose();
  });

  it('self-distill adds (1 − α)·CE + α·T²·KL to the final exit for every earlier exit', async () => {
    const model = createTfModel(cfg, { seed: 1 });
    const r = createRecipe('self-distill', model, { alpha: 0.3, temperature: 2 });
    const h = heads();
    let want = await scalar(tf.mean(crossEntropyRows(h[2].logits, labels())));
    for (const j of [0, 1]) {
      want += 0.7 * (await scalar(tf.mean(crossEntropyRows(h[j].logits, labels()))));
      want += 0.3 * (await scalar(softKl(h[j].logits, h[2].logits, 2)));
    }
    expect(await scalar(r.loss(0, h, labels(), 0).loss)).toBeCloseTo(want, 5);
    model.dispose();
  });

  it('dual-head owns training-only auxiliary heads for the early exits and a finite loss', async () => {
    const model = createTfModel(cfg, { seed: 1 });
    const r = createRecipe('dual-head', model, {}, 3);
    expect([...r.extraParams.keys()].filter((k) => k.endsWith('fc1.weight'))).toEqual([
      'aux.0.fc1.weight',
      'aux.1.fc1.weight',
    ]);
    expect(Number.isFinite(await scalar(r.loss(0, heads(), labels(), 7).loss))).toBe(true);
    for (const v of r.extraParams.values()) v.dispose();
    model.dispose();
  });

  it('ponder and gates need gate heads', () => {
    const model = createTfModel({ ...cfg, exits: { blocks: [0, 1, 2], head: 'linear' } }, { seed: 1 });
    expect(() => createRecipe('ponder', model)).toThrow(/exits.gate/);
    expect(() => createRecipe('gates', model)).toThrow(/exits.gate/);
    model.dispose();
  });

  it('exit cost fractions grow with depth and end at 1', () => {
    for (const c of [
      cfg,
      {
        architecture: 'cnn_classifier' as const,
        image_size: 28,
        in_channels: 1,
        stem_channels: 16,
        channels: [24, 48, 96],
        strides: [2, 2, 2],
        num_classes: 10,
        exits: { blocks: [0, 1, 2], head: 'linear' as const },
      },
    ]) {
      const f = exitCostFractions(c);
      expect(f[f.length - 1]).toBeCloseTo(1, 12);
      for (let j = 1; j < f.length; j++) expect(f[j]).toBeGreaterThan(f[j - 1]);
      expect(f[0]).toBeGreaterThan(0);
    }
  });

  it("CNN exit cost fractions agree with the engine's own FLOP count, with pooled and flattened heads", () => {
    // the engine also counts bias + activation and the pool, which the training-side formula leaves out
    // (under 0.3% of this model); a head counted at the wrong width moves exit 0 by 0.7%
    const base: CnnClassifierConfig = {
      architecture: 'cnn_classifier',
      image_size: 28,
      in_channels: 1,
      stem_channels: 8,
      channels: [16, 32, 64],
      strides: [2, 2, 2],
      num_classes: 10,
      exits: { blocks: [0, 1, 2], head: 'linear' },
    };
    const device = new CpuDevice();
    for (const c of [base, { ...base, exit_pool: 'flatten' } satisfies CnnClassifierConfig]) {
      const model = buildModel(device, c, randomWeights(c, 1));
      const runner = new Runner(device, model, { maxBatch: 1 });
      const { atExit, full } = runner.costs(1);
      const f = exitCostFractions(c);
      for (let j = 0; j < f.length; j++)
        expect(Math.abs(f[j] - atExit[j] / full), `${c.exit_pool ?? 'global'} exit ${j}`).toBeLessThan(0.003);
      runner.dispose();
      model.dispose();
    }
  });
});
