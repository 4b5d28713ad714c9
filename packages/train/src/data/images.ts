// Natural images for JPEG quality enhancement: the lossless PNGs of scikit-image's data folder (Debian
// `python3-skimage`, extracted only), a fixed held-out test set of whole images never seen in training, and
// the JPEG degradation (jpeg-js) the enhancement model is trained and evaluated on. Licences: docs/data-images.md.

import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { corruptFile, type DataOptions, readCacheFile } from './cache.js';

export const IMAGES_DATASET = 'images';

export interface ImageSource {
  /** The name the loaders take (the PNG in the cache is `<name>.png`). */
  name: string;
  split: 'train' | 'test';
  /** Licence as stated by scikit-image's data module. */
  licence: string;
  width: number;
  height: number;
}

/**
 * The images, with their splits. motorcycle_right is left out: it is the stereo partner of the held-out
 * motorcycle_left (almost the same picture).
 */
export const IMAGE_SOURCES: readonly ImageSource[] = [
  { name: 'astronaut', split: 'test', licence: 'public domain (NASA)', width: 512, height: 512 },
  { name: 'camera', split: 'test', licence: 'CC0 (Lav Varshney)', width: 512, height: 512 },
  { name: 'coffee', split: 'test', licence: 'CC0 (Rachel Michetti)', width: 600, height: 400 },
  { name: 'chelsea', split: 'test', licence: 'CC0 (Stefan van der Walt)', width: 451, height: 300 },
  {
    name: 'motorcycle_left',
    split: 'test',
    licence: 'Middlebury stereo 2014 (Scharstein et al.), as distributed with scikit-image',
    width: 741,
    height: 500,
  },
  { name: 'brick', split: 'train', licence: 'CC0 (CC0Textures)', width: 512, height: 512 },
  { name: 'grass', split: 'train', licence: 'CC0 (CC0Textures)', width: 512, height: 512 },
  { name: 'gravel', split: 'train', licence: 'CC0 (CC0Textures)', width: 512, height: 512 },
  {
    name: 'coins',
    split: 'train',
    licence: 'no known copyright restrictions (Brooklyn Museum)',
    width: 384,
    height: 303,
  },
  { name: 'moon', split: 'train', licence: 'scikit-image sample data (BSD-3-Clause package)', width: 512, height: 512 },
  { name: 'page', split: 'train', licence: 'scikit-image sample data (BSD-3-Clause package)', width: 384, height: 191 },
  { name: 'text', split: 'train', licence: 'public domain', width: 448, height: 172 },
  { name: 'cell', split: 'train', licence: 'CC0', width: 550, height: 660 },
  { name: 'ihc', split: 'train', licence: 'no known copyright restrictions', width: 512, height: 512 },
];

export const IMAGE_FILES = IMAGE_SOURCES.map((s) => `${s.name}.png`);
/** Where the PNGs are inside the extracted Debian package. */
export const SKIMAGE_DATA_PATH = 'usr/lib/python3/dist-packages/skimage/data';
/** The quality factors the model is trained (blind) and evaluated on. */
export const JPEG_QUALITIES = [10, 20, 30, 40, 50] as const;

/** A grey image: luma in [0, 1], row-major. */
export interface GreyImage {
  width: number;
  height: number;
  data: Float32Array;
}

/** Luma (0.299 R + 0.587 G + 0.114 B) of RGBA bytes, in [0, 1]. */
export function rgbaToGrey(rgba: ArrayLike<number>, width: number, height: number): GreyImage {
  const data = new Float32Array(width * height);
  for (let i = 0; i < width * height; i++) {
    data[i] = (0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]) / 255;
  }
  return { width, height, data };
}

/** Grey image to RGBA bytes (rounded, clamped). */
export function greyToRgba(img: GreyImage): Uint8Array {
  const out = new Uint8Array(img.width * img.height * 4);
  for (let i = 0; i < img.width * img.height; i++) {
    const v = Math.round(Math.min(1, Math.max(0, img.data[i])) * 255);
    out[4 * i] = v;
    out[4 * i + 1] = v;
    out[4 * i + 2] = v;
    out[4 * i + 3] = 255;
  }
  return out;
}

/** Decodes a PNG file's bytes to a grey image; `source` names it in errors. */
export function decodePngGrey(bytes: Uint8Array, source: string): GreyImage {
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes));
  } catch (e) {
    throw corruptFile(source, `not a readable PNG (${(e as Error).message})`, e);
  }
  return rgbaToGrey(png.data, png.width, png.height);
}

/** Encodes a grey image as PNG bytes (8-bit RGBA, grey in all three channels). */
export function encodePngGrey(img: GreyImage): Buffer {
  const png = new PNG({ width: img.width, height: img.height });
  png.data = Buffer.from(greyToRgba(img));
  return PNG.sync.write(png);
}

/** JPEG-encodes a grey image with jpeg-js at `quality` (1–100) and decodes it back: the degraded input. */
export function jpegDegrade(img: GreyImage, quality: number): GreyImage {
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    throw new RangeError(`JPEG quality must be an integer from 1 to 100, got ${quality}`);
  }
  const enc = jpeg.encode({ data: greyToRgba(img), width: img.width, height: img.height }, quality);
  const dec = jpeg.decode(enc.data, { useTArray: true, formatAsRGBA: true });
  return rgbaToGrey(dec.data, dec.width, dec.height);
}

/** One image of the dataset as grey. */
export function loadImage(name: string, options?: DataOptions): GreyImage {
  const src = IMAGE_SOURCES.find((s) => s.name === name);
  if (!src) {
    throw new RangeError(`unknown image '${name}'; known: ${IMAGE_SOURCES.map((s) => s.name).join(', ')}`);
  }
  const file = `${name}.png`;
  const img = decodePngGrey(readCacheFile(IMAGES_DATASET, file, options), file);
  if (img.width !== src.width || img.height !== src.height) {
    throw corruptFile(file, `is ${img.width}×${img.height}, expected ${src.width}×${src.height}`);
  }
  return img;
}

/** The images of a split, by name. */
export function loadImages(split: 'train' | 'test', options?: DataOptions): { name: string; image: GreyImage }[] {
  return IMAGE_SOURCES.filter((s) => s.split === split).map((s) => ({
    name: s.name,
    image: loadImage(s.name, options),
  }));
}

/** PSNR in dB of `a` against the reference `ref` (peak 1). */
export function psnr(a: GreyImage, ref: GreyImage): number {
  let se = 0;
  for (let i = 0; i < ref.data.length; i++) se += (a.data[i] - ref.data[i]) ** 2;
  const mse = se / ref.data.length;
  return mse === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10(1 / mse);
}

/**
 * SSIM (Wang et al. 2004) of `a` against `ref`, peak 1: Gaussian window σ 1.5 (11×11), K1 0.01, K2 0.03,
 * computed on the valid region (windows inside the image), averaged.
 */
export function ssim(a: GreyImage, ref: GreyImage): number {
  const { width: W, height: H } = ref;
  const r = 5;
  const g = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * 1.5 * 1.5)));
  const gs = g.reduce((s, v) => s + v, 0);
  const k = g.map((v) => v / gs);
  const C1 = 0.01 ** 2;
  const C2 = 0.03 ** 2;
  // separable filtering of x, y, x², y², xy (valid region)
  const Wv = W - 2 * r;
  const Hv = H - 2 * r;
  if (Wv < 1 || Hv < 1) throw new RangeError(`SSIM needs an image of at least 11×11, got ${W}×${H}`);
  const fields = [
    (i: number) => a.data[i],
    (i: number) => ref.data[i],
    (i: number) => a.data[i] * a.data[i],
    (i: number) => ref.data[i] * ref.data[i],
    (i: number) => a.data[i] * ref.data[i],
  ];
  const filtered = fields.map((f) => {
    const tmp = new Float64Array(H * Wv);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < Wv; x++) {
        let s = 0;
        for (let j = 0; j <= 2 * r; j++) s += k[j] * f(y * W + x + j);
        tmp[y * Wv + x] = s;
      }
    const out = new Float64Array(Hv * Wv);
    for (let y = 0; y < Hv; y++)
      for (let x = 0; x < Wv; x++) {
        let s = 0;
        for (let j = 0; j <= 2 * r; j++) s += k[j] * tmp[(y + j) * Wv + x];
        out[y * Wv + x] = s;
      }
    return out;
  });
  const [mx, my, xx, yy, xy] = filtered;
  let total = 0;
  for (let i = 0; i < Hv * Wv; i++) {
    const vx = xx[i] - mx[i] * mx[i];
    const vy = yy[i] - my[i] * my[i];
    const cxy = xy[i] - mx[i] * my[i];
    total += ((2 * mx[i] * my[i] + C1) * (2 * cxy + C2)) / ((mx[i] * mx[i] + my[i] * my[i] + C1) * (vx + vy + C2));
  }
  return total / (Hv * Wv);
}
