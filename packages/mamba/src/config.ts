// Mamba-1 configuration: parsed from a HuggingFace config.json in the current key style (hidden_size,
// num_hidden_layers, state_size, ...) or the older one of the original checkpoints (d_model, n_layer,
// d_state, ...; optionally nested in ssm_cfg), and the tensor names and shapes such a model must have.
import { ValidationError } from '@offramp/core';

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

function num(src: Json, keys: string[], where: string, fallback?: number): number {
  for (const k of keys) {
    const v = src[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new ValidationError(`${where}: '${k}' must be a number, got ${JSON.stringify(v)}`);
    }
    return v;
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

function bool(src: Json, keys: string[], where: string, fallback: boolean): boolean {
  for (const k of keys) {
    const v = src[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'boolean')
      throw new ValidationError(`${where}: '${k}' must be true or false, got ${JSON.stringify(v)}`);
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
 * `offramp.exits` (an Offramp extension) lists exit blocks.
 */
export function parseMambaConfig(json: unknown, where = 'config.json'): MambaConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ValidationError(`${where}: expected a JSON object`);
  }
  const top = json as Json;
  const ssm = typeof top.ssm_cfg === 'object' && top.ssm_cfg !== null ? (top.ssm_cfg as Json) : {};
  const src: Json = { ...ssm, ...top };
  if (src.model_type !== undefined && src.model_type !== 'mamba') {
    throw new ValidationError(
      `${where}: model_type is ${JSON.stringify(src.model_type)}; this loader reads Mamba-1 ('mamba') configs`,
    );
  }
  if (src.layer !== undefined && src.layer !== 'Mamba1') {
    throw new ValidationError(`${where}: ssm_cfg.layer is ${JSON.stringify(src.layer)}; only Mamba1 is supported`);
  }
  if (src.rms_norm === false)
    throw new ValidationError(`${where}: rms_norm is false (LayerNorm); only RMSNorm models are supported`);
  const d = posInt(num(src, ['hidden_size', 'd_model'], where), 'hidden_size', where);
  const numLayers = posInt(num(src, ['num_hidden_layers', 'n_layer'], where), 'num_hidden_layers', where);
  let vocabSize = posInt(num(src, ['vocab_size'], where), 'vocab_size', where);
  const isOld = src.hidden_size === undefined;
  const pad = src.pad_vocab_size_multiple;
  if (isOld && typeof pad === 'number' && pad > 1 && vocabSize % pad !== 0) vocabSize += pad - (vocabSize % pad);
  const stateSize = posInt(num(src, ['state_size', 'd_state'], where, 16), 'state_size', where);
  const expand = num(src, ['expand'], where, 2);
  const intermediateSize = posInt(
    num(src, ['intermediate_size'], where, Math.round(expand * d)),
    'intermediate_size',
    where,
  );
  const convKernel = posInt(num(src, ['conv_kernel', 'd_conv'], where, 4), 'conv_kernel', where);
  const rankRaw = src.time_step_rank ?? src.dt_rank ?? 'auto';
  const timeStepRank =
    rankRaw === 'auto'
      ? Math.ceil(d / 16)
      : posInt(num({ r: rankRaw }, ['r'], `${where} (time_step_rank)`), 'time_step_rank', where);
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

/** Validates exit blocks: increasing integers in [0, L), ending with L − 1 (added when absent). */
export function checkExitBlocks(exits: unknown, numLayers: number, where = 'exits'): number[] {
  if (!Array.isArray(exits) || exits.some((e) => !Number.isInteger(e))) {
    throw new ValidationError(`${where} must be an array of block indices, got ${JSON.stringify(exits)}`);
  }
  const out = [...(exits as number[])];
  if (out[out.length - 1] !== numLayers - 1) out.push(numLayers - 1);
  out.forEach((e, i) => {
    if (e < 0 || e >= numLayers || (i > 0 && e <= out[i - 1])) {
      throw new ValidationError(
        `${where} must be increasing block indices in [0, ${numLayers}), got [${(exits as number[]).join(', ')}]`,
      );
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
