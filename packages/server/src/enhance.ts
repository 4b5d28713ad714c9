// POST /v1/enhance: JPEG artefact removal with an RBQE enhancer folder (architecture rbqe_enhancer), one
// pass with early exit per image: the exit is decided by a policy (default `quality`, RBQE's no-reference
// quality score computed on the GPU). The request carries a JPEG or PNG as base64 (a data: URL prefix is
// accepted); colour images are enhanced on their luma (BT.601) and keep their chroma, as `offramp enhance`
// does. The answer is a PNG (base64) with the exit taken, the quality score at each exit reached and the
// compute spent. The image's size is read from its header and checked before anything is decoded.
import { type Device, type ExitPolicy, ImageEnhancer } from '@offramp/core';
import { loadEnhancerDir } from '@offramp/core/node';
import { decodeImage, encodePng, ImageDecodeError, rgbaToYcc, yccToRgba } from '@offramp/train';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { InputError, LimitError } from './models.js';
import { ErrorResponse } from './schemas.js';

export interface ServedEnhancer {
  name: string;
  dir: string;
  enhancer: ImageEnhancer;
  /** Exits (one per level). */
  numExits: number;
}

/** Default largest image file a request may carry, in bytes (before base64). */
export const DEFAULT_MAX_IMAGE_BYTES = 8 * 1024 * 1024;
/** Default largest image, in pixels (2048 × 2048), or less when the device holds less. */
export const DEFAULT_MAX_IMAGE_PIXELS = 2048 * 2048;

export function loadServedEnhancer(device: Device, name: string, dir: string, maxPixels: number): ServedEnhancer {
  const { config, tensors } = loadEnhancerDir(dir);
  const enhancer = new ImageEnhancer(device, config, tensors, { maxPixels, maxBatch: 1 });
  return { name, dir, enhancer, numExits: config.levels };
}

export interface EnhanceRouteOptions {
  /** The served enhancers by name (the same Map across device recoveries; its entries are replaced). */
  enhancers: Map<string, ServedEnhancer>;
  /** The policy a spec names (the server's cache); throws InputError for a bad spec. */
  policy(spec: string): { spec: string; policy: ExitPolicy<any> };
  /** Maps an error thrown while enhancing (a lost device → 503 and a recovery). */
  mapError(e: unknown, served: ServedEnhancer): unknown;
  /** Largest image file in bytes (default DEFAULT_MAX_IMAGE_BYTES). */
  maxImageBytes?: number;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DATA_URL = /^data:image\/(?:jpeg|jpg|png);base64,/i;

export const EnhanceResponse = z.object({
  model: z.string(),
  policy: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  format: z.enum(['jpeg', 'png']),
  exit_index: z.number().int(),
  num_exits: z.number().int(),
  quality_scores: z.array(z.number()),
  flops: z.number(),
  cost_fraction: z.number(),
  ms: z.number(),
  image: z.string(),
});

export function enhanceRoute(o: EnhanceRouteOptions): FastifyPluginAsync {
  const maxBytes = o.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES;
  const maxChars = Math.ceil(maxBytes / 3) * 4 + 64;
  const body = z.strictObject({
    model: z.string().min(1).max(200),
    image: z.string().min(1, 'image is empty: give a JPEG or PNG file as base64'),
    policy: z.string().min(1).max(200).optional(),
  });
  return async (fastify) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    app.post(
      '/v1/enhance',
      {
        bodyLimit: maxChars + 4096,
        schema: {
          summary: 'Remove JPEG artefacts from an image with early exit (RBQE)',
          body,
          response: { 200: EnhanceResponse, 400: ErrorResponse, 404: ErrorResponse, 413: ErrorResponse },
        },
      },
      async (req) => {
        const r = req.body;
        const served = o.enhancers.get(r.model);
        if (!served)
          throw Object.assign(
            new Error(
              `model '${r.model}' is not an image enhancer served here; enhancers: ${[...o.enhancers.keys()].join(', ') || 'none'}`,
            ),
            { statusCode: 404, code: 'model_not_found' },
          );
        const p = o.policy(r.policy ?? 'quality');
        const b64 = r.image.replace(DATA_URL, '');
        if (b64.length > maxChars)
          throw new LimitError(
            `image: the file is about ${Math.round((b64.length * 3) / 4).toLocaleString('en-US')} bytes; this server takes at most ${maxBytes.toLocaleString('en-US')}`,
          );
        if (!BASE64.test(b64) || b64.length % 4 !== 0)
          throw new InputError(
            'image: not base64 (the characters A–Z, a–z, 0–9, +, / and = padding, in groups of 4; a data:image/jpeg;base64, or data:image/png;base64, prefix is accepted)',
          );
        const bytes = new Uint8Array(Buffer.from(b64, 'base64'));
        const { enhancer } = served;
        let img: Awaited<ReturnType<typeof decodeImage>>;
        try {
          img = await decodeImage(bytes, 'image', enhancer.maxPixels);
        } catch (e) {
          if (!(e instanceof ImageDecodeError)) throw e;
          throw e.reason === 'too-large' ? new LimitError(e.message) : new InputError(e.message);
        }
        const n = img.width * img.height;
        const { y, cb, cr } = rgbaToYcc(img.rgba, n);
        const plane = { width: img.width, height: img.height, data: y };
        try {
          enhancer.check(plane, 'image');
        } catch (e) {
          throw new InputError((e as Error).message);
        }
        const t0 = performance.now();
        let res: Awaited<ReturnType<ImageEnhancer['enhance']>>[number];
        try {
          [res] = await enhancer.enhance([plane], { policy: p.policy, trace: true });
        } catch (e) {
          throw o.mapError(e, served);
        }
        const ms = performance.now() - t0;
        const png = await encodePng(img.width, img.height, yccToRgba(res.data, cb, cr));
        return {
          model: r.model,
          policy: p.spec,
          width: img.width,
          height: img.height,
          format: img.format,
          exit_index: res.exitIndex,
          num_exits: served.numExits,
          quality_scores: res.scores ?? [],
          flops: res.flops,
          cost_fraction: res.costFraction,
          ms,
          image: Buffer.from(png).toString('base64'),
        };
      },
    );
  };
}
