// Compute accounting and threshold selection for token-level early exit on a Mamba LM: multiply-adds of a
// block, of a skipped block's partial (state-only) update, of an exit head and of an exit classifier, the
// cost of a measured run relative to full depth, and the loosest swept threshold that keeps a minimum
// top-1 agreement with the full model.

export interface LmShape {
  /** hidden size d, inner size D, state size N, dt rank R, conv kernel K, vocabulary V, layers L */
  d: number;
  D: number;
  N: number;
  R: number;
  K: number;
  V: number;
  L: number;
}

/** Multiply-adds per token of one Mamba block (in_proj, conv, x_proj, dt_proj, state update and readout, out_proj). */
export function blockMacs(m: LmShape): number {
  return 2 * m.D * m.d + m.D * m.K + m.D * (m.R + 2 * m.N) + m.R * m.D + 2 * m.D * m.N + m.d * m.D;
}

/** Multiply-adds of a partial update: x half of in_proj, conv, δ and B of x_proj, dt_proj, state update. */
export function partialMacs(m: LmShape): number {
  return m.D * m.d + m.D * m.K + m.D * (m.R + m.N) + m.R * m.D + m.D * m.N;
}

/** Multiply-adds of one exit head (norm_f + LM head). */
export function headMacs(m: LmShape): number {
  return m.d * m.V + m.d;
}

export type ClassifierShape =
  | { kind: 'mamba'; inner: number; stateSize: number; rank: number; convKernel: number }
  | { kind: 'ffn'; hidden: number };

/** Multiply-adds of one exit classifier evaluation on a hidden state of width d. */
export function classifierMacs(d: number, c: ClassifierShape): number {
  if (c.kind === 'ffn') return d * c.hidden + c.hidden + d;
  const { inner: D, stateSize: N, rank: R, convKernel: K } = c;
  return d + 2 * D * d + D * K + D * (R + 2 * N) + R * D + 2 * D * N + D;
}

/** How an exit rule decides: which per-exit evaluations a token pays for before it leaves. */
export type DecisionKind = 'none' | 'fixed' | 'softmax' | 'classifier';

/**
 * Cost of a measured run as a fraction of the full model's multiply-adds per token (L blocks + one head).
 * `exitShare[j]` = share of tokens leaving at exit j (the last entry = full depth); `blocks` and `partial` are
 * the fractions of L·tokens run fully and partially. Softmax rules evaluate the head at every early exit a
 * token reaches; classifier rules evaluate the classifier there and the head once at the exit taken.
 */
export function relativeCost(
  m: LmShape,
  run: { blocks: number; partial: number; exitShare: readonly number[] },
  decision: DecisionKind,
  classifier = 0,
): number {
  const E = run.exitShare.length;
  if (E < 1) throw new Error(`relativeCost: exitShare is empty; give one share per exit (the last = full depth)`);
  const full = m.L * blockMacs(m) + headMacs(m);
  // expected number of early exits a token reaches: a token leaving at exit j reached exits 0..j
  let reached = 0;
  for (let j = 0; j < E; j++) reached += run.exitShare[j] * Math.min(j + 1, E - 1);
  let extra = headMacs(m);
  if (decision === 'softmax') extra = reached * headMacs(m) + run.exitShare[E - 1] * headMacs(m);
  else if (decision === 'classifier') extra = reached * classifier + headMacs(m);
  const cost = m.L * (run.blocks * blockMacs(m) + run.partial * partialMacs(m)) + extra;
  return cost / full;
}

export interface SweepPoint {
  threshold: number;
  agreement: number;
  cost: number;
}

/**
 * Among swept points, the one with the lowest cost whose agreement is at least `minAgreement`
 * (ties: the higher agreement); null when none reaches it.
 */
export function selectAtAgreement(points: readonly SweepPoint[], minAgreement: number): SweepPoint | null {
  let best: SweepPoint | null = null;
  for (const p of points) {
    if (!(p.agreement >= minAgreement)) continue;
    if (!best || p.cost < best.cost || (p.cost === best.cost && p.agreement > best.agreement)) best = p;
  }
  return best;
}
