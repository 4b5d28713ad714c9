// MNIST and Fashion-MNIST from the real cache: counts, class balance, pixel range and mean, plus the errors for
// a missing cache, a corrupt cache file and inconsistent IDX arrays.

import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FormatError } from '@offramp/core';
import { describe, expect, it } from 'vitest';
import { cachePath, DataNotFoundError } from './cache.js';
import {
  FASHION_MNIST_CLASS_NAMES,
  type ImageDataset,
  imageDatasetFromIdx,
  loadFashionMnist,
  loadMnist,
} from './mnist.js';

function classCounts(ds: ImageDataset): number[] {
  const c = new Array(ds.classes).fill(0);
  for (let i = 0; i < ds.n; i++) c[ds.labels[i]]++;
  return c;
}

function pixelStats(images: Float32Array): { min: number; max: number; mean: number } {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (let i = 0; i < images.length; i++) {
    const v = images[i];
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  return { min, max, mean: sum / images.length };
}

describe.each([
  // Published per-dataset pixel means (train split) used for input normalisation.
  { name: 'MNIST', load: loadMnist, trainMean: 0.1307 },
  { name: 'Fashion-MNIST', load: loadFashionMnist, trainMean: 0.286 },
])('$name', ({ name, load, trainMean }) => {
  for (const [split, n] of [
    ['train', 60_000],
    ['test', 10_000],
  ] as const) {
    it(`${split}: ${n} images of 28×28 in [0, 1] with 10 classes`, () => {
      const ds = load(split);
      expect(ds.n).toBe(n);
      expect([ds.height, ds.width, ds.classes, ds.classNames.length]).toEqual([28, 28, 10, 10]);
      expect(ds.images.length).toBe(n * 784);
      expect(ds.labels.length).toBe(n);
      const s = pixelStats(ds.images);
      expect(s.min).toBe(0);
      expect(s.max).toBe(1);
      if (split === 'train') expect(s.mean).toBeCloseTo(trainMean, 3);
      const counts = classCounts(ds);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(n);
      if (name === 'Fashion-MNIST') expect(counts).toEqual(new Array(10).fill(n / 10));
      else for (const c of counts) expect(c / n).toBeGreaterThan(0.08);
    });
  }
});

it('Fashion-MNIST class names are the documented ones', () => {
  expect(loadFashionMnist('test').classNames).toEqual(FASHION_MNIST_CLASS_NAMES);
  expect(FASHION_MNIST_CLASS_NAMES[9]).toBe('Ankle boot');
});

describe('errors', () => {
  it('a missing cache names the file and `pnpm data`', () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nodata-'));
    expect(() => loadMnist('test', { dataDir })).toThrow(DataNotFoundError);
    expect(() => loadMnist('test', { dataDir })).toThrow(
      new RegExp(`${path.join(dataDir, 'mnist', 't10k-images-idx3-ubyte')} does not exist; run \`pnpm data\``),
    );
  });

  it('a corrupt cache file names the file and `pnpm data`', () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'baddata-'));
    mkdirSync(path.join(dataDir, 'mnist'));
    const images = path.join(dataDir, 'mnist', 't10k-images-idx3-ubyte');
    writeFileSync(images, new Uint8Array([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28, 5]));
    copyFileSync(cachePath('mnist', 't10k-labels-idx1-ubyte'), path.join(dataDir, 'mnist', 't10k-labels-idx1-ubyte'));
    expect(() => loadMnist('test', { dataDir })).toThrow(FormatError);
    expect(() => loadMnist('test', { dataDir })).toThrow(`${images}: IDX data truncated`);
    expect(() => loadMnist('test', { dataDir })).toThrow(/delete the file and run `pnpm data`/);
  });

  it('rejects a bad split name', () => {
    expect(() => loadMnist('validation' as 'test')).toThrow(/split is "validation"; expected 'train' or 'test'/);
  });

  it('imageDatasetFromIdx checks counts, ranks and label range', () => {
    const img = { dims: [2, 2, 2], data: new Uint8Array(8) };
    expect(() => imageDatasetFromIdx(img, { dims: [3], data: new Uint8Array(3) }, ['a', 'b'], 'x')).toThrow(
      'x: 2 images but 3 labels',
    );
    expect(() => imageDatasetFromIdx(img, { dims: [2], data: new Uint8Array([0, 2]) }, ['a', 'b'], 'x')).toThrow(
      'x: label 1 is 2; labels must be in [0, 2)',
    );
    expect(() => imageDatasetFromIdx({ dims: [8], data: new Uint8Array(8) }, img, ['a'], 'x')).toThrow(
      /images have dimensions \[8\]/,
    );
    const ok = imageDatasetFromIdx(
      { dims: [1, 1, 2], data: new Uint8Array([0, 255]) },
      { dims: [1], data: new Uint8Array([1]) },
      ['a', 'b'],
      'x',
    );
    expect(Array.from(ok.images)).toEqual([0, 1]);
    expect(Array.from(ok.labels)).toEqual([1]);
  });
});
