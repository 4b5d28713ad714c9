// Plain-TypeScript Mamba-1 language model in float64, written from the recurrence (not from the kernels or
// the device model), used as the independent reference in tests and usable on its own:
//   prefill over a whole sequence (convolution over time, then the scan loop) and a recurrent step with the
//   per-layer conv/SSM cache; the step can exit after any block and treat the skipped blocks' state by
//   `freeze` (unchanged) or `partial` (update it from the exited hidden state, no outputs).
// Weights use this package's names (see weights.ts); `lm_head.weight` absent = tied to the embedding.
import type { MambaConfig } from './config.js';

type W = Map<string, { data: ArrayLike<number> }>;

export interface RefState {
  /** Per layer: the last K conv inputs per channel, (D, K), oldest first. */
  conv: Float64Array[];
  /** Per layer: (D, N). */
  ssm: Float64Array[];
}

function get(w: W, name: string): ArrayLike<number> {
  const t = w.get(name);
  if (!t) throw new Error(`reference: missing tensor ${name}`);
  return t.data;
}

const sig = (x: number) => 1 / (1 + Math.exp(-x));
const silu = (x: number) => x * sig(x);
const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));

/** y = W x (+ b), W (out, inF) row-major. */
function mv(
  W: ArrayLike<number>,
  x: ArrayLike<number>,
  out: number,
  inF: number,
  b?: ArrayLike<number>,
  rowOffset = 0,
): Float64Array {
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = b ? b[rowOffset + o] : 0;
    const base = (rowOffset + o) * inF;
    for (let i = 0; i < inF; i++) s += W[base + i] * x[i];
    y[o] = s;
  }
  return y;
}

function rms(x: ArrayLike<number>, w: ArrayLike<number>, eps: number): Float64Array {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  const r = 1 / Math.sqrt(s / x.length + eps);
  return Float64Array.from(x, (v, i) => v * r * w[i]);
}

export class MambaReference {
  readonly d: number;
  readonly D: number;
  readonly N: number;
  readonly R: number;
  readonly K: number;
  readonly V: number;

  constructor(
    readonly config: MambaConfig,
    readonly w: W,
  ) {
    this.d = config.hiddenSize;
    this.D = config.intermediateSize;
    this.N = config.stateSize;
    this.R = config.timeStepRank;
    this.K = config.convKernel;
    this.V = config.vocabSize;
  }

  emptyState(): RefState {
    const L = this.config.numLayers;
    return {
      conv: Array.from({ length: L }, () => new Float64Array(this.D * this.K)),
      ssm: Array.from({ length: L }, () => new Float64Array(this.D * this.N)),
    };
  }

  /** Logits of the exit head (norm_f → LM head) on a hidden state. */
  head(h: ArrayLike<number>): Float64Array {
    const hn = rms(h, get(this.w, 'norm_f.weight'), this.config.layerNormEpsilon);
    const Wh = this.w.has('lm_head.weight') ? get(this.w, 'lm_head.weight') : get(this.w, 'embeddings.weight');
    return mv(Wh, hn, this.V, this.d);
  }

  embed(id: number): Float64Array {
    const E = get(this.w, 'embeddings.weight');
    return Float64Array.from({ length: this.d }, (_, k) => E[id * this.d + k]);
  }

  /**
   * Prefill of one sequence: hidden states after each block (T, d), logits at every position of the last
   * block (unless `logits: false`), and the cache it leaves.
   */
  prefill(
    ids: readonly number[],
    opts: { logits?: boolean } = {},
  ): { hidden: Float64Array[]; logits: Float64Array[]; state: RefState } {
    const { d, D, N, R, K } = this;
    const T = ids.length;
    const eps = this.config.layerNormEpsilon;
    let h = ids.map((id) => this.embed(id));
    const hidden: Float64Array[] = [];
    const state = this.emptyState();
    for (let l = 0; l < this.config.numLayers; l++) {
      const p = `layers.${l}`;
      const g = (n: string) => get(this.w, `${p}.${n}`);
      const inB = this.config.useBias ? g('mixer.in_proj.bias') : undefined;
      const u = h.map((v) => rms(v, g('norm.weight'), eps));
      const xs = u.map((v) => mv(g('mixer.in_proj.weight'), v, D, d, inB, 0));
      const zs = u.map((v) => mv(g('mixer.in_proj.weight'), v, D, d, inB, D));
      // causal depthwise convolution over the whole sequence, zero left padding
      const cw = g('mixer.conv1d.weight');
      const cb = this.config.useConvBias ? g('mixer.conv1d.bias') : undefined;
      const xc = xs.map((_, t) =>
        Float64Array.from({ length: D }, (_, c) => {
          let s = cb ? cb[c] : 0;
          for (let j = 0; j < K; j++) {
            const tt = t - (K - 1) + j;
            if (tt >= 0) s += cw[c * K + j] * xs[tt][c];
          }
          return silu(s);
        }),
      );
      for (let c = 0; c < D; c++)
        for (let j = 0; j < K; j++) state.conv[l][c * K + j] = T - K + j >= 0 ? xs[T - K + j][c] : 0;
      const dbc = xc.map((v) => mv(g('mixer.x_proj.weight'), v, R + 2 * N, D));
      const A_log = g('mixer.A_log');
      const Dsk = g('mixer.D');
      const s = state.ssm[l];
      const ys: Float64Array[] = [];
      for (let t = 0; t < T; t++) {
        const dt = mv(g('mixer.dt_proj.weight'), dbc[t].subarray(0, R), D, R, g('mixer.dt_proj.bias')).map(softplus);
        const Bv = dbc[t].subarray(R, R + N);
        const Cv = dbc[t].subarray(R + N, R + 2 * N);
        const y = new Float64Array(D);
        for (let c = 0; c < D; c++) {
          let acc = 0;
          for (let n = 0; n < N; n++) {
            const A = -Math.exp(A_log[c * N + n]);
            s[c * N + n] = Math.exp(dt[c] * A) * s[c * N + n] + dt[c] * Bv[n] * xc[t][c];
            acc += Cv[n] * s[c * N + n];
          }
          y[c] = (acc + Dsk[c] * xc[t][c]) * silu(zs[t][c]);
        }
        ys.push(y);
      }
      const outB = this.config.useBias ? g('mixer.out_proj.bias') : undefined;
      h = h.map((v, t) => {
        const o = mv(g('mixer.out_proj.weight'), ys[t], d, D, outB);
        return Float64Array.from(v, (x, k) => x + o[k]);
      });
      hidden[l] = Float64Array.from(h.flatMap((v) => Array.from(v)));
    }
    return { hidden, logits: opts.logits === false ? [] : h.map((v) => this.head(v)), state };
  }

  /** One block's recurrent update; returns its output hidden state, or only updates the state when `stateOnly`. */
  blockStep(l: number, h: ArrayLike<number>, state: RefState, stateOnly = false): Float64Array | null {
    const { d, D, N, R, K } = this;
    const g = (n: string) => get(this.w, `layers.${l}.${n}`);
    const inB = this.config.useBias ? g('mixer.in_proj.bias') : undefined;
    const u = rms(h, g('norm.weight'), this.config.layerNormEpsilon);
    const x = mv(g('mixer.in_proj.weight'), u, D, d, inB, 0);
    const conv = state.conv[l];
    const cw = g('mixer.conv1d.weight');
    const cb = this.config.useConvBias ? g('mixer.conv1d.bias') : undefined;
    const xc = new Float64Array(D);
    for (let c = 0; c < D; c++) {
      for (let j = 0; j < K - 1; j++) conv[c * K + j] = conv[c * K + j + 1];
      conv[c * K + K - 1] = x[c];
      let s = cb ? cb[c] : 0;
      for (let j = 0; j < K; j++) s += cw[c * K + j] * conv[c * K + j];
      xc[c] = silu(s);
    }
    const dbc = mv(g('mixer.x_proj.weight'), xc, R + 2 * N, D);
    const dt = mv(g('mixer.dt_proj.weight'), dbc.subarray(0, R), D, R, g('mixer.dt_proj.bias')).map(softplus);
    const A_log = g('mixer.A_log');
    const s = state.ssm[l];
    for (let c = 0; c < D; c++) {
      for (let n = 0; n < N; n++) {
        s[c * N + n] = Math.exp(-dt[c] * Math.exp(A_log[c * N + n])) * s[c * N + n] + dt[c] * dbc[R + n] * xc[c];
      }
    }
    if (stateOnly) return null;
    const z = mv(g('mixer.in_proj.weight'), u, D, d, inB, D);
    const Dsk = g('mixer.D');
    const y = new Float64Array(D);
    for (let c = 0; c < D; c++) {
      let acc = Dsk[c] * xc[c];
      for (let n = 0; n < N; n++) acc += dbc[R + N + n] * s[c * N + n];
      y[c] = acc * silu(z[c]);
    }
    const o = mv(g('mixer.out_proj.weight'), y, d, D, this.config.useBias ? g('mixer.out_proj.bias') : undefined);
    return Float64Array.from(h, (v, k) => v + o[k]);
  }

  /**
   * One decoding step for token `id`. With `exitAfter` = block e, blocks after e are skipped: their state is
   * left alone (`freeze`) or advanced from the exit's hidden state without outputs (`partial`); the logits
   * are the exit head's on the hidden state after block e. `hidden` holds the state after each block run.
   */
  step(
    id: number,
    state: RefState,
    opts: { exitAfter?: number; skip?: 'freeze' | 'partial' } = {},
  ): { logits: Float64Array; hidden: Float64Array[] } {
    const L = this.config.numLayers;
    const last = opts.exitAfter ?? L - 1;
    let h = this.embed(id);
    const hidden: Float64Array[] = [];
    for (let l = 0; l <= last; l++) {
      h = this.blockStep(l, h, state)!;
      hidden.push(h);
    }
    if (opts.skip === 'partial') for (let l = last + 1; l < L; l++) this.blockStep(l, h, state, true);
    return { logits: this.head(h), hidden };
  }
}
