// Loading a Hugging Face LlamaForCausalLM folder as a decoder LM with exits (Node only): config.json (with
// an optional "offramp" section, see models/decoder-config.ts), model.safetensors or
// model.safetensors.index.json with its shards (F32, F16 or BF16, widened to f32), and a tokenizer when the
// folder has one (offramp.tokenizer: an Offramp char tokenizer or a tokenizer.json; else tokenizer.json).
// Every file is read bounded (a regular file within a size cap), shard and tokenizer names must stay inside
// the folder, and the config's implied weight count is checked against the weight files' size before any
// weights are read.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { FormatError, ValidationError } from '../errors.js';
import {
  checkDecoderTensors,
  type DecoderConfig,
  decoderWeightCount,
  type ParseDecoderConfigOptions,
  parseDecoderConfig,
} from '../models/decoder-config.js';
import { DecoderLM, type DecoderLMOptions } from '../models/decoder-lm.js';
import type { Device } from '../runtime/device.js';
import { FILE_LIMITS, readBoundedText, resolveInside } from '../util/files.js';
import { parseJsonText } from '../util/json.js';
import { readJson, readWeightFiles, sizeOf, weightFiles } from './hf-weights.js';
import { nonFiniteWarnings } from './model-dir.js';

/** Text ↔ ids of a decoder folder's tokenizer. */
export interface DecoderTokenizer {
  kind: 'char' | 'tokenizer.json';
  vocabSize: number;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
}

export interface LoadedDecoderDir {
  config: DecoderConfig;
  rawConfig: Record<string, unknown>;
  /** HF-named tensors, f32. */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  /** The stored dtype of each tensor (F32, F16, BF16). */
  dtypes: Map<string, string>;
  tokenizerPath?: string;
  tokenizer?: DecoderTokenizer;
}

export interface LoadDecoderOptions extends ParseDecoderConfigOptions {
  /** Warnings about weights that load but look wrong (NaN or ±Infinity). Default: console.warn. */
  onWarning?: (message: string) => void;
}

const WEIGHTS_WHAT =
  'decoder weights in safetensors format (larger models are sharded with model.safetensors.index.json)';
const ACCEPTED_DTYPES = new Set(['F32', 'F16', 'BF16']);

/** Parses an Offramp char tokenizer ({type: 'char', version: 1, chars}: id 0 unknown, char i has id i + 1). */
function charTokenizer(json: unknown, source: string): DecoderTokenizer {
  const j = json as { type?: unknown; version?: unknown; chars?: unknown } | null;
  if (j === null || typeof j !== 'object' || j.type !== 'char' || j.version !== 1 || !Array.isArray(j.chars))
    throw new FormatError(`${source}: expected {type: 'char', version: 1, chars: string[]}`);
  const chars = j.chars as unknown[];
  const ids = new Map<string, number>();
  chars.forEach((c, i) => {
    if (typeof c !== 'string' || [...c].length !== 1 || ids.has(c))
      throw new FormatError(`${source}: chars[${i}] is ${JSON.stringify(c)}; expected one character, not repeated`);
    ids.set(c, i + 1);
  });
  const vocabSize = chars.length + 1;
  return {
    kind: 'char',
    vocabSize,
    encode: (text) => [...text].map((c) => ids.get(c) ?? 0),
    decode: (list) =>
      list
        .map((id, i) => {
          if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
            throw new ValidationError(`decode: ids[${i}] is ${id}; expected an integer in [0, ${vocabSize})`);
          return id === 0 ? '\uFFFD' : (chars[id - 1] as string);
        })
        .join(''),
  };
}

function hfTokenizer(json: unknown, config: object, source: string): DecoderTokenizer {
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json as object, config);
  } catch (e) {
    throw new FormatError(`${source}: the tokenizer cannot be built (${(e as Error).message})`, { cause: e });
  }
  let max = -1;
  for (const id of tok.get_vocab(true).values()) max = Math.max(max, id);
  return {
    kind: 'tokenizer.json',
    vocabSize: max + 1,
    encode: (text) => Array.from(tok.encode(text, { add_special_tokens: false }).ids),
    decode: (ids) => tok.decode([...ids], { skip_special_tokens: false }),
  };
}

/** Loads a folder's tokenizer file: an Offramp char tokenizer or a tokenizer.json. */
export async function loadDecoderTokenizer(file: string): Promise<DecoderTokenizer> {
  const json = parseJsonText(
    await readBoundedText(file, {
      maxBytes: FILE_LIMITS.data,
      what: 'a tokenizer (tokenizer.json or a char tokenizer)',
    }),
    file,
  );
  if ((json as { type?: unknown })?.type === 'char') return charTokenizer(json, file);
  if (typeof (json as { model?: unknown })?.model !== 'object')
    throw new FormatError(`${file}: neither a tokenizer.json (no "model" object) nor an Offramp char tokenizer`);
  const cfgPath = path.join(path.dirname(file), 'tokenizer_config.json');
  const cfg =
    (await sizeOf(cfgPath, 'tokenizer config')) !== undefined
      ? ((await readJson(cfgPath, 'tokenizer config')) as object)
      : { clean_up_tokenization_spaces: false };
  return hfTokenizer(json, cfg, file);
}

/**
 * Reads config.json, the weights (checked against the config: names, shapes, dtypes F32 / F16 / BF16,
 * nothing extra) and the tokenizer of a Llama-format folder.
 */
export async function loadDecoderDir(dir: string, options: LoadDecoderOptions = {}): Promise<LoadedDecoderDir> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory())
    throw new FormatError(`${dir} is not a folder; expected one holding config.json and model.safetensors`);
  const configPath = path.join(dir, 'config.json');
  const rawConfig = (await readJson(configPath, 'the decoder config (Hugging Face config.json)')) as Record<
    string,
    unknown
  >;
  const config = parseDecoderConfig(rawConfig, configPath, options);
  const files = await weightFiles(dir, WEIGHTS_WHAT);
  const weights = decoderWeightCount(config);
  if (weights * 2 > files.totalBytes) {
    const where = files.index ? `the shards of ${files.index} hold` : `${files.files[0].path} is`;
    throw new FormatError(
      `${configPath} implies ${weights} weights (at least ${weights * 2} bytes at 2 bytes each), but ${where} only ${files.totalBytes} bytes; the config does not describe these weights`,
    );
  }
  const raw = await readWeightFiles(files);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const dtypes = new Map<string, string>();
  for (const [name, t] of raw) {
    if (!ACCEPTED_DTYPES.has(t.dtype))
      throw new FormatError(`weights in ${dir}: '${name}' is stored as ${t.dtype}; allowed: F32, F16, BF16`);
    tensors.set(name, { shape: t.shape, data: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data) });
    dtypes.set(name, t.dtype);
  }
  checkDecoderTensors(config, tensors, `weights in ${dir}`);
  const warn = options.onWarning ?? ((m: string) => console.warn(`warning: ${m}`));
  for (const m of nonFiniteWarnings(raw, `weights in ${dir}`)) warn(m);
  let tokenizerPath: string | undefined;
  if (config.tokenizer) {
    tokenizerPath = resolveInside(dir, config.tokenizer, configPath);
    if ((await sizeOf(tokenizerPath, 'a tokenizer')) === undefined)
      throw new FormatError(
        `${configPath} names the tokenizer "${config.tokenizer}", but ${tokenizerPath} does not exist`,
      );
  } else {
    const tj = path.join(dir, 'tokenizer.json');
    if ((await sizeOf(tj, 'a tokenizer')) !== undefined) tokenizerPath = tj;
  }
  const tokenizer = tokenizerPath ? await loadDecoderTokenizer(tokenizerPath) : undefined;
  if (tokenizer && tokenizer.vocabSize > config.vocabSize)
    throw new FormatError(
      `${tokenizerPath}: the tokenizer has ${tokenizer.vocabSize} ids, more than vocab_size ${config.vocabSize} in ${configPath}`,
    );
  return { config, rawConfig, tensors, dtypes, tokenizerPath, tokenizer };
}

/** loadDecoderDir + DecoderLM on a device (the tensors are checked against the config there). */
export async function loadDecoderLM(
  dir: string,
  device: Device,
  options: DecoderLMOptions & LoadDecoderOptions = {},
): Promise<{ model: DecoderLM; loaded: LoadedDecoderDir }> {
  const loaded = await loadDecoderDir(dir, options);
  try {
    return { model: new DecoderLM(device, loaded.config, loaded.tensors, options), loaded };
  } catch (e) {
    if (e instanceof ValidationError || e instanceof FormatError)
      throw new FormatError(`${dir}: ${e.message}`, { cause: e });
    throw e;
  }
}
