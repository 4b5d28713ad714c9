// Image files for the enhancer: JPEG and PNG decoding with the size checked from the header before any
// decoding (a 20000 × 20000 JPEG is refused without allocating it), errors that name the file and what is
// wrong, BT.601 luma/chroma conversion (the enhancer works on luma; the chroma is kept), and PNG encoding.
// Shared by `offramp enhance` and the server's POST /v1/enhance.

/** Why an image could not be decoded: not an image at all, over the pixel limit, or damaged / truncated. */
export class ImageDecodeError extends Error {
  constructor(
    message: string,
    readonly reason: 'not-an-image' | 'too-large' | 'damaged',
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ImageDecodeError';
  }
}

export interface DecodedImage {
  width: number;
  height: number;
  /** RGBA bytes. */
  rgba: Uint8Array;
  format: 'jpeg' | 'png';
}

const isPng = (b: Uint8Array) => b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
const isJpeg = (b: Uint8Array) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

/** Width and height from a JPEG's frame header (SOFn), without decoding; null when there is none. */
export function jpegSize(b: Uint8Array): { width: number; height: number } | null {
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return null;
    const m = b[i + 1];
    if (m === 0xff) {
      i++;
      continue;
    }
    const len = (b[i + 2] << 8) | b[i + 3];
    const sof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (sof) return { height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8] };
    if (m === 0xda || len < 2) return null;
    i += 2 + len;
  }
  return null;
}

/** Decodes a JPEG or PNG file's bytes after checking its size against `maxPixels`; errors say what is wrong. */
export async function decodeImage(
  bytes: Uint8Array,
  file: string,
  maxPixels: number,
  limitName?: string,
): Promise<DecodedImage> {
  const tooBig = (w: number, h: number) =>
    new ImageDecodeError(
      `${file} is ${w}×${h} (${(w * h).toLocaleString('en-US')} pixels); at most ${maxPixels.toLocaleString('en-US')} pixels are accepted${limitName ? ` (${limitName})` : ''}; downscale or crop it first`,
      'too-large',
    );
  if (isPng(bytes)) {
    if (bytes.length < 24)
      throw new ImageDecodeError(`${file}: truncated PNG (${bytes.length} bytes, no image header)`, 'damaged');
    const w = ((bytes[16] << 24) | (bytes[17] << 16) | (bytes[18] << 8) | bytes[19]) >>> 0;
    const h = ((bytes[20] << 24) | (bytes[21] << 16) | (bytes[22] << 8) | bytes[23]) >>> 0;
    if (w * h > maxPixels) throw tooBig(w, h);
    const { PNG } = await import('pngjs');
    try {
      const png = PNG.sync.read(Buffer.from(bytes));
      return { width: png.width, height: png.height, rgba: new Uint8Array(png.data), format: 'png' };
    } catch (e) {
      throw new ImageDecodeError(`${file}: damaged or truncated PNG (${(e as Error).message})`, 'damaged', {
        cause: e,
      });
    }
  }
  if (isJpeg(bytes)) {
    const size = jpegSize(bytes);
    if (!size)
      throw new ImageDecodeError(`${file}: truncated or damaged JPEG (no frame header with the image size)`, 'damaged');
    if (size.width * size.height > maxPixels) throw tooBig(size.width, size.height);
    const jpeg = (await import('jpeg-js')).default;
    try {
      const d = jpeg.decode(bytes, {
        useTArray: true,
        formatAsRGBA: true,
        tolerantDecoding: false,
        maxResolutionInMP: Math.ceil(maxPixels / 1e6) + 1,
        maxMemoryUsageInMB: 2048,
      });
      return { width: d.width, height: d.height, rgba: d.data, format: 'jpeg' };
    } catch (e) {
      throw new ImageDecodeError(`${file}: truncated or damaged JPEG (${(e as Error).message})`, 'damaged', {
        cause: e,
      });
    }
  }
  const head = Array.from(bytes.subarray(0, 4), (v) => v.toString(16).padStart(2, '0')).join(' ');
  throw new ImageDecodeError(
    `${file} is not a JPEG or PNG image (it starts with bytes ${head || 'nothing: the file is empty'})`,
    'not-an-image',
  );
}

/** BT.601 full-range Y, Cb, Cr planes (Y in [0, 1], chroma centred on 0) of RGBA bytes. */
export function rgbaToYcc(rgba: Uint8Array, n: number): { y: Float32Array; cb: Float32Array; cr: Float32Array } {
  const y = new Float32Array(n);
  const cb = new Float32Array(n);
  const cr = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rgba[4 * i] / 255;
    const g = rgba[4 * i + 1] / 255;
    const b = rgba[4 * i + 2] / 255;
    y[i] = 0.299 * r + 0.587 * g + 0.114 * b;
    cb[i] = -0.168736 * r - 0.331264 * g + 0.5 * b;
    cr[i] = 0.5 * r - 0.418688 * g - 0.081312 * b;
  }
  return { y, cb, cr };
}

/** RGBA bytes from Y, Cb, Cr (inverse of rgbaToYcc, rounded and clamped). */
export function yccToRgba(y: Float32Array, cb: Float32Array, cr: Float32Array): Uint8Array {
  const out = new Uint8Array(y.length * 4);
  const q = (v: number) => Math.round(Math.min(1, Math.max(0, v)) * 255);
  for (let i = 0; i < y.length; i++) {
    out[4 * i] = q(y[i] + 1.402 * cr[i]);
    out[4 * i + 1] = q(y[i] - 0.344136 * cb[i] - 0.714136 * cr[i]);
    out[4 * i + 2] = q(y[i] + 1.772 * cb[i]);
    out[4 * i + 3] = 255;
  }
  return out;
}

/** A PNG file (8-bit RGBA) of the given pixels. */
export async function encodePng(width: number, height: number, rgba: Uint8Array): Promise<Uint8Array> {
  const { PNG } = await import('pngjs');
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba.buffer, rgba.byteOffset, rgba.byteLength);
  return new Uint8Array(PNG.sync.write(png));
}
