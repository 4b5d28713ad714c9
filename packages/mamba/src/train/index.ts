// Training code in float64 with hand-written backward passes (no autodiff library): ops, the Mamba block,
// the LM with exits, AdamW, conversion to the HF layout, and the DYNAMAX exit-classifier training.
export * from './adamw.js';
export * from './block-grad.js';
export * from './classifier-train.js';
export * from './export.js';
export * from './lm-grad.js';
export * from './ops.js';
