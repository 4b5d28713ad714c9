// AdamW over named tfjs variables, with global-norm gradient clipping and a warm-up + cosine learning-rate
// schedule. The moments are plain named tensors so a checkpoint can save and restore them exactly.
import * as tf from '@tensorflow/tfjs';

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay, applied to matrices and conv filters only (not biases, norms, embeddings). */
  weightDecay?: number;
  /** Clip the global gradient norm to this value (0 = off). */
  clipNorm?: number;
}

export interface Schedule {
  /** Linear warm-up steps. */
  warmup: number;
  /** Total steps; after warm-up the rate follows a cosine down to `minFactor`·lr. */
  total: number;
  minFactor?: number;
}

export function scheduledLr(base: number, step: number, s: Schedule): number {
  if (step < s.warmup) return (base * (step + 1)) / s.warmup;
  const t = Math.min(1, (step - s.warmup) / Math.max(1, s.total - s.warmup));
  const min = s.minFactor ?? 0.05;
  return base * (min + (1 - min) * 0.5 * (1 + Math.cos(Math.PI * t)));
}

export function decays(name: string, rank: number): boolean {
  return rank >= 2 && !name.startsWith('embeddings.');
}

/**
 * Sum of many tensors of one shape as a chain of pairwise adds (tf.addN binds every input at once, and
 * WebGPU allows only a few storage buffers per shader stage).
 */
export function sumAll(ts: tf.Tensor[]): tf.Tensor {
  if (!ts.length) throw new Error('sumAll: no tensors to add');
  let acc = ts[0];
  for (let i = 1; i < ts.length; i++) acc = tf.add(acc, ts[i]);
  return acc;
}

let optimizerCount = 0;

export class AdamW {
  /** Prefix of this optimizer's tfjs variable names (they are global). */
  private readonly scope = `adamw${++optimizerCount}`;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  /** Number of updates applied (bias correction uses it). */
  t = 0;
  private readonly o: Required<AdamWOptions>;

  constructor(options: AdamWOptions) {
    this.o = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, clipNorm: 0, ...options };
  }

  private slot(map: Map<string, tf.Variable>, name: string, like: tf.Tensor): tf.Variable {
    let s = map.get(name);
    if (!s) {
      s = tf.variable(tf.zerosLike(like), false, `${this.scope}/${name}/${map === this.m ? 'm' : 'v'}`);
      map.set(name, s);
    }
    return s;
  }

  /**
   * Applies one update to `vars` with `grads` (same names) at learning rate `lr`. Returns the global
   * gradient norm before clipping (a scalar tensor the caller may read or dispose).
   */
  apply(vars: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number): tf.Scalar {
    this.t++;
    const { beta1, beta2, eps, weightDecay, clipNorm } = this.o;
    const bc1 = 1 - beta1 ** this.t;
    const bc2 = 1 - beta2 ** this.t;
    const norm = tf.tidy(() => tf.sqrt(sumAll([...grads.values()].map((g) => tf.sum(tf.square(g)))))) as tf.Scalar;
    const scale = clipNorm > 0 ? tf.tidy(() => tf.minimum(1, tf.div(clipNorm, tf.add(norm, 1e-6)))) : undefined;
    for (const [name, g0] of grads) {
      const w = vars.get(name);
      if (!w) throw new Error(`AdamW: gradient for unknown variable ${name}`);
      const m = this.slot(this.m, name, w);
      const v = this.slot(this.v, name, w);
      tf.tidy(() => {
        const g = scale ? tf.mul(g0, scale) : g0;
        const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        m.assign(m1);
        v.assign(v1);
        let upd = tf.div(tf.div(m1, bc1), tf.add(tf.sqrt(tf.div(v1, bc2)), eps));
        if (weightDecay > 0 && decays(name, w.rank)) upd = tf.add(upd, tf.mul(w, weightDecay));
        w.assign(tf.sub(w, tf.mul(upd, lr)));
      });
    }
    scale?.dispose();
    return norm;
  }

  /** Moments as named tensors ('m.<name>', 'v.<name>'), for checkpoints. */
  async state(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [prefix, map] of [
      ['m', this.m],
      ['v', this.v],
    ] as const) {
      for (const [name, t] of map)
        out.set(`${prefix}.${name}`, { shape: t.shape, data: (await t.data()) as Float32Array });
    }
    return out;
  }

  load(t: number, tensors: Map<string, { shape: number[]; data: Float32Array }>): void {
    this.dispose();
    this.t = t;
    for (const [key, val] of tensors) {
      const dot = key.indexOf('.');
      const prefix = key.slice(0, dot);
      const name = key.slice(dot + 1);
      const map = prefix === 'm' ? this.m : prefix === 'v' ? this.v : undefined;
      if (!map) throw new Error(`AdamW.load: tensor ${key} is neither 'm.<name>' nor 'v.<name>'`);
      map.set(name, tf.variable(tf.tensor(val.data, val.shape), false, `${this.scope}/${name}/${prefix}`));
    }
  }

  dispose(): void {
    for (const s of [...this.m.values(), ...this.v.values()]) s.dispose();
    this.m.clear();
    this.v.clear();
  }
}
