// `offramp enhance`: input checks (not an image, an image too large from its header alone, truncated JPEG and
// PNG), the colour conversion, and a real run of a small random enhancer folder on the GPU writing a PNG of
// the input's size whose exit matches the quality policy's decision on the traced scores.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EnhancerConfig, randomEnhancerWeights } from '@offramp/core';
import { saveEnhancerDir } from '@offramp/core/node';
import { decodeImage, jpegSize, rgbaToYcc, yccToRgba } from '@offramp/train';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { Logger } from '../util/log.js';
import { enhanceCommand } from './enhance.js';

const dir = mkdtempSync(join(tmpdir(), 'offramp-enhance-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function photo(W: number, H: number): Uint8Array {
  const rgba = new Uint8Array(W * H * 4);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const i = 4 * (y * W + x);
      rgba[i] = (x * 5) % 256;
      rgba[i + 1] = (y * 7 + ((x >> 3) % 2) * 60) % 256;
      rgba[i + 2] = 128 + Math.round(60 * Math.sin(x / 5));
      rgba[i + 3] = 255;
    }
  return jpeg.encode({ data: rgba, width: W, height: H }, 20).data;
}

describe('decodeImage', () => {
  it('refuses files that are not images, naming their first bytes', async () => {
    await expect(decodeImage(new TextEncoder().encode('hello'), 'a.txt', 1e6)).rejects.toThrow(
      /a\.txt is not a JPEG or PNG image \(it starts with bytes 68 65 6c 6c\)/,
    );
    await expect(decodeImage(new Uint8Array(0), 'e.jpg', 1e6)).rejects.toThrow(/the file is empty/);
  });

  it('refuses a 20000×20000 image from its header, before decoding', async () => {
    const png = new Uint8Array(33);
    png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
    new DataView(png.buffer).setUint32(16, 20000);
    new DataView(png.buffer).setUint32(20, 20000);
    await expect(decodeImage(png, 'big.png', 2048 * 2048)).rejects.toThrow(
      /big\.png is 20000×20000 \(400,000,000 pixels\); at most 4,194,304 pixels/,
    );
    const j = photo(32, 24);
    const size = jpegSize(j);
    expect(size).toEqual({ width: 32, height: 24 });
    await expect(decodeImage(j, 'small-cap.jpg', 500)).rejects.toThrow(/32×24 \(768 pixels\); at most 500 pixels/);
  });

  it('reports truncated JPEGs and PNGs', async () => {
    const j = photo(64, 48);
    await expect(decodeImage(j.subarray(0, Math.floor(j.length * 0.6)), 'cut.jpg', 1e6)).rejects.toThrow(
      /cut\.jpg: truncated or damaged JPEG/,
    );
    await expect(decodeImage(j.subarray(0, 40), 'head.jpg', 1e6)).rejects.toThrow(/no frame header/);
    const png = new PNG({ width: 20, height: 20 });
    const bytes = PNG.sync.write(png);
    await expect(decodeImage(bytes.subarray(0, bytes.length - 30), 'cut.png', 1e6)).rejects.toThrow(
      /cut\.png: damaged or truncated PNG/,
    );
    const ok = await decodeImage(j, 'ok.jpg', 1e6);
    expect([ok.width, ok.height, ok.format]).toEqual([64, 48, 'jpeg']);
  });

  it('Y/Cb/Cr round trip returns the same bytes', () => {
    const rgba = Uint8Array.from({ length: 4 * 500 }, (_, i) => (i % 4 === 3 ? 255 : (i * 97) % 256));
    const { y, cb, cr } = rgbaToYcc(rgba, 500);
    expect(Array.from(yccToRgba(y, cb, cr))).toEqual(Array.from(rgba));
  });
});

describe('enhanceCommand', () => {
  it('enhances a JPEG with a model folder on the GPU and writes a PNG of the same size', async () => {
    const cfg: EnhancerConfig = { architecture: 'rbqe_enhancer', levels: 3, channels: 6, attention_hidden: 3 };
    const model = join(dir, 'model');
    saveEnhancerDir(model, cfg, randomEnhancerWeights(cfg, 2));
    const input = join(dir, 'in.jpg');
    writeFileSync(input, photo(45, 37));
    const out = join(dir, 'out.png');
    const log = new Logger({ quiet: true });
    const r = await enhanceCommand({ model, in: input, out, policy: 'quality:threshold=0.4', device: 'gpu' }, log);
    const png = PNG.sync.read(readFileSync(out));
    expect([png.width, png.height]).toEqual([45, 37]);
    expect(r.exits).toBe(3);
    expect(r.scores.length).toBe(r.exit + 1);
    const first = r.scores.findIndex((s) => s >= Math.fround(0.4));
    expect(r.exit).toBe(first < 0 ? 2 : first);
    await expect(
      enhanceCommand({ model, in: input, out, policy: 'quality:threshold=banana', device: 'gpu' }, log),
    ).rejects.toThrow(/--policy/);
    await expect(enhanceCommand({ model: join(dir, 'nope'), in: input, out }, log)).rejects.toThrow(/does not exist/);
  });
});
