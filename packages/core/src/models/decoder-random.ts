// Seeded random weights for a decoder config (tests and benchmarks), HF-named: linear weights
// ~ N(0, 1/fan_in), RMSNorm gains ~ 1 + N(0, 0.1²), embeddings ~ N(0, 1); optional own exit norms / heads.
import { mulberry32, randn } from '../util/random.js';
import type { HostTensor } from './common.js';
import { type DecoderConfig, decoderTensorSpec } from './decoder-config.js';

export interface RandomDecoderOptions {
  /** Early exits that get their own norm (offramp.exit_norm.{j}.weight). */
  ownExitNorms?: number[];
  /** Early exits that get their own head (offramp.exit_head.{j}.weight). */
  ownExitHeads?: number[];
}

export function randomDecoderWeights(
  c: DecoderConfig,
  seed = 1,
  o: RandomDecoderOptions = {},
): Map<string, HostTensor> {
  const rand = mulberry32(seed);
  const { required, optional } = decoderTensorSpec(c);
  const names = [...required.keys()];
  for (const j of o.ownExitNorms ?? []) names.push(`offramp.exit_norm.${j}.weight`);
  for (const j of o.ownExitHeads ?? []) names.push(`offramp.exit_head.${j}.weight`);
  const out = new Map<string, HostTensor>();
  for (const name of names) {
    const shape = required.get(name) ?? optional.get(name);
    if (!shape) throw new Error(`randomDecoderWeights: '${name}' is not a tensor of this config`);
    const n = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (shape.length === 1) data = randn(n, rand, 0.1).map((v) => 1 + v);
    else if (name === 'model.embed_tokens.weight') data = randn(n, rand, 1);
    else data = randn(n, rand, 1 / Math.sqrt(shape[1]));
    out.set(name, { shape: [...shape], data });
  }
  return out;
}
