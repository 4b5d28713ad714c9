// MLP classifier with exits for flat inputs (28×28 images → 784 features): block i: h = relu(h·W + b),
// exit heads: linear on h.   x: (B, input_size) → h: (B, d) → logits (B, C)

import type { GraphBuilder } from '../engine/graph.js';
import type { EarlyExitModel, EncodedBatch, ModelInput, ModelProgram } from '../engine/model.js';
import { ValidationError } from '../errors.js';
import type { Tensor } from '../runtime/tensor.js';
import { checkExits, exitHead, linear } from './common.js';
import type { MlpClassifierConfig } from './config.js';

export class MlpClassifier implements EarlyExitModel {
  readonly numBlocks: number;
  readonly exitBlocks: readonly number[];
  readonly numClasses: number;

  constructor(
    readonly config: MlpClassifierConfig,
    readonly weights: Map<string, Tensor>,
  ) {
    this.numBlocks = config.num_layers;
    this.exitBlocks = config.exits.blocks;
    this.numClasses = config.num_classes;
    checkExits(config.exits, config.num_layers);
  }

  batchSize(input: ModelInput): number {
    return featureRows(input, this.config.input_size, 'mlp_classifier');
  }
  bucket(): number {
    return 1;
  }
  encode(input: ModelInput, _T: number): EncodedBatch {
    return encodeFeatures(input, this.config.input_size, 'mlp_classifier');
  }

  program(b: GraphBuilder): ModelProgram {
    const c = this.config;
    const d = c.hidden_size;
    const x = b.input('x', c.input_size);
    const h = b.carry('h', d);
    return {
      stem: () => {},
      block: (i) => {
        const inF = i === 0 ? c.input_size : d;
        const src = i === 0 ? x : b.cur(h);
        linear(b, src, `blocks.${i}.fc`, { inF, outF: d, rowsPerSample: 1 }, 'relu', b.next(h));
      },
      exit: (j) => exitHead(b, j, b.cur(h), b.cur(h), d, c.num_classes, c.exits),
    };
  }

  dispose(): void {
    for (const t of this.weights.values()) t.dispose();
  }
}

export function featureRows(input: ModelInput, width: number, arch: string): number {
  if (!('features' in input))
    throw new ValidationError(`${arch} takes feature vectors: { features: Float32Array[] | Float32Array }`);
  const f = input.features;
  if (Array.isArray(f)) return f.length;
  if (f.length % width !== 0)
    throw new ValidationError(
      `${arch}: a flat features array must hold a multiple of ${width} values, got ${f.length}`,
    );
  return f.length / width;
}

export function encodeFeatures(input: ModelInput, width: number, arch: string): EncodedBatch {
  const n = featureRows(input, width, arch);
  const f = (input as { features: Float32Array[] | Float32Array }).features;
  const x = new Float32Array(n * width);
  if (Array.isArray(f)) {
    f.forEach((row, i) => {
      if (row.length !== width)
        throw new ValidationError(`${arch}: sample ${i} has ${row.length} values, expected ${width}`);
      x.set(row, i * width);
    });
  } else x.set(f);
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i]))
      throw new ValidationError(`${arch}: sample ${Math.floor(i / width)} has a non-finite value at ${i % width}`);
  }
  return { rows: n, data: { x } };
}
