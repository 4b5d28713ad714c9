// The code-search embedder outside training: loading a folder and embedding texts, the tokenizer, retrieval
// metrics, BM25 and the dynamic exit (no TensorFlow.js: the training lives in model.ts and train.ts).
export * from './load.js';
export * from './retrieval.js';
export {
  buildTruncatedGpt2Tokenizer,
  CODE_TOKENIZER_FILE,
  codeWords,
  encodeTexts,
  loadBpeTokenizer,
  oneLine,
  PAD_TOKEN,
  readTextForm,
  TEXT_FORM_FILE,
  TEXT_FORMS,
  type TextForm,
  textIn,
} from './tokenizer.js';
