// Loading and saving a model directory (Node only): config.json plus model.safetensors, or shards listed in
// model.safetensors.index.json (`{ "metadata"?: {...}, "weight_map": { tensor: shard file name } }`).
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError, ValidationError } from '../errors.js';
import type { ConfigEnvelope } from '../models/config.js';
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

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

async function readBytes(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FormatError(`${path} not found; expected ${what}`, { cause: e });
    throw new FormatError(`${path} cannot be read (${code ?? String(e)}); expected ${what}`, { cause: e });
  }
}

async function readJson(path: string, what: string): Promise<unknown> {
  const text = new TextDecoder().decode(await readBytes(path, what));
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${path} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
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

/**
 * Reads and validates a model directory: the config, the weights (single file or shards) and that every
 * tensor the config implies is present with its shape and a float dtype. Throws FormatError naming the path
 * and what is wrong or missing.
 */
export async function loadModelDir(dir: string, options: ReadOptions = {}): Promise<LoadedModel> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(dir);
  } catch (e) {
    throw new FormatError(`model directory ${dir} does not exist; expected a folder holding ${LAYOUT}`, { cause: e });
  }
  if (!info.isDirectory()) throw new FormatError(`${dir} is not a directory; expected a folder holding ${LAYOUT}`);

  const configPath = join(dir, CONFIG_FILE);
  const config = parseModelConfig(
    await readJson(configPath, 'the model config (JSON with offramp_format, model and optional meta)'),
    { source: configPath },
  );

  const weightsPath = join(dir, WEIGHTS_FILE);
  const indexPath = join(dir, INDEX_FILE);
  let loaded: { tensors: Map<string, SafetensorsTensor>; metadata: Record<string, string> };
  let where: string;
  if (await exists(weightsPath)) {
    loaded = parseFile(await readBytes(weightsPath, 'the weights in safetensors format'), weightsPath, options);
    where = weightsPath;
  } else if (await exists(indexPath)) {
    loaded = await loadShards(dir, indexPath, options);
    where = `the shards of ${indexPath}`;
  } else {
    throw new FormatError(
      `no weights in ${dir}: expected ${WEIGHTS_FILE} or ${INDEX_FILE} (sharded weights) beside ${CONFIG_FILE}`,
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
  assertTensors(modelTensorSpec(config.model), loaded.tensors, where);
  return { config, tensors: loaded.tensors, metadata: loaded.metadata };
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
    const path = join(dir, shard);
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
