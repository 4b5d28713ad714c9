// AdamW over named float64 parameter arrays, with global-norm gradient clipping and a warm-up + cosine
// learning-rate schedule. Weight decay applies to matrices only (names listed by the caller).
import type { F64 } from './ops.js';

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm clip (0 = off). */
  clip: number;
  warmup: number;
  totalSteps: number;
  /** Final learning rate as a fraction of lr. */
  minFactor: number;
}

export function learningRate(c: AdamWConfig, step: number): number {
  if (step < c.warmup) return (c.lr * (step + 1)) / c.warmup;
  const t = Math.min(1, (step - c.warmup) / Math.max(1, c.totalSteps - c.warmup));
  return c.lr * (c.minFactor + (1 - c.minFactor) * 0.5 * (1 + Math.cos(Math.PI * t)));
}

export class AdamW {
  private readonly m = new Map<string, F64>();
  private readonly v = new Map<string, F64>();
  step = 0;

  constructor(
    readonly config: AdamWConfig,
    /** Which parameters decay (by name). */
    readonly decays: (name: string) => boolean,
  ) {}

  /** Applies one update; returns the gradient norm before clipping. */
  update(params: [string, F64][], grads: [string, F64][]): number {
    const c = this.config;
    let sq = 0;
    for (const [, g] of grads) for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
    const norm = Math.sqrt(sq);
    const scale = c.clip > 0 && norm > c.clip ? c.clip / norm : 1;
    const lr = learningRate(c, this.step);
    this.step++;
    const b1 = 1 - c.beta1 ** this.step;
    const b2 = 1 - c.beta2 ** this.step;
    params.forEach(([name, p], k) => {
      const g = grads[k][1];
      let m = this.m.get(name);
      let v = this.v.get(name);
      if (!m || !v) {
        m = new Float64Array(p.length);
        v = new Float64Array(p.length);
        this.m.set(name, m);
        this.v.set(name, v);
      }
      const wd = this.decays(name) ? c.weightDecay : 0;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i] * scale;
        m[i] = c.beta1 * m[i] + (1 - c.beta1) * gi;
        v[i] = c.beta2 * v[i] + (1 - c.beta2) * gi * gi;
        p[i] -= lr * (m[i] / b1 / (Math.sqrt(v[i] / b2) + c.eps) + wd * p[i]);
      }
    });
    return norm;
  }
}
