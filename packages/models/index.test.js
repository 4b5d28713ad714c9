// In a checkout the package finds the repository's checkpoints/ folder; packed, its own copy (prepack).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkpointsDir, listModels, modelDir } from './index.js';

test('the shipped checkpoints are found by name', () => {
  const names = listModels();
  for (const n of ['fashion-cnn', 'imdb-encoder', 'imdb-ponder', 'imdb-gates', 'austen-mamba', 'austen-decoder']) {
    assert.ok(names.includes(n), `${n} missing from ${checkpointsDir()}: ${names.join(', ')}`);
    assert.ok(existsSync(join(modelDir(n), 'config.json')));
  }
});

test('an unknown name is an error that lists the checkpoints', () => {
  assert.throws(() => modelDir('no-such-model'), /no checkpoint named 'no-such-model'.*fashion-cnn/);
});
