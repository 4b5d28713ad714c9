// Node-only parts of @offramp/core (they use the file system): loading and saving model directories.

export * from './util/files.js';
export * from './weights/decoder-dir.js';
export * from './weights/enhancer-dir.js';
export { readSafetensorsFile, readWeightFiles, sizeOf, type WeightFiles, weightFiles } from './weights/hf-weights.js';
export * from './weights/model-dir.js';
