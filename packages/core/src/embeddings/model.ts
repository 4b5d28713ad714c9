// The multi-exit embedder on the engine: the encoder's stem and blocks (models/encoder.ts), and per exit j a
// masked mean over the valid tokens, the shared LayerNorm, the shared projection with exit j's bias (the
// exit-index embedding folded in at load: bias_j = bias + E_j · W[d:]) and an L2 normalisation (the rmsNorm
// kernel with weight 1/√p: x / √(Σx² + p·ε') = x / ‖x‖ for ‖x‖ ≫ 1e-12). The runner sees an encoder whose exit
// "logits" are the unit-length embeddings (p values per row).
//   ids (B, T) → h (B, T, d) → per exit: pooled (B, d) → LN → Linear (d → p) → L2 → (B, p)
import type { GraphBuilder } from '../engine/graph.js';
import type { EarlyExitModel, EncodedBatch, ModelInput, ModelProgram } from '../engine/model.js';
import { maskedMean } from '../kernels/masked-mean.js';
import { rmsNorm } from '../kernels/rms-norm.js';
import { type HostTensor, layerNormOp, linear, uploadWeights } from '../models/common.js';
import type { EncoderClassifierConfig } from '../models/config.js';
import { EncoderClassifier, encoderBackbone } from '../models/encoder.js';
import type { Device } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { assertTensors } from '../weights/config.js';
import { EMBED_NORM_EPS, type EncoderEmbedderConfig, embedderTensorSpec, parseEmbedderConfig } from './config.js';

export class EncoderEmbedder implements EarlyExitModel {
  /** The classifier view the runner reads: the same blocks, `embedding_dim` outputs per exit. */
  readonly config: EncoderClassifierConfig;
  readonly numBlocks: number;
  readonly exitBlocks: readonly number[];
  readonly numClasses: number;
  private readonly encoder: EncoderClassifier;

  constructor(
    readonly embedder: EncoderEmbedderConfig,
    readonly weights: Map<string, Tensor>,
  ) {
    const c = embedder;
    this.config = {
      architecture: 'encoder_classifier',
      vocab_size: c.vocab_size,
      max_position: c.max_position,
      hidden_size: c.hidden_size,
      num_layers: c.num_layers,
      num_heads: c.num_heads,
      intermediate_size: c.intermediate_size,
      num_classes: c.embedding_dim,
      layer_norm_eps: c.layer_norm_eps,
      pad_token_id: c.pad_token_id,
      exits: { blocks: [...c.exit_blocks], head: 'linear' },
    };
    this.encoder = new EncoderClassifier(this.config, weights);
    this.numBlocks = c.num_layers;
    this.exitBlocks = c.exit_blocks;
    this.numClasses = c.embedding_dim;
  }

  batchSize(input: ModelInput): number {
    return this.encoder.batchSize(input);
  }
  validLengths(input: ModelInput): Uint32Array {
    return this.encoder.validLengths(input);
  }
  bucket(input: ModelInput): number {
    return this.encoder.bucket(input);
  }
  encode(input: ModelInput, T: number): EncodedBatch {
    return this.encoder.encode(input, T);
  }

  program(b: GraphBuilder, T: number): ModelProgram {
    const c = this.embedder;
    const d = c.hidden_size;
    const p = c.embedding_dim;
    const eps = c.layer_norm_eps ?? 1e-5;
    const { h, lengths, stem, block } = encoderBackbone(b, T, c);
    return {
      stem,
      block,
      exit: (j) => {
        const pooled = b.scratch(`embed.${j}.pooled`, d);
        b.op(maskedMean, { x: b.cur(h), lengths: b.cur(lengths), y: pooled }, (r) => ({ B: r, T, d }), {
          flopsPerRow: T * d,
          label: `embed.${j}.mean`,
        });
        const z = layerNormOp(b, pooled, 'head.ln', { cols: d, rowsPerSample: 1, eps });
        const u = linear(b, z, `head.proj.exit${j}`, { inF: d, outF: p, rowsPerSample: 1 });
        const y = b.scratch(`embed.${j}.out`, p);
        b.op(
          rmsNorm,
          { x: u, weight: b.weight('head.l2.weight'), y },
          (r) => ({ rows: r, cols: p, eps: (EMBED_NORM_EPS * EMBED_NORM_EPS) / p }),
          { flopsPerRow: 3 * p, label: `embed.${j}.l2` },
        );
        return { logits: y, classes: p, pooled, poolDim: d };
      },
    };
  }

  dispose(): void {
    for (const t of this.weights.values()) t.dispose();
  }
}

/**
 * The tensors the engine runs from the checkpoint's: per exit j, head.proj.exit{j}.weight = W[:d] and
 * head.proj.exit{j}.bias = bias + E_j · W[d:]; head.l2.weight = 1/√p; the encoder's tensors unchanged.
 */
export function engineTensors(c: EncoderEmbedderConfig, t: Map<string, HostTensor>): Map<string, HostTensor> {
  const d = c.hidden_size;
  const e = c.exit_embedding_dim;
  const p = c.embedding_dim;
  const out = new Map<string, HostTensor>();
  for (const [name, v] of t)
    if (!name.startsWith('head.proj.') && name !== 'head.exit_embedding.weight') out.set(name, v);
  const W = t.get('head.proj.weight')!.data;
  const bias = t.get('head.proj.bias')!.data;
  const E = t.get('head.exit_embedding.weight')!.data;
  c.exit_blocks.forEach((_, j) => {
    out.set(`head.proj.exit${j}.weight`, { shape: [d, p], data: Float32Array.from(W.subarray(0, d * p)) });
    const bj = new Float32Array(p);
    for (let o = 0; o < p; o++) {
      let s = bias[o];
      for (let k = 0; k < e; k++) s += E[j * e + k] * W[(d + k) * p + o];
      bj[o] = s;
    }
    out.set(`head.proj.exit${j}.bias`, { shape: [p], data: bj });
  });
  out.set('head.l2.weight', { shape: [p], data: new Float32Array(p).fill(1 / Math.sqrt(p)) });
  return out;
}

/** Checks a config and its tensors (every name and shape) and builds the embedder on `device`. */
export function buildEmbedder(device: Device, config: unknown, tensors: Map<string, HostTensor>): EncoderEmbedder {
  const c = parseEmbedderConfig(config);
  assertTensors(embedderTensorSpec(c), tensors, 'weights of the encoder_embedder model');
  return new EncoderEmbedder(c, uploadWeights(device, engineTensors(c, tensors)));
}
