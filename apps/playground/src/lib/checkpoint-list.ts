// The checkpoints the playground serves (from the repository's checkpoints/ folder) and the files of each.
export const CHECKPOINT_FILES: Record<string, readonly string[]> = {
  'fashion-cnn': ['config.json', 'model.safetensors'],
  'imdb-encoder': ['config.json', 'model.safetensors', 'word-tokenizer.json'],
  'austen-decoder': ['config.json', 'model.safetensors', 'char-tokenizer.json'],
  'austen-mamba': ['config.json', 'model.safetensors', 'char-tokenizer.json'],
  rbqe: ['config.json', 'model.safetensors'],
};
