// The registry of every kernel: an explicit object (no import-time registration). The conformance suite
// loops over it.
import { binary, unary } from './elementwise.js';
import { matmul } from './matmul.js';

export type { BinaryOp, UnaryOp } from './elementwise.js';
export { ACTIVATIONS_WGSL, activationRef } from './elementwise.js';
export type { MatmulSpec } from './matmul.js';
export { binary, matmul, unary };

export const kernels = { unary, binary, matmul } as const;
