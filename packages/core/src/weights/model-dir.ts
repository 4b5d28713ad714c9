// Loading and saving a model directory (Node only): config.json plus model.safetensors, or shards listed in
// model.safetensors.index.json (`{ "metadata"?: {...}, "weight_map": { tensor: shard file name } }`).
import { constants as bufferConstants } from 'node:buffer';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError, ValidationError } from '../errors.js';
import type { ConfigEnvelope } from '../models/config.js';
import { describeFsError, FILE_LIMITS, readBoundedFile, readBoundedText, resolveInside } from '../util/files.js';
import { parseJsonText } from '../util/json.js';
import { assertTensors, modelTensorSpec, parseModelConfig } from './config.js';
import {
  parseSafetensors,
  type ReadOptions,
  type SafetensorsTensor,
  type TensorInput,
  writeSafetensors,
} from './safetensors.js';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

const LAYOUT = `${CONFIG_FILE} and ${WEIGHTS_FILE} (or ${INDEX_FILE} with the shards it lists)`;
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

export interface LoadedModel {
  config: ConfigEnvelope;
  /** Every tensor of the model, float data as Float32Array (see safetensors.ts on views and copies). */
  tensors: Map<string, SafetensorsTensor>;
  /** `__metadata__` of model.safetensors; for shards, the union over shards in file-name order (first wins). */
  metadata: Record<string, string>;
}

/** Whether `path` exists (a dangling symlink does not); any other failure (ELOOP, EACCES, ...) is reported. */
async function exists(path: string, what: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw describeFsError(path, e, what);
  }
}

/**
 * The largest weights file read at once: FILE_LIMITS.weights, or less where one Node buffer cannot hold it.
 * Larger models are sharded (model.safetensors.index.json) and each shard is checked on its own.
 */
export const MAX_WEIGHTS_FILE_BYTES = Math.min(FILE_LIMITS.weights, bufferConstants.MAX_LENGTH);
/** The largest config.json or shard index read. */
export const MAX_CONFIG_FILE_BYTES = FILE_LIMITS.json;

async function readBytes(path: string, what: string, maxBytes = MAX_WEIGHTS_FILE_BYTES): Promise<Uint8Array> {
  const buf = await readBoundedFile(path, { maxBytes, what });
  // a plain Uint8Array view of the same memory (no copy)
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** A bounded JSON file (BOM accepted, nesting limited), parsed with errors that name it. */
async function readJson(path: string, what: string): Promise<unknown> {
  return parseJsonText(await readBoundedText(path, { maxBytes: MAX_CONFIG_FILE_BYTES, what }), path);
}

function parseFile(bytes: Uint8Array, path: string, options: ReadOptions) {
  try {
    return parseSafetensors(bytes, options);
  } catch (e) {
    if (e instanceof FormatError)
      throw new FormatError(`${path}: ${e.message.replace(/^safetensors: /, '')}`, { cause: e });
    throw e;
  }
}

export interface LoadModelOptions extends ReadOptions {
  /**
   * Receives warnings about weights that load but look wrong (NaN or ±Infinity values). Default: printed to
   * stderr with console.warn (never stdout, which may carry --json output).
   */
  onWarning?: (message: string) => void;
}

/** Counts the NaN and ±Infinity values of each float tensor; one message per tensor that has any. */
export function nonFiniteWarnings(tensors: ReadonlyMap<string, SafetensorsTensor>, where: string): string[] {
  const out: string[] = [];
  for (const [name, t] of tensors) {
    if (!(t.data instanceof Float32Array) && !(t.data instanceof Float64Array)) continue;
    const d = t.data;
    let nan = 0;
    let inf = 0;
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      if (v - v !== 0) {
        if (Number.isNaN(v)) nan++;
        else inf++;
      }
    }
    if (nan + inf > 0)
      out.push(
        `${where}: tensor ${name} has ${nan + inf} non-finite value${nan + inf > 1 ? 's' : ''} of ${d.length} (${nan} NaN, ${inf} ±Infinity); outputs that depend on it will not be finite`,
      );
  }
  return out;
}

const defaultWarning = (message: string) => console.warn(`warning: ${message}`);

/**
 * Reads and validates a model directory: the config, the weights (single file or shards) and that every
 * tensor the config implies is present with its shape and a float dtype. Throws FormatError naming the path
 * and what is wrong or missing. Every file is read bounded (a regular file within MAX_CONFIG_FILE_BYTES or
 * MAX_WEIGHTS_FILE_BYTES; a FIFO or device such as /dev/zero is refused, never read). Weights holding NaN or
 * ±Infinity load, with a warning per tensor through `onWarning`.
 */
export async function loadModelDir(dir: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new FormatError(`model directory ${dir} does not exist; expected a folder holding ${LAYOUT}`, {
        cause: e,
      });
    throw describeFsError(dir, e, `a model directory holding ${LAYOUT}`);
  }
  if (!info.isDirectory()) throw new FormatError(`${dir} is not a directory; expected a folder holding ${LAYOUT}`);

  const configPath = join(dir, CONFIG_FILE);
  const config = parseModelConfig(
    await readJson(configPath, 'the model config (JSON with offramp_format, model and optional meta)'),
    { source: configPath },
  );

  const weightsPath = join(dir, WEIGHTS_FILE);
  const indexPath = join(dir, INDEX_FILE);
  const weightsWhat = `the weights in safetensors format (larger models are sharded with ${INDEX_FILE})`;
  let loaded: { tensors: Map<string, SafetensorsTensor>; metadata: Record<string, string> };
  let where: string;
  const spec = modelTensorSpec(config.model);
  if (await exists(weightsPath, weightsWhat)) {
    const st = await stat(weightsPath);
    // (not a regular file: the bounded read says so)
    if (st.isFile()) checkImpliedSize(spec, weightsPath, configPath, st.size);
    loaded = parseFile(await readBytes(weightsPath, weightsWhat), weightsPath, options);
    where = weightsPath;
  } else if (await exists(indexPath, 'the shard index')) {
    loaded = await loadShards(dir, indexPath, options);
    where = `the shards of ${indexPath}`;
  } else {
    throw new FormatError(
      `no weights in ${dir}: expected ${WEIGHTS_FILE} or ${INDEX_FILE} (sharded weights) beside ${CONFIG_FILE}${await otherFormatHint(dir)}`,
    );
  }

  const nonFloat = [...loaded.tensors].filter(([, t]) => !FLOAT_DTYPES.has(t.dtype));
  if (nonFloat.length)
    throw new FormatError(
      `${where}: model weights must be float (F32, F16, BF16 or F64); found ${nonFloat
        .slice(0, 10)
        .map(([n, t]) => `${n} (${t.dtype})`)
        .join(', ')}${nonFloat.length > 10 ? `, … (${nonFloat.length} in all)` : ''}`,
    );
  assertTensors(spec, loaded.tensors, where);
  const warn = options.onWarning ?? defaultWarning;
  for (const m of nonFiniteWarnings(loaded.tensors, where)) warn(m);
  return { config, tensors: loaded.tensors, metadata: loaded.metadata };
}

/**
 * The weights a config implies take at least 2 bytes each (F16/BF16): a file smaller than that cannot match,
 * and is refused before it is read.
 */
function checkImpliedSize(spec: Map<string, number[]>, weightsPath: string, configPath: string, size: number): void {
  let count = 0;
  for (const shape of spec.values()) count += shape.reduce((a, b) => a * b, 1);
  if (count * 2 > size)
    throw new FormatError(
      `${configPath} implies ${count} weights (at least ${count * 2} bytes at 2 bytes each), but ${weightsPath} is only ${size} bytes; the config does not describe these weights`,
    );
}

/** A hint when the folder holds weights in a format this loader does not read (PyTorch pickles). */
export async function otherFormatHint(dir: string): Promise<string> {
  for (const f of ['pytorch_model.bin', 'pytorch_model.bin.index.json', 'model.pt', 'model.pth']) {
    try {
      await stat(join(dir, f));
    } catch {
      continue;
    }
    return `; found ${f} (PyTorch format), which Offramp does not read: convert it to safetensors first, e.g. in Python \`from safetensors.torch import save_file; save_file(torch.load("${f}"), "model.safetensors")\` (or load it with transformers and call save_pretrained(dir, safe_serialization=True))`;
  }
  return '';
}

async function loadShards(dir: string, indexPath: string, options: ReadOptions) {
  const index = await readJson(indexPath, 'the shard index { "weight_map": { tensor: shard file } }');
  const bad = (msg: string) => new FormatError(`${indexPath}: ${msg}`);
  if (typeof index !== 'object' || index === null || Array.isArray(index))
    throw bad('must be an object { "metadata"?: {...}, "weight_map": { tensor: shard file } }');
  for (const k of Object.keys(index))
    if (k !== 'metadata' && k !== 'weight_map')
      throw bad(`unknown key ${JSON.stringify(k)}; allowed keys: metadata, weight_map`);
  const { weight_map: map, metadata } = index as Record<string, unknown>;
  if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)))
    throw bad('"metadata" must be an object');
  if (typeof map !== 'object' || map === null || Array.isArray(map))
    throw bad('"weight_map" must be an object mapping tensor names to shard file names');

  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || !/^[^/\\]+\.safetensors$/.test(shard))
      throw bad(
        `weight_map[${JSON.stringify(name)}] must be a file name ending in .safetensors in the same folder (no path separators), got ${JSON.stringify(shard)}`,
      );
    byShard.set(shard, [...(byShard.get(shard) ?? []), name]);
  }
  if (byShard.size === 0) throw bad('"weight_map" is empty; it must list every tensor with its shard file');

  const tensors = new Map<string, SafetensorsTensor>();
  const meta: Record<string, string> = {};
  const problems: string[] = [];
  for (const shard of [...byShard.keys()].sort()) {
    const listed = byShard.get(shard)!;
    // a shard must stay inside the folder, symbolic links included
    const path = resolveInside(dir, shard, indexPath);
    const file = parseFile(
      await readBytes(
        path,
        `a shard holding ${listed.length} tensors listed in ${INDEX_FILE} (e.g. ${JSON.stringify(listed[0])})`,
      ),
      path,
      options,
    );
    for (const name of listed)
      if (!file.tensors.has(name)) problems.push(`${shard} lacks ${name}, which the index places there`);
    for (const [name, t] of file.tensors) {
      const mapped = (map as Record<string, unknown>)[name];
      if (mapped !== shard)
        problems.push(
          `${shard} holds ${name}, which the index ${typeof mapped === 'string' ? `places in ${mapped}` : 'does not list'}`,
        );
      else tensors.set(name, t);
    }
    for (const [k, v] of Object.entries(file.metadata)) if (!Object.hasOwn(meta, k)) meta[k] = v;
  }
  if (problems.length)
    throw new FormatError(
      `${indexPath}: shards disagree with the weight_map (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n${problems
        .slice(0, 25)
        .map((p) => `  ${p}`)
        .join('\n')}${problems.length > 25 ? `\n  … and ${problems.length - 25} more` : ''}`,
    );
  return { tensors, metadata: meta };
}

export interface SaveOptions {
  /** Stored as the safetensors `__metadata__` (string values). */
  metadata?: Record<string, string>;
}

/**
 * Writes config.json and model.safetensors into `dir` (created when absent), after checking the config and
 * that the tensors are exactly those the config implies. Each file is written to a temporary name first and
 * then renamed, so a failed save leaves no half-written file. model.safetensors takes precedence over any
 * model.safetensors.index.json already in the folder.
 */
export async function saveModelDir(
  dir: string,
  config: ConfigEnvelope,
  tensors: Map<string, TensorInput> | Record<string, TensorInput>,
  options: SaveOptions = {},
): Promise<{ configPath: string; weightsPath: string; bytes: number }> {
  const checked = parseModelConfig(config, { source: 'saveModelDir(config)' });
  const map = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  assertTensors(modelTensorSpec(checked.model), map, 'saveModelDir(tensors)');
  for (const [name, t] of map)
    if (t.dtype !== undefined && !FLOAT_DTYPES.has(t.dtype))
      throw new ValidationError(
        `saveModelDir: tensor ${name} has dtype ${t.dtype}; model weights must be F32, F16, BF16 or F64`,
      );
  const bytes = writeSafetensors(map, options.metadata);

  await mkdir(dir, { recursive: true });
  const configPath = join(dir, CONFIG_FILE);
  const weightsPath = join(dir, WEIGHTS_FILE);
  const suffix = `.tmp-${process.pid}-${Date.now()}`;
  await writeAtomic(weightsPath, bytes, suffix);
  await writeAtomic(configPath, `${JSON.stringify(config, null, 2)}\n`, suffix);
  return { configPath, weightsPath, bytes: bytes.byteLength };
}

async function writeAtomic(path: string, data: Uint8Array | string, suffix: string): Promise<void> {
  const tmp = path + suffix;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
