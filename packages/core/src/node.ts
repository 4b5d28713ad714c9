// Node-only parts of @offramp/core (they use the file system): loading and saving model directories.
export * from './weights/model-dir.js';
export * from './util/files.js';
