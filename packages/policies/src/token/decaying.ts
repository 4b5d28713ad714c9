// CALM's decaying threshold: token t of N leaves when its confidence ≥ λ_t = clip_[0,1](0.9·λ + 0.1·e^{−τ·t/N}),
// so later tokens exit more easily. The token's place comes from the token exit rule's init info
// (TokenPolicyInit.token); without it (classification) t = 0. The confidence is one of CALM's measures: max
// softmax probability (default), top-2 margin, or the hidden-state cosine with the previous exit.
import type { ExitPolicy, PolicyInit } from '@offramp/core';
import { definePolicy } from '@offramp/core';
import { optionError } from '../options.js';
import type { TokenPolicyInit } from './adapter.js';

export type DecayingOptions = {
  /** λ in [0, 1]. */
  threshold: number;
  /** τ ≥ 0: how fast the threshold decays over the generation. */
  tau: number;
  signal: 'maxProb' | 'margin' | 'similarity';
  /** N; 0 = the generation's maxNewTokens. */
  maxNewTokens: number;
};

/** λ_t = clip_[0,1](0.9·λ + 0.1·e^{−τ·t/N}), in f32. */
export function decayingThreshold(lambda: number, tau: number, t: number, N: number): number {
  const x = 0.9 * lambda + 0.1 * Math.exp((-tau * t) / Math.max(1, N));
  return Math.fround(Math.min(1, Math.max(0, x)));
}

export const decaying = definePolicy<DecayingOptions, { lambda: number }>({
  name: 'decaying',
  defaults: { threshold: 0.9, tau: 4, signal: 'maxProb', maxNewTokens: 0 },
  sweep: { threshold: { from: 0.5, to: 0.99, steps: 12 } },
  create(o): ExitPolicy<{ lambda: number }> {
    if (typeof o.threshold !== 'number' || !(o.threshold >= 0 && o.threshold <= 1))
      throw optionError('decaying', 'threshold', 'must be a number in [0, 1]', o.threshold);
    if (typeof o.tau !== 'number' || !(o.tau >= 0) || !Number.isFinite(o.tau))
      throw optionError('decaying', 'tau', 'must be a finite number ≥ 0', o.tau);
    if (!['maxProb', 'margin', 'similarity'].includes(o.signal))
      throw optionError('decaying', 'signal', 'must be maxProb, margin or similarity', o.signal);
    if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 0)
      throw optionError('decaying', 'maxNewTokens', "must be an integer ≥ 0 (0: the generation's)", o.maxNewTokens);
    const sig = o.signal;
    return {
      name: 'decaying',
      needs: [sig],
      options: { ...o },
      init(info: PolicyInit) {
        const tok = (info as Partial<TokenPolicyInit>).token;
        const t = tok?.index ?? 0;
        const N = o.maxNewTokens || tok?.maxNewTokens || 1;
        return { lambda: decayingThreshold(o.threshold, o.tau, t, N) };
      },
      decide(_ctx, s, st) {
        const xs = s[sig];
        const out = new Uint8Array(s.count);
        for (let r = 0; r < s.count; r++) out[r] = !Number.isNaN(xs[r]) && xs[r] >= st.lambda ? 1 : 0;
        return out;
      },
    };
  },
});
