// IDX reader (the MNIST file format), raw or gzip-compressed: 2 zero bytes, type byte 0x08 (uint8), a byte
// with the number of dimensions, each dimension as a big-endian u32, then exactly prod(dims) bytes of data.

import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { FormatError } from '@offramp/core';

export interface IdxArray {
  /** Dimensions, outermost first, e.g. [60000, 28, 28]. */
  dims: number[];
  /** Row-major uint8 data, length = product of dims. */
  data: Uint8Array;
}

const TYPE_NAMES = new Map<number, string>([
  [0x08, 'uint8'],
  [0x09, 'int8'],
  [0x0b, 'int16'],
  [0x0c, 'int32'],
  [0x0d, 'float32'],
  [0x0e, 'float64'],
]);

const hex = (b: number) => `0x${b.toString(16).padStart(2, '0')}`;

/** True when the bytes start with the gzip magic number. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Largest output `gunzip` produces when the caller does not know the size: 1 GiB (Fashion-MNIST's largest file is 47 MB). */
export const GUNZIP_DEFAULT_MAX_BYTES = 1 << 30;

/**
 * Decompresses gzip bytes, stopping at `maxBytes` of output (a damaged or hostile file cannot expand past
 * it); throws FormatError when the stream is damaged or would expand further.
 */
export function gunzip(bytes: Uint8Array, maxBytes = GUNZIP_DEFAULT_MAX_BYTES): Uint8Array {
  try {
    return gunzipSync(bytes, { maxOutputLength: maxBytes });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new FormatError(
        `gzip stream expands past ${maxBytes} bytes, the most this file may hold (${bytes.length} bytes compressed); the file is damaged or not what it claims to be`,
        { cause: e },
      );
    }
    throw new FormatError(`gzip stream is damaged (${(e as Error).message})`, { cause: e });
  }
}

export interface ParseIdxOptions {
  /** Most bytes the decompressed data may hold (header included); gzip input is not expanded past it. */
  maxBytes?: number;
}

/** Parses IDX bytes (gunzipping first when they start with the gzip magic). Throws FormatError on any deviation. */
export function parseIdx(bytes: Uint8Array, options: ParseIdxOptions = {}): IdxArray {
  const raw = isGzip(bytes) ? gunzip(bytes, options.maxBytes) : bytes;
  if (options.maxBytes !== undefined && raw.length > options.maxBytes) {
    throw new FormatError(`IDX data is ${raw.length} bytes, more than the ${options.maxBytes} this file may hold`);
  }
  if (raw.length < 4) {
    throw new FormatError(`IDX data is ${raw.length} bytes long, shorter than the 4-byte magic number`);
  }
  if (raw[0] !== 0 || raw[1] !== 0) {
    throw new FormatError(`not an IDX file: bytes 0-1 are ${hex(raw[0])} ${hex(raw[1])}, expected 0x00 0x00`);
  }
  const type = raw[2];
  if (type !== 0x08) {
    const name = TYPE_NAMES.get(type);
    throw new FormatError(
      `IDX type byte is ${hex(type)}${name ? ` (${name})` : ' (not an IDX type)'}; only 0x08 (uint8) is supported`,
    );
  }
  const ndims = raw[3];
  if (ndims === 0) throw new FormatError('IDX header declares 0 dimensions; at least 1 is required');
  const headerBytes = 4 + 4 * ndims;
  if (raw.length < headerBytes) {
    throw new FormatError(
      `IDX header declares ${ndims} dimensions (${headerBytes} header bytes) but the data is only ${raw.length} bytes`,
    );
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    if (d === 0) throw new FormatError(`IDX dimension ${i} is 0; every dimension must be at least 1`);
    dims.push(d);
    count *= d;
  }
  if (!Number.isSafeInteger(count)) {
    throw new FormatError(`IDX dimensions [${dims.join(', ')}] give more elements than can be addressed`);
  }
  const payload = raw.length - headerBytes;
  if (payload !== count) {
    const what = payload < count ? 'truncated' : 'has trailing bytes';
    throw new FormatError(
      `IDX data ${what}: dimensions [${dims.join(', ')}] need ${count} data bytes after the ${headerBytes}-byte header, found ${payload}`,
    );
  }
  return { dims, data: raw.subarray(headerBytes) };
}

/** Reads an IDX file (raw or .gz); errors name the file. */
export function readIdxFile(file: string): IdxArray {
  try {
    return parseIdx(readFileSync(file));
  } catch (e) {
    if (e instanceof FormatError) throw new FormatError(`${file}: ${e.message}`, { cause: e });
    throw e;
  }
}
