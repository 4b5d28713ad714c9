// The registry of every kernel: an explicit object (no import-time registration). The conformance suite
// loops over it.

import { attention } from './attention.js';
import { cachedAttention } from './attention-cached.js';
import { attentionDecode, kvAppend } from './attention-decode.js';
import { channelScale, concatChannels } from './channel-ops.js';
import { conv1dCausal, conv1dStep } from './conv1d.js';
import { conv2d } from './conv2d.js';
import { binary, unary } from './elementwise.js';
import { embedding } from './embedding.js';
import { exitSignals } from './exit-signals.js';
import { gatherRows, gatherRowsIndirect } from './gather-rows.js';
import { layerNorm } from './layer-norm.js';
import { maskedMean } from './masked-mean.js';
import { matmul } from './matmul.js';
import { pixelShuffle, upsample2x } from './pixel-shuffle.js';
import { globalAvgPool } from './pool.js';
import { qualityScore } from './quality-score.js';
import { rmsNorm } from './rms-norm.js';
import { ropeCacheWrite } from './rope.js';
import { scatterRows } from './scatter-rows.js';
import { softmax } from './softmax.js';
import { swiglu } from './swiglu.js';

export type { AttentionSpec } from './attention.js';
export { ATTENTION_MAX_HEAD_DIM } from './attention.js';
export type { CachedAttentionSpec } from './attention-cached.js';
export { cachedAttentionBlock } from './attention-cached.js';
export type { Conv1dSpec } from './conv1d.js';
export type { Conv2dActivation, Conv2dSpec } from './conv2d.js';
export { convOutSize, selectConv2dSpec } from './conv2d.js';
export type { BinaryOp, UnaryOp } from './elementwise.js';
export { ACTIVATIONS_WGSL, activationRef } from './elementwise.js';
export type { ExitSignalArrays, ExitSignalsSpec } from './exit-signals.js';
export { readSignals, SIGNALS_PER_ROW } from './exit-signals.js';
export type { MatmulSpec } from './matmul.js';
export { isCpuRasteriser, selectMatmulSpec } from './matmul.js';
export type { UpsampleSpec } from './pixel-shuffle.js';
export type { BlockScore, QualityScoreResult } from './quality-score-reference.js';
export { QUALITY_THRESHOLD_JPEG, qualityScoreReference } from './quality-score-reference.js';
export type { RopeCacheWriteSpec } from './rope.js';
export {
  attention,
  attentionDecode,
  binary,
  cachedAttention,
  channelScale,
  concatChannels,
  conv1dCausal,
  conv1dStep,
  conv2d,
  embedding,
  exitSignals,
  gatherRows,
  gatherRowsIndirect,
  globalAvgPool,
  kvAppend,
  layerNorm,
  matmul,
  pixelShuffle,
  qualityScore,
  rmsNorm,
  ropeCacheWrite,
  scatterRows,
  softmax,
  swiglu,
  unary,
  upsample2x,
};

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
  cachedAttention,
  ropeCacheWrite,
  swiglu,
  conv1dCausal,
  conv1dStep,
  conv2d,
  globalAvgPool,
  maskedMean,
  pixelShuffle,
  upsample2x,
  qualityScore,
  concatChannels,
  channelScale,
} as const;
