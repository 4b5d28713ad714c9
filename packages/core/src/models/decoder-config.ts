// The config of a Llama-style decoder LM with exits (architecture `decoder_lm`), read from a Hugging Face
// LlamaForCausalLM config.json plus an optional `offramp` section:
//   "offramp": { "exits": [b0, b1, ...], "tokenizer": "<file in the folder>" }
// Exits are 0-based block indices after which an exit head reads (the last block is always one). An exit
// after block j applies model.norm and lm_head (shared, LayerSkip style) unless the weights hold
// offramp.exit_norm.{j}.weight / offramp.exit_head.{j}.weight (its own norm / head).
// Keys this model does not use (bos_token_id, torch_dtype, ...) are ignored; keys that would change the
// computation in a way it does not implement (attention_bias, mlp_bias, hidden_act other than silu, a
// rope_scaling other than llama3, ...) are rejected with what is allowed.
import { FormatError, ValidationError } from '../errors.js';
import { ATTENTION_MAX_HEAD_DIM } from '../kernels/attention.js';

/**
 * Training information an `offramp` section may carry besides exits and tokenizer (written by the trainer,
 * read by people, ignored by inference): each a list of finite numbers; plus `recipe`, a string.
 */
const PROVENANCE_ARRAYS = ['exit_loss_scales', 'exit_loss_weights', 'layer_dropout', 'heldout_bpc'] as const;

/** Inclusive ranges of the integer fields; anything outside is rejected as a corrupt or mistaken config. */
export const DECODER_CONFIG_LIMITS = {
  vocab_size: [1, 1_048_576],
  hidden_size: [1, 65_536],
  num_hidden_layers: [1, 512],
  num_attention_heads: [1, 1_024],
  num_key_value_heads: [1, 1_024],
  intermediate_size: [1, 262_144],
  max_position_embeddings: [1, 1_048_576],
  head_dim: [2, ATTENTION_MAX_HEAD_DIM],
} as const satisfies Record<string, readonly [number, number]>;

export interface Llama3RopeScaling {
  ropeType: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface DecoderConfig {
  architecture: 'decoder_lm';
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
  /** Exit blocks, increasing, the last block included. */
  exits: number[];
  /** Tokenizer file named by offramp.tokenizer (relative to the folder), if any. */
  tokenizer?: string;
}

export interface ParseDecoderConfigOptions {
  /** Tighter (or looser) ranges than DECODER_CONFIG_LIMITS. */
  limits?: Partial<Record<keyof typeof DECODER_CONFIG_LIMITS, readonly [number, number]>>;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));

/** Parses and validates a Llama config.json object; errors (FormatError) name the source and the key. */
export function parseDecoderConfig(
  json: unknown,
  source = 'config.json',
  options: ParseDecoderConfigOptions = {},
): DecoderConfig {
  const fail = (msg: string): never => {
    throw new FormatError(`${source}: ${msg}`);
  };
  if (!isObj(json)) return fail(`expected a JSON object (a Hugging Face LlamaForCausalLM config), got ${show(json)}`);
  const limits = { ...DECODER_CONFIG_LIMITS, ...(options.limits ?? {}) };
  const int = (key: keyof typeof DECODER_CONFIG_LIMITS, fallback?: number): number => {
    const v = json[key] ?? fallback;
    const [lo, hi] = limits[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi)
      return fail(`"${key}" must be an integer in [${lo}, ${hi}], got ${show(json[key])}`);
    return v;
  };
  const num = (key: string, fallback: number | undefined, ok: (x: number) => boolean, allowed: string): number => {
    const v = json[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v))
      return fail(`"${key}" must be ${allowed}, got ${show(json[key])}`);
    return v;
  };
  if (json.model_type !== undefined && json.model_type !== 'llama')
    fail(`"model_type" is ${show(json.model_type)}; this loader reads Llama-style decoders ("llama")`);
  if (json.hidden_act !== undefined && json.hidden_act !== 'silu')
    fail(`"hidden_act" must be "silu" (SwiGLU MLP), got ${show(json.hidden_act)}`);
  for (const k of ['attention_bias', 'mlp_bias'])
    if (json[k] !== undefined && json[k] !== false)
      fail(`"${k}" must be false or absent (biases are not supported), got ${show(json[k])}`);
  if (json.pretraining_tp !== undefined && json.pretraining_tp !== 1)
    fail(`"pretraining_tp" must be 1 or absent, got ${show(json.pretraining_tp)}`);
  const hiddenSize = int('hidden_size');
  const numLayers = int('num_hidden_layers');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0)
    fail(
      `"num_key_value_heads" (${numKvHeads}) must divide "num_attention_heads" (${numHeads}) (grouped-query attention)`,
    );
  let headDim: number;
  if (json.head_dim === undefined || json.head_dim === null) {
    if (hiddenSize % numHeads !== 0)
      fail(
        `"hidden_size" (${hiddenSize}) must be a multiple of "num_attention_heads" (${numHeads}) when "head_dim" is absent`,
      );
    headDim = hiddenSize / numHeads;
    const [lo, hi] = limits.head_dim;
    if (headDim < lo || headDim > hi)
      fail(`the head dimension hidden_size / num_attention_heads = ${headDim} must be in [${lo}, ${hi}]`);
  } else headDim = int('head_dim');
  if (headDim % 2 !== 0) fail(`the head dimension must be even (rotary pairs), got ${headDim}`);
  const intermediateSize = int('intermediate_size');
  const vocabSize = int('vocab_size');
  const maxPositionEmbeddings = int('max_position_embeddings', 2048);
  const ropeTheta = num('rope_theta', 10000, (x) => x > 0, 'a positive number');
  const rmsNormEps = num('rms_norm_eps', 1e-6, (x) => x > 0 && x < 1, 'a number in (0, 1)');
  const tie = json.tie_word_embeddings ?? false;
  if (typeof tie !== 'boolean') fail(`"tie_word_embeddings" must be true or false, got ${show(tie)}`);
  let ropeScaling: Llama3RopeScaling | null = null;
  const rs = json.rope_scaling;
  if (rs !== undefined && rs !== null) {
    if (!isObj(rs)) fail(`"rope_scaling" must be null or an object, got ${show(rs)}`);
    const r = rs as Record<string, unknown>;
    const type = r.rope_type ?? r.type;
    if (type === 'default') ropeScaling = null;
    else if (type !== 'llama3')
      fail(`"rope_scaling" type ${show(type)} is not supported; allowed: absent, null, "default" or "llama3"`);
    else {
      const f = (k: string, ok: (x: number) => boolean, allowed: string): number => {
        const v = r[k];
        if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v))
          return fail(`"rope_scaling.${k}" must be ${allowed}, got ${show(v)}`);
        return v;
      };
      ropeScaling = {
        ropeType: 'llama3',
        factor: f('factor', (x) => x >= 1, 'a number ≥ 1'),
        lowFreqFactor: f('low_freq_factor', (x) => x > 0, 'a positive number'),
        highFreqFactor: f('high_freq_factor', (x) => x > 0, 'a positive number'),
        originalMaxPositionEmbeddings: f(
          'original_max_position_embeddings',
          (x) => Number.isInteger(x) && x >= 1,
          'a positive integer',
        ),
      };
      if (ropeScaling.highFreqFactor <= ropeScaling.lowFreqFactor)
        fail(
          `"rope_scaling.high_freq_factor" (${ropeScaling.highFreqFactor}) must be larger than "low_freq_factor" (${ropeScaling.lowFreqFactor})`,
        );
    }
  }
  let exits = [numLayers - 1];
  let tokenizer: string | undefined;
  const off = json.offramp;
  if (off !== undefined) {
    if (!isObj(off)) fail(`"offramp" must be an object { "exits": [...], "tokenizer"?: "<file>" }, got ${show(off)}`);
    const o = off as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (k === 'exits' || k === 'tokenizer') continue;
      if (k === 'recipe') {
        if (typeof o.recipe !== 'string' || o.recipe.length > 4096)
          fail(`"offramp.recipe" must be a string (a description of the training), got ${show(o.recipe)}`);
        continue;
      }
      if ((PROVENANCE_ARRAYS as readonly string[]).includes(k)) {
        const v = o[k];
        if (!Array.isArray(v) || v.length > 4096 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
          fail(`"offramp.${k}" must be a list of finite numbers (training information), got ${show(v)}`);
        continue;
      }
      fail(
        `"offramp" has an unknown key ${show(k)}; allowed keys: exits, tokenizer, and the training information recipe, ${PROVENANCE_ARRAYS.join(', ')}`,
      );
    }
    if (o.exits !== undefined) {
      try {
        exits = checkDecoderExits(o.exits, numLayers, '"offramp.exits"');
      } catch (e) {
        fail((e as Error).message);
      }
    }
    if (o.tokenizer !== undefined) {
      if (typeof o.tokenizer !== 'string' || o.tokenizer === '')
        fail(`"offramp.tokenizer" must be a file name in the folder, got ${show(o.tokenizer)}`);
      tokenizer = o.tokenizer as string;
    }
  }
  return {
    architecture: 'decoder_lm',
    vocabSize,
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize,
    maxPositionEmbeddings,
    ropeTheta,
    ropeScaling,
    rmsNormEps,
    tieWordEmbeddings: tie as boolean,
    exits,
    tokenizer,
  };
}

/** Validates exit blocks (integers in [0, L), strictly increasing) and adds the last block. */
export function checkDecoderExits(exits: unknown, numLayers: number, what = 'exits'): number[] {
  if (!Array.isArray(exits))
    throw new ValidationError(`${what} must be an array of block indices in [0, ${numLayers}), got ${show(exits)}`);
  exits.forEach((e, i) => {
    if (typeof e !== 'number' || !Number.isInteger(e) || e < 0 || e >= numLayers)
      throw new ValidationError(`${what}[${i}] must be a block index in [0, ${numLayers}), got ${show(e)}`);
    if (i > 0 && e <= (exits[i - 1] as number))
      throw new ValidationError(`${what} must be strictly increasing, got [${exits.join(', ')}]`);
  });
  const out = exits as number[];
  return out.at(-1) === numLayers - 1 ? [...out] : [...out, numLayers - 1];
}

/** Tensor names and shapes a config implies; optional per-exit norms and heads listed separately. */
export function decoderTensorSpec(c: DecoderConfig): {
  required: Map<string, number[]>;
  optional: Map<string, number[]>;
} {
  const { hiddenSize: d, headDim: hd, numHeads: H, numKvHeads: Hkv, intermediateSize: I, vocabSize: V } = c;
  const required = new Map<string, number[]>([['model.embed_tokens.weight', [V, d]]]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    required.set(`${p}.input_layernorm.weight`, [d]);
    required.set(`${p}.post_attention_layernorm.weight`, [d]);
    required.set(`${p}.self_attn.q_proj.weight`, [H * hd, d]);
    required.set(`${p}.self_attn.k_proj.weight`, [Hkv * hd, d]);
    required.set(`${p}.self_attn.v_proj.weight`, [Hkv * hd, d]);
    required.set(`${p}.self_attn.o_proj.weight`, [d, H * hd]);
    required.set(`${p}.mlp.gate_proj.weight`, [I, d]);
    required.set(`${p}.mlp.up_proj.weight`, [I, d]);
    required.set(`${p}.mlp.down_proj.weight`, [d, I]);
  }
  required.set('model.norm.weight', [d]);
  if (!c.tieWordEmbeddings) required.set('lm_head.weight', [V, d]);
  const optional = new Map<string, number[]>();
  for (const j of c.exits.slice(0, -1)) {
    optional.set(`offramp.exit_norm.${j}.weight`, [d]);
    optional.set(`offramp.exit_head.${j}.weight`, [V, d]);
  }
  return { required, optional };
}

/** Number of weights the config implies (without optional exit heads). */
export function decoderWeightCount(c: DecoderConfig): number {
  let n = 0;
  for (const s of decoderTensorSpec(c).required.values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}

/**
 * Checks tensors against the config: every required tensor present with its shape, optional exit tensors
 * with theirs, nothing else (lm_head.weight with tied embeddings is an error: it would be ignored).
 */
export function checkDecoderTensors(
  c: DecoderConfig,
  tensors: ReadonlyMap<string, { shape: readonly number[] }>,
  where = 'decoder weights',
): void {
  const { required, optional } = decoderTensorSpec(c);
  const problems: string[] = [];
  for (const [name, shape] of required) {
    const t = tensors.get(name);
    if (!t) problems.push(`missing '${name}' [${shape.join(', ')}]`);
    else if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i]))
      problems.push(`'${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  for (const [name, t] of tensors) {
    if (required.has(name)) continue;
    const shape = optional.get(name);
    if (!shape) {
      if (name === 'lm_head.weight' && c.tieWordEmbeddings)
        problems.push(
          `'lm_head.weight' is present but tie_word_embeddings is true (the head would be the embedding); set tie_word_embeddings to false or drop the tensor`,
        );
      else if (/^offramp\.exit_(norm|head)\.\d+\.weight$/.test(name))
        problems.push(
          `unexpected '${name}': own exit norms and heads are allowed only at early exits [${c.exits.slice(0, -1).join(', ')}]`,
        );
      else problems.push(`unexpected tensor '${name}'`);
    } else if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i]))
      problems.push(`'${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  if (problems.length) {
    const shown = problems.slice(0, 25);
    throw new FormatError(
      `${where} do not match the config (${problems.length} problem${problems.length > 1 ? 's' : ''}): ${shown.join('; ')}${problems.length > shown.length ? '; …' : ''}`,
    );
  }
}

/**
 * RoPE inverse frequencies (hd / 2) as Hugging Face computes them: θ^(−2i/hd), and with llama3 scaling
 * the low frequencies divided by `factor`, the high ones kept, and the band between interpolated.
 */
export function ropeInverseFrequencies(c: Pick<DecoderConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float64Array {
  const half = c.headDim / 2;
  const out = new Float64Array(half);
  for (let i = 0; i < half; i++) out[i] = 1 / c.ropeTheta ** ((2 * i) / c.headDim);
  const s = c.ropeScaling;
  if (!s) return out;
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const f = out[i];
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowWavelen) out[i] = f / s.factor;
    else if (wavelen >= highWavelen) {
      const smooth =
        (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = (1 - smooth) * (f / s.factor) + smooth * f;
    }
  }
  return out;
}
