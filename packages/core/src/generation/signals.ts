// Exit signals computed on the host from logits (and hidden states), as the exitSignals kernel defines them:
// max softmax probability, entropy in nats (log S − T/S), top-1 minus top-2 probability, argmax (lowest index
// on ties, −1 on a NaN row), gate NaN, cosine similarity of hidden states (0 if a norm is 0, NaN without).
import type { ExitSignalArrays } from '../kernels/exit-signals.js';

/** Signals of n rows of logits (n, V); with `hidden` and `prevHidden` (n, d) also their cosine similarity. */
export function hostExitSignals(
  logits: ArrayLike<number>,
  n: number,
  V: number,
  hidden?: { h: ArrayLike<number>; prev: ArrayLike<number>; d: number },
): ExitSignalArrays {
  const out: ExitSignalArrays = {
    maxProb: new Float32Array(n),
    entropy: new Float32Array(n),
    margin: new Float32Array(n),
    argmax: new Int32Array(n),
    gate: new Float32Array(n).fill(Number.NaN),
    similarity: new Float32Array(n).fill(Number.NaN),
  };
  for (let r = 0; r < n; r++) {
    const o = r * V;
    let m = Number.NEGATIVE_INFINITY;
    let m2 = Number.NEGATIVE_INFINITY;
    let i1 = -1;
    let nan = false;
    for (let v = 0; v < V; v++) {
      const x = logits[o + v];
      if (Number.isNaN(x)) nan = true;
      else if (i1 < 0 || x > m) {
        m2 = m;
        m = x;
        i1 = v;
      } else if (x > m2) m2 = x;
    }
    if (nan) {
      out.maxProb[r] = out.entropy[r] = out.margin[r] = Number.NaN;
      out.argmax[r] = -1;
    } else {
      let S = 0;
      let T = 0;
      for (let v = 0; v < V; v++) {
        const x = logits[o + v] - m;
        const e = Math.exp(x);
        S += e;
        if (e > 0) T += x * e;
      }
      out.maxProb[r] = 1 / S;
      out.entropy[r] = Math.log(S) - T / S;
      out.margin[r] = V > 1 ? (1 - Math.exp(m2 - m)) / S : 0;
      out.argmax[r] = i1;
    }
    if (hidden) {
      const { h, prev, d } = hidden;
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let j = 0; j < d; j++) {
        const a = h[r * d + j];
        const b = prev[r * d + j];
        dot += a * b;
        na += a * a;
        nb += b * b;
      }
      out.similarity[r] = na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
    }
  }
  return out;
}
