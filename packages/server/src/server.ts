// createServer: the Fastify app that serves configured early-exit classifiers over HTTP. Bodies are checked
// by zod schemas (which also give the OpenAPI document at /docs/json); classify requests go through the batch
// scheduler; every error is answered with a status and a message ({ error: { message, code } }).
import { timingSafeEqual } from 'node:crypto';
import cors, { type FastifyCorsOptions } from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import underPressure from '@fastify/under-pressure';
import {
  createDevice,
  type Device,
  type ExitPolicy,
  GpuDevice,
  GpuError,
  type SampleTrace,
  ValidationError,
} from '@offramp/core';
import { parsePolicySpec, policyFromSpec } from '@offramp/policies';
import type { LoadedEmbedder } from '@offramp/train/embeddings';
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { completionsPlugin } from './completions.js';
import { type LoadedLm, loadLm } from './completions-model.js';
import { embeddingsPlugin } from './embeddings.js';
import {
  DEFAULT_MAX_IMAGE_BYTES,
  DEFAULT_MAX_IMAGE_PIXELS,
  enhanceRoute,
  loadServedEnhancer,
  type ServedEnhancer,
} from './enhance.js';
import { DeviceLostError, isDeviceFault, RecoveringError } from './faults.js';
import { createMetrics, type ServerMetrics } from './metrics.js';
import { encodeInput, folderKind, InputError, loadServedModel, type ServedModel } from './models.js';
import { RefillScheduler, refillUnsupported } from './refill-scheduler.js';
import { type BatchInfo, BatchScheduler, QueueFullError } from './scheduler.js';
import {
  ClassifyBody,
  ClassifyResponse,
  ErrorResponse,
  HealthResponse,
  ModelsResponse,
  ReadyResponse,
} from './schemas.js';

/** One served model with its own limits (each falls back to the server-wide option of the same name). */
export interface ModelEntry {
  /** The model folder. */
  path: string;
  /** Most requests (rows) per engine batch of this model, and per request's `inputs`. */
  maxBatch?: number;
  /**
   * Text classifiers: most tokens per input ([CLS] included), at most the model's own maximum; longer
   * inputs get 413 (or are cut with `truncate: true`). Language models: most prompt plus max_tokens
   * tokens; more get 400 (context_length_exceeded). Not allowed on image models.
   */
  maxSeqLen?: number;
  /** Policy spec used when a request names none (overrides defaultPolicies). */
  defaultPolicy?: string;
}

export interface ServerOptions {
  /**
   * Served models: request name → model folder, or a ModelEntry with per-model limits (requests name a
   * model, never a path). Offramp classifiers (config.json with offramp_format) answer /v1/classify; Mamba
   * and Llama-style language models answer the OpenAI-compatible /v1/completions and /v1/chat/completions;
   * multi-exit embedders (architecture encoder_embedder) answer the OpenAI-compatible /v1/embeddings; image
   * enhancers (architecture rbqe_enhancer) answer /v1/enhance.
   */
  models: Record<string, string | ModelEntry>;
  /**
   * A device to use, or which backend to create ('auto': the GPU when there is one). Default 'auto'. When a
   * GPU device is lost the server makes a new one of the same kind (and owns it: close() destroys it).
   */
  device?: Device | 'gpu' | 'cpu' | 'auto';
  /** Makes the replacement device after a loss. Default: createDevice({ backend: 'gpu' }). */
  recreateDevice?: () => Promise<Device>;
  /** Most requests per engine batch, for models that set none. Default 16. */
  maxBatch?: number;
  /** Most tokens per input of text models (and prompt + max_tokens of language models) that set none. */
  maxSeqLen?: number;
  /** Longest a request waits for its batch to fill, in ms. Default 5. */
  maxWaitMs?: number;
  /** Most classify requests queued or running; beyond it requests get 429 with Retry-After. Default 256. */
  maxQueue?: number;
  /** Batches of one model running at once. Default 2. */
  concurrency?: number;
  /**
   * How /v1/classify batches: 'window' (default: a batch per model, policy and bucket after maxWaitMs or
   * maxBatch rows) or 'refill' (iteration-level: rows admitted between depth steps into the slots exits free;
   * ONNX Runtime CPU path only, refused on a GPU). See docs/scheduling.md.
   */
  scheduler?: 'window' | 'refill';
  /** Largest request body in bytes. Default 1 MiB (/v1/enhance has its own: see maxImageBytes). */
  bodyLimit?: number;
  /** /v1/enhance: largest image file in bytes (the body may hold its base64). Default 8 MiB. */
  maxImageBytes?: number;
  /** /v1/enhance: largest image in pixels (default 2048 × 2048, or less when the device holds less). */
  maxImagePixels?: number;
  /** A request's whole time in the server (receiving it and waiting for its answer), in ms. Default 30 000. */
  requestTimeoutMs?: number;
  /** Bearer token required on every route but /health and /ready. Default: $OFFRAMP_API_KEY, else none. */
  apiKey?: string;
  /** CORS: off by default; true allows any origin, or @fastify/cors options. */
  cors?: boolean | FastifyCorsOptions;
  /** Per-client rate limit (by IP): requests per window. Off by default. */
  rateLimit?: { max: number; timeWindowMs?: number } | false;
  /**
   * Load shedding by process health (@fastify/under-pressure): past these, requests get 503 with
   * Retry-After. Off by default (the queue limit already bounds the work a server accepts).
   */
  underPressure?: { maxEventLoopDelayMs?: number; maxHeapUsedBytes?: number; retryAfterS?: number };
  /** Fastify/pino logger options; false for none. Default: JSON at 'info', silent under vitest. */
  logger?: FastifyServerOptions['logger'];
  /** Policy spec per model name used when a request names none. Default 'confidence:threshold=0.9'. */
  defaultPolicies?: Record<string, string>;
  /** More routes (the OpenAI-compatible completions plugin, ...), registered after the built-in ones. */
  plugins?: FastifyPluginAsync<any>[];
  /**
   * Before createServer returns, send every model one request through its own route (a blank image or a
   * short text; a 2-token completion), so the GPU pipelines are compiled before the first user's request and
   * before /ready is reachable. With a cold shader cache (a fresh container) a first request can otherwise
   * take longer than the request timeout. Default false here; `offramp serve` turns it on.
   */
  warmup?: boolean;
  /** Called after each engine batch (tests use it to see batches form). */
  onBatch?: (info: BatchInfo) => void;
}

/** What routes plugins find on `app.offramp`. */
export interface OfframpContext {
  /** The classifiers by name (the same Map across device recoveries; its entries are replaced). */
  models: Map<string, ServedModel>;
  /** The language models (completions routes), by name. */
  lms: Map<string, LoadedLm>;
  /** The multi-exit embedders (/v1/embeddings), by name. */
  embedders: Map<string, LoadedEmbedder>;
  /** The image enhancers (/v1/enhance), by name. */
  enhancers: Map<string, ServedEnhancer>;
  scheduler: BatchScheduler | RefillScheduler;
  metrics: ServerMetrics;
  /** The device in use now (a new one after a recovery). */
  readonly device: Device;
  /** Whether the server is recreating its device and reloading its models after a loss. */
  readonly recovering: boolean;
  /** Resolves when no recovery is under way (at once when none is). */
  recovered(): Promise<void>;
  /** The policy a spec names (cached), with its canonical spec; throws InputError for a bad spec. */
  policy(spec: string): { spec: string; policy: ExitPolicy<any> };
}

declare module 'fastify' {
  interface FastifyInstance {
    offramp: OfframpContext;
  }
}

export interface OfframpServer {
  app: FastifyInstance;
  context: OfframpContext;
  /** Listens on host:port (port 0: a free one); returns the base URL. */
  listen(port?: number, host?: string): Promise<string>;
  /** Stops taking requests, answers the ones in flight, then frees the models and the device. */
  close(): Promise<void>;
}

function httpError(statusCode: number, message: string, code: string) {
  return Object.assign(new Error(message), { statusCode, code });
}

function tokenMatches(header: string | undefined, key: string): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  const a = Buffer.from(header.slice(7));
  const b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A sample's trace for JSON: signals the model does not have (all NaN, e.g. no gate) left out, NaN → null. */
function traceOut(t: SampleTrace): Record<string, (number | null)[]> {
  const out: Record<string, (number | null)[]> = {};
  for (const [k, v] of Object.entries(t) as [string, number[]][])
    if (v.some(Number.isFinite)) out[k] = v.map((x) => (Number.isFinite(x) ? x : null));
  return out;
}

function checkLimit(what: string, v: number | undefined, lo: number, hi: number): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= lo && v <= hi))
    throw new Error(`createServer: ${what} must be an integer in [${lo}, ${hi}], got ${v}`);
}

export async function createServer(options: ServerOptions): Promise<OfframpServer> {
  const names = Object.keys(options.models ?? {});
  if (!names.length) throw new Error('createServer: no models configured (models: { name: folder })');
  const entries = new Map<string, ModelEntry>();
  for (const n of names) {
    if (!/^[A-Za-z0-9][\w.-]{0,99}$/.test(n))
      throw new Error(`createServer: model name '${n}' must be letters, digits, '.', '_' or '-' (at most 100)`);
    const given = options.models[n];
    const e: ModelEntry = typeof given === 'string' ? { path: given } : given;
    if (!e || typeof e.path !== 'string' || !e.path)
      throw new Error(`createServer: model '${n}' needs a folder (a string, or { path, maxBatch?, maxSeqLen? })`);
    checkLimit(`models.${n}.maxBatch`, e.maxBatch, 1, 1024);
    checkLimit(`models.${n}.maxSeqLen`, e.maxSeqLen, 2, 1 << 20);
    entries.set(n, e);
  }
  checkLimit('maxSeqLen', options.maxSeqLen, 2, 1 << 20);
  const maxBatch = options.maxBatch ?? 16;
  const maxWaitMs = options.maxWaitMs ?? 5;
  const maxQueue = options.maxQueue ?? 256;
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const apiKey = options.apiKey ?? process.env.OFFRAMP_API_KEY ?? undefined;
  if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 1024)
    throw new Error(`createServer: maxBatch must be an integer in [1, 1024], got ${maxBatch}`);
  if (!(maxWaitMs >= 0 && maxWaitMs <= 10_000))
    throw new Error(`createServer: maxWaitMs must be in [0, 10000], got ${maxWaitMs}`);
  const schedulerKind = options.scheduler ?? 'window';
  if (schedulerKind !== 'window' && schedulerKind !== 'refill')
    throw new Error(`createServer: scheduler must be 'window' or 'refill', got '${String(schedulerKind)}'`);

  let ownDevice = typeof options.device !== 'object';
  let device =
    typeof options.device === 'object' ? options.device : await createDevice({ backend: options.device ?? 'auto' });
  const models = new Map<string, ServedModel>();
  const lms = new Map<string, LoadedLm>();
  /** The language models as the completions plugin sees them (the same object across recoveries). */
  const lmRecord: Record<string, LoadedLm> = {};
  const embedders = new Map<string, LoadedEmbedder>();
  /** The embedders as the embeddings plugin sees them (the same object across recoveries). */
  const embedderRecord: Record<string, LoadedEmbedder> = {};
  const enhancers = new Map<string, ServedEnhancer>();
  type Loaded = {
    models: Map<string, ServedModel>;
    lms: Map<string, LoadedLm>;
    embedders: Map<string, LoadedEmbedder>;
    enhancers: Map<string, ServedEnhancer>;
  };
  const disposeLoaded = (l: Loaded, err?: Error) => {
    for (const m of l.models.values()) {
      try {
        m.runner.dispose();
        m.model.dispose();
      } catch {
        /* a lost device may refuse */
      }
    }
    for (const lm of l.lms.values()) {
      try {
        lm.scheduler.close(err);
        lm.backend.dispose();
      } catch {
        /* a lost device may refuse */
      }
    }
    for (const e of l.embedders.values()) {
      try {
        e.dispose();
      } catch {
        /* a lost device may refuse */
      }
    }
    for (const e of l.enhancers.values()) {
      try {
        e.enhancer.dispose();
      } catch {
        /* a lost device may refuse */
      }
    }
  };
  /** Loads every configured model onto `dev` (all or none). */
  const loadAll = async (dev: Device): Promise<Loaded> => {
    const out: Loaded = { models: new Map(), lms: new Map(), embedders: new Map(), enhancers: new Map() };
    try {
      for (const [n, e] of entries) {
        const seq = e.maxSeqLen ?? options.maxSeqLen;
        const mb = e.maxBatch ?? maxBatch;
        const kind = folderKind(e.path);
        if (kind === 'enhancer') {
          if (e.maxSeqLen !== undefined || e.defaultPolicy !== undefined || e.maxBatch !== undefined)
            throw new Error(
              `model '${n}' is an image enhancer: maxSeqLen, maxBatch and defaultPolicy do not apply (one image per request; requests name a policy, default quality)`,
            );
          out.enhancers.set(n, loadServedEnhancer(dev, n, e.path, options.maxImagePixels ?? DEFAULT_MAX_IMAGE_PIXELS));
          continue;
        }
        if (kind === 'embedder') {
          if (e.maxSeqLen !== undefined || e.defaultPolicy !== undefined)
            throw new Error(
              `model '${n}' is an embedder: maxSeqLen and defaultPolicy do not apply (it reads up to its max_position tokens and has no exit policy; requests choose the exit)`,
            );
          const { loadEmbedder } = await import('@offramp/train/embeddings');
          out.embedders.set(n, await loadEmbedder(e.path, dev, { maxBatch: mb }));
          continue;
        }
        if (kind === 'language-model') {
          const lm = await loadLm(dev, e.path, { maxBatch: mb, maxQueue });
          if (seq !== undefined) lm.maxSeqLen = seq;
          out.lms.set(n, lm);
          continue;
        }
        out.models.set(
          n,
          await loadServedModel(dev, n, e.path, {
            maxBatch: mb,
            concurrency: options.concurrency ?? 2,
            defaultPolicy: e.defaultPolicy ?? options.defaultPolicies?.[n],
            maxSeqLen: seq === undefined ? undefined : { value: seq, strict: e.maxSeqLen !== undefined },
          }),
        );
      }
    } catch (err) {
      disposeLoaded(out);
      throw err;
    }
    return out;
  };
  /** Puts freshly loaded models in place of the old ones (synchronously: no request sees a mix). */
  const install = (l: Loaded) => {
    models.clear();
    lms.clear();
    for (const k of Object.keys(lmRecord)) delete lmRecord[k];
    for (const [n, m] of l.models) models.set(n, m);
    for (const [n, lm] of l.lms) {
      lms.set(n, lm);
      lmRecord[n] = lm;
    }
    enhancers.clear();
    for (const [n, e] of l.enhancers) enhancers.set(n, e);
    embedders.clear();
    for (const k of Object.keys(embedderRecord)) delete embedderRecord[k];
    for (const [n, e] of l.embedders) {
      embedders.set(n, e);
      embedderRecord[n] = e;
    }
  };
  let loadMs = performance.now();
  try {
    install(await loadAll(device));
  } catch (e) {
    if (ownDevice) device.destroy();
    throw e;
  }
  loadMs = performance.now() - loadMs;
  if (schedulerKind === 'refill')
    for (const m of models.values()) {
      const why = refillUnsupported(m);
      if (why) {
        disposeLoaded({
          models: new Map(models),
          lms: new Map(lms),
          embedders: new Map(embedders),
          enhancers: new Map(enhancers),
        });
        if (ownDevice) device.destroy();
        throw new Error(`createServer: ${why}`);
      }
    }

  // device loss: fail what is in flight with 503, make a new device, reload every model, then serve again
  let recovering: Promise<void> | undefined;
  let closingDown = false;
  const retryAfterS = () => Math.max(1, Math.ceil((loadMs * 2) / 1000));
  const recreateDevice = options.recreateDevice ?? (() => createDevice({ backend: 'gpu' }));
  const watch = (d: Device) => {
    if (!(d instanceof GpuDevice)) return;
    void d.gpu.lost.then((info) => {
      // destroy() of our own (close, or the old device after a recovery) is no loss
      if (d === device && !d.isDestroyed) deviceFault(`${info.reason}: ${info.message}`.replace(/\s+$/, ''));
    });
  };
  const recover = async (reason: string) => {
    const err = new DeviceLostError(reason, retryAfterS());
    const failed = scheduler.failAll(err);
    app.log.error({ reason, failedRequests: failed }, 'GPU device lost: recreating it and reloading the models');
    const old = device;
    disposeLoaded(
      {
        models: new Map(models),
        lms: new Map(lms),
        embedders: new Map(embedders),
        enhancers: new Map(enhancers),
      },
      err,
    );
    try {
      if (ownDevice) old.destroy();
    } catch {
      /* already lost */
    }
    let delay = 250;
    for (let attempt = 1; !closingDown; attempt++) {
      const t0 = performance.now();
      let dev: Device | undefined;
      try {
        dev = await recreateDevice();
        const loaded = await loadAll(dev);
        if (closingDown) {
          disposeLoaded(loaded);
          dev.destroy();
          return;
        }
        device = dev;
        ownDevice = true;
        install(loaded);
        watch(dev);
        loadMs = performance.now() - t0;
        app.log.info({ attempt, ms: Math.round(loadMs), device: dev.describe() }, 'device recreated, models reloaded');
        return;
      } catch (e) {
        dev?.destroy();
        app.log.error({ err: e, attempt }, `recovery attempt ${attempt} failed; retrying in ${delay} ms`);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 10_000);
      }
    }
  };
  /**
   * Reports a device fault (the device's lost promise, or a GPU error from a run): starts a recovery unless
   * one is under way, and returns the error to answer the caught request with.
   */
  const deviceFault = (message: string): DeviceLostError => {
    const lost = device instanceof GpuDevice ? device.lostReason : null;
    const err = new DeviceLostError(lost ?? message, retryAfterS(), lost === null);
    if (recovering || closingDown || device.kind !== 'gpu') return err;
    metrics.deviceLosses.inc();
    recovering = recover(err.reason)
      .catch((e) => app.log.error({ err: e }, 'recovery from a device loss failed'))
      .finally(() => {
        recovering = undefined;
      });
    return err;
  };
  /** The error a model error of a request becomes: a device fault (503) when the GPU failed, else itself. */
  const modelError = (e: unknown, stale: boolean): unknown => {
    if (isDeviceFault(e)) return e;
    if (e instanceof GpuError)
      return stale ? new DeviceLostError(e.message, retryAfterS(), true) : deviceFault(e.message);
    if (stale) return new DeviceLostError('the model was reloaded while the request ran', retryAfterS());
    return e;
  };

  let scheduler: BatchScheduler | RefillScheduler;
  const metrics = createMetrics({
    queueDepth: () => scheduler.depth,
    lmStats: () => new Map([...lms].map(([n, lm]) => [n, lm.scheduler.stats()])),
    pool: () => (device instanceof GpuDevice && !device.isDestroyed ? device.memoryStats() : null),
    recovering: () => recovering !== undefined,
  });
  scheduler = new (schedulerKind === 'refill' ? RefillScheduler : BatchScheduler)({
    maxWaitMs,
    maxQueue,
    onBatch(info) {
      metrics.batchSize.observe({ model: info.model }, info.size);
      metrics.compute.observe({ model: info.model, mode: info.mode }, info.computeMs / 1000);
      info.rowsPerBlock.forEach((rows, b) => {
        metrics.blockRows.observe({ model: info.model, block: String(b) }, rows);
      });
      options.onBatch?.(info);
    },
  });

  const policies = new Map<string, { spec: string; policy: ExitPolicy<any> }>();
  const policy = (spec: string) => {
    const hit = policies.get(spec);
    if (hit) return hit;
    let entry: { spec: string; policy: ExitPolicy<any> };
    try {
      const { name, options: o } = parsePolicySpec(spec);
      const canonical = Object.keys(o).length
        ? `${name}:${Object.entries(o)
            .map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.join(',')}]` : String(v)}`)
            .join(',')}`
        : name;
      entry = { spec: canonical, policy: policyFromSpec(spec) };
    } catch (e) {
      throw new InputError(`policy: ${(e as Error).message}`);
    }
    if (policies.size > 1000) policies.clear();
    policies.set(spec, entry);
    return entry;
  };

  // metric labels for policy specs: the first 32 distinct specs by name, the rest as 'other' (clients choose
  // specs, so their number is unbounded)
  const labelled = new Set<string>();
  const policyLabel = (spec: string) => {
    if (labelled.has(spec)) return spec;
    if (labelled.size >= 32) return 'other';
    labelled.add(spec);
    return spec;
  };

  const app = Fastify({
    logger: options.logger ?? (process.env.VITEST ? false : { level: 'info' }),
    bodyLimit: options.bodyLimit ?? 1 << 20,
    requestTimeout: requestTimeoutMs,
    requestIdHeader: 'x-request-id',
    return503OnClosing: true,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  const context: OfframpContext = {
    models,
    lms,
    embedders,
    enhancers,
    scheduler,
    metrics,
    get device() {
      return device;
    },
    get recovering() {
      return recovering !== undefined;
    },
    recovered: () => (recovering ?? Promise.resolve()).then(() => (recovering ? context.recovered() : undefined)),
    policy,
  };
  app.decorate('offramp', context);
  watch(device);

  app.setErrorHandler((err: any, req, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      const issues = err.validation.map((v) => {
        const path = v.instancePath.replace(/^\//, '').replaceAll('/', '.');
        const where = [err.validationContext, path].filter(Boolean).join('.');
        const keys = (v.params as { issue?: { keys?: string[] } })?.issue?.keys;
        const msg = keys?.length
          ? `unknown field${keys.length > 1 ? 's' : ''} ${keys.map((k) => `"${k}"`).join(', ')}`
          : v.message;
        return `${where || 'body'}: ${msg}`;
      });
      return reply.code(400).send({ error: { message: issues.join('; '), code: 'invalid_request' } });
    }
    if (isDeviceFault(err)) {
      reply.header('retry-after', String(err.retryAfterS));
      return reply.code(503).send({ error: { message: err.message, code: err.code } });
    }
    if (err instanceof QueueFullError) {
      reply.header('retry-after', String(err.retryAfterS));
      return reply.code(429).send({ error: { message: err.message, code: 'queue_full' } });
    }
    if (err instanceof InputError)
      return reply
        .code(err.statusCode)
        .send({ error: { message: err.message, code: err.statusCode === 413 ? 'too_long' : 'invalid_input' } });
    if (err instanceof ValidationError)
      return reply.code(400).send({ error: { message: err.message, code: 'invalid_input' } });
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    if (status === 429 && !reply.getHeader('retry-after')) reply.header('retry-after', '1');
    return reply.code(status).send({
      error: {
        message: status >= 500 && status !== 503 ? 'internal error (see the server log)' : err.message,
        code: err.code ?? (status >= 500 ? 'internal' : 'bad_request'),
      },
    });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: { message: `no route ${req.method} ${req.url.split('?')[0]}`, code: 'not_found' } }),
  );

  if (apiKey) {
    app.addHook('onRequest', async (req, reply) => {
      const path = req.url.split('?')[0];
      if (path === '/health' || path === '/ready') return;
      if (!tokenMatches(req.headers.authorization, apiKey)) {
        reply.header('www-authenticate', 'Bearer');
        throw httpError(401, 'missing or wrong API key: send Authorization: Bearer <key>', 'unauthorized');
      }
    });
  }
  // while recovering from a device loss, model routes answer 503 with Retry-After (in their own error shape)
  app.addHook('onRequest', async (req) => {
    if (recovering && req.url.startsWith('/v1/') && !req.url.startsWith('/v1/models'))
      throw new RecoveringError(retryAfterS());
  });
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id); // the id in the log lines of this request
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    metrics.total.observe({ route }, reply.elapsedTime / 1000);
  });

  if (options.cors) await app.register(cors, options.cors === true ? { origin: true } : options.cors);
  if (options.rateLimit) {
    await app.register(rateLimit, {
      max: options.rateLimit.max,
      timeWindow: options.rateLimit.timeWindowMs ?? 60_000,
      allowList: (req) => req.url === '/health' || req.url === '/ready',
      errorResponseBuilder: (_req, ctx) =>
        httpError(429, `rate limit: at most ${ctx.max} requests per ${ctx.after}; retry after it`, 'rate_limited'),
    });
  }
  if (options.underPressure) {
    const u = options.underPressure;
    await app.register(underPressure, {
      maxEventLoopDelay: u.maxEventLoopDelayMs ?? 0,
      maxHeapUsedBytes: u.maxHeapUsedBytes ?? 0,
      retryAfter: u.retryAfterS ?? 5,
    });
  }
  await app.register(swagger, {
    openapi: {
      info: { title: 'Offramp server', description: 'Early-exit neural network inference', version: '0.1.0' },
      components: apiKey ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : undefined,
    },
    transform: jsonSchemaTransform,
  });

  app.get('/docs/json', { schema: { hide: true } }, async () => app.swagger());

  app.get(
    '/health',
    {
      schema: { summary: 'Liveness: the process answers', response: { 200: HealthResponse } },
      // alive even under pressure (load shedding answers the other routes with 503, /ready included)
      config: { pressureHandler: () => undefined },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/ready',
    {
      schema: {
        summary: 'Readiness: models loaded, device usable',
        response: { 200: ReadyResponse, 503: ReadyResponse },
      },
    },
    async (_req, reply) => {
      // GpuDevice records a lost device; calls on it would then throw
      const lost = device instanceof GpuDevice ? device.lostReason : null;
      const ready = !lost && !recovering && models.size + lms.size === names.length;
      if (!ready) reply.header('retry-after', String(retryAfterS()));
      return reply.code(ready ? 200 : 503).send({
        status: ready ? 'ready' : 'not_ready',
        device: device.describe(),
        models: [...models.keys(), ...lms.keys()],
        ...(recovering
          ? { reason: 'recovering from a lost GPU device: recreating it and reloading the models' }
          : lost
            ? { reason: `device lost: ${lost}` }
            : {}),
      });
    },
  );

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', hide: true } }, async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.get('/v1/models', { schema: { summary: 'The served models', response: { 200: ModelsResponse } } }, async () => ({
    object: 'list' as const,
    data: [
      ...[...models.values()].map((m) => ({
        id: m.name,
        object: 'model' as const,
        kind: 'classifier' as const,
        architecture: m.architecture,
        input: m.kind,
        input_size: m.inputSize,
        num_blocks: m.model.numBlocks,
        exit_blocks: [...m.model.exitBlocks],
        classes: m.classNames,
        default_policy: m.defaultPolicy,
        max_batch: m.maxBatch,
        ...(m.maxSeqLen !== undefined ? { max_seq_len: m.maxSeqLen } : {}),
      })),
      ...[...lms.entries()].map(([id, lm]) => ({
        id,
        object: 'model' as const,
        kind: 'language-model' as const,
        architecture: lm.backend.kind === 'decoder' ? 'llama' : 'mamba',
        num_blocks: lm.backend.L,
        exit_blocks: [...lm.backend.exits],
        vocab_size: lm.backend.V,
        routes: ['/v1/completions', '/v1/chat/completions'],
        max_batch: lm.scheduler.maxBatch,
        ...(lm.maxSeqLen !== undefined ? { max_seq_len: lm.maxSeqLen } : {}),
        execution_path: lm.backend.path,
      })),
      ...[...embedders.entries()].map(([id, e]) => ({
        id,
        object: 'model' as const,
        kind: 'embedder' as const,
        architecture: e.config.architecture,
        num_blocks: e.config.num_layers,
        exit_blocks: [...e.config.exit_blocks],
        dimensions: e.config.embedding_dim,
        max_position: e.config.max_position,
        routes: ['/v1/embeddings'],
      })),
      ...[...enhancers.values()].map((e) => ({
        id: e.name,
        object: 'model' as const,
        kind: 'enhancer' as const,
        architecture: 'rbqe_enhancer',
        num_exits: e.numExits,
        max_pixels: e.enhancer.maxPixels,
        routes: ['/v1/enhance'],
      })),
    ],
  }));

  app.post(
    '/v1/classify',
    {
      schema: {
        summary: 'Classify one input with early exit',
        body: ClassifyBody,
        response: {
          200: ClassifyResponse,
          400: ErrorResponse,
          404: ErrorResponse,
          413: ErrorResponse,
          429: ErrorResponse,
          503: ErrorResponse,
        },
      },
    },
    async (req) => {
      const body = req.body;
      const m = models.get(body.model);
      if (!m)
        throw httpError(
          404,
          `model '${body.model}' is not served here; served: ${[...models.keys()].join(', ')}`,
          'model_not_found',
        );
      const p = policy(body.policy ?? m.defaultPolicy);
      const many = body.inputs !== undefined;
      const given = body.inputs ?? (body.input ? [body.input] : []);
      if (given.length > m.maxBatch)
        throw new InputError(
          `inputs has ${given.length} entries; at most ${m.maxBatch} per request (model '${m.name}''s maxBatch)`,
        );
      const rows = given.map((x, i) => {
        try {
          return encodeInput(m, x, body.truncate ?? false);
        } catch (e) {
          if (many && e instanceof InputError)
            throw new InputError(`inputs[${i}]: ${e.message.replace(/^input\./, '')}`);
          throw e;
        }
      });
      if (recovering) throw new RecoveringError(retryAfterS());
      let timer: NodeJS.Timeout | undefined;
      const results = await Promise.race([
        scheduler.submitAll(
          rows.map((row) => ({ model: m, policySpec: p.spec, policy: p.policy, row, trace: body.trace ?? false })),
        ),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(httpError(503, `no answer within ${requestTimeoutMs} ms; the server is overloaded`, 'timeout')),
            requestTimeoutMs,
          );
        }),
      ])
        .catch((e) => {
          throw modelError(e, models.get(m.name) !== m);
        })
        .finally(() => clearTimeout(timer));
      const answers = results.map((r, i) => {
        const s = r.sample;
        const row = rows[i];
        metrics.queueWait.observe({ model: m.name }, r.queueMs / 1000);
        metrics.exitBlock.observe({ model: m.name, policy: policyLabel(p.spec) }, s.exitBlock);
        metrics.flops(m.name, s.flops, s.costFraction);
        return {
          prediction: s.prediction,
          label: m.classNames[s.prediction] ?? String(s.prediction),
          probabilities: Array.from(s.probs),
          exit_block: s.exitBlock,
          exit_index: s.exitIndex,
          num_exits: m.model.exitBlocks.length,
          flops: s.flops,
          cost_fraction: s.costFraction,
          ...('truncated' in row ? { truncated: row.truncated } : {}),
          ...(body.trace && s.trace ? { trace: traceOut(s.trace) } : {}),
          // with the trace: the engine batch this input ran in (other requests' rows included)
          ...(body.trace
            ? {
                batch: {
                  size: r.batchSize,
                  mode: r.mode,
                  queue_ms: r.queueMs,
                  compute_ms: r.computeMs,
                  ...(r.rowsPerBlock ? { rows_per_block: r.rowsPerBlock } : {}),
                  ...(r.blockMs ? { block_ms: r.blockMs } : {}),
                },
              }
            : {}),
        };
      });
      return many
        ? { model: m.name, policy: p.spec, results: answers }
        : { model: m.name, policy: p.spec, ...answers[0] };
    },
  );

  if (lms.size)
    await app.register(
      completionsPlugin({
        models: lmRecord,
        mapError: (e, name, lm) => modelError(e, lms.get(name) !== lm),
      }),
    );
  if (enhancers.size)
    await app.register(
      enhanceRoute({
        enhancers,
        policy,
        maxImageBytes: options.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES,
        mapError: (e, served) => modelError(e, enhancers.get(served.name) !== served),
      }),
    );
  if (embedders.size)
    await app.register(
      embeddingsPlugin({
        models: embedderRecord,
        maxInputs: maxBatch * 16,
        mapError: (e, name, m) => modelError(e, embedders.get(name) !== m),
      }),
    );
  for (const plugin of options.plugins ?? []) await app.register(plugin);
  await app.ready();
  if (options.warmup) await warmUp();

  /** One request per model through its own route; a failure is logged, not fatal (the route will say why). */
  async function warmUp(): Promise<void> {
    const headers: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
    const t0 = performance.now();
    /** One request through a route; a failure is logged, not fatal. */
    const warm = async (url: string, model: string, payload: Record<string, unknown>) => {
      const r = await app.inject({ method: 'POST', url, headers, payload: { model, ...payload } });
      if (r.statusCode !== 200) app.log.warn({ model, status: r.statusCode, body: r.body }, 'warm-up request failed');
    };
    for (const [name, m] of models)
      await warm('/v1/classify', name, {
        input:
          m.kind === 'image' ? { image: new Array<number>(m.inputSize).fill(0) } : { text: 'warm up the pipelines' },
      });
    for (const name of lms.keys()) await warm('/v1/completions', name, { prompt: 'a', max_tokens: 2 });
    if (enhancers.size) {
      const { encodePng } = await import('@offramp/train');
      const blank = Buffer.from(await encodePng(16, 16, new Uint8Array(16 * 16 * 4).fill(128))).toString('base64');
      for (const name of enhancers.keys()) await warm('/v1/enhance', name, { image: blank });
    }
    for (const name of embedders.keys()) await warm('/v1/embeddings', name, { input: 'warm up the pipelines' });
    app.log.info({ ms: Math.round(performance.now() - t0) }, 'models warmed up');
  }

  let closing: Promise<void> | undefined;
  return {
    app,
    context,
    async listen(port = 0, host = '127.0.0.1') {
      return app.listen({ port, host });
    },
    close() {
      closing ??= (async () => {
        // stops accepting and waits for in-flight requests (which wait for their batches); keep-alive
        // connections that fall idle meanwhile are closed so that they do not hold the close up
        const sweep = setInterval(() => app.server.closeIdleConnections?.(), 100);
        try {
          await app.close();
        } finally {
          clearInterval(sweep);
        }
        closingDown = true;
        await recovering;
        await scheduler.drain();
        disposeLoaded({ models, lms, embedders, enhancers });
        if (ownDevice) device.destroy();
      })();
      return closing;
    },
  };
}
