// The exit-policy interface. A policy sees, after each exit head, a few scalars per live row (the exit
// signals) and decides which rows leave now. Host mode calls `decide` in TypeScript; device mode runs the
// policy's optional WGSL form on the GPU with the same signals and per-sample state.
// Third-party policies are written against this file alone.

/** Names of the per-row exit signals. */
export type SignalName = 'maxProb' | 'entropy' | 'margin' | 'argmax' | 'gate' | 'similarity' | 'logits';

/** Exit signals of the live rows at one exit (struct of arrays, `count` rows). */
export interface ExitSignals {
  count: number;
  /** Index of each live row in the caller's batch (stable across compaction). */
  sampleIds: Int32Array;
  /** max_c softmax(z)_c */
  maxProb: Float32Array;
  /** Shannon entropy of softmax(z), in nats. */
  entropy: Float32Array;
  /** top-1 minus top-2 softmax probability. */
  margin: Float32Array;
  argmax: Int32Array;
  /** σ(gate logit) of the exit's gate/λ head; NaN when the exit has none. */
  gate: Float32Array;
  /** Cosine similarity of this exit's pooled hidden state with the previous exit's; NaN at the first exit. */
  similarity: Float32Array;
  /** Raw logits (count × classes), present in host mode when the policy lists 'logits' in `needs`. */
  logits?: Float32Array;
}

export interface ExitContext {
  /** 0-based index of this exit among the model's exits. */
  exitIndex: number;
  numExits: number;
  /** 0-based block after which this exit sits. */
  block: number;
  numBlocks: number;
  /** True at the final exit: every row leaves whatever the policy says. */
  isLast: boolean;
  /** Fraction of full-depth compute a sample has spent when it leaves here (0..1]. */
  costFraction: number;
  numClasses: number;
}

export interface PolicyInit {
  batchSize: number;
  numExits: number;
  numClasses: number;
  /** Block index of each exit. */
  exitBlocks: readonly number[];
  /** Compute fraction spent at each exit. */
  costFractions: readonly number[];
}

/**
 * The device-mode (WGSL) form of a policy. `code` defines
 *   fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool
 * and may read and write `policy_state[sid * STATE_SIZE + k]` (f32, STATE_SIZE = stateSize).
 * Options are baked into the code as constants; the host form must compare in f32 too (Math.fround) so
 * both forms decide identically on values at a threshold. Available:
 *   struct Signals { max_prob: f32, entropy: f32, margin: f32, argmax: u32, gate: f32, similarity: f32, cost: f32 }
 *   const NUM_EXITS: u32; const NUM_CLASSES: u32;
 */
export interface DevicePolicy {
  stateSize: number;
  /** Initial value of each state slot (default 0). */
  initState?: readonly number[];
  code: string;
}

export interface ExitPolicy<State = unknown> {
  name: string;
  /** Signals this policy reads; 'logits' makes host mode read back the full logits. */
  needs?: readonly SignalName[];
  /** Fresh per-request state. Policies keep no state outside it. */
  init(info: PolicyInit): State;
  /** Per live row: truthy = leave now. Rows are ordered as in `signals`. */
  decide(ctx: ExitContext, signals: ExitSignals, state: State): ArrayLike<boolean | number>;
  /** Optional device-mode form; must decide exactly as `decide` does. */
  device?: DevicePolicy;
  /** Options, for logs and serialised policy files. */
  options?: Record<string, unknown>;
}

/** Identity helper for typing policy factories. */
export function definePolicy<O, S>(factory: (options: O) => ExitPolicy<S>): (options: O) => ExitPolicy<S> {
  return factory;
}

/** The reference policy: exit when max softmax probability ≥ threshold. */
export const maxProbThreshold = definePolicy((o: { threshold: number }) => ({
  name: 'max-prob',
  needs: ['maxProb'] as const,
  options: { threshold: o.threshold },
  init: () => null,
  decide: (_ctx, s) => {
    // compare in f32, exactly as the WGSL form does
    const t = Math.fround(o.threshold);
    const out = new Uint8Array(s.count);
    for (let i = 0; i < s.count; i++) out[i] = s.maxProb[i] >= t ? 1 : 0;
    return out;
  },
  device: {
    stateSize: 0,
    code: `fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool { return s.max_prob >= f32(${wgslFloat(o.threshold)}); }`,
  },
}));

/** Never exits early: every sample runs the full depth. */
export const neverExit = (): ExitPolicy<null> => ({
  name: 'never',
  options: {},
  init: () => null,
  decide: (_ctx, s) => new Uint8Array(s.count),
  device: { stateSize: 0, code: 'fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool { return false; }' },
});

/** Formats a number as a WGSL f32 literal (exact for f32 values). */
export function wgslFloat(x: number): string {
  if (Number.isNaN(x)) return '(0.0 / 0.0)';
  if (x === Number.POSITIVE_INFINITY) return '3.40282347e38';
  if (x === Number.NEGATIVE_INFINITY) return '-3.40282347e38';
  const f = Math.fround(x);
  const s = f.toPrecision(9);
  return s.includes('.') || s.includes('e') ? s : `${s}.0`;
}
