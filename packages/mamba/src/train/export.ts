// Converts trained float64 parameters to the HuggingFace Mamba layout (float32 tensors named
// backbone.embeddings.weight, backbone.layers.{i}.mixer.*, backbone.norm_f.weight; the head tied) and back.
import type { HostTensor } from '@offramp/core';
import { normalizeName } from '../weights.js';
import type { BlockParams } from './block-grad.js';
import type { LmDims, LmParams } from './lm-grad.js';
import type { F64 } from './ops.js';

const f32 = (a: F64): Float32Array => Float32Array.from(a);
const f64 = (a: ArrayLike<number>): F64 => Float64Array.from(a);

/** Tensors of one block under `prefix` (e.g. `backbone.layers.0`), in the HF layout. */
export function blockToHf(p: BlockParams, prefix: string, K: number): Map<string, HostTensor> {
  const D = p.convB.length;
  const d = p.norm.length;
  const N = p.A_log.length / D;
  const R = p.dtW.length / D;
  const out = p.outProj.length / D;
  const m = new Map<string, HostTensor>();
  const put = (name: string, shape: number[], a: F64) => m.set(`${prefix}.${name}`, { shape, data: f32(a) });
  put('norm.weight', [d], p.norm);
  put('mixer.in_proj.weight', [2 * D, d], p.inProj);
  put('mixer.conv1d.weight', [D, 1, K], p.convW);
  put('mixer.conv1d.bias', [D], p.convB);
  put('mixer.x_proj.weight', [R + 2 * N, D], p.xProj);
  put('mixer.dt_proj.weight', [D, R], p.dtW);
  put('mixer.dt_proj.bias', [D], p.dtB);
  put('mixer.A_log', [D, N], p.A_log);
  put('mixer.D', [D], p.Dskip);
  put('mixer.out_proj.weight', [out, D], p.outProj);
  if (p.outB) put('mixer.out_proj.bias', [out], p.outB);
  return m;
}

/** Reads one block back from HF-layout tensors (float32 or float64 data). */
export function blockFromHf(t: Map<string, { data: ArrayLike<number> }>, prefix: string): BlockParams {
  const get = (name: string) => {
    const x = t.get(`${prefix}.${name}`);
    if (!x) throw new Error(`missing tensor ${prefix}.${name}`);
    return f64(x.data);
  };
  const p: BlockParams = {
    norm: get('norm.weight'),
    inProj: get('mixer.in_proj.weight'),
    convW: get('mixer.conv1d.weight'),
    convB: get('mixer.conv1d.bias'),
    xProj: get('mixer.x_proj.weight'),
    dtW: get('mixer.dt_proj.weight'),
    dtB: get('mixer.dt_proj.bias'),
    A_log: get('mixer.A_log'),
    Dskip: get('mixer.D'),
    outProj: get('mixer.out_proj.weight'),
  };
  if (t.has(`${prefix}.mixer.out_proj.bias`)) p.outB = get('mixer.out_proj.bias');
  return p;
}

export function lmToHf(p: LmParams, dm: LmDims): Map<string, HostTensor> {
  const m = new Map<string, HostTensor>();
  m.set('backbone.embeddings.weight', { shape: [dm.vocab, dm.d], data: f32(p.emb) });
  p.layers.forEach((l, i) => {
    for (const [k, v] of blockToHf(l, `backbone.layers.${i}`, dm.K)) m.set(k, v);
  });
  m.set('backbone.norm_f.weight', { shape: [dm.d], data: f32(p.normF) });
  return m;
}

/** Reads an LM back from tensors with HF names (any accepted style) or this package's normalized names. */
export function lmFromHf(tensors: Map<string, { data: ArrayLike<number> }>, dm: LmDims): LmParams {
  const t = new Map([...tensors].map(([n, x]) => [normalizeName(n), x]));
  const get = (name: string) => {
    const x = t.get(name);
    if (!x) throw new Error(`missing tensor ${name}`);
    return f64(x.data);
  };
  return {
    emb: get('embeddings.weight'),
    normF: get('norm_f.weight'),
    layers: Array.from({ length: dm.layers }, (_, i) => blockFromHf(t, `layers.${i}`)),
  };
}

/** HF-style config.json of a trained model (current key names). */
export function hfConfig(dm: LmDims, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ['MambaForCausalLM'],
    model_type: 'mamba',
    vocab_size: dm.vocab,
    hidden_size: dm.d,
    num_hidden_layers: dm.layers,
    state_size: dm.N,
    expand: dm.D / dm.d,
    intermediate_size: dm.D,
    conv_kernel: dm.K,
    time_step_rank: dm.R,
    layer_norm_epsilon: dm.eps,
    use_bias: false,
    use_conv_bias: true,
    tie_word_embeddings: true,
    residual_in_fp32: true,
    ...extra,
  };
}
