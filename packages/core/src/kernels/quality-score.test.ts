// The RBQE quality score kernel against its float64 reference, and the score's behaviour on images with known
// degradations: more Gaussian blur and lower JPEG quality (jpeg-js) must lower it. The conformance suite
// (conformance.test.ts) also runs the kernel's own cases.
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOLERANCES } from '../runtime/conformance.js';
import { createGpuDevice } from '../runtime/create-device.js';
import type { GpuDevice } from '../runtime/gpu-device.js';
import { mulberry32 } from '../util/random.js';
import { qualityScore, tchebichefPolynomials } from './quality-score.js';
import { orthonormalPolynomials, QUALITY_SSM_THRESHOLD, qualityScoreReference } from './quality-score-reference.js';

let device: GpuDevice;
beforeAll(async () => {
  device = await createGpuDevice();
});
afterAll(() => device?.destroy());

/** A dead-leaves image (overlapping discs with gentle shading, plus fine noise): edges, smooth and textured areas. */
function deadLeaves(H: number, W: number, seed: number): Float64Array {
  const rand = mulberry32(seed);
  const img = new Float64Array(H * W).fill(0.5);
  for (let n = 0; n < 600; n++) {
    const cx = rand() * W;
    const cy = rand() * H;
    const r = 3 + 40 * rand() ** 3;
    const v = 0.1 + 0.8 * rand();
    for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(H, cy + r); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(W, cx + r); x++) {
        if ((x - cx) ** 2 + (y - cy) ** 2 < r * r) img[y * W + x] = v + 0.0015 * (x - cx);
      }
    }
  }
  return img;
}

/** Separable Gaussian blur, edges replicated. */
function gaussianBlur(img: Float64Array, H: number, W: number, sigma: number): Float64Array {
  const r = Math.ceil(3 * sigma);
  const k = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const s = k.reduce((a, b) => a + b, 0);
  const kk = k.map((v) => v / s);
  const cl = (v: number, n: number) => Math.min(n - 1, Math.max(0, v));
  const tmp = new Float64Array(H * W);
  const out = new Float64Array(H * W);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      let a = 0;
      for (let i = -r; i <= r; i++) a += kk[i + r] * img[y * W + cl(x + i, W)];
      tmp[y * W + x] = a;
    }
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      let a = 0;
      for (let i = -r; i <= r; i++) a += kk[i + r] * tmp[cl(y + i, H) * W + x];
      out[y * W + x] = a;
    }
  return out;
}

/** Grey image through jpeg-js at quality `q` and back, in [0, 1]. */
function jpegRoundTrip(img: Float64Array, H: number, W: number, q: number): Float64Array {
  const rgba = new Uint8Array(H * W * 4);
  for (let i = 0; i < H * W; i++) {
    const v = Math.round(Math.min(1, Math.max(0, img[i])) * 255);
    rgba[4 * i] = v;
    rgba[4 * i + 1] = v;
    rgba[4 * i + 2] = v;
    rgba[4 * i + 3] = 255;
  }
  const dec = jpeg.decode(jpeg.encode({ data: rgba, width: W, height: H }, q).data, { useTArray: true });
  return Float64Array.from({ length: H * W }, (_, i) => dec.data[4 * i] / 255);
}

/** Scores of a batch of (1, H, W) images on the GPU, in one dispatch. */
async function gpuScores(images: Float64Array[], H: number, W: number): Promise<Float32Array> {
  const x = new Float32Array(images.length * H * W);
  for (const [b, img] of images.entries()) x.set(img, b * H * W);
  const xt = device.tensor('f32', [x.length], x);
  const yt = device.tensor('f32', [images.length]);
  device.dispatch(qualityScore, { x: xt, y: yt }, { B: images.length, C: 1, H, W, yStride: 1, yOffset: 0 });
  const y = (await yt.read()) as Float32Array;
  xt.dispose();
  yt.dispose();
  return y;
}

function expectClose(got: ArrayLike<number>, want: number[]): void {
  const { atol, rtol } = TOLERANCES.accumulate;
  for (let i = 0; i < want.length; i++)
    expect(Math.abs(got[i] - want[i]), `image ${i}`).toBeLessThanOrEqual(atol + rtol * Math.abs(want[i]));
}

/** The images' blocks must not sit on the textured/smooth threshold, or f32 rounding could reclassify one. */
function expectClearOfThreshold(img: Float64Array, H: number, W: number): void {
  const r = qualityScoreReference(img, 1, H, W);
  const closest = Math.min(...r.blocks.map((b) => Math.abs(b.ssm - QUALITY_SSM_THRESHOLD)));
  expect(closest).toBeGreaterThan(1e-5);
}

describe('Tchebichef polynomials', () => {
  it('the recurrence (kernel) equals Gram–Schmidt on monomials (reference) and is orthonormal', () => {
    const a = tchebichefPolynomials(8);
    const b = orthonormalPolynomials(8);
    for (let p = 0; p < 8; p++) {
      for (let x = 0; x < 8; x++) expect(Math.abs(a[p][x] - b[p][x])).toBeLessThan(1e-12);
      for (let q = 0; q < 8; q++) {
        let d = 0;
        for (let x = 0; x < 8; x++) d += a[p][x] * a[q][x];
        expect(Math.abs(d - (p === q ? 1 : 0))).toBeLessThan(1e-12);
      }
    }
  });
});

describe('qualityScore reference', () => {
  it('classifies a flat block as smooth with zero blockiness score and a noise block as textured', () => {
    const H = 16;
    const flat = new Float64Array(H * H).fill(0.4);
    const r = qualityScoreReference(flat, 1, H, H);
    expect(r.blocks).toHaveLength(1);
    expect(r.blocks[0]).toMatchObject({ y: 4, x: 4, textured: false });
    expect(Math.abs(r.blocks[0].value)).toBe(0);
    expect(r.score).toBe(0);
    const rand = mulberry32(3);
    const noise = Float64Array.from({ length: H * H }, () => rand());
    const n = qualityScoreReference(noise, 1, H, H);
    expect(n.blocks[0].textured).toBe(true);
    expect(n.blur).toBeGreaterThan(0);
    expect(n.blocky).toBe(1);
  });
  it('scores RGB planes on their luma', () => {
    const H = 24;
    const W = 32;
    const grey = deadLeaves(H, W, 5);
    const rgb = new Float64Array(3 * H * W);
    for (let i = 0; i < H * W; i++) {
      rgb[i] = grey[i];
      rgb[H * W + i] = grey[i];
      rgb[2 * H * W + i] = grey[i];
    }
    expect(qualityScoreReference(rgb, 3, H, W).score).toBeCloseTo(qualityScoreReference(grey, 1, H, W).score, 12);
  });
});

describe('qualityScore kernel vs reference', () => {
  it('matches the float64 reference on a batch of dead-leaves images, blurred and JPEG-compressed', async () => {
    const H = 128;
    const W = 136;
    const base = deadLeaves(H, W, 7);
    const images = [base, gaussianBlur(base, H, W, 1), jpegRoundTrip(base, H, W, 10), jpegRoundTrip(base, H, W, 50)];
    for (const img of images) expectClearOfThreshold(img, H, W);
    const got = await gpuScores(images, H, W);
    expectClose(
      got,
      images.map((img) => qualityScoreReference(img, 1, H, W).score),
    );
  });
});

describe('qualityScore on degraded images (GPU)', () => {
  const H = 128;
  const W = 128;
  it('more Gaussian blur gives a lower score (σ 0.5 … 3)', async () => {
    for (const seed of [7, 3]) {
      const base = deadLeaves(H, W, seed);
      const sigmas = [0.5, 1, 1.5, 2, 3];
      const scores = await gpuScores(
        sigmas.map((s) => gaussianBlur(base, H, W, s)),
        H,
        W,
      );
      for (let i = 1; i < sigmas.length; i++)
        expect(scores[i], `σ ${sigmas[i]} vs ${sigmas[i - 1]}`).toBeLessThan(scores[i - 1]);
    }
  });
  it('lower JPEG quality gives a lower score (quality 10 … 50)', async () => {
    const base = deadLeaves(H, W, 7);
    const qualities = [10, 20, 30, 40, 50];
    const scores = await gpuScores(
      qualities.map((q) => jpegRoundTrip(base, H, W, q)),
      H,
      W,
    );
    for (let i = 1; i < qualities.length; i++)
      expect(scores[i], `quality ${qualities[i]}`).toBeGreaterThan(scores[i - 1]);
  });
});

describe('qualityScore validation', () => {
  it('rejects images smaller than 16×16, other channel counts and an offset outside the stride', () => {
    expect(() => qualityScore.sizes({ B: 1, C: 1, H: 15, W: 64, yStride: 1, yOffset: 0 }, {})).toThrow(
      /at least 16×16/,
    );
    expect(() => qualityScore.sizes({ B: 1, C: 2, H: 16, W: 16, yStride: 1, yOffset: 0 }, {})).toThrow(/C must be 1/);
    expect(() => qualityScore.sizes({ B: 1, C: 1, H: 16, W: 16, yStride: 8, yOffset: 8 }, {})).toThrow(/yOffset/);
  });
});
