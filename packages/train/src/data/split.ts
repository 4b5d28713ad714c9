// Fixed-seed stratified train/test split and shuffling (mulberry32), shared by the text-classification loaders.

import { mulberry32, ValidationError } from '@offramp/core';

/** Shuffles `items` in place (Fisher-Yates) with the given random source. */
export function shuffleInPlace<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = items[i];
    items[i] = items[j];
    items[j] = t;
  }
  return items;
}

/**
 * Splits `items` into train and test keeping each group's share: every group (by `groupOf`, groups taken in
 * sorted order) is shuffled and round(size · testFraction) of it goes to test; both halves are then shuffled.
 * The result depends only on the input order, the groups, testFraction and seed.
 */
export function stratifiedSplit<T>(
  items: readonly T[],
  groupOf: (item: T) => string,
  testFraction: number,
  seed: number,
): { train: T[]; test: T[] } {
  if (!(testFraction >= 0 && testFraction <= 1)) {
    throw new ValidationError(`testFraction is ${testFraction}; expected a number in [0, 1]`);
  }
  const rand = mulberry32(seed);
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = groupOf(item);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(item);
  }
  const train: T[] = [];
  const test: T[] = [];
  for (const key of [...groups.keys()].sort()) {
    const g = shuffleInPlace(groups.get(key)!, rand);
    const nTest = Math.round(g.length * testFraction);
    for (let i = 0; i < g.length; i++) (i < nTest ? test : train).push(g[i]);
  }
  return { train: shuffleInPlace(train, rand), test: shuffleInPlace(test, rand) };
}
