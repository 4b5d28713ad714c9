// @offramp/train: training data (cache, loaders for image, text-classification and language-model corpora,
// user JSONL/CSV files) and tokenizers (character, word, byte-level BPE).

export * from './data/austen.js';
export * from './data/cache.js';
export * from './data/fetch.js';
export * from './data/idx.js';
export * from './data/image-codec.js';
export * from './data/images.js';
export * from './data/imdb.js';
export * from './data/kjv.js';
export * from './data/mnist.js';
export * from './data/rdata.js';
export * from './data/sentiment.js';
export { shuffleInPlace, stratifiedSplit } from './data/split.js';
export * from './data/user.js';
export * from './tokenizers/bpe.js';
export * from './tokenizers/char.js';
export * from './tokenizers/word.js';
