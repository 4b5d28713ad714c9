// offramp serve's --model arguments: shipped names and NAME=FOLDER, classifiers and language models alike.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { applyModelLimits, parseModelArgs } from './serve.js';

it('takes classifiers, language models and embedders, by shipped name or NAME=FOLDER', () => {
  const m = parseModelArgs(['fashion-cnn', 'lm=austen-mamba', 'code=code-search']);
  expect(Object.keys(m)).toEqual(['fashion-cnn', 'lm', 'code']);
  expect(m['fashion-cnn']).toMatch(/checkpoints[/\\]fashion-cnn$/);
  expect(m.lm).toMatch(/checkpoints[/\\]austen-mamba$/);
  expect(m.code).toMatch(/checkpoints[/\\]code-search$/);
});

it('refuses a folder whose config.json is neither, a bad name and a name given twice', () => {
  const dir = mkdtempSync(join(tmpdir(), 'offramp-serve-'));
  writeFileSync(join(dir, 'config.json'), '{"foo": 1}');
  expect(() => parseModelArgs([`x=${dir}`])).toThrow(/neither offramp_format/);
  expect(() => parseModelArgs(['bad name=fashion-cnn'])).toThrow(/must be letters, digits/);
  expect(() => parseModelArgs(['a=fashion-cnn', 'a=imdb-encoder'])).toThrow(/given twice/);
});

it('--model-limit gives a model its own max-batch and max-seq-len, and refuses bad forms', () => {
  const folders = { imdb: '/m/imdb', fashion: '/m/fashion' };
  expect(applyModelLimits(folders, ['imdb:max-seq-len=128,max-batch=8'])).toEqual({
    imdb: { path: '/m/imdb', maxSeqLen: 128, maxBatch: 8 },
    fashion: { path: '/m/fashion' },
  });
  expect(applyModelLimits(folders, [])).toEqual({ imdb: { path: '/m/imdb' }, fashion: { path: '/m/fashion' } });
  expect(() => applyModelLimits(folders, ['imdb'])).toThrow(/write NAME:key=value/);
  expect(() => applyModelLimits(folders, ['nope:max-batch=2'])).toThrow(
    /no model 'nope' is served \(served: imdb, fashion\)/,
  );
  expect(() => applyModelLimits(folders, ['imdb:max-len=2'])).toThrow(
    /unknown key 'max-len'; the keys are max-batch, max-seq-len/,
  );
  expect(() => applyModelLimits(folders, ['imdb:max-batch=0'])).toThrow(
    /max-batch must be an integer in \[1, 1024\], got '0'/,
  );
  expect(() => applyModelLimits(folders, ['imdb:max-seq-len=x'])).toThrow(/got 'x'/);
  expect(() => applyModelLimits(folders, ['imdb:max-batch=2', 'imdb:max-seq-len=9'])).toThrow(/given twice/);
});
