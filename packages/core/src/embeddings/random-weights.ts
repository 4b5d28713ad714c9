// Random weights for an embedder config (tests): LayerNorm gains near 1, small biases, embeddings and the
// exit-index embedding at 0.5, matrices at 1/√fan-in, so activations stay of order one at every depth.
import type { HostTensor } from '../models/common.js';
import { mulberry32, randn } from '../util/random.js';
import { type EncoderEmbedderConfig, embedderTensorSpec } from './config.js';

export function randomEmbedderWeights(c: EncoderEmbedderConfig, seed: number): Map<string, HostTensor> {
  const rand = mulberry32(seed);
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of embedderTensorSpec(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (/ln\d?\.weight$/.test(name)) data = randn(n, rand, 0.1).map((v) => 1 + v);
    else if (name.endsWith('.bias')) data = randn(n, rand, 0.05);
    else if (name.startsWith('embeddings.') || name === 'head.exit_embedding.weight') data = randn(n, rand, 0.5);
    else data = randn(n, rand, 1 / Math.sqrt(shape[0]));
    out.set(name, { shape, data });
  }
  return out;
}
