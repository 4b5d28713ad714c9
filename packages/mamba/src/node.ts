// Node-only parts of @offramp/mamba (file system): loading a HuggingFace Mamba-1 folder — config.json
// (current or older keys) and model.safetensors or model.safetensors.index.json with its shards.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { type Device, FormatError, parseSafetensors, type SafetensorsTensor } from '@offramp/core';
import { type MambaConfig, parseMambaConfig } from './config.js';
import { MambaLM, type MambaLMOptions } from './model.js';
import { type NormalizedWeights, normalizeMambaTensors } from './weights.js';

export interface LoadedMambaDir extends NormalizedWeights {
  config: MambaConfig;
  /** The config.json object as read. */
  rawConfig: Record<string, unknown>;
  /** tokenizer.json beside the weights, when there is one. */
  tokenizerPath?: string;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function readJson(p: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch (e) {
    throw new FormatError(`${p} cannot be read: ${(e as Error).message}`, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${p} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}

async function readSafetensorsFile(p: string): Promise<Map<string, SafetensorsTensor>> {
  let bytes: Uint8Array;
  try {
    const buf = await readFile(p);
    // a plain Uint8Array view (Node's Buffer.slice does not copy; the decoder's copying path relies on it)
    bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    throw new FormatError(`${p} cannot be read: ${(e as Error).message}`, { cause: e });
  }
  try {
    return parseSafetensors(bytes).tensors;
  } catch (e) {
    throw new FormatError(`${p}: ${(e as Error).message.replace(/^safetensors: /, '')}`, { cause: e });
  }
}

/** Reads the weights of a folder: model.safetensors, or the shards listed by model.safetensors.index.json. */
export async function readMambaWeights(dir: string): Promise<Map<string, SafetensorsTensor>> {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  if (await exists(single)) return readSafetensorsFile(single);
  if (!(await exists(index))) {
    throw new FormatError(
      `no weights in ${dir}: expected model.safetensors or model.safetensors.index.json (sharded) beside config.json`,
    );
  }
  const idx = (await readJson(index)) as { weight_map?: unknown };
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
  const out = new Map<string, SafetensorsTensor>();
  for (const [file, names] of [...shards].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const p = path.join(dir, file);
    const t = await readSafetensorsFile(p);
    for (const n of names) {
      const x = t.get(n);
      if (!x) throw new FormatError(`${index} puts '${n}' in ${file}, but ${p} has no such tensor`);
      out.set(n, x);
    }
    for (const n of t.keys())
      if (!names.includes(n)) throw new FormatError(`${p} holds '${n}', which ${index} does not list`);
  }
  return out;
}

/** Loads config.json and the weights of a HuggingFace Mamba-1 folder, validated and with normalized names. */
export async function loadMambaDir(dir: string): Promise<LoadedMambaDir> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory())
    throw new FormatError(`${dir} is not a folder; expected one holding config.json and model.safetensors`);
  const configPath = path.join(dir, 'config.json');
  const rawConfig = (await readJson(configPath)) as Record<string, unknown>;
  const config = parseMambaConfig(rawConfig, configPath);
  const tensors = await readMambaWeights(dir);
  const norm = normalizeMambaTensors(config, tensors, `weights in ${dir}`);
  const tok = path.join(dir, 'tokenizer.json');
  return { config, rawConfig, ...norm, tokenizerPath: (await exists(tok)) ? tok : undefined };
}

/** loadMambaDir + MambaLM on a device. */
export async function loadMambaLM(
  device: Device,
  dir: string,
  options: MambaLMOptions = {},
): Promise<{ model: MambaLM; loaded: LoadedMambaDir }> {
  const loaded = await loadMambaDir(dir);
  return { model: new MambaLM(device, loaded.config, loaded.tensors, options), loaded };
}
