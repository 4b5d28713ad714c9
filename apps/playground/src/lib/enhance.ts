// The RBQE JPEG-artefact enhancer (checkpoints/rbqe) in the browser: config.json checked as core's folder
// loader does (envelope, architecture, checkEnhancerConfig), model.safetensors parsed by core's reader and
// checked with checkEnhancerWeights, then core's ImageEnhancer on the page's device. The JPEG round trip uses
// jpeg-js (the same encoder and decoder as training and the CLI) so Node gets identical bytes.
import {
  checkEnhancerConfig,
  checkEnhancerWeights,
  type EnhancerConfig,
  FormatError,
  type HostTensor,
  ImageEnhancer,
  parseSafetensors,
  ValidationError,
} from '@offramp/core';
import jpeg from 'jpeg-js';
import samples from '../assets/enhance-samples.json';
import { fetchCheckpointFile, fetchCheckpointJson, getDevice } from './runtime.ts';

export const ENHANCER_CHECKPOINT = 'rbqe';
export const ENHANCE_SIZE = { width: samples.width, height: samples.height };
export const ENHANCE_PICTURES: readonly string[] = samples.pictures.map((p) => p.name);

function fromBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Picture i of the exported crops: grey bytes (0..255), row-major. */
export function enhancePicture(i: number): Uint8Array {
  if (!Number.isInteger(i) || i < 0 || i >= samples.pictures.length)
    throw new RangeError(
      `picture ${i} does not exist: there are ${samples.pictures.length} (0..${samples.pictures.length - 1})`,
    );
  return fromBase64(samples.pictures[i].pixels);
}

/** Parses the checkpoint's config.json like core's loadEnhancerDir; errors name the file and what is wrong. */
export function parseEnhancerConfig(json: unknown, source: string): EnhancerConfig {
  const j = json as { offramp_format?: unknown; model?: EnhancerConfig } | null;
  if (!j || typeof j !== 'object' || j.offramp_format !== 1 || !j.model || typeof j.model !== 'object')
    throw new FormatError(`${source}: expected { "offramp_format": 1, "model": { ... } }`);
  if (j.model.architecture !== 'rbqe_enhancer')
    throw new ValidationError(
      `${source}: architecture '${j.model.architecture}' is not an image enhancer (expected 'rbqe_enhancer')`,
    );
  checkEnhancerConfig(j.model);
  return j.model;
}

let enhancer: Promise<ImageEnhancer> | null = null;

/** Loads (once) the enhancer checkpoint onto the page's device. */
export function loadEnhancer(): Promise<ImageEnhancer> {
  if (!enhancer) {
    enhancer = (async () => {
      const name = ENHANCER_CHECKPOINT;
      const device = await getDevice();
      const config = parseEnhancerConfig(await fetchCheckpointJson(name, 'config.json'), `${name}/config.json`);
      const { bytes } = await fetchCheckpointFile(name, 'model.safetensors');
      const tensors = new Map<string, HostTensor>();
      for (const [k, t] of parseSafetensors(bytes, { copy: true }).tensors) {
        if (!(t.data instanceof Float32Array))
          throw new FormatError(`${name}/model.safetensors: tensor '${k}' is not floating point`);
        tensors.set(k, { shape: [...t.shape], data: t.data });
      }
      checkEnhancerWeights(config, tensors);
      return new ImageEnhancer(device, config, tensors, { maxBatch: 1 });
    })();
    enhancer.catch(() => {
      enhancer = null;
    });
  }
  return enhancer;
}

/** Grey bytes → RGBA bytes (grey in all three channels), the encoder's input. */
export function greyBytesToRgba(grey: Uint8Array): Uint8Array {
  const out = new Uint8Array(grey.length * 4);
  for (let i = 0; i < grey.length; i++) {
    out[4 * i] = out[4 * i + 1] = out[4 * i + 2] = grey[i];
    out[4 * i + 3] = 255;
  }
  return out;
}

/**
 * JPEG-encodes grey bytes with jpeg-js at `quality` (1–100) and decodes them back to luma in [0, 1] (the
 * same luma weights as training's rgbaToGrey); returns the file's bytes too.
 */
export function jpegRoundTrip(
  grey: Uint8Array,
  width: number,
  height: number,
  quality: number,
): { jpeg: Uint8Array; luma: Float32Array } {
  if (!Number.isInteger(quality) || quality < 1 || quality > 100)
    throw new RangeError(`JPEG quality must be an integer from 1 to 100, got ${quality}`);
  // jpeg-js's encoder returns Buffer.from(bytes) when bundled as CommonJS; the browser has no Buffer, so a
  // stand-in that makes a plain Uint8Array is lent for the call only
  const g = globalThis as { Buffer?: unknown };
  const lend = g.Buffer === undefined;
  if (lend) g.Buffer = { from: (a: ArrayLike<number>) => Uint8Array.from(a) };
  let file: Uint8Array;
  try {
    file = new Uint8Array(jpeg.encode({ data: greyBytesToRgba(grey), width, height }, quality).data);
  } finally {
    if (lend) delete g.Buffer;
  }
  const dec = jpeg.decode(file, { useTArray: true, formatAsRGBA: true });
  const luma = new Float32Array(width * height);
  for (let i = 0; i < luma.length; i++)
    luma[i] = (0.299 * dec.data[4 * i] + 0.587 * dec.data[4 * i + 1] + 0.114 * dec.data[4 * i + 2]) / 255;
  return { jpeg: file, luma };
}

/** PSNR in dB of `a` against `ref` (peak 1). */
export function psnr(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let se = 0;
  for (let i = 0; i < ref.length; i++) se += (a[i] - ref[i]) ** 2;
  const mse = se / ref.length;
  return mse === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10(1 / mse);
}

/** Bytes as base64: the page shows its JPEG file's bytes in a data attribute for tests to compare. */
export function toBase64(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}
