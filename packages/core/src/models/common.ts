// Shared pieces of the model builders: weight upload, linear layers and exit heads on a GraphBuilder.

import type { GraphBuilder, TRef } from '../engine/graph.js';
import type { ExitHeadOut } from '../engine/model.js';
import { ValidationError } from '../errors.js';
import { binary, type UnaryOp } from '../kernels/elementwise.js';
import { layerNorm } from '../kernels/layer-norm.js';
import { matmul, selectMatmulSpec } from '../kernels/matmul.js';
import type { Device } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import type { ExitsConfig } from './config.js';

export interface HostTensor {
  shape: number[];
  data: Float32Array | Int32Array | Uint32Array;
}

/** Uploads named host tensors to the device (f32 unless integer typed). */
export function uploadWeights(device: Device, tensors: Map<string, HostTensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, t] of tensors) {
    const dtype = t.data instanceof Int32Array ? 'i32' : t.data instanceof Uint32Array ? 'u32' : 'f32';
    out.set(name, device.tensor(dtype, t.shape, t.data, name));
  }
  return out;
}

/**
 * y = act(x · W + b) over `rowsPerSample` rows per live sample; W stored (in, out).
 * Returns the output scratch tensor.
 */
export function linear(
  b: GraphBuilder,
  x: TRef,
  prefix: string,
  dims: { inF: number; outF: number; rowsPerSample: number },
  act: UnaryOp = 'identity',
  out?: TRef,
): TRef {
  const W = b.weight(`${prefix}.weight`);
  const bias = b.weight(`${prefix}.bias`);
  const y = out ?? b.scratch(`${prefix}.out`, dims.rowsPerSample * dims.outF);
  const { inF, outF, rowsPerSample } = dims;
  // the kernel variant for this adapter, sized for the largest row count the program runs
  const variant = selectMatmulSpec(W.decl.tensor!.device, b.maxRows * rowsPerSample, outF, inF, false, false);
  b.op(
    matmul,
    { a: x, b: W, bias, c: y },
    (r) => ({ M: r * rowsPerSample, N: outF, K: inF, batch: 1, strideA: 0, strideB: 0, strideC: 0 }),
    {
      spec: { ...variant, bias: true, act },
      flopsPerRow: 2 * rowsPerSample * inF * outF + rowsPerSample * outF,
      label: prefix,
    },
  );
  return y;
}

export function layerNormOp(
  b: GraphBuilder,
  x: TRef,
  prefix: string,
  dims: { cols: number; rowsPerSample: number; eps: number },
  out?: TRef,
): TRef {
  const y = out ?? b.scratch(`${prefix}.out`, dims.rowsPerSample * dims.cols);
  b.op(
    layerNorm,
    { x, gamma: b.weight(`${prefix}.weight`), beta: b.weight(`${prefix}.bias`), y },
    (r) => ({ rows: r * dims.rowsPerSample, cols: dims.cols, eps: dims.eps }),
    { flopsPerRow: 8 * dims.rowsPerSample * dims.cols, label: prefix },
  );
  return y;
}

export function addOp(b: GraphBuilder, x: TRef, y: TRef, out: TRef, perRow: number, label: string): void {
  b.op(binary, { x, b: y, y: out }, (r) => ({ n: r * perRow, period: Math.max(1, r * perRow) }), {
    spec: { op: 'add' },
    flopsPerRow: perRow,
    label,
  });
}

/**
 * Exit head on a pooled state z (rows, dim): [pooler: tanh(z·Wp+b)] → classifier; optional gate head
 * tanh(z·W1+b1) → W2 → one logit. `pooled` (poolDim wide, default dim) feeds the cosine-similarity signal.
 */
export function exitHead(
  b: GraphBuilder,
  j: number,
  z: TRef,
  pooled: TRef,
  dim: number,
  classes: number,
  exits: ExitsConfig,
  poolDim = dim,
): ExitHeadOut {
  const p = `exits.${j}`;
  let h = z;
  if (exits.head === 'pooler') h = linear(b, z, `${p}.pooler`, { inF: dim, outF: dim, rowsPerSample: 1 }, 'tanh');
  const logits = linear(b, h, `${p}.classifier`, { inF: dim, outF: classes, rowsPerSample: 1 });
  let gateLogit: TRef | undefined;
  if (exits.gate) {
    const gh = exits.gate_hidden ?? 64;
    const g1 = linear(b, z, `${p}.gate.fc1`, { inF: dim, outF: gh, rowsPerSample: 1 }, 'tanh');
    gateLogit = linear(b, g1, `${p}.gate.fc2`, { inF: gh, outF: 1, rowsPerSample: 1 });
  }
  return { logits, classes, gateLogit, pooled, poolDim };
}

export function checkExits(exits: ExitsConfig, numBlocks: number): void {
  const bl = exits.blocks;
  if (!bl.length || bl[bl.length - 1] !== numBlocks - 1) {
    throw new ValidationError(`exits.blocks must end with the last block (${numBlocks - 1}), got [${bl.join(', ')}]`);
  }
  for (let i = 0; i < bl.length; i++) {
    if (!Number.isInteger(bl[i]) || bl[i] < 0 || bl[i] >= numBlocks || (i > 0 && bl[i] <= bl[i - 1])) {
      throw new ValidationError(
        `exits.blocks must be increasing block indices in [0, ${numBlocks}), got [${bl.join(', ')}]`,
      );
    }
  }
}
