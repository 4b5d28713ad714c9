// The hand-written backward of the training code against central finite differences (float64), on a tiny
// language model with two exits and on a classifier-shaped block (out = 1, bias, no residual).
import { mulberry32 } from '@offramp/core';
import { expect, it } from 'vitest';
import { type BlockDims, blockBackward, blockForward, initBlock, zerosLike } from './block-grad.js';
import { initLm, type LmDims, lmParamList, lmStep, zeroGrads } from './lm-grad.js';

const dm: LmDims = { vocab: 7, d: 6, layers: 3, D: 8, N: 3, R: 2, K: 3, eps: 1e-5 };

it('LM loss gradients match finite differences for every parameter array', () => {
  const p = initLm(dm, 3);
  // perturb A_log, D and norms away from their structured initial values
  const rand = mulberry32(9);
  for (const [, a] of lmParamList(p)) for (let i = 0; i < a.length; i++) a[i] += (rand() - 0.5) * 0.2;
  const Bt = 2;
  const T = 5;
  const inputs = Int32Array.from({ length: Bt * T }, () => Math.floor(rand() * dm.vocab));
  const targets = Int32Array.from({ length: Bt * T }, () => Math.floor(rand() * dm.vocab));
  const exits = [1, 2];
  const weights = [0.4, 1];
  const g = zeroGrads(p);
  lmStep(p, dm, inputs, targets, Bt, T, exits, weights, g);
  const loss = () => lmStep(p, dm, inputs, targets, Bt, T, exits, weights).total;
  const grads = new Map(lmParamList(g));
  for (const [name, a] of lmParamList(p)) {
    const ga = grads.get(name)!;
    for (const i of [0, Math.floor(a.length / 2), a.length - 1]) {
      const h = 1e-5;
      const old = a[i];
      a[i] = old + h;
      const up = loss();
      a[i] = old - h;
      const down = loss();
      a[i] = old;
      const num = (up - down) / (2 * h);
      expect(Math.abs(ga[i] - num), `${name}[${i}]: analytic ${ga[i]}, numeric ${num}`).toBeLessThan(
        1e-6 + 1e-4 * Math.abs(num),
      );
    }
  }
});

it('a classifier-shaped block (one output with bias, no residual) has correct input and parameter gradients', () => {
  const bd: BlockDims = { d: 5, D: 6, N: 4, R: 2, K: 4, out: 1, residual: false, eps: 1e-5 };
  const rand = mulberry32(4);
  const p = initBlock(bd, rand, 1, true);
  const Bt = 2;
  const T = 6;
  const h = Float64Array.from({ length: Bt * T * bd.d }, () => rand() * 2 - 1);
  const wy = Float64Array.from({ length: Bt * T }, () => rand() * 2 - 1);
  const f = () => blockForward(p, bd, h, Bt, T).y.reduce((a, v, i) => a + v * wy[i], 0);
  const g = zerosLike(p);
  const { cache } = blockForward(p, bd, h, Bt, T);
  const dh = blockBackward(p, bd, cache, wy, g);
  const check = (a: Float64Array, ga: Float64Array, name: string) => {
    for (let i = 0; i < a.length; i += Math.max(1, Math.floor(a.length / 5))) {
      const old = a[i];
      a[i] = old + 1e-5;
      const up = f();
      a[i] = old - 1e-5;
      const down = f();
      a[i] = old;
      const num = (up - down) / 2e-5;
      expect(Math.abs(ga[i] - num), `${name}[${i}]: analytic ${ga[i]}, numeric ${num}`).toBeLessThan(
        1e-6 + 1e-4 * Math.abs(num),
      );
    }
  };
  check(h, dh, 'h');
  for (const [k, v] of Object.entries(p)) if (v) check(v, (g as unknown as Record<string, Float64Array>)[k], k);
});
