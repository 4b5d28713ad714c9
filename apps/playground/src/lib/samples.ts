// The built-in samples (src/assets/samples.json, written by scripts/export-samples.ts).
import samples from '../assets/samples.json';

function fromBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const pixels = fromBase64(samples.fashion.pixels);
const SIZE = samples.fashion.height * samples.fashion.width;

export const FASHION_CLASSES: readonly string[] = samples.fashion.classNames;
export const FASHION_COUNT = samples.fashion.labels.length;
export const FASHION_SIZE = { height: samples.fashion.height, width: samples.fashion.width };

/** Image i of the exported test images: its bytes (0..255) and label. */
export function fashionImage(i: number): { bytes: Uint8Array; label: number } {
  if (!Number.isInteger(i) || i < 0 || i >= FASHION_COUNT)
    throw new RangeError(`image ${i} does not exist: there are ${FASHION_COUNT} (0..${FASHION_COUNT - 1})`);
  return { bytes: pixels.subarray(i * SIZE, (i + 1) * SIZE), label: samples.fashion.labels[i] };
}

export const IMDB_CLASSES: readonly string[] = samples.imdb.classNames;
export const IMDB_REVIEWS: readonly { text: string; label: number }[] = samples.imdb.reviews;

/** The first `n` exported test images as one model input (pixels / 255) and their labels. */
export function fashionBatch(n: number, offset = 0): { features: Float32Array[]; labels: number[] } {
  const features: Float32Array[] = [];
  const labels: number[] = [];
  for (let i = offset; i < offset + n; i++) {
    const { bytes, label } = fashionImage(i);
    features.push(Float32Array.from(bytes, (b) => b / 255));
    labels.push(label);
  }
  return { features, labels };
}
