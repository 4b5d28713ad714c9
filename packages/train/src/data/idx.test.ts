// IDX reader: valid files raw and gzipped, and every kind of corrupt input rejected with a precise message.

import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { FormatError } from '@offramp/core';
import { describe, expect, it } from 'vitest';
import { parseIdx, readIdxFile } from './idx.js';

/** Builds IDX bytes independently of the reader: header fields given explicitly. */
function idx(
  dims: number[],
  data: number[],
  opts: { magic?: number[]; type?: number; ndims?: number } = {},
): Uint8Array {
  const head = [...(opts.magic ?? [0, 0]), opts.type ?? 0x08, opts.ndims ?? dims.length];
  const out = new Uint8Array(head.length + 4 * dims.length + data.length);
  out.set(head, 0);
  const view = new DataView(out.buffer);
  dims.forEach((d, i) => {
    view.setUint32(4 + 4 * i, d, false);
  });
  out.set(data, 4 + 4 * dims.length);
  return out;
}

describe('parseIdx', () => {
  const data = Array.from({ length: 2 * 3 * 5 }, (_, i) => (i * 37) % 256);

  it('reads dims and data of a 3-d uint8 array', () => {
    const a = parseIdx(idx([2, 3, 5], data));
    expect(a.dims).toEqual([2, 3, 5]);
    expect(Array.from(a.data)).toEqual(data);
  });

  it('reads gzip-compressed IDX the same as raw', () => {
    const a = parseIdx(gzipSync(idx([2, 3, 5], data)));
    expect(a.dims).toEqual([2, 3, 5]);
    expect(Array.from(a.data)).toEqual(data);
  });

  it('reads a 1-d array of size 1 and dimensions above 2^16', () => {
    expect(Array.from(parseIdx(idx([1], [255])).data)).toEqual([255]);
    const big = parseIdx(idx([70_000], new Array(70_000).fill(7)));
    expect(big.dims).toEqual([70_000]);
  });

  const bad: [string, Uint8Array, RegExp][] = [
    ['empty input', new Uint8Array(0), /0 bytes long/],
    ['3 bytes', new Uint8Array([0, 0, 8]), /shorter than the 4-byte magic/],
    ['non-zero magic', idx([1], [1], { magic: [0, 1] }), /bytes 0-1 are 0x00 0x01, expected 0x00 0x00/],
    ['float32 type', idx([1], [1, 2, 3, 4], { type: 0x0d }), /0x0d \(float32\); only 0x08/],
    ['unknown type', idx([1], [1], { type: 0x42 }), /0x42 \(not an IDX type\)/],
    ['0 dimensions', idx([], [], { ndims: 0 }), /0 dimensions/],
    ['header cut short', idx([4, 4], []).subarray(0, 9), /declares 2 dimensions \(12 header bytes\)/],
    ['zero dimension', idx([3, 0], []), /dimension 1 is 0/],
    ['truncated data', idx([2, 3], [1, 2, 3, 4, 5]), /truncated: dimensions \[2, 3\] need 6 data bytes .* found 5/],
    ['trailing bytes', idx([2], [1, 2, 3]), /trailing bytes: dimensions \[2\] need 2 .* found 3/],
    ['damaged gzip', gzipSync(idx([2, 3, 5], data)).subarray(0, 20), /gzip stream is damaged/],
  ];
  for (const [name, bytes, message] of bad) {
    it(`rejects ${name}`, () => {
      expect(() => parseIdx(bytes)).toThrow(FormatError);
      expect(() => parseIdx(bytes)).toThrow(message);
    });
  }
});

describe('readIdxFile', () => {
  it('names the file in errors', () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'idx-')), 'broken-idx1-ubyte');
    writeFileSync(file, idx([5], [1, 2]));
    expect(() => readIdxFile(file)).toThrow(`${file}: IDX data truncated`);
  });
});
