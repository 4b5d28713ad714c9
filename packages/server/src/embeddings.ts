// OpenAI-compatible POST /v1/embeddings on multi-exit embedders, as a Fastify plugin: `input` a string or an
// array of strings, `encoding_format` 'float', `dimensions` (must equal the model's width when given: the
// embeddings are not trained for truncation), and Offramp's `exit` (0-based; the depth the embeddings come
// from, default the last exit). The response adds `offramp: { exit, block, flops }`. Errors use OpenAI's shape.
import type { LoadedEmbedder } from '@offramp/train/embeddings';
import type { FastifyPluginAsync } from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ApiError, toOpenAiError } from './completions.js';

export interface EmbeddingsPluginOptions {
  /** Served embedders by the name requests give in `model`. */
  models: Record<string, LoadedEmbedder>;
  /** Most texts per request (default 256). */
  maxInputs?: number;
  /** Longest text in characters (default 32768); the model keeps its first max_position tokens. */
  maxChars?: number;
  /**
   * Maps an error thrown while embedding (the server uses it to answer a lost GPU device with 503 and to
   * start its recovery). Default: the error itself.
   */
  mapError?: (e: unknown, model: string, embedder: LoadedEmbedder) => unknown;
}

export function embeddingsPlugin(options: EmbeddingsPluginOptions): FastifyPluginAsync {
  const maxInputs = options.maxInputs ?? 256;
  const maxChars = options.maxChars ?? 32768;
  const text = z.string().min(1).max(maxChars);
  const body = z
    .object({
      model: z.string(),
      input: z.union([text, z.array(text).min(1).max(maxInputs)]),
      encoding_format: z.literal('float').optional(),
      dimensions: z.number().int().positive().optional(),
      exit: z.number().int().min(0).optional(),
      user: z.string().optional(),
    })
    .strict();
  return async (fastify) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    app.setValidatorCompiler(validatorCompiler);
    app.setErrorHandler((err, request, reply) => {
      const { status, body: b } = toOpenAiError(err);
      if (status >= 500) request.log.error({ err }, 'embeddings route failed');
      return reply.code(status).send(b);
    });
    app.post('/v1/embeddings', { schema: { body } }, async (request) => {
      const r = request.body;
      const m = options.models[r.model];
      if (!m) {
        throw new ApiError(
          404,
          `model '${r.model}' is not served here; embedders: ${Object.keys(options.models).join(', ') || 'none'}`,
          'model',
          'model_not_found',
        );
      }
      const E = m.config.exit_blocks.length;
      const exit = r.exit ?? E - 1;
      if (exit >= E) {
        throw new ApiError(
          400,
          `exit must be an integer in [0, ${E - 1}] for model '${r.model}', got ${exit}`,
          'exit',
          'invalid_exit',
        );
      }
      if (r.dimensions !== undefined && r.dimensions !== m.config.embedding_dim) {
        throw new ApiError(
          400,
          `dimensions must be ${m.config.embedding_dim} for model '${r.model}' (its embedding width), got ${r.dimensions}; choose the depth with 'exit' (0..${E - 1})`,
          'dimensions',
          'invalid_dimensions',
        );
      }
      const texts = typeof r.input === 'string' ? [r.input] : r.input;
      const tokens = m.tokenize(texts).reduce((s, x) => s + x.length, 0);
      let out: Awaited<ReturnType<LoadedEmbedder['embedTexts']>>;
      try {
        out = await m.embedTexts(texts, { exit });
      } catch (e) {
        throw options.mapError ? options.mapError(e, r.model, m) : e;
      }
      const p = out.dim;
      return {
        object: 'list',
        model: r.model,
        data: texts.map((_, i) => ({
          object: 'embedding',
          index: i,
          embedding: Array.from(out.vectors[0].subarray(i * p, (i + 1) * p)),
        })),
        usage: { prompt_tokens: tokens, total_tokens: tokens },
        offramp: { exit, block: m.config.exit_blocks[exit], flops: out.flops.reduce((a, b) => a + b, 0) },
      };
    });
  };
}
