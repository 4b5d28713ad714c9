// Node-only parts of @offramp/mamba (file system): loading a HuggingFace Mamba-1 folder — config.json
// (current or older keys) and model.safetensors or model.safetensors.index.json with its shards. Every file
// is read bounded (a regular file within a size cap: a FIFO or a device such as /dev/zero is refused, never
// read), shard names stay inside the folder, and the config's implied weight count is checked against the
// size of the weight files before any of them is read.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import {
  type Device,
  FormatError,
  parseJsonText,
  parseSafetensors,
  type SafetensorsTensor,
  ValidationError,
} from '@offramp/core';
import {
  describeFsError,
  MAX_CONFIG_FILE_BYTES,
  MAX_WEIGHTS_FILE_BYTES,
  nonFiniteWarnings,
  otherFormatHint,
  readBoundedFile,
  readBoundedText,
  resolveInside,
} from '@offramp/core/node';
import { type MambaConfig, mambaWeightCount, type ParseMambaConfigOptions, parseMambaConfig } from './config.js';
import { MambaLM, type MambaLMOptions } from './model.js';
import { type NormalizedWeights, normalizeMambaTensors } from './weights.js';

export interface LoadedMambaDir extends NormalizedWeights {
  config: MambaConfig;
  /** The config.json object as read. */
  rawConfig: Record<string, unknown>;
  /** tokenizer.json beside the weights, when there is one. */
  tokenizerPath?: string;
}

export interface LoadMambaOptions extends ParseMambaConfigOptions {
  /**
   * Warnings about weights that load but look wrong (NaN or ±Infinity values, an ignored lm_head.weight).
   * Default: printed to stderr with console.warn (never stdout, which may carry --json output).
   */
  onWarning?: (message: string) => void;
}

const defaultWarning = (message: string) => console.warn(`warning: ${message}`);

/**
 * Size of `p` when it exists (a dangling symlink does not), NaN when it is not a regular file (the bounded
 * read reports that); any other failure is reported with the path.
 */
async function sizeOf(p: string, what: string): Promise<number | undefined> {
  try {
    const st = await stat(p);
    return st.isFile() ? st.size : Number.NaN;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw describeFsError(p, e, what);
  }
}

async function readJson(p: string, what: string): Promise<unknown> {
  return parseJsonText(await readBoundedText(p, { maxBytes: MAX_CONFIG_FILE_BYTES, what }), p);
}

const WEIGHTS_WHAT =
  'Mamba weights in safetensors format (larger models are sharded with model.safetensors.index.json)';

async function readSafetensorsFile(p: string): Promise<Map<string, SafetensorsTensor>> {
  const buf = await readBoundedFile(p, { maxBytes: MAX_WEIGHTS_FILE_BYTES, what: WEIGHTS_WHAT });
  // a plain Uint8Array view (Node's Buffer.slice does not copy; the decoder's copying path relies on it)
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  try {
    return parseSafetensors(bytes).tensors;
  } catch (e) {
    throw new FormatError(`${p}: ${(e as Error).message.replace(/^safetensors: /, '')}`, { cause: e });
  }
}

interface WeightFiles {
  /** Files to read, in order, each with the tensors the index places there (undefined: a single file). */
  files: { path: string; names?: string[] }[];
  index?: string;
  totalBytes: number;
}

/** The weight files of a folder (model.safetensors, or the shards model.safetensors.index.json lists). */
async function weightFiles(dir: string): Promise<WeightFiles> {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  const singleSize = await sizeOf(single, WEIGHTS_WHAT);
  if (singleSize !== undefined) return { files: [{ path: single }], totalBytes: singleSize };
  if ((await sizeOf(index, 'the shard index')) === undefined) {
    throw new FormatError(
      `no weights in ${dir}: expected model.safetensors or model.safetensors.index.json (sharded) beside config.json${await otherFormatHint(dir)}`,
    );
  }
  const idx = (await readJson(index, 'the shard index { "weight_map": { tensor name: shard file } }')) as {
    weight_map?: unknown;
  };
  const map = idx?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new FormatError(`${index}: expected { "weight_map": { tensor name: shard file } }`);
  }
  const shards = new Map<string, string[]>();
  for (const [name, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\') || file.startsWith('.')) {
      throw new FormatError(
        `${index}: weight_map["${name}"] must be a shard file name in the same folder, got ${JSON.stringify(file)}`,
      );
    }
    shards.set(file, [...(shards.get(file) ?? []), name]);
  }
  const files: WeightFiles['files'] = [];
  let totalBytes = 0;
  for (const [file, names] of [...shards].sort(([a], [b]) => (a < b ? -1 : 1))) {
    // inside the folder, symbolic links included
    const p = resolveInside(dir, file, index);
    const size = await sizeOf(p, WEIGHTS_WHAT);
    if (size === undefined)
      throw new FormatError(`${p} does not exist; ${index} places ${names.length} tensors there (e.g. '${names[0]}')`);
    totalBytes += size;
    files.push({ path: p, names });
  }
  return { files, index, totalBytes };
}

async function readWeightFiles(w: WeightFiles): Promise<Map<string, SafetensorsTensor>> {
  const out = new Map<string, SafetensorsTensor>();
  for (const { path: p, names } of w.files) {
    const t = await readSafetensorsFile(p);
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

/** Reads the weights of a folder: model.safetensors, or the shards listed by model.safetensors.index.json. */
export async function readMambaWeights(dir: string): Promise<Map<string, SafetensorsTensor>> {
  return readWeightFiles(await weightFiles(dir));
}

/**
 * Loads config.json and the weights of a HuggingFace Mamba-1 folder, validated and with normalized names.
 * The config's sizes are checked against MAMBA_CONFIG_LIMITS (or `options.limits`), and the weight count it
 * implies against the size of the weight files (at least 2 bytes per weight), before any weights are read.
 */
export async function loadMambaDir(dir: string, options: LoadMambaOptions = {}): Promise<LoadedMambaDir> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory())
    throw new FormatError(`${dir} is not a folder; expected one holding config.json and model.safetensors`);
  const configPath = path.join(dir, 'config.json');
  const rawConfig = (await readJson(configPath, 'the Mamba model config (HuggingFace config.json)')) as Record<
    string,
    unknown
  >;
  let config: MambaConfig;
  try {
    config = parseMambaConfig(rawConfig, configPath, options);
  } catch (e) {
    // a config file that does not check out is a damaged file, not a bad call
    if (e instanceof ValidationError) throw new FormatError(e.message, { cause: e });
    throw e;
  }
  const files = await weightFiles(dir);
  const weights = mambaWeightCount(config);
  // (NaN when a file is not a regular one: the read below says so)
  if (weights * 2 > files.totalBytes) {
    const where = files.index ? `the shards of ${files.index} hold` : `${files.files[0].path} is`;
    throw new FormatError(
      `${configPath} implies ${weights} weights (at least ${weights * 2} bytes at 2 bytes each), but ${where} only ${files.totalBytes} bytes; the config does not describe these weights`,
    );
  }
  const tensors = await readWeightFiles(files);
  const warn = options.onWarning ?? defaultWarning;
  const norm = normalizeMambaTensors(config, tensors, `weights in ${dir}`, { onWarning: warn });
  for (const m of nonFiniteWarnings(tensors, `weights in ${dir}`)) warn(m);
  const tok = path.join(dir, 'tokenizer.json');
  return {
    config,
    rawConfig,
    ...norm,
    tokenizerPath: (await sizeOf(tok, 'a tokenizer')) !== undefined ? tok : undefined,
  };
}

/** loadMambaDir + MambaLM on a device. */
export async function loadMambaLM(
  device: Device,
  dir: string,
  options: MambaLMOptions & LoadMambaOptions = {},
): Promise<{ model: MambaLM; loaded: LoadedMambaDir }> {
  const loaded = await loadMambaDir(dir, options);
  return { model: new MambaLM(device, loaded.config, loaded.tensors, options), loaded };
}
