// Fingerprints that tie a trace file to what it was recorded from: SHA-256 of the model's weights (the
// safetensors bytes, every shard) and of the data slice (the inputs and labels traced, in order).
//   weights: sha256(model.safetensors), or sha256(shard 1 ‖ shard 2 ‖ ...) over the shards the index lists,
//            in file-name order
//   data:    sha256 of a tagged little-endian encoding: "offramp-data/1", then per row its features (f32) or
//            its token ids (u32 length, then i32 ids), then the labels (i32)
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelInput } from '@offramp/core';
import { FILE_LIMITS, readBoundedFile, readBoundedText, resolveInside } from '@offramp/core/node';

/** SHA-256 (hex) of the weights of a model directory: model.safetensors, or its shards in name order. */
export async function weightsSha256(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const single = join(dir, 'model.safetensors');
  const what = 'model weights (safetensors)';
  if (existsSync(single)) {
    hash.update(await readBoundedFile(single, { maxBytes: FILE_LIMITS.weights, what }));
    return hash.digest('hex');
  }
  const indexPath = join(dir, 'model.safetensors.index.json');
  const index = JSON.parse(await readBoundedText(indexPath, { maxBytes: FILE_LIMITS.json, what: 'a shard index' }));
  const shards = [...new Set(Object.values((index?.weight_map ?? {}) as Record<string, string>))].sort();
  for (const name of shards)
    hash.update(await readBoundedFile(resolveInside(dir, name, indexPath), { maxBytes: FILE_LIMITS.weights, what }));
  return hash.digest('hex');
}

const le32 = (a: Float32Array | Int32Array | Uint32Array) => {
  // typed arrays are in the machine's order; every platform Node runs on here is little-endian
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
};

/** SHA-256 (hex) of `n` input rows and their labels, in order (see the file header for the encoding). */
export function dataSha256(input: ModelInput, labels: Int32Array, n: number): string {
  const hash = createHash('sha256');
  hash.update(`offramp-data/1\n${n}\n`);
  if ('ids' in input) {
    hash.update('ids\n');
    for (let i = 0; i < n; i++) {
      const row = Int32Array.from(input.ids[i]);
      hash.update(le32(Uint32Array.of(row.length)));
      hash.update(le32(row));
    }
  } else {
    const f = input.features;
    hash.update('features\n');
    if (Array.isArray(f)) for (let i = 0; i < n; i++) hash.update(le32(f[i]));
    else hash.update(le32(f));
  }
  hash.update('labels\n');
  hash.update(le32(labels.subarray(0, n)));
  return hash.digest('hex');
}
