// OpenAI-compatible text generation: POST /v1/completions and /v1/chat/completions as a Fastify plugin,
// answered by the models' decode schedulers (continuous batching), whole or streamed as server-sent events
// (`data: {chunk}\n\n` … `data: [DONE]\n\n`), with Offramp's early-exit extension (`offramp` in the request:
// exit policy and skipped-state treatment; in every response and chunk: the exit block of each token and
// the fraction of the depth run). Errors use OpenAI's shape { error: { message, type, param, code } }.
import { randomBytes, randomInt } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { ExitOptions, SamplingOptions } from '@offramp/mamba';
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { LoadedLm } from './completions-model.js';
import { exitRuleOf, PolicySpecError } from './completions-policy.js';
import { SchedulerBusyError } from './completions-scheduler.js';
import {
  type ChatBody,
  type CompletionBody,
  type CompletionsLimits,
  chatBodySchema,
  completionBodySchema,
  renderChat,
} from './completions-schema.js';
import { StopMatcher } from './completions-stop.js';

export { createLoadedLm, type LmTokenizer, type LoadedLm, loadLm } from './completions-model.js';
export { exitRuleOf, GENERATION_POLICIES, PolicySpecError } from './completions-policy.js';
export {
  type DecodeRequest,
  type DecodeResult,
  DecodeScheduler,
  type DecodeSchedulerOptions,
  type DecodeSchedulerStats,
  type FinishReason,
  SchedulerBusyError,
} from './completions-scheduler.js';
export { type ChatMessage, type CompletionsLimits, renderChat } from './completions-schema.js';
export { StopMatcher } from './completions-stop.js';

export interface CompletionsPluginOptions {
  /** Served models by the name requests give in `model`. */
  models: Record<string, LoadedLm>;
  /** Largest max_tokens a request may ask for (default 4096). */
  maxTokens?: number;
  /** Longest prompt in characters, after chat rendering (default 32768); the model's token limit applies too. */
  maxPromptChars?: number;
  /** max_tokens when a request gives none: /v1/completions 16 (as OpenAI), /v1/chat/completions 256. */
  defaultMaxTokens?: { completion?: number; chat?: number };
  /**
   * Turns an error of a model run (a failed prefill or decode step) into the error to answer with; the
   * server uses it to answer a lost GPU device with 503 and to start its recovery. Default: the error itself.
   */
  mapError?: (e: unknown, model: string, lm: LoadedLm) => unknown;
}

/** An error answered in OpenAI's shape. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type = statusCode >= 500 ? 'server_error' : 'invalid_request_error',
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

function errorBody(message: string, type: string, param: string | null, code: string | null): OpenAiErrorBody {
  return { error: { message, type, param, code } };
}

/** OpenAI-shaped status and body for any error a completions route raises. */
export function toOpenAiError(err: unknown): { status: number; body: OpenAiErrorBody } {
  if (hasZodFastifySchemaValidationErrors(err)) {
    const v = err.validation[0];
    const path = v.instancePath.replace(/^\//, '').split('/').filter(Boolean);
    const keys = (v.params as { keys?: string[] }).keys;
    if (v.keyword === 'unrecognized_keys' && keys?.length) path.push(keys[0]);
    const param = path.length ? path.join('.') : null;
    const message = err.validation
      .map((e) => {
        const p = e.instancePath.replace(/^\//, '').replaceAll('/', '.');
        return p ? `${p}: ${e.message}` : e.message;
      })
      .join('; ');
    return { status: 400, body: errorBody(message, 'invalid_request_error', param, v.keyword) };
  }
  if (err instanceof ApiError)
    return { status: err.statusCode, body: errorBody(err.message, err.type, err.param, err.code) };
  const e = err as Partial<FastifyError>;
  // the server's device faults (DeviceLostError, RecoveringError): 503 with their message
  if (e.statusCode === 503 && typeof e.message === 'string')
    return { status: 503, body: errorBody(e.message, 'server_error', null, e.code ?? null) };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return {
      status: e.statusCode,
      body: errorBody(e.message ?? 'bad request', 'invalid_request_error', null, e.code ?? null),
    };
  }
  return { status: 500, body: errorBody('internal server error', 'server_error', null, null) };
}

interface Job {
  kind: 'completion' | 'chat';
  lm: LoadedLm;
  model: string;
  prompt: number[];
  maxTokens: number;
  sampling: SamplingOptions;
  exit: ExitOptions;
  stops: string[];
  stream: boolean;
  includeUsage: boolean;
  mapError?: CompletionsPluginOptions['mapError'];
}

/** Checks everything the schema cannot (model, prompt length in tokens, policy) and gathers one job. */
function prepare(
  kind: 'completion' | 'chat',
  body: CompletionBody | ChatBody,
  o: Required<Pick<CompletionsPluginOptions, 'models'>> & {
    limits: CompletionsLimits;
    defaults: { completion: number; chat: number };
    mapError?: CompletionsPluginOptions['mapError'];
  },
): Job {
  const lm = Object.hasOwn(o.models, body.model) ? o.models[body.model] : undefined;
  if (!lm) {
    throw new ApiError(
      404,
      `The model '${body.model}' does not exist; this server has ${
        Object.keys(o.models)
          .map((m) => `'${m}'`)
          .join(', ') || 'no models'
      }`,
      'model',
      'model_not_found',
    );
  }
  const text =
    kind === 'chat'
      ? renderChat((body as ChatBody).messages)
      : (([] as string[]).concat((body as CompletionBody).prompt)[0] ?? '');
  const where = kind === 'chat' ? 'messages' : 'prompt';
  if (text.length > o.limits.maxPromptChars)
    throw new ApiError(
      400,
      `${where}: the prompt is ${text.length} characters${kind === 'chat' ? ' (rendered)' : ''}, more than the limit of ${o.limits.maxPromptChars}`,
      where,
      'prompt_too_long',
    );
  if (text.length === 0)
    throw new ApiError(400, 'prompt: the prompt is empty; give at least one character', where, 'empty_prompt');
  const prompt = Array.from(lm.tokenizer.encode(text));
  if (prompt.length > lm.backend.maxPromptTokens)
    throw new ApiError(
      400,
      `${where}: the prompt is ${prompt.length} tokens, more than this model's limit of ${lm.backend.maxPromptTokens}`,
      where,
      'prompt_too_long',
    );
  if (prompt.length === 0) throw new ApiError(400, `${where}: the prompt encodes to no tokens`, where, 'empty_prompt');
  let exit: ExitOptions;
  try {
    exit = {
      rule: exitRuleOf(body.offramp?.policy ?? 'never', lm.backend.exits),
      skip: body.offramp?.skip ?? 'freeze',
    };
  } catch (e) {
    if (e instanceof PolicySpecError)
      throw new ApiError(400, `offramp.policy: ${e.message}`, 'offramp.policy', 'invalid_policy');
    throw e;
  }
  const maxTokens =
    (kind === 'chat' ? (body as ChatBody).max_completion_tokens : undefined) ??
    body.max_tokens ??
    (kind === 'chat' ? o.defaults.chat : o.defaults.completion);
  if (lm.maxSeqLen !== undefined && prompt.length + maxTokens > lm.maxSeqLen)
    throw new ApiError(
      400,
      `This server's maximum sequence length for model '${body.model}' (maxSeqLen) is ${lm.maxSeqLen} tokens; this request asks for ${prompt.length + maxTokens} (${prompt.length} in the ${where}, ${maxTokens} to generate): shorten the ${where} or lower max_tokens`,
      kind === 'chat' && body.max_tokens === undefined ? 'max_completion_tokens' : 'max_tokens',
      'context_length_exceeded',
    );
  const context = lm.backend.maxContext;
  if (context !== undefined && prompt.length + maxTokens > context)
    throw new ApiError(
      400,
      `This model's context is ${context} tokens; this request asks for ${prompt.length + maxTokens} (${prompt.length} in the ${where}, ${maxTokens} to generate): shorten the ${where} or lower max_tokens`,
      kind === 'chat' && body.max_tokens === undefined ? 'max_completion_tokens' : 'max_tokens',
      'context_length_exceeded',
    );
  const temperature = body.temperature ?? 1;
  const topP = body.top_p ?? 1;
  const sampling: SamplingOptions =
    temperature === 0 || topP === 0
      ? { temperature: 0 }
      : {
          temperature,
          topP,
          seed: body.seed == null ? randomInt(2 ** 32) : Number(BigInt.asUintN(32, BigInt(body.seed))),
        };
  if (!body.stream && body.stream_options)
    throw new ApiError(400, 'stream_options: only allowed when stream is true', 'stream_options', 'invalid_value');
  return {
    kind,
    lm,
    model: body.model,
    prompt,
    maxTokens,
    sampling,
    exit,
    stops: body.stop == null ? [] : ([] as string[]).concat(body.stop),
    stream: body.stream ?? false,
    includeUsage: body.stream_options?.include_usage ?? false,
    mapError: o.mapError,
  };
}

/**
 * Runs a job on its model's scheduler; `onText` gets the text released after each token and its tokens'
 * exit blocks. Throws ApiError 503 synchronously when the scheduler's queue is full.
 */
function run(
  job: Job,
  signal: AbortSignal,
  onText: (text: string, exitBlocks: number[], depthFraction: number) => void,
) {
  const { backend: model, tokenizer, scheduler } = job.lm;
  const matcher = new StopMatcher(job.stops);
  const blocks: number[] = [];
  let pending: number[] = [];
  let deep = 0;
  const depth = () => (blocks.length > 1 ? deep / ((blocks.length - 1) * model.L) : 1);
  let submitted: ReturnType<typeof scheduler.submit>;
  try {
    submitted = scheduler.submit({
      prompt: job.prompt,
      maxTokens: job.maxTokens,
      sampling: job.sampling,
      exit: job.exit,
      signal,
      onToken(token, exitBlock) {
        if (blocks.length > 0) deep += exitBlock + 1;
        blocks.push(exitBlock);
        pending.push(exitBlock);
        const { emit, stopped } = matcher.push(tokenizer.decode([token]));
        if (emit) {
          onText(emit, pending, depth());
          pending = [];
        }
        return stopped;
      },
    });
  } catch (e) {
    if (e instanceof SchedulerBusyError) throw new ApiError(503, e.message, null, 'overloaded');
    throw e;
  }
  const mapped = job.mapError
    ? submitted.catch((e) => {
        throw job.mapError!(e, job.model, job.lm);
      })
    : submitted;
  return mapped.then((result) => {
    const rest = result.finishReason === 'stop' ? '' : matcher.flush();
    return {
      finishReason: result.finishReason,
      rest,
      restBlocks: pending,
      exitBlocks: blocks,
      depthFraction: depth(),
      usage: {
        prompt_tokens: job.prompt.length,
        completion_tokens: blocks.length,
        total_tokens: job.prompt.length + blocks.length,
      },
    };
  });
}

function newId(kind: Job['kind']): string {
  return `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`;
}

async function respond(job: Job, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const ac = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  const id = newId(job.kind);
  const created = Math.floor(Date.now() / 1000);
  if (!job.stream) {
    let text = '';
    const r = await run(job, ac.signal, (t) => {
      text += t;
    });
    text += r.rest;
    if (r.finishReason === 'aborted') {
      request.log.info({ id }, 'completion abandoned by the client');
      return reply.hijack();
    }
    const offramp = { exit_blocks: r.exitBlocks, depth_fraction: r.depthFraction };
    const finish_reason = r.finishReason;
    const choice =
      job.kind === 'chat'
        ? { index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason }
        : { index: 0, text, logprobs: null, finish_reason };
    return reply.send({
      id,
      object: job.kind === 'chat' ? 'chat.completion' : 'text_completion',
      created,
      model: job.model,
      choices: [choice],
      usage: r.usage,
      offramp,
    });
  }

  // streaming: server-sent events, one chunk per piece of released text
  const out = new PassThrough();
  const object = job.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
  const open = () => !out.writableEnded && !out.destroyed;
  const send = (o: unknown) => {
    if (open()) out.write(`data: ${JSON.stringify(o)}\n\n`);
  };
  const chunk = (
    delta: { role?: string; content?: string },
    finish_reason: string | null,
    exitBlocks: number[],
    depthFraction: number,
  ) => ({
    id,
    object,
    created,
    model: job.model,
    choices: [
      job.kind === 'chat'
        ? { index: 0, delta, logprobs: null, finish_reason }
        : { index: 0, text: delta.content ?? '', logprobs: null, finish_reason },
    ],
    ...(job.includeUsage ? { usage: null } : {}),
    offramp: { exit_blocks: exitBlocks, depth_fraction: depthFraction },
  });
  const done = run(job, ac.signal, (text, blocks, depth) => send(chunk({ content: text }, null, blocks, depth)));
  if (job.kind === 'chat') send(chunk({ role: 'assistant', content: '' }, null, [], 1));
  done.then(
    (r) => {
      if (r.finishReason !== 'aborted') {
        if (r.rest) send(chunk({ content: r.rest }, null, r.restBlocks, r.depthFraction));
        send(chunk({}, r.finishReason, r.rest ? [] : r.restBlocks, r.depthFraction));
        if (job.includeUsage)
          send({
            id,
            object,
            created,
            model: job.model,
            choices: [],
            usage: r.usage,
            offramp: { exit_blocks: [], depth_fraction: r.depthFraction },
          });
        if (open()) out.end('data: [DONE]\n\n');
      } else if (open()) out.end();
    },
    (e) => {
      request.log.error({ err: e, id }, 'streamed completion failed');
      send(toOpenAiError(e).body);
      if (open()) out.end();
    },
  );
  return reply
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-cache')
    .header('x-accel-buffering', 'no')
    .send(out);
}

/**
 * The completions routes as a plugin (encapsulated: its validator and error handler apply to its own
 * routes only). Register it on a Fastify instance: `app.register(completionsPlugin({ models }))`.
 */
export function completionsPlugin(options: CompletionsPluginOptions): FastifyPluginAsync {
  const limits: CompletionsLimits = {
    maxTokens: options.maxTokens ?? 4096,
    maxPromptChars: options.maxPromptChars ?? 32_768,
  };
  const defaults = {
    completion: options.defaultMaxTokens?.completion ?? 16,
    chat: options.defaultMaxTokens?.chat ?? 256,
  };
  for (const [k, v] of Object.entries(defaults))
    if (!Number.isInteger(v) || v < 1 || v > limits.maxTokens)
      throw new RangeError(
        `completionsPlugin: defaultMaxTokens.${k} must be an integer in [1, ${limits.maxTokens}], got ${v}`,
      );
  const ctx = { models: options.models, limits, defaults, mapError: options.mapError };
  const completionBody = completionBodySchema(limits);
  const chatBody = chatBodySchema(limits);
  return async (fastify) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    app.setValidatorCompiler(validatorCompiler);
    app.setErrorHandler((err, request, reply) => {
      const { status, body } = toOpenAiError(err);
      if (status === 503) {
        if (!reply.getHeader('retry-after'))
          reply.header('retry-after', String((err as { retryAfterS?: number }).retryAfterS ?? 1));
      } else if (status >= 500) request.log.error({ err }, 'completions route failed');
      return reply.code(status).send(body);
    });
    app.post('/v1/completions', { schema: { body: completionBody } }, (request, reply) =>
      respond(prepare('completion', request.body, ctx), request, reply),
    );
    app.post('/v1/chat/completions', { schema: { body: chatBody } }, (request, reply) =>
      respond(prepare('chat', request.body, ctx), request, reply),
    );
  };
}
