// Reading the weights of a Hugging Face model folder, for every loader of such folders (the Llama-style
// decoder here, the Mamba LM in @offramp/mamba): model.safetensors, or the shards that
// model.safetensors.index.json lists (names kept inside the folder, each shard bounded, every listed tensor
// present and nothing unlisted).
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { FormatError } from '../errors.js';
import { describeFsError, readBoundedFile, readBoundedText, resolveInside } from '../util/files.js';
import { parseJsonText } from '../util/json.js';
import { MAX_CONFIG_FILE_BYTES, MAX_WEIGHTS_FILE_BYTES, otherFormatHint } from './model-dir.js';
import { parseSafetensors, type SafetensorsTensor } from './safetensors.js';

/**
 * Size of `p` when it exists (a dangling symlink does not), NaN when it is not a regular file (the bounded
 * read reports that); any other failure is reported with the path.
 */
export async function sizeOf(p: string, what: string): Promise<number | undefined> {
  try {
    const st = await stat(p);
    return st.isFile() ? st.size : Number.NaN;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw describeFsError(p, e, what);
  }
}

export async function readJson(p: string, what: string): Promise<unknown> {
  return parseJsonText(await readBoundedText(p, { maxBytes: MAX_CONFIG_FILE_BYTES, what }), p);
}

export async function readSafetensorsFile(p: string, what: string): Promise<Map<string, SafetensorsTensor>> {
  const buf = await readBoundedFile(p, { maxBytes: MAX_WEIGHTS_FILE_BYTES, what });
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  try {
    return parseSafetensors(bytes).tensors;
  } catch (e) {
    throw new FormatError(`${p}: ${(e as Error).message.replace(/^safetensors: /, '')}`, { cause: e });
  }
}

export interface WeightFiles {
  files: { path: string; names?: string[] }[];
  index?: string;
  totalBytes: number;
  /** What the files hold, for messages (e.g. 'decoder weights in safetensors format'). */
  what: string;
}

export async function weightFiles(dir: string, what: string): Promise<WeightFiles> {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  const singleSize = await sizeOf(single, what);
  if (singleSize !== undefined) return { files: [{ path: single }], totalBytes: singleSize, what };
  if ((await sizeOf(index, 'the shard index')) === undefined)
    throw new FormatError(
      `no weights in ${dir}: expected model.safetensors or model.safetensors.index.json (sharded) beside config.json${await otherFormatHint(dir)}`,
    );
  const idx = (await readJson(index, 'the shard index { "weight_map": { tensor name: shard file } }')) as {
    weight_map?: unknown;
  };
  const map = idx?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map))
    throw new FormatError(`${index}: expected { "weight_map": { tensor name: shard file } }`);
  const shards = new Map<string, string[]>();
  for (const [name, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\') || file.startsWith('.'))
      throw new FormatError(
        `${index}: weight_map["${name}"] must be a shard file name in the same folder, got ${JSON.stringify(file)}`,
      );
    shards.set(file, [...(shards.get(file) ?? []), name]);
  }
  const files: WeightFiles['files'] = [];
  let totalBytes = 0;
  for (const [file, names] of [...shards].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const p = resolveInside(dir, file, index);
    const size = await sizeOf(p, what);
    if (size === undefined)
      throw new FormatError(`${p} does not exist; ${index} places ${names.length} tensors there (e.g. '${names[0]}')`);
    totalBytes += size;
    files.push({ path: p, names });
  }
  return { files, index, totalBytes, what };
}

export async function readWeightFiles(w: WeightFiles): Promise<Map<string, SafetensorsTensor>> {
  const out = new Map<string, SafetensorsTensor>();
  for (const { path: p, names } of w.files) {
    const t = await readSafetensorsFile(p, w.what);
    if (!names) return t;
    for (const n of names) {
      const x = t.get(n);
      if (!x) throw new FormatError(`${w.index} puts '${n}' in ${path.basename(p)}, but ${p} has no such tensor`);
      out.set(n, x);
    }
    for (const n of t.keys())
      if (!names.includes(n)) throw new FormatError(`${p} holds '${n}', which ${w.index} does not list`);
  }
  return out;
}
