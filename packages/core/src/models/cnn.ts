// Small CNN classifier with exits for 28×28 images (NCHW): stem conv3×3 + ReLU, blocks of two conv3×3 + ReLU
// (the first with stride 1 or 2), exit heads: global average pool → linear, or (exit_pool 'flatten') linear on
// the whole feature map. The pooled vector feeds the cosine-similarity signal in both cases.
//   x: (B, Cin·H·W) → h: (B, C_i, H_i, W_i) → pooled (B, C_i) | flat (B, C_i·H_i·W_i) → logits (B, C)
import type { GraphBuilder, TRef } from '../engine/graph.js';
import type { EarlyExitModel, EncodedBatch, ModelInput, ModelProgram } from '../engine/model.js';
import { conv2d, convOutSize, selectConv2dSpec } from '../kernels/conv2d.js';
import { globalAvgPool } from '../kernels/pool.js';
import type { Tensor } from '../runtime/tensor.js';
import { checkExits, exitHead } from './common.js';
import type { CnnClassifierConfig } from './config.js';
import { encodeFeatures, featureRows } from './mlp.js';

export class CnnClassifier implements EarlyExitModel {
  readonly numBlocks: number;
  readonly exitBlocks: readonly number[];
  readonly numClasses: number;
  /** Channels and spatial size after the stem and after each block. */
  readonly shapes: { c: number; hw: number }[];

  constructor(
    readonly config: CnnClassifierConfig,
    readonly weights: Map<string, Tensor>,
  ) {
    this.numBlocks = config.channels.length;
    this.exitBlocks = config.exits.blocks;
    this.numClasses = config.num_classes;
    checkExits(config.exits, this.numBlocks);
    let hw = config.image_size;
    this.shapes = [{ c: config.stem_channels, hw }];
    config.channels.forEach((c, i) => {
      hw = convOutSize(hw, 3, config.strides[i], 1);
      this.shapes.push({ c, hw });
    });
  }

  private get inputSize(): number {
    return this.config.in_channels * this.config.image_size ** 2;
  }
  batchSize(input: ModelInput): number {
    return featureRows(input, this.inputSize, 'cnn_classifier');
  }
  bucket(): number {
    return 1;
  }
  encode(input: ModelInput): EncodedBatch {
    return encodeFeatures(input, this.inputSize, 'cnn_classifier');
  }

  program(b: GraphBuilder): ModelProgram {
    const cfg = this.config;
    const x = b.input('x', this.inputSize);
    const maxRow = Math.max(...this.shapes.map((s) => s.c * s.hw * s.hw));
    const h = b.carry('h', maxRow);
    const conv = (src: TRef, dst: TRef, name: string, cin: number, hwIn: number, cout: number, stride: number) => {
      const hwOut = convOutSize(hwIn, 3, stride, 1);
      const weight = b.weight(`${name}.weight`);
      b.op(
        conv2d,
        { x: src, weight, bias: b.weight(`${name}.bias`), y: dst },
        (r) => ({ B: r, Cin: cin, H: hwIn, W: hwIn, Cout: cout, KH: 3, KW: 3, stride, pad: 1, Ho: hwOut, Wo: hwOut }),
        {
          spec: { bias: true, act: 'relu', ...selectConv2dSpec(weight.decl.tensor!.device) },
          flopsPerRow: 2 * cin * 9 * cout * hwOut * hwOut + cout * hwOut * hwOut,
          label: name,
        },
      );
    };
    return {
      stem: () => {
        const s = this.shapes[0];
        conv(x, b.next(h, s.c * s.hw * s.hw), 'stem.conv', cfg.in_channels, cfg.image_size, s.c, 1);
      },
      block: (i) => {
        const inS = this.shapes[i];
        const outS = this.shapes[i + 1];
        const mid = b.scratch(`blocks.${i}.mid`, outS.c * outS.hw * outS.hw);
        conv(b.cur(h), mid, `blocks.${i}.conv1`, inS.c, inS.hw, outS.c, cfg.strides[i]);
        conv(mid, b.next(h, outS.c * outS.hw * outS.hw), `blocks.${i}.conv2`, outS.c, outS.hw, outS.c, 1);
      },
      exit: (j) => {
        const s = this.shapes[this.exitBlocks[j] + 1];
        const pooled = b.scratch(`exits.${j}.pooled`, s.c);
        b.op(globalAvgPool, { x: b.cur(h), y: pooled }, (r) => ({ B: r, C: s.c, HW: s.hw * s.hw }), {
          flopsPerRow: s.c * s.hw * s.hw,
          label: `exits.${j}.pool`,
        });
        if ((cfg.exit_pool ?? 'global') === 'global')
          return exitHead(b, j, pooled, pooled, s.c, cfg.num_classes, cfg.exits);
        // the carried row holds exactly (C_i, H_i, W_i) in NCHW order at this point
        return exitHead(b, j, b.cur(h), pooled, s.c * s.hw * s.hw, cfg.num_classes, cfg.exits, s.c);
      },
    };
  }

  dispose(): void {
    for (const t of this.weights.values()) t.dispose();
  }
}
