// Mamba-1 configuration: parsed from a HuggingFace config.json in the current key style (hidden_size,
// num_hidden_layers, state_size, ...) or the older one of the original checkpoints (d_model, n_layer,
// d_state, ...; optionally nested in ssm_cfg), and the tensor names and shapes such a model must have.
import { ValidationError } from '@offramp/core';
import { SCAN_MAX_N } from './kernels/selective-scan.js';

export interface MambaConfig {
  vocabSize: number;
  /** d */
  hiddenSize: number;
  numLayers: number;
  /** N */
  stateSize: number;
  expand: number;
  /** D = expand · d */
  intermediateSize: number;
  /** K */
  convKernel: number;
  /** R */
  timeStepRank: number;
  layerNormEpsilon: number;
  /** in_proj and out_proj have biases. */
  useBias: boolean;
  useConvBias: boolean;
  tieWordEmbeddings: boolean;
  /** Exit blocks (0-based) of an early-exit model; the last block is always an exit. */
  exits?: number[];
}

type Json = Record<string, unknown>;

/**
 * Inclusive ranges of the sizes in a Mamba config.json. Anything outside is refused before a tensor is
 * allocated or a loop runs over the layers (a config naming 10⁹ layers would otherwise take minutes and
 * gigabytes before failing). Pass `limits` to parseMambaConfig / loadMambaDir to raise one.
 */
export const MAMBA_CONFIG_LIMITS = {
  vocab_size: [1, 2_000_000],
  hidden_size: [1, 65_536],
  num_hidden_layers: [1, 1_024],
  /** The scan keeps N states per thread in registers (SCAN_MAX_N). */
  state_size: [1, SCAN_MAX_N],
  expand: [0.0625, 64],
  intermediate_size: [1, 262_144],
  conv_kernel: [1, 64],
  time_step_rank: [1, 65_536],
  pad_vocab_size_multiple: [1, 65_536],
} as const satisfies Record<string, readonly [number, number]>;

export type MambaConfigLimits = { -readonly [K in keyof typeof MAMBA_CONFIG_LIMITS]: readonly [number, number] };

export interface ParseMambaConfigOptions {
  /** Ranges replacing those of MAMBA_CONFIG_LIMITS, by field. */
  limits?: Partial<MambaConfigLimits>;
}

/** The first key of `keys` present in `src` (current keys first), with its value. */
function field(src: Json, keys: string[]): { key: string; value: unknown } | undefined {
  for (const k of keys) {
    const v = src[k];
    if (v !== undefined && v !== null) return { key: k, value: v };
  }
  return undefined;
}

function num(src: Json, keys: string[], where: string, fallback?: number): number {
  const f = field(src, keys);
  if (f) {
    if (typeof f.value !== 'number' || !Number.isFinite(f.value)) {
      throw new ValidationError(`${where}: '${f.key}' must be a number, got ${show(f.value)}`);
    }
    return f.value;
  }
  if (fallback !== undefined) return fallback;
  throw new ValidationError(
    `${where}: missing '${keys[0]}'${
      keys.length > 1
        ? ` (or ${keys
            .slice(1)
            .map((k) => `'${k}'`)
            .join(', ')})`
        : ''
    }`,
  );
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

function bool(src: Json, keys: string[], where: string, fallback: boolean): boolean {
  for (const k of keys) {
    const v = src[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'boolean') throw new ValidationError(`${where}: '${k}' must be true or false, got ${show(v)}`);
    return v;
  }
  return fallback;
}

function posInt(v: number, key: string, where: string): number {
  if (!Number.isInteger(v) || v < 1)
    throw new ValidationError(`${where}: '${key}' must be a positive integer, got ${v}`);
  return v;
}

/**
 * Parses a config.json object. Current keys win over older ones; `time_step_rank`/`dt_rank` "auto" means
 * ⌈d/16⌉; older configs pad the vocabulary to `pad_vocab_size_multiple` as their checkpoints do.
 * `offramp.exits` (an Offramp extension) lists exit blocks. Every size must lie within MAMBA_CONFIG_LIMITS
 * (or `options.limits`).
 */
export function parseMambaConfig(
  json: unknown,
  where = 'config.json',
  options: ParseMambaConfigOptions = {},
): MambaConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ValidationError(`${where}: expected a JSON object`);
  }
  const limits: MambaConfigLimits = { ...MAMBA_CONFIG_LIMITS, ...options.limits };
  const top = json as Json;
  const ssm = typeof top.ssm_cfg === 'object' && top.ssm_cfg !== null ? (top.ssm_cfg as Json) : {};
  const src: Json = { ...ssm, ...top };
  const keyOf = (keys: string[]) => field(src, keys)?.key ?? keys[0];
  /** A size within its limits; the message names the key the file used and how to raise the limit. */
  const sized = (limit: keyof MambaConfigLimits, keys: string[], fallback?: number, integer = true): number => {
    const v = num(src, keys, where, fallback);
    const key = keyOf(keys);
    if (integer) posInt(v, key, where);
    const [lo, hi] = limits[limit];
    if (!(v >= lo && v <= hi))
      throw new ValidationError(
        `${where}: '${key}' must be ${integer ? 'an integer' : 'a number'} in [${lo}, ${hi}], got ${v}${v > hi ? ` (the limit guards against corrupt configs; raise it with the limits option, MAMBA_CONFIG_LIMITS.${limit})` : ''}`,
      );
    return v;
  };
  if (src.model_type !== undefined && src.model_type !== 'mamba') {
    throw new ValidationError(
      `${where}: model_type is ${show(src.model_type)}; this loader reads Mamba-1 ('mamba') configs`,
    );
  }
  if (src.layer !== undefined && src.layer !== 'Mamba1') {
    throw new ValidationError(`${where}: ssm_cfg.layer is ${show(src.layer)}; only Mamba1 is supported`);
  }
  if (src.rms_norm === false)
    throw new ValidationError(`${where}: rms_norm is false (LayerNorm); only RMSNorm models are supported`);
  const d = sized('hidden_size', ['hidden_size', 'd_model']);
  const numLayers = sized('num_hidden_layers', ['num_hidden_layers', 'n_layer']);
  let vocabSize = sized('vocab_size', ['vocab_size']);
  const isOld = src.hidden_size === undefined;
  if (isOld && src.pad_vocab_size_multiple !== undefined && src.pad_vocab_size_multiple !== null) {
    const pad = sized('pad_vocab_size_multiple', ['pad_vocab_size_multiple']);
    if (pad > 1 && vocabSize % pad !== 0) vocabSize += pad - (vocabSize % pad);
    const [, hi] = limits.vocab_size;
    if (vocabSize > hi)
      throw new ValidationError(
        `${where}: 'vocab_size' padded to a multiple of ${pad} is ${vocabSize}, above the limit of ${hi} (MAMBA_CONFIG_LIMITS.vocab_size)`,
      );
  }
  const stateSize = sized('state_size', ['state_size', 'd_state'], 16);
  const expand = sized('expand', ['expand'], 2, false);
  const intermediateSize = sized('intermediate_size', ['intermediate_size'], Math.round(expand * d));
  const convKernel = sized('conv_kernel', ['conv_kernel', 'd_conv'], 4);
  const rankRaw = src.time_step_rank ?? src.dt_rank ?? 'auto';
  const timeStepRank = rankRaw === 'auto' ? Math.ceil(d / 16) : sized('time_step_rank', ['time_step_rank', 'dt_rank']);
  const layerNormEpsilon = num(src, ['layer_norm_epsilon', 'norm_epsilon'], where, 1e-5);
  if (!(layerNormEpsilon > 0))
    throw new ValidationError(`${where}: 'layer_norm_epsilon' must be > 0, got ${layerNormEpsilon}`);
  const cfg: MambaConfig = {
    vocabSize,
    hiddenSize: d,
    numLayers,
    stateSize,
    expand,
    intermediateSize,
    convKernel,
    timeStepRank,
    layerNormEpsilon,
    useBias: bool(src, ['use_bias', 'bias'], where, false),
    useConvBias: bool(src, ['use_conv_bias', 'conv_bias'], where, true),
    tieWordEmbeddings: bool(src, ['tie_word_embeddings', 'tie_embeddings'], where, true),
  };
  const off = top.offramp as Json | undefined;
  if (off && off.exits !== undefined) cfg.exits = checkExitBlocks(off.exits, numLayers, `${where}: offramp.exits`);
  return cfg;
}

/** Number of weights a model of this config holds (the LM head counted when it is not tied). */
export function mambaWeightCount(c: MambaConfig): number {
  const d = c.hiddenSize;
  const D = c.intermediateSize;
  const { stateSize: N, timeStepRank: R, convKernel: K } = c;
  const perLayer =
    d +
    2 * D * d +
    (c.useBias ? 2 * D : 0) +
    D * K +
    (c.useConvBias ? D : 0) +
    (R + 2 * N) * D +
    D * R +
    D +
    D * N +
    D +
    d * D +
    (c.useBias ? d : 0);
  return c.vocabSize * d * (c.tieWordEmbeddings ? 1 : 2) + c.numLayers * perLayer + d;
}

/** Validates exit blocks: increasing integers in [0, L), ending with L − 1 (added when absent). */
export function checkExitBlocks(exits: unknown, numLayers: number, where = 'exits'): number[] {
  if (!Array.isArray(exits) || exits.some((e) => !Number.isInteger(e))) {
    throw new ValidationError(`${where} must be an array of block indices, got ${show(exits)}`);
  }
  const out = [...(exits as number[])];
  if (out[out.length - 1] !== numLayers - 1) out.push(numLayers - 1);
  out.forEach((e, i) => {
    if (e < 0 || e >= numLayers || (i > 0 && e <= out[i - 1])) {
      throw new ValidationError(`${where} must be increasing block indices in [0, ${numLayers}), got ${show(exits)}`);
    }
  });
  return out;
}

/** DYNAMAX's default: an exit after every block of the latter half (blocks ⌊L/2⌋ … L − 1). */
export function defaultExitBlocks(numLayers: number): number[] {
  return Array.from({ length: numLayers - Math.floor(numLayers / 2) }, (_, i) => Math.floor(numLayers / 2) + i);
}

/** Tensor names (without the `backbone.` prefix, embeddings spelled `embeddings`) and shapes. */
export function mambaTensorSpec(c: MambaConfig, withLmHead: boolean): Map<string, number[]> {
  const d = c.hiddenSize;
  const D = c.intermediateSize;
  const { stateSize: N, timeStepRank: R, convKernel: K } = c;
  const m = new Map<string, number[]>();
  m.set('embeddings.weight', [c.vocabSize, d]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `layers.${i}`;
    m.set(`${p}.norm.weight`, [d]);
    m.set(`${p}.mixer.in_proj.weight`, [2 * D, d]);
    if (c.useBias) m.set(`${p}.mixer.in_proj.bias`, [2 * D]);
    m.set(`${p}.mixer.conv1d.weight`, [D, 1, K]);
    if (c.useConvBias) m.set(`${p}.mixer.conv1d.bias`, [D]);
    m.set(`${p}.mixer.x_proj.weight`, [R + 2 * N, D]);
    m.set(`${p}.mixer.dt_proj.weight`, [D, R]);
    m.set(`${p}.mixer.dt_proj.bias`, [D]);
    m.set(`${p}.mixer.A_log`, [D, N]);
    m.set(`${p}.mixer.D`, [D]);
    m.set(`${p}.mixer.out_proj.weight`, [d, D]);
    if (c.useBias) m.set(`${p}.mixer.out_proj.bias`, [d]);
  }
  m.set('norm_f.weight', [d]);
  if (withLmHead) m.set('lm_head.weight', [c.vocabSize, d]);
  return m;
}
