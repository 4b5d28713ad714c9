// MNIST and Fashion-MNIST loaders: 28×28 grey images from the IDX files in the cache.
// images: (n, 28, 28) uint8 → Float32Array (n·784) scaled to [0, 1]; labels: (n) uint8 in [0, 10).

import { FormatError, ValidationError } from '@offramp/core';
import { cachePath, corruptFile, type DataOptions, readCacheFile } from './cache.js';
import { type IdxArray, parseIdx } from './idx.js';

export type Split = 'train' | 'test';

export interface ImageDataset {
  /** Row-major pixels, n·height·width values in [0, 1]. */
  images: Float32Array;
  /** Class index per image, in [0, classes). */
  labels: Uint8Array;
  n: number;
  height: number;
  width: number;
  classes: number;
  classNames: readonly string[];
}

export const MNIST_CLASS_NAMES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

export const FASHION_MNIST_CLASS_NAMES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** Cache folder and file names of the two datasets (Fashion-MNIST keeps the gzip files it ships with). */
export const MNIST_FILES = {
  mnist: {
    train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
    test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
  },
  'fashion-mnist': {
    train: { images: 'train-images-idx3-ubyte.gz', labels: 'train-labels-idx1-ubyte.gz' },
    test: { images: 't10k-images-idx3-ubyte.gz', labels: 't10k-labels-idx1-ubyte.gz' },
  },
} as const;

/** Expected number of examples per split. */
export const MNIST_SPLIT_SIZES: Record<Split, number> = { train: 60_000, test: 10_000 };

/** Bytes of an IDX file of `n` 28×28 images (16-byte header) or `n` labels (8-byte header). */
export function mnistIdxBytes(kind: 'images' | 'labels', n: number): number {
  return kind === 'images' ? 16 + n * 28 * 28 : 8 + n;
}

function readIdx(dataset: string, file: string, maxBytes: number, options?: DataOptions): IdxArray {
  const bytes = readCacheFile(dataset, file, options);
  try {
    return parseIdx(bytes, { maxBytes });
  } catch (e) {
    if (e instanceof FormatError) throw corruptFile(cachePath(dataset, file, options), e.message, e);
    throw e;
  }
}

/**
 * Builds an image dataset from parsed IDX arrays: images (n, h, w) and labels (n) with values below
 * classNames.length. Throws FormatError naming `source` when they do not fit together.
 */
export function imageDatasetFromIdx(
  images: IdxArray,
  labels: IdxArray,
  classNames: readonly string[],
  source: string,
): ImageDataset {
  if (images.dims.length !== 3) {
    throw new FormatError(`${source}: images have dimensions [${images.dims.join(', ')}]; expected (n, height, width)`);
  }
  if (labels.dims.length !== 1) {
    throw new FormatError(`${source}: labels have dimensions [${labels.dims.join(', ')}]; expected (n)`);
  }
  const [n, height, width] = images.dims;
  if (labels.dims[0] !== n) {
    throw new FormatError(`${source}: ${n} images but ${labels.dims[0]} labels; the counts must match`);
  }
  const classes = classNames.length;
  for (let i = 0; i < n; i++) {
    if (labels.data[i] >= classes) {
      throw new FormatError(`${source}: label ${i} is ${labels.data[i]}; labels must be in [0, ${classes})`);
    }
  }
  const pixels = images.data;
  const scaled = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) scaled[i] = pixels[i] / 255;
  return { images: scaled, labels: labels.data.slice(), n, height, width, classes, classNames };
}

function loadFamily(
  dataset: keyof typeof MNIST_FILES,
  split: Split,
  classNames: readonly string[],
  options?: DataOptions,
): ImageDataset {
  if (split !== 'train' && split !== 'test') {
    throw new ValidationError(`${dataset}: split is ${JSON.stringify(split)}; expected 'train' or 'test'`);
  }
  const files = MNIST_FILES[dataset][split];
  const n = MNIST_SPLIT_SIZES[split];
  const images = readIdx(dataset, files.images, mnistIdxBytes('images', n), options);
  const labels = readIdx(dataset, files.labels, mnistIdxBytes('labels', n), options);
  const source = `${dataset} ${split}`;
  let ds: ImageDataset;
  try {
    ds = imageDatasetFromIdx(images, labels, classNames, source);
  } catch (e) {
    if (e instanceof FormatError) throw corruptFile(cachePath(dataset, files.images, options), e.message, e);
    throw e;
  }
  if (ds.height !== 28 || ds.width !== 28) {
    throw corruptFile(
      cachePath(dataset, files.images, options),
      `images are ${ds.height}×${ds.width}; ${dataset} images are 28×28`,
    );
  }
  return ds;
}

/** MNIST handwritten digits, 60,000 train / 10,000 test, classes '0'..'9'. */
export function loadMnist(split: Split, options?: DataOptions): ImageDataset {
  return loadFamily('mnist', split, MNIST_CLASS_NAMES, options);
}

/** Fashion-MNIST clothing images, 60,000 train / 10,000 test, 10 classes (see FASHION_MNIST_CLASS_NAMES). */
export function loadFashionMnist(split: Split, options?: DataOptions): ImageDataset {
  return loadFamily('fashion-mnist', split, FASHION_MNIST_CLASS_NAMES, options);
}
