// On-disk cache of a frozen backbone's head inputs (per exit, (n, dim) f32), keyed by a hash of the model's
// weights file, so several head recipes on one backbone compute them once. Files live under .data/runs.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTensors, saveTensors } from './checkpoint.js';
import { repoRoot } from './cli.js';
import type { CachedFeatures } from './evaluate.js';

export function featureCacheFile(modelDir: string, split: string, n: number, key = 0): string {
  const hash = createHash('sha256')
    .update(readFileSync(join(modelDir, 'model.safetensors')))
    .digest('hex')
    .slice(0, 12);
  const dir = join(repoRoot(), '.data', 'runs', 'head-inputs');
  mkdirSync(dir, { recursive: true });
  return join(dir, `${hash}-${split}-${n}-${key}.safetensors`);
}

export function saveFeatures(file: string, dims: number[], data: Float32Array[], n: number): void {
  saveTensors(file, new Map(data.map((d, j) => [`exit${j}`, { shape: [n, dims[j]], data: d }])));
}

/** The cached head inputs, or undefined when the file is absent. */
export function loadFeatures(file: string, labels: Int32Array): CachedFeatures | undefined {
  if (!existsSync(file)) return undefined;
  const t = loadTensors(file);
  const data: Float32Array[] = [];
  const dims: number[] = [];
  for (let j = 0; t.has(`exit${j}`); j++) {
    const e = t.get(`exit${j}`)!;
    if (e.shape[0] !== labels.length)
      throw new Error(`${file}: ${e.shape[0]} rows cached for ${labels.length} examples; delete the file`);
    data.push(e.data);
    dims.push(e.shape[1]);
  }
  return { n: labels.length, dims, data, labels };
}
