// Export of the decoder LM as a Hugging Face LlamaForCausalLM folder: config.json (Llama keys plus an
// `offramp` section with the exits) and model.safetensors with HF names, Linear weights as (out, in), the LM
// head tied to the embedding (no lm_head.weight). Reading such a file back gives HF-layout tensors.
import { parseSafetensors, type TensorInput, ValidationError, writeSafetensors } from '@offramp/core';
import type { DecoderDims } from './model.js';
import { headDim } from './model.js';

export type ExportDType = 'F32' | 'F16';

/** (rows, cols) row-major → (cols, rows) row-major. */
export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

const LINEARS: [string, string, string][] = [
  ['wq', 'self_attn.q_proj', 'q'],
  ['wk', 'self_attn.k_proj', 'kv'],
  ['wv', 'self_attn.v_proj', 'kv'],
  ['wo', 'self_attn.o_proj', 'o'],
  ['wg', 'mlp.gate_proj', 'up'],
  ['wu', 'mlp.up_proj', 'up'],
  ['wd', 'mlp.down_proj', 'down'],
];

/** HF tensor names and their shapes for the given dims (tied head: no lm_head.weight). */
export function hfShapes(dims: DecoderDims): Map<string, number[]> {
  const hd = headDim(dims);
  const out = new Map<string, number[]>([['model.embed_tokens.weight', [dims.vocab, dims.d]]]);
  const shape: Record<string, number[]> = {
    q: [dims.heads * hd, dims.d],
    kv: [dims.kvHeads * hd, dims.d],
    o: [dims.d, dims.heads * hd],
    up: [dims.ffn, dims.d],
    down: [dims.d, dims.ffn],
  };
  for (let i = 0; i < dims.layers; i++) {
    out.set(`model.layers.${i}.input_layernorm.weight`, [dims.d]);
    out.set(`model.layers.${i}.post_attention_layernorm.weight`, [dims.d]);
    for (const [, hf, kind] of LINEARS) out.set(`model.layers.${i}.${hf}.weight`, shape[kind]);
  }
  out.set('model.norm.weight', [dims.d]);
  return out;
}

/** Training values (matrices (in, out)) → HF tensors (Linear weights (out, in)). */
export function toHfTensors(
  values: Map<string, Float32Array>,
  dims: DecoderDims,
  dtype: ExportDType = 'F32',
): Map<string, TensorInput> {
  const get = (name: string) => {
    const v = values.get(name);
    if (!v) throw new ValidationError(`decoder export: no value for ${name}`);
    return v;
  };
  const shapes = hfShapes(dims);
  const out = new Map<string, TensorInput>();
  const put = (name: string, data: Float32Array) => out.set(name, { dtype, shape: shapes.get(name)!, data });
  put('model.embed_tokens.weight', get('embeddings.tokens'));
  for (let i = 0; i < dims.layers; i++) {
    put(`model.layers.${i}.input_layernorm.weight`, get(`layers.${i}.ln1`));
    put(`model.layers.${i}.post_attention_layernorm.weight`, get(`layers.${i}.ln2`));
    for (const [ours, hf] of LINEARS) {
      const [outDim, inDim] = shapes.get(`model.layers.${i}.${hf}.weight`)!;
      put(`model.layers.${i}.${hf}.weight`, transpose2d(get(`layers.${i}.${ours}`), inDim, outDim));
    }
  }
  put('model.norm.weight', get('norm'));
  return out;
}

/** HF tensors → training values (the inverse of toHfTensors). */
export function fromHfTensors(
  tensors: Map<string, { shape: number[]; data: ArrayLike<number> }>,
  dims: DecoderDims,
): Map<string, Float32Array> {
  const shapes = hfShapes(dims);
  for (const [name, shape] of shapes) {
    const t = tensors.get(name);
    if (!t) throw new ValidationError(`decoder weights: missing tensor ${name}`);
    if (t.shape.join(',') !== shape.join(','))
      throw new ValidationError(`decoder weights: ${name} has shape [${t.shape}]; expected [${shape}]`);
  }
  const f = (name: string) => Float32Array.from(tensors.get(name)!.data);
  const out = new Map<string, Float32Array>([['embeddings.tokens', f('model.embed_tokens.weight')]]);
  for (let i = 0; i < dims.layers; i++) {
    out.set(`layers.${i}.ln1`, f(`model.layers.${i}.input_layernorm.weight`));
    out.set(`layers.${i}.ln2`, f(`model.layers.${i}.post_attention_layernorm.weight`));
    for (const [ours, hf] of LINEARS) {
      const [outDim, inDim] = shapes.get(`model.layers.${i}.${hf}.weight`)!;
      out.set(`layers.${i}.${ours}`, transpose2d(f(`model.layers.${i}.${hf}.weight`), outDim, inDim));
    }
  }
  out.set('norm', f('model.norm.weight'));
  return out;
}

export function writeDecoderSafetensors(
  values: Map<string, Float32Array>,
  dims: DecoderDims,
  dtype: ExportDType = 'F32',
): Uint8Array {
  return writeSafetensors(toHfTensors(values, dims, dtype), { format: 'pt' });
}

/** config.json of a LlamaForCausalLM folder with the exits and recipe in `offramp`. */
export function llamaConfig(
  dims: DecoderDims,
  dtype: ExportDType,
  offramp: { exits: number[]; tokenizer: string; recipe: string } & Record<string, unknown>,
): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: dims.vocab,
    hidden_size: dims.d,
    intermediate_size: dims.ffn,
    num_hidden_layers: dims.layers,
    num_attention_heads: dims.heads,
    num_key_value_heads: dims.kvHeads,
    head_dim: headDim(dims),
    hidden_act: 'silu',
    max_position_embeddings: dims.maxPos,
    rms_norm_eps: dims.eps,
    rope_theta: dims.ropeTheta,
    rope_scaling: null,
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: true,
    torch_dtype: dtype === 'F16' ? 'float16' : 'float32',
    offramp,
  };
}

/** Dims from a config.json written by llamaConfig (or any Llama config with the same keys). */
export function dimsFromLlamaConfig(c: Record<string, unknown>): DecoderDims {
  const num = (k: string) => {
    const v = c[k];
    if (typeof v !== 'number')
      throw new ValidationError(`config.json: ${k} is ${JSON.stringify(v)}; expected a number`);
    return v;
  };
  return {
    vocab: num('vocab_size'),
    d: num('hidden_size'),
    layers: num('num_hidden_layers'),
    heads: num('num_attention_heads'),
    kvHeads: num('num_key_value_heads'),
    ffn: num('intermediate_size'),
    ropeTheta: num('rope_theta'),
    eps: num('rms_norm_eps'),
    maxPos: num('max_position_embeddings'),
  };
}

/** Parses model.safetensors bytes into HF-layout tensors. */
export function readDecoderSafetensors(
  bytes: Uint8Array,
): Map<string, { dtype: string; shape: number[]; data: Float32Array }> {
  const out = new Map<string, { dtype: string; shape: number[]; data: Float32Array }>();
  for (const [name, t] of parseSafetensors(bytes, { copy: true }).tensors) {
    out.set(name, { dtype: t.dtype, shape: t.shape, data: Float32Array.from(t.data) });
  }
  return out;
}
