// Exit-training recipes for the decoder LM.
// LayerSkip (Elhoushi et al. 2024): layer dropout p(l, t) = S(t)·D(l)·p_max with D(l) = e^{l·ln2/(L−1)} − 1
// (0 at the first block, 1 at the last), per sequence; plus an early-exit loss Σ_l ẽ(l)·CE_l with scales
// e(l) = e_scale·Σ_{i=0}^{l} i for l < L−1 and e(L−1) = L−1 + e_scale·Σ_{i=0}^{L−2} i, normalised over the
// trained exits.
// Joint + self-distillation: mean CE over all exits plus α·mean KL(p_final ‖ p_exit) over the early exits,
// the final exit's distribution detached.
import { ValidationError } from '@offramp/core';

export type Recipe = 'layerskip' | 'selfdistill';
export const RECIPES: readonly Recipe[] = ['layerskip', 'selfdistill'];

export function checkRecipe(r: string): Recipe {
  if (!(RECIPES as readonly string[]).includes(r))
    throw new ValidationError(`recipe is ${JSON.stringify(r)}; expected one of ${RECIPES.join(', ')}`);
  return r as Recipe;
}

/** D(l) = e^{l·ln2/(L−1)} − 1 for block l of L (0-based): 0 at the first block, 1 at the last. */
export function depthFactor(l: number, L: number): number {
  if (L < 2) return 0;
  return Math.exp((l * Math.LN2) / (L - 1)) - 1;
}

/** Layer-dropout rate of each block: S·D(l)·p_max (S the curriculum value, here in [0, 1]). */
export function dropoutRates(L: number, pMax: number, S = 1): number[] {
  if (!(pMax >= 0 && pMax < 1)) throw new ValidationError(`p_max is ${pMax}; expected a number in [0, 1)`);
  return Array.from({ length: L }, (_, l) => S * depthFactor(l, L) * pMax);
}

/** 0/1 keep flags per block and sequence, drawn with `rand` (1 = the block runs for that sequence). */
export function dropoutKeep(rates: readonly number[], B: number, rand: () => number): Float32Array[] {
  return rates.map((p) => {
    const k = new Float32Array(B);
    for (let b = 0; b < B; b++) k[b] = p > 0 && rand() < p ? 0 : 1;
    return k;
  });
}

/** LayerSkip's normalised early-exit loss scales ẽ for the given exits (0-based blocks of L). */
export function layerskipExitScales(exits: readonly number[], L: number, eScale: number): number[] {
  const tri = (n: number) => (n * (n + 1)) / 2;
  const e = exits.map((l) => (l === L - 1 ? L - 1 + eScale * tri(L - 2) : eScale * tri(l)));
  const sum = e.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new ValidationError(`LayerSkip exit scales are all zero for exits [${exits}]`);
  return e.map((x) => x / sum);
}
