// Node-only parts of @offramp/core (they use the file system): loading and saving model directories.

export * from './util/files.js';
export * from './weights/decoder-dir.js';
export * from './weights/model-dir.js';
