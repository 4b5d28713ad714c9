// Generation strategies built on the decoder's layer-range calls.
export * from './speculative.js';
