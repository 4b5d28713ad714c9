// offramp serve's --model arguments: shipped names and NAME=FOLDER, classifiers and language models alike.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { parseModelArgs } from './serve.js';

it('takes classifiers and Mamba language models, by shipped name or NAME=FOLDER', () => {
  const m = parseModelArgs(['fashion-cnn', 'lm=austen-mamba']);
  expect(Object.keys(m)).toEqual(['fashion-cnn', 'lm']);
  expect(m['fashion-cnn']).toMatch(/checkpoints[/\\]fashion-cnn$/);
  expect(m.lm).toMatch(/checkpoints[/\\]austen-mamba$/);
});

it('refuses a folder whose config.json is neither, a bad name and a name given twice', () => {
  const dir = mkdtempSync(join(tmpdir(), 'offramp-serve-'));
  writeFileSync(join(dir, 'config.json'), '{"foo": 1}');
  expect(() => parseModelArgs([`x=${dir}`])).toThrow(/neither offramp_format/);
  expect(() => parseModelArgs(['bad name=fashion-cnn'])).toThrow(/must be letters, digits/);
  expect(() => parseModelArgs(['a=fashion-cnn', 'a=imdb-encoder'])).toThrow(/given twice/);
});
