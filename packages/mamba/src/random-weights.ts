// Seeded random Mamba-1 weights in the HuggingFace layout (for tests and benchmarks), with values in the
// ranges trained models have: A_log ≈ log(1..N), dt biases the inverse softplus of dt ∈ [1e-3, 1e-1],
// D ≈ 1, norms ≈ 1, Linear weights N(0, 1/fan_in).
import { type HostTensor, mulberry32, randn } from '@offramp/core';
import { type MambaConfig, mambaTensorSpec } from './config.js';

export interface RandomWeightsOptions {
  seed?: number;
  /** Include a separate lm_head.weight (else the head is tied). */
  lmHead?: boolean;
  /** Name prefix of the backbone tensors: 'backbone.' (HF, default) or ''. */
  prefix?: string;
  /** Spelling of the embedding: 'embeddings' (HF, default) or 'embedding' (original checkpoints). */
  embeddingName?: 'embeddings' | 'embedding';
}

export function randomMambaWeights(c: MambaConfig, o: RandomWeightsOptions = {}): Map<string, HostTensor> {
  const rand = mulberry32(o.seed ?? 1);
  const prefix = o.prefix ?? 'backbone.';
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of mambaTensorSpec(c, o.lmHead ?? false)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (name.endsWith('A_log')) {
      const N = shape[1];
      data = Float32Array.from({ length: n }, (_, i) => Math.log((i % N) + 1) + (rand() - 0.5) * 0.5);
    } else if (name.endsWith('dt_proj.bias')) {
      data = Float32Array.from({ length: n }, () => {
        const dt = Math.exp(Math.log(1e-3) + rand() * (Math.log(0.1) - Math.log(1e-3)));
        return dt + Math.log(-Math.expm1(-dt));
      });
    } else if (name.endsWith('mixer.D') || name.endsWith('norm.weight') || name.endsWith('norm_f.weight')) {
      data = randn(n, rand, 0.1).map((v) => 1 + v);
    } else if (name.endsWith('.bias')) data = randn(n, rand, 0.05);
    else if (name.startsWith('embeddings') || name.startsWith('lm_head')) data = randn(n, rand, 0.5);
    else {
      const fanIn = name.endsWith('conv1d.weight') ? shape[2] : shape[1];
      data = randn(n, rand, 1 / Math.sqrt(fanIn));
    }
    let full = name === 'lm_head.weight' ? name : `${prefix}${name}`;
    if (name === 'embeddings.weight') full = `${prefix}${o.embeddingName ?? 'embeddings'}.weight`;
    out.set(full, { shape, data });
  }
  return out;
}
