// Natural images from the real cache (scikit-image PNGs): splits, sizes, JPEG degradation, PSNR and SSIM, and
// the GPU quality score on real held-out photos against its float64 reference, falling with JPEG quality.

import { createGpuDevice, kernels, qualityScoreReference } from '@offramp/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodePngGrey,
  encodePngGrey,
  type GreyImage,
  IMAGE_SOURCES,
  jpegDegrade,
  loadImage,
  loadImages,
  psnr,
  ssim,
} from './images.js';

/** SSIM straight from its definition (11×11 Gaussian window per pixel, no separable filtering). */
function ssimDirect(a: GreyImage, ref: GreyImage): number {
  const r = 5;
  const w: number[][] = [];
  let s = 0;
  for (let i = -r; i <= r; i++) {
    const row: number[] = [];
    for (let j = -r; j <= r; j++) {
      const v = Math.exp(-(i * i + j * j) / (2 * 1.5 * 1.5));
      row.push(v);
      s += v;
    }
    w.push(row);
  }
  let total = 0;
  let n = 0;
  for (let y = r; y < ref.height - r; y++)
    for (let x = r; x < ref.width - r; x++) {
      let mx = 0;
      let my = 0;
      for (let i = -r; i <= r; i++)
        for (let j = -r; j <= r; j++) {
          const k = (y + i) * ref.width + x + j;
          mx += (w[i + r][j + r] / s) * a.data[k];
          my += (w[i + r][j + r] / s) * ref.data[k];
        }
      let vx = 0;
      let vy = 0;
      let cxy = 0;
      for (let i = -r; i <= r; i++)
        for (let j = -r; j <= r; j++) {
          const k = (y + i) * ref.width + x + j;
          const ww = w[i + r][j + r] / s;
          vx += ww * (a.data[k] - mx) ** 2;
          vy += ww * (ref.data[k] - my) ** 2;
          cxy += ww * (a.data[k] - mx) * (ref.data[k] - my);
        }
      total += ((2 * mx * my + 1e-4) * (2 * cxy + 9e-4)) / ((mx * mx + my * my + 1e-4) * (vx + vy + 9e-4));
      n++;
    }
  return total / n;
}

const crop = (img: GreyImage, x0: number, y0: number, w: number, h: number): GreyImage => {
  const data = new Float32Array(w * h);
  for (let y = 0; y < h; y++)
    data.set(img.data.subarray((y0 + y) * img.width + x0, (y0 + y) * img.width + x0 + w), y * w);
  return { width: w, height: h, data };
};

describe('images dataset', () => {
  it('has 5 held-out and 9 training images of the listed sizes, values in [0, 1]', () => {
    const test = loadImages('test');
    const train = loadImages('train');
    expect(test.map((t) => t.name)).toEqual(['astronaut', 'camera', 'coffee', 'chelsea', 'motorcycle_left']);
    expect(train).toHaveLength(9);
    for (const { name, image } of [...test, ...train]) {
      const src = IMAGE_SOURCES.find((s) => s.name === name);
      expect([image.width, image.height]).toEqual([src?.width, src?.height]);
      let lo = 1;
      let hi = 0;
      for (const v of image.data) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      expect(lo).toBeGreaterThanOrEqual(0);
      expect(hi).toBeLessThanOrEqual(1);
      expect(hi - lo, name).toBeGreaterThan(0.3);
    }
  });

  it('PNG round trip is exact at 8 bits; unknown names and bad bytes get clear errors', () => {
    const cam = loadImage('camera');
    const back = decodePngGrey(encodePngGrey(cam), 'camera-copy.png');
    for (let i = 0; i < cam.data.length; i += 997) expect(back.data[i]).toBeCloseTo(cam.data[i], 6);
    expect(() => loadImage('lena')).toThrow(/unknown image 'lena'; known: astronaut/);
    expect(() => decodePngGrey(new Uint8Array([1, 2, 3]), 'x.png')).toThrow(/x\.png: not a readable PNG/);
    expect(() => jpegDegrade(cam, 0)).toThrow(/integer from 1 to 100/);
  });

  it('JPEG at lower quality loses more PSNR and SSIM on every held-out image', () => {
    for (const { name, image } of loadImages('test')) {
      const c = crop(image, 64, 64, 160, 128);
      const ps = [10, 30, 50].map((q) => psnr(jpegDegrade(c, q), c));
      const ss = [10, 30, 50].map((q) => ssim(jpegDegrade(c, q), c));
      expect(ps[0], name).toBeGreaterThan(20);
      expect(ps[0], name).toBeLessThan(ps[1]);
      expect(ps[1], name).toBeLessThan(ps[2]);
      expect(ss[0], name).toBeLessThan(ss[1]);
      expect(ss[1], name).toBeLessThan(ss[2]);
      expect(ss[2], name).toBeLessThan(1);
    }
  });

  it('SSIM matches its direct definition and is 1 on identical images', () => {
    const c = crop(loadImage('astronaut'), 200, 100, 40, 32);
    const d = jpegDegrade(c, 20);
    expect(ssim(c, c)).toBeCloseTo(1, 12);
    expect(ssim(d, c)).toBeCloseTo(ssimDirect(d, c), 10);
  });
});

describe('quality score on real held-out photos (GPU)', () => {
  let device: Awaited<ReturnType<typeof createGpuDevice>>;
  beforeAll(async () => {
    device = await createGpuDevice();
  });
  afterAll(() => device?.destroy());

  it('matches the float64 reference and falls with JPEG quality 10 … 50 (camera, astronaut)', async () => {
    for (const name of ['camera', 'astronaut']) {
      const img = crop(loadImage(name), 0, 0, 256, 256);
      const qualities = [10, 20, 30, 40, 50];
      const images = qualities.map((q) => jpegDegrade(img, q));
      const x = new Float32Array(images.length * 256 * 256);
      for (const [b, im] of images.entries()) x.set(im.data, b * 256 * 256);
      const xt = device.tensor('f32', [x.length], x);
      const yt = device.tensor('f32', [images.length]);
      device.dispatch(
        kernels.qualityScore,
        { x: xt, y: yt },
        { B: images.length, C: 1, H: 256, W: 256, yStride: 1, yOffset: 0 },
      );
      const got = await yt.read();
      xt.dispose();
      yt.dispose();
      for (const [b, im] of images.entries()) {
        const ref = qualityScoreReference(im.data, 1, 256, 256);
        // f32 moments put an error of about 1e-9 on a block's SSM (≈ 0.004 × a few f32 ulps): a block closer
        // than 1e-7 to the threshold could be classified differently on the GPU, and the comparison would not hold.
        const margin = Math.min(...ref.blocks.map((k) => Math.abs(k.ssm - 0.004)));
        expect(margin, `${name} q${qualities[b]}: a block sits on the SSM threshold`).toBeGreaterThan(1e-7);
        expect(Math.abs(got[b] - ref.score), `${name} q${qualities[b]}`).toBeLessThanOrEqual(1e-4 + 1e-4 * ref.score);
        if (b > 0) expect(got[b], `${name} q${qualities[b]}`).toBeGreaterThan(got[b - 1]);
      }
    }
  });
});
