// The registry of every kernel: an explicit object (no import-time registration). The conformance suite
// loops over it.
import { binary, unary } from './elementwise.js';
import { matmul } from './matmul.js';
import { attention } from './attention.js';
import { attentionDecode, kvAppend } from './attention-decode.js';
import { conv1dCausal, conv1dStep } from './conv1d.js';
import { conv2d } from './conv2d.js';
import { globalAvgPool } from './pool.js';
import { pixelShuffle, upsample2x } from './pixel-shuffle.js';
import { layerNorm } from './layer-norm.js';
import { exitSignals } from './exit-signals.js';
import { scatterRows } from './scatter-rows.js';
import { gatherRows, gatherRowsIndirect } from './gather-rows.js';
import { embedding } from './embedding.js';
import { softmax } from './softmax.js';
import { rmsNorm } from './rms-norm.js';

export type { BinaryOp, UnaryOp } from './elementwise.js';
export { ACTIVATIONS_WGSL, activationRef } from './elementwise.js';
export type { MatmulSpec } from './matmul.js';
export { isCpuRasteriser, selectMatmulSpec } from './matmul.js';
export { binary, matmul, unary };
export type { AttentionSpec } from './attention.js';
export { ATTENTION_MAX_HEAD_DIM } from './attention.js';
export type { Conv1dSpec } from './conv1d.js';
export type { Conv2dActivation, Conv2dSpec } from './conv2d.js';
export { convOutSize } from './conv2d.js';
export type { UpsampleSpec } from './pixel-shuffle.js';
export {
  attention,
  attentionDecode,
  kvAppend,
  conv1dCausal,
  conv1dStep,
  conv2d,
  globalAvgPool,
  pixelShuffle,
  upsample2x,
};
export type { ExitSignalArrays, ExitSignalsSpec } from './exit-signals.js';
export { readSignals, SIGNALS_PER_ROW } from './exit-signals.js';
export { layerNorm, exitSignals, scatterRows, gatherRows, gatherRowsIndirect, embedding, softmax, rmsNorm };

export const kernels = {
  unary,
  binary,
  matmul,
  layerNorm,
  rmsNorm,
  softmax,
  embedding,
  gatherRows,
  gatherRowsIndirect,
  scatterRows,
  exitSignals,
  attention,
  attentionDecode,
  kvAppend,
  conv1dCausal,
  conv1dStep,
  conv2d,
  globalAvgPool,
  pixelShuffle,
  upsample2x,
} as const;
