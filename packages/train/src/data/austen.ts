// Jane Austen's six novels from the janeaustenr R package's lazy-load database (one character vector of lines
// per novel), joined into one text per novel; "Persuasion" is held out for evaluation by default.

import { FormatError, ValidationError } from '@offramp/core';
import { cachePath, corruptFile, type DataOptions, readCacheFile } from './cache.js';
import { type RValue, readLazyLoadDb } from './rdata.js';

export interface Novel {
  /** Variable name in the R package, e.g. 'prideprejudice'. */
  key: string;
  title: string;
  year: number;
  /** The novel's lines joined with '\n'. */
  text: string;
}

/** The six novels in publication order. */
export const AUSTEN_NOVELS: readonly { key: string; title: string; year: number }[] = [
  { key: 'sensesensibility', title: 'Sense & Sensibility', year: 1811 },
  { key: 'prideprejudice', title: 'Pride & Prejudice', year: 1813 },
  { key: 'mansfieldpark', title: 'Mansfield Park', year: 1814 },
  { key: 'emma', title: 'Emma', year: 1815 },
  { key: 'northangerabbey', title: 'Northanger Abbey', year: 1818 },
  { key: 'persuasion', title: 'Persuasion', year: 1818 },
];

/** The novel held out for evaluation unless another is asked for. */
export const AUSTEN_HELD_OUT = 'Persuasion';

export const AUSTEN_FILES = { index: 'Rdata.rdx', database: 'Rdata.rdb' } as const;

export interface AustenCorpus {
  /** All six novels in publication order. */
  novels: Novel[];
  /** The five novels not held out, in publication order. */
  train: Novel[];
  /** The held-out novel. */
  heldOut: Novel;
}

/** Reads the janeaustenr database files and returns the six novels; errors name the files. */
export function austenFromRData(rdx: Uint8Array, rdb: Uint8Array, rdxName: string, rdbName: string): Novel[] {
  const vars = readLazyLoadDb(rdx, rdb, rdxName, rdbName);
  return AUSTEN_NOVELS.map(({ key, title, year }) => {
    const v: RValue | undefined = vars.get(key);
    if (v === undefined) {
      throw new FormatError(`${rdbName}: no variable \`${key}\` (${title}); found ${[...vars.keys()].join(', ')}`);
    }
    if (v.type !== 'character')
      throw new FormatError(`${rdbName}: \`${key}\` is a ${v.type}; expected character lines`);
    const nas = v.value.indexOf(null);
    if (nas >= 0) throw new FormatError(`${rdbName}: line ${nas} of \`${key}\` is NA`);
    return { key, title, year, text: v.value.join('\n') };
  });
}

/** The six Austen novels with one (default AUSTEN_HELD_OUT, by title) held out. */
export function loadAusten(options?: DataOptions & { heldOut?: string }): AustenCorpus {
  const heldOutTitle = options?.heldOut ?? AUSTEN_HELD_OUT;
  if (!AUSTEN_NOVELS.some((n) => n.title === heldOutTitle)) {
    throw new ValidationError(
      `heldOut is ${JSON.stringify(heldOutTitle)}; expected one of ${AUSTEN_NOVELS.map((n) => n.title).join(', ')}`,
    );
  }
  const rdx = readCacheFile('austen', AUSTEN_FILES.index, options);
  const rdb = readCacheFile('austen', AUSTEN_FILES.database, options);
  const rdxPath = cachePath('austen', AUSTEN_FILES.index, options);
  const rdbPath = cachePath('austen', AUSTEN_FILES.database, options);
  let novels: Novel[];
  try {
    novels = austenFromRData(rdx, rdb, rdxPath, rdbPath);
  } catch (e) {
    if (e instanceof FormatError) throw corruptFile(`austen cache (${rdxPath}, ${rdbPath})`, e.message, e);
    throw e;
  }
  return {
    novels,
    train: novels.filter((n) => n.title !== heldOutTitle),
    heldOut: novels.find((n) => n.title === heldOutTitle)!,
  };
}
