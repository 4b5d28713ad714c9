// POST /v1/enhance serves the shipped RBQE enhancer folder (checkpoints/rbqe): the PNG it answers equals the
// same pipeline run directly (codec, luma enhancement with the same policy, chroma kept), the exit follows the
// policy, it is listed by /v1/models, and bad images get clear errors (400 / 413) before any decoding.
import { join } from 'node:path';
import { createDevice, type Device, ImageEnhancer } from '@offramp/core';
import { loadEnhancerDir } from '@offramp/core/node';
import { policyFromSpec } from '@offramp/policies';
import { decodeImage, encodePng, rgbaToYcc, yccToRgba } from '@offramp/train';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type OfframpServer } from './server.js';

const dir = join(import.meta.dirname, '../../../checkpoints/rbqe');
let device: Device;
let srv: OfframpServer;

/** A smooth colour test picture with edges, JPEG-compressed at quality q. */
function testJpeg(w: number, h: number, q: number): Uint8Array {
  const data = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = 4 * (y * w + x);
      data[i] = (x * 255) / w;
      data[i + 1] = x > w / 2 !== y > h / 2 ? 200 : 40;
      data[i + 2] = 128 + 100 * Math.sin(x / 3 + y / 5);
      data[i + 3] = 255;
    }
  return new Uint8Array(jpeg.encode({ data, width: w, height: h }, q).data);
}

beforeAll(async () => {
  device = await createDevice({ backend: 'gpu' });
  srv = await createServer({ models: { rbqe: dir }, device, logger: false, warmup: true });
});
afterAll(async () => {
  await srv?.close();
  device?.destroy();
});

const post = (payload: object) => srv.app.inject({ method: 'POST', url: '/v1/enhance', payload });

describe('POST /v1/enhance', () => {
  it('answers the PNG of the same pipeline run directly, with the exit the policy chose', async () => {
    const file = testJpeg(45, 37, 15);
    const { config, tensors } = loadEnhancerDir(dir);
    const direct = new ImageEnhancer(device, config, tensors, { maxBatch: 1 });
    try {
      for (const policy of ['quality:threshold=0.5', 'static:exit=0', 'static:exit=2']) {
        const res = await post({ model: 'rbqe', image: Buffer.from(file).toString('base64'), policy });
        expect(res.statusCode, res.body).toBe(200);
        const b = res.json();
        expect([b.width, b.height, b.format, b.num_exits]).toEqual([45, 37, 'jpeg', 3]);
        // the same pipeline, directly
        const img = await decodeImage(file, 'x.jpg', 1 << 20);
        const { y, cb, cr } = rgbaToYcc(img.rgba, 45 * 37);
        const [want] = await direct.enhance([{ width: 45, height: 37, data: y }], {
          policy: policyFromSpec(policy),
          trace: true,
        });
        expect(b.exit_index).toBe(want.exitIndex);
        expect(b.quality_scores).toEqual(want.scores);
        expect(b.quality_scores).toHaveLength(want.exitIndex + 1);
        expect(b.cost_fraction).toBeCloseTo(want.costFraction, 12);
        const png = Buffer.from(await encodePng(45, 37, yccToRgba(want.data, cb, cr))).toString('base64');
        expect(b.image).toBe(png);
        if (policy.startsWith('static')) expect(b.exit_index).toBe(Number(policy.at(-1)));
      }
      // a data URL is accepted; the default policy is quality
      const d = await post({ model: 'rbqe', image: `data:image/jpeg;base64,${Buffer.from(file).toString('base64')}` });
      expect(d.statusCode).toBe(200);
      expect(d.json().policy).toMatch(/^quality/);
    } finally {
      direct.dispose();
    }
  });

  it('is listed by /v1/models', async () => {
    const r = await srv.app.inject({ method: 'GET', url: '/v1/models' });
    expect(r.json().data).toContainEqual(
      expect.objectContaining({ id: 'rbqe', kind: 'enhancer', num_exits: 3, routes: ['/v1/enhance'] }),
    );
  });

  it('rejects bad input with what was wrong: not base64, not an image, truncated, too large, unknown model or policy', async () => {
    const file = Buffer.from(testJpeg(45, 37, 30));
    let r = await post({ model: 'rbqe', image: 'not base64!' });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.message).toMatch(/image: not base64/);
    r = await post({ model: 'rbqe', image: Buffer.from('hello, world').toString('base64') });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.message).toMatch(/not a JPEG or PNG image \(it starts with bytes 68 65 6c 6c\)/);
    r = await post({ model: 'rbqe', image: file.subarray(0, Math.floor(file.length * 0.6)).toString('base64') });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.message).toMatch(/truncated or damaged JPEG/);
    // a PNG whose header says 20000 × 20000: refused from the header, nothing decoded
    const huge = Buffer.from(await encodePng(16, 16, new Uint8Array(16 * 16 * 4)));
    huge.writeUInt32BE(20000, 16);
    huge.writeUInt32BE(20000, 20);
    r = await post({ model: 'rbqe', image: huge.toString('base64') });
    expect(r.statusCode).toBe(413);
    expect(r.json().error.message).toMatch(/20000×20000 \(400,000,000 pixels\); at most/);
    r = await post({ model: 'rbqe', image: Buffer.from(testJpeg(8, 8, 50)).toString('base64') });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.message).toMatch(/at least 16×16/);
    r = await post({ model: 'nope', image: file.toString('base64') });
    expect(r.statusCode).toBe(404);
    r = await post({ model: 'rbqe', image: file.toString('base64'), policy: 'qualty' });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.message).toMatch(/^policy:/);
    r = await post({ model: 'rbqe', image: file.toString('base64'), extra: 1 });
    expect(r.statusCode).toBe(400);
  });
});
