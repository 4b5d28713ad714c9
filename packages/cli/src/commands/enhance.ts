// `offramp enhance`: removes JPEG artefacts from a photo with an RBQE enhancer folder (checkpoints/rbqe), one
// pass with early exit: the exit is decided per image by a policy (default `quality`, RBQE's no-reference
// quality score computed on the GPU). Colour images are enhanced on their luma (BT.601 Y); the chroma of the
// decoded input is kept. Writes a PNG; prints the exit taken, the quality scores seen and the time.
import { writeFileSync } from 'node:fs';
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

/** Largest input file read, in bytes (a 2048 × 2048 RGBA PNG stored without compression is 16 MiB). */
export const MAX_IMAGE_FILE_BYTES = 64 * 1024 * 1024;

/** Decodes an input file, with the codec's errors as the CLI's (usage: not an image, too large; runtime: damaged). */
async function decodeInput(bytes: Uint8Array, file: string, maxPixels: number) {
  const { decodeImage, ImageDecodeError } = await import('@offramp/train');
  try {
    return await decodeImage(bytes, file, maxPixels, '--max-pixels');
  } catch (e) {
    if (!(e instanceof ImageDecodeError)) throw e;
    throw e.reason === 'damaged' ? new RuntimeError(e.message, { cause: e }) : new UsageError(e.message, { cause: e });
  }
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
    // bounded: a regular file (a FIFO or a device is refused) of at most MAX_IMAGE_FILE_BYTES
    const { readBoundedFileSync } = await import('@offramp/core/node');
    bytes = readBoundedFileSync(o.in, { maxBytes: MAX_IMAGE_FILE_BYTES, what: 'a JPEG or PNG image' });
  } catch (e) {
    throw new RuntimeError(`cannot read ${o.in}: ${(e as Error).message}`, { cause: e });
  }
  const maxPixels = o.maxPixels ?? DEFAULT_MAX_PIXELS;
  const img = await decodeInput(bytes, o.in, maxPixels);
  const n = img.width * img.height;
  const { rgbaToYcc, yccToRgba, encodePng } = await import('@offramp/train');
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
  writeFileSync(o.out, await encodePng(img.width, img.height, yccToRgba(res.data, cb, cr)));
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
