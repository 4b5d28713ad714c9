// The arguments `offramp train` passes to the training programs: paths made absolute from the caller's folder,
// the custom recipe's default --out, and options a recipe does not take refused.
import { describe, expect, it } from 'vitest';
import { CUSTOM_RECIPE, TRAIN_RECIPES, trainArgs } from './train.js';

const recipe = (name: string) => TRAIN_RECIPES.find((r) => r.name === name)!;

describe('trainArgs', () => {
  it('resolves data, test, out and work-dir from the caller folder and defaults --out to ./NAME', () => {
    const custom = recipe(CUSTOM_RECIPE);
    expect(
      trainArgs(custom, { data: 'd/train.jsonl', test: '../test.jsonl', limit: 40, seqLen: 16 }, '/home/u/p'),
    ).toEqual([
      '--data',
      '/home/u/p/d/train.jsonl',
      '--test',
      '/home/u/test.jsonl',
      '--limit',
      '40',
      '--seq-len',
      '16',
      '--out',
      '/home/u/p/train-model',
    ]);
    expect(trainArgs(custom, { data: '/abs/x.csv', name: 'mine' }, '/w')).toEqual([
      '--data',
      '/abs/x.csv',
      '--name',
      'mine',
      '--out',
      '/w/mine',
    ]);
    expect(trainArgs(custom, { data: 'x.jsonl', out: 'o', workDir: 'wd', minutes: 5 }, '/w')).toEqual([
      '--data',
      '/w/x.jsonl',
      '--out',
      '/w/o',
      '--work-dir',
      '/w/wd',
      '--minutes',
      '5',
    ]);
  });

  it('passes no --data to a recipe that reads its own dataset and refuses options it does not take', () => {
    expect(trainArgs(recipe('fashion-cnn'), { data: 'fashion-mnist', epochs: 1 }, '/w')).toEqual(['--epochs', '1']);
    expect(() => trainArgs(recipe('fashion-cnn'), { test: 't.jsonl' }, '/w')).toThrow(
      "recipe 'fashion-cnn' does not take --test",
    );
    expect(() => trainArgs(recipe('austen-mamba'), { seqLen: 3 }, '/w')).toThrow(
      /recipe 'austen-mamba' does not take --seq-len; it takes --out, --seed, --minutes/,
    );
  });
});
