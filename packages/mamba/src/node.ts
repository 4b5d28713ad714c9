// Node-only parts of @offramp/mamba (file system): loading a HuggingFace Mamba-1 folder — config.json
// (current or older keys) and model.safetensors or model.safetensors.index.json with its shards. Every file
// is read bounded (a regular file within a size cap: a FIFO or a device such as /dev/zero is refused, never
// read), shard names stay inside the folder, and the config's implied weight count is checked against the
// size of the weight files before any of them is read.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { type Device, FormatError, parseJsonText, type SafetensorsTensor, ValidationError } from '@offramp/core';
import {
  MAX_CONFIG_FILE_BYTES,
  nonFiniteWarnings,
  readBoundedText,
  readWeightFiles,
  sizeOf,
  weightFiles,
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

async function readJson(p: string, what: string): Promise<unknown> {
  return parseJsonText(await readBoundedText(p, { maxBytes: MAX_CONFIG_FILE_BYTES, what }), p);
}

const WEIGHTS_WHAT =
  'Mamba weights in safetensors format (larger models are sharded with model.safetensors.index.json)';

/** Reads the weights of a folder: model.safetensors, or the shards listed by model.safetensors.index.json. */
export async function readMambaWeights(dir: string): Promise<Map<string, SafetensorsTensor>> {
  return readWeightFiles(await weightFiles(dir, WEIGHTS_WHAT));
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
  const files = await weightFiles(dir, WEIGHTS_WHAT);
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
