// Held-out data for the shipped checkpoints, for tests and benchmarks of @offramp/core: Fashion-MNIST test images
// and the IMDB held-out reviews tokenized with the checkpoint's own word tokenizer, through @offramp/train's
// loaders (loaded from the workspace sources at run time: core does not depend on train). A dataset missing from
// the data cache (OFFRAMP_DATA_DIR, `pnpm data`) is fetched first, as `pnpm data` does; a string with the reason
// when it still cannot be had (so a test fails with it rather than skipping on a fresh machine).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ModelInput } from '../engine/model.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
export const CHECKPOINTS = join(REPO_ROOT, 'checkpoints');

export interface HeldOut {
  input: ModelInput;
  labels: Int32Array;
  n: number;
}

async function train(dataset: string): Promise<any> {
  const src = join(REPO_ROOT, 'packages/train/src/index.ts');
  const t = await import(/* @vite-ignore */ pathToFileURL(src).href);
  if (!t.isDatasetCached(dataset)) {
    const r = await t.fetchDatasets({ names: [dataset] });
    if (r.failed.length) throw new Error(`fetching ${dataset} failed: ${r.failed[0].message}`);
  }
  return t;
}

/** The first `n` Fashion-MNIST test images (pixels / 255) and labels, or the reason they are unavailable. */
export async function fashionTest(n: number): Promise<HeldOut | string> {
  try {
    const t = await train('fashion-mnist');
    const ds = t.loadFashionMnist('test');
    const w = ds.height * ds.width;
    const m = Math.min(n, ds.n);
    return { input: { features: ds.images.slice(0, m * w) }, labels: Int32Array.from(ds.labels.slice(0, m)), n: m };
  } catch (e) {
    return `Fashion-MNIST is not available (${(e as Error).message}); run \`pnpm data\` or set OFFRAMP_DATA_DIR`;
  }
}

/** The first `n` IMDB held-out reviews as token ids of `checkpoint`'s tokenizer ([CLS] + up to 255 tokens). */
export async function imdbHeldOut(checkpoint: string, n: number, maxLength = 256): Promise<HeldOut | string> {
  try {
    const t = await train('imdb');
    const file = join(CHECKPOINTS, checkpoint, 'word-tokenizer.json');
    if (!existsSync(file)) return `${file} is missing`;
    const tok = t.WordTokenizer.load(file);
    const rows = t.loadImdb().test.slice(0, n) as { text: string; label: number }[];
    const ids = rows.map((r) => tok.encodeUnpadded(r.text, maxLength) as number[]);
    return { input: { ids }, labels: Int32Array.from(rows, (r) => r.label), n: rows.length };
  } catch (e) {
    return `IMDB is not available (${(e as Error).message}); run \`pnpm data\` or set OFFRAMP_DATA_DIR`;
  }
}
