// The Mamba kernels, as an explicit registry (the conformance tests loop over it).
import { convStateFromSequence } from './conv-state.js';
import { lastTokenRows } from './last-token.js';
import { selectiveScan, selectiveStateUpdate } from './selective-scan.js';

export type { ScanSpec, StepSpec } from './selective-scan.js';
export { SCAN_MAX_N } from './selective-scan.js';
export { convStateFromSequence, lastTokenRows, selectiveScan, selectiveStateUpdate };

export const mambaKernels = { selectiveScan, selectiveStateUpdate, convStateFromSequence, lastTokenRows } as const;
