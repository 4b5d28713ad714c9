// `offramp enhance`: removes JPEG artefacts from a photo with an RBQE enhancer folder (checkpoints/rbqe), one
// pass with early exit: the exit is decided per image by a policy (default `quality`, RBQE's no-reference
// quality score computed on the GPU). Colour images are enhanced on their luma (BT.601 Y); the chroma of the
// decoded input is kept. Writes a PNG; prints the exit taken, the quality scores seen and the time.
import { readFileSync, writeFileSync } from 'node:fs';
import type { Device } from '@offramp/core';
import { RuntimeError, UsageError } from '../errors.js';
import { resolveModelDir } from '../model.js';
import type { Logger } from '../util/log.js';

export interface EnhanceOptions {
  model: string;
  in: string;
  out: string;
  policy?: string;
  device?: 'gpu' | 'cpu' | 'auto';
  /** Largest input accepted, in pixels (default 4,194,304 = 2048 × 2048, or less when the device holds less). */
  maxPixels?: number;
}

export const DEFAULT_MAX_PIXELS = 2048 * 2048;

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
export async function decodeImage(bytes: Uint8Array, file: string, maxPixels: number): Promise<DecodedImage> {
  const tooBig = (w: number, h: number) =>
    new UsageError(
      `${file} is ${w}×${h} (${(w * h).toLocaleString('en-US')} pixels); at most ${maxPixels.toLocaleString('en-US')} pixels are accepted (--max-pixels); downscale or crop it first`,
    );
  if (isPng(bytes)) {
    if (bytes.length < 24) throw new RuntimeError(`${file}: truncated PNG (${bytes.length} bytes, no image header)`);
    const w = ((bytes[16] << 24) | (bytes[17] << 16) | (bytes[18] << 8) | bytes[19]) >>> 0;
    const h = ((bytes[20] << 24) | (bytes[21] << 16) | (bytes[22] << 8) | bytes[23]) >>> 0;
    if (w * h > maxPixels) throw tooBig(w, h);
    const { PNG } = await import('pngjs');
    try {
      const png = PNG.sync.read(Buffer.from(bytes));
      return { width: png.width, height: png.height, rgba: new Uint8Array(png.data), format: 'png' };
    } catch (e) {
      throw new RuntimeError(`${file}: damaged or truncated PNG (${(e as Error).message})`, { cause: e });
    }
  }
  if (isJpeg(bytes)) {
    const size = jpegSize(bytes);
    if (!size) throw new RuntimeError(`${file}: truncated or damaged JPEG (no frame header with the image size)`);
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
      throw new RuntimeError(`${file}: truncated or damaged JPEG (${(e as Error).message})`, { cause: e });
    }
  }
  const head = Array.from(bytes.subarray(0, 4), (v) => v.toString(16).padStart(2, '0')).join(' ');
  throw new UsageError(
    `${file} is not a JPEG or PNG image (it starts with bytes ${head || 'nothing: the file is empty'})`,
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

async function openDevice(kind: EnhanceOptions['device']): Promise<Device> {
  const core = await import('@offramp/core');
  if (kind === 'cpu') return new core.CpuDevice();
  try {
    return await core.createGpuDevice();
  } catch (e) {
    if (kind === 'gpu') throw new RuntimeError(`no WebGPU device: ${(e as Error).message}`, { cause: e });
    return new core.CpuDevice();
  }
}

export interface EnhanceResult {
  in: string;
  out: string;
  width: number;
  height: number;
  format: 'jpeg' | 'png';
  exit: number;
  exits: number;
  scores: number[];
  costFraction: number;
  ms: number;
  policy: string;
  device: string;
}

export async function enhanceCommand(o: EnhanceOptions, log: Logger): Promise<EnhanceResult> {
  const dir = resolveModelDir(o.model);
  const { loadEnhancerDir } = await import('@offramp/core/node');
  let loaded: ReturnType<typeof loadEnhancerDir>;
  try {
    loaded = loadEnhancerDir(dir);
  } catch (e) {
    throw new RuntimeError(`${dir}: ${(e as Error).message}`, { cause: e });
  }
  const policySpec = o.policy ?? 'quality';
  const P = await import('@offramp/policies');
  let policy: ReturnType<typeof P.policyFromSpec>;
  try {
    policy = P.policyFromSpec(policySpec);
  } catch (e) {
    throw new UsageError(`--policy: ${(e as Error).message}`, { cause: e });
  }
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(o.in);
  } catch (e) {
    throw new RuntimeError(`cannot read ${o.in}: ${(e as Error).message}`, { cause: e });
  }
  const maxPixels = o.maxPixels ?? DEFAULT_MAX_PIXELS;
  const img = await decodeImage(bytes, o.in, maxPixels);
  const n = img.width * img.height;
  const { y, cb, cr } = rgbaToYcc(img.rgba, n);
  const device = await openDevice(o.device);
  const { ImageEnhancer } = await import('@offramp/core');
  const enh = new ImageEnhancer(device, loaded.config, loaded.tensors, { maxPixels, maxBatch: 1 });
  try {
    enh.check({ width: img.width, height: img.height, data: y }, o.in);
  } catch (e) {
    enh.dispose();
    throw new UsageError((e as Error).message, { cause: e });
  }
  const t0 = performance.now();
  const [res] = await enh.enhance([{ width: img.width, height: img.height, data: y }], { policy, trace: true });
  const ms = performance.now() - t0;
  const { PNG } = await import('pngjs');
  const png = new PNG({ width: img.width, height: img.height });
  png.data = Buffer.from(yccToRgba(res.data, cb, cr));
  writeFileSync(o.out, PNG.sync.write(png));
  enh.dispose();
  device.destroy();
  const result: EnhanceResult = {
    in: o.in,
    out: o.out,
    width: img.width,
    height: img.height,
    format: img.format,
    exit: res.exitIndex,
    exits: loaded.config.levels,
    scores: res.scores ?? [],
    costFraction: res.costFraction,
    ms,
    policy: policySpec,
    device: device.kind,
  };
  log.result(result);
  log.info(
    `${o.in} (${img.width}×${img.height} ${img.format.toUpperCase()}) → ${o.out}: exit ${res.exitIndex + 1} of ${result.exits} (${(res.costFraction * 100).toFixed(0)}% of the full network's FLOPs), quality score ${result.scores.map((s) => s.toFixed(3)).join(' → ')}, policy ${policySpec}, ${ms.toFixed(0)} ms on ${device.kind}`,
  );
  return result;
}
