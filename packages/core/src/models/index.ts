// Model construction: validates the weights against the config (every expected tensor name and shape),
// uploads them and builds the right early-exit model.
import type { EarlyExitModel } from '../engine/model.js';
import { ValidationError } from '../errors.js';
import type { Device } from '../runtime/device.js';
import { mulberry32, randn } from '../util/random.js';
import { assertTensors, modelTensorSpec } from '../weights/config.js';
import { CnnClassifier } from './cnn.js';
import { type HostTensor, uploadWeights } from './common.js';
import type { ModelConfig } from './config.js';
import { EncoderClassifier } from './encoder.js';
import { MlpClassifier } from './mlp.js';

export type { HostTensor } from './common.js';
export { uploadWeights } from './common.js';
export { SEQ_BUCKETS } from './encoder.js';
export { CnnClassifier, EncoderClassifier, MlpClassifier };

/** Builds an early-exit model on `device` from its config and host weights (checked by name and shape). */
export function buildModel(device: Device, config: ModelConfig, tensors: Map<string, HostTensor>): EarlyExitModel {
  assertTensors(modelTensorSpec(config), tensors, `weights of the ${config.architecture} model`);
  const weights = uploadWeights(device, tensors);
  switch (config.architecture) {
    case 'encoder_classifier':
      return new EncoderClassifier(config, weights);
    case 'mlp_classifier':
      return new MlpClassifier(config, weights);
    case 'cnn_classifier':
      return new CnnClassifier(config, weights);
    default:
      throw new ValidationError(`unknown architecture '${(config as { architecture: string }).architecture}'`);
  }
}

/**
 * Seeded random weights for a config (for tests and benchmarks): linear and conv weights ~ N(0, 1/fan_in),
 * biases and LayerNorm betas ~ N(0, 0.02²), LayerNorm gammas ~ 1 + N(0, 0.1²), embeddings ~ N(0, 0.5²).
 */
export function randomWeights(config: ModelConfig, seed = 1): Map<string, HostTensor> {
  const rand = mulberry32(seed);
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of modelTensorSpec(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (name.startsWith('embeddings.')) data = randn(n, rand, 0.5);
    else if (/\.(ln\d?|ln)\.weight$/.test(name)) data = randn(n, rand, 0.1).map((v) => 1 + v);
    else if (name.endsWith('.bias')) data = randn(n, rand, 0.02);
    else {
      const fanIn = shape.length === 4 ? shape[1] * shape[2] * shape[3] : shape[0];
      data = randn(n, rand, 1 / Math.sqrt(fanIn));
    }
    out.set(name, { shape, data });
  }
  return out;
}

export * from './decoder-config.js';
export * from './decoder-lm.js';
export * from './decoder-random.js';
export { DecoderReference, type ReferenceCache } from './decoder-reference.js';
export * from './enhancer.js';
export * from './image-enhancer.js';
export * from './sampling.js';
