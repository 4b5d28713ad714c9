// `offramp serve`: the HTTP server of @offramp/server for the named model folders, until SIGTERM or SIGINT,
// then a graceful stop (no new requests; those in flight are answered) and exit 0.
import { createServer, type ModelEntry } from '@offramp/server';
import { UsageError } from '../errors.js';
import { resolveModelDir, servableKind } from '../model.js';
import type { Logger } from '../util/log.js';

export interface ServeOptions {
  model: string[];
  port: number;
  host: string;
  apiKey?: string;
  maxBatch: number;
  maxSeqLen?: number;
  /** `NAME:max-batch=N,max-seq-len=N` per model. */
  modelLimit?: string[];
  maxWaitMs: number;
  maxQueue: number;
  device: 'gpu' | 'cpu' | 'auto';
  cors?: boolean;
  /** Warm every model up before listening (default true; --no-warmup). */
  warmup?: boolean;
  rateLimit?: number;
  policy?: string;
  /** How /v1/classify batches (createServer's `scheduler`). */
  scheduler?: 'window' | 'refill';
}

/** `NAME=FOLDER` or a shipped model name / folder alone (named after the folder). */
export function parseModelArgs(specs: readonly string[]): Record<string, string> {
  if (!specs.length)
    throw new UsageError('serve: name at least one model: --model NAME=FOLDER (or a shipped model name)');
  const out: Record<string, string> = {};
  for (const s of specs) {
    const eq = s.indexOf('=');
    const name = eq > 0 ? s.slice(0, eq) : (s.replace(/\/+$/, '').split('/').pop() ?? s);
    const where = eq > 0 ? s.slice(eq + 1) : s;
    if (!/^[A-Za-z0-9][\w.-]{0,99}$/.test(name))
      throw new UsageError(`--model '${s}': the name '${name}' must be letters, digits, '.', '_' or '-'`);
    if (Object.hasOwn(out, name)) throw new UsageError(`--model: the name '${name}' is given twice`);
    const dir = resolveModelDir(where);
    // a classifier (/v1/classify), a language model, Mamba or Llama-style (completions), or a multi-exit
    // embedder (/v1/embeddings); anything else is refused here
    servableKind(dir);
    out[name] = dir;
  }
  return out;
}

const LIMIT_KEYS = { 'max-batch': ['maxBatch', 1, 1024], 'max-seq-len': ['maxSeqLen', 2, 1 << 20] } as const;

/**
 * `--model-limit NAME:key=value,...` (keys max-batch, max-seq-len) on the served models: each model as a
 * ModelEntry with its own limits (the server-wide flags apply to the others and to keys not given).
 */
export function applyModelLimits(models: Record<string, string>, specs: readonly string[]): Record<string, ModelEntry> {
  const out: Record<string, ModelEntry> = Object.fromEntries(Object.entries(models).map(([n, p]) => [n, { path: p }]));
  const seen = new Set<string>();
  for (const spec of specs) {
    const colon = spec.indexOf(':');
    const name = colon > 0 ? spec.slice(0, colon) : '';
    if (!name || colon === spec.length - 1)
      throw new UsageError(
        `--model-limit '${spec}': write NAME:key=value[,key=value], e.g. imdb:max-seq-len=128,max-batch=8`,
      );
    if (!Object.hasOwn(out, name))
      throw new UsageError(
        `--model-limit '${spec}': no model '${name}' is served (served: ${Object.keys(out).join(', ')})`,
      );
    if (seen.has(name)) throw new UsageError(`--model-limit: the model '${name}' is given twice; put its keys in one`);
    seen.add(name);
    for (const kv of spec.slice(colon + 1).split(',')) {
      const eq = kv.indexOf('=');
      const key = (eq > 0 ? kv.slice(0, eq) : kv).trim();
      if (!Object.hasOwn(LIMIT_KEYS, key))
        throw new UsageError(
          `--model-limit '${spec}': unknown key '${key}'; the keys are ${Object.keys(LIMIT_KEYS).join(', ')}`,
        );
      const [field, lo, hi] = LIMIT_KEYS[key as keyof typeof LIMIT_KEYS];
      const raw = eq > 0 ? kv.slice(eq + 1).trim() : '';
      const v = Number(raw);
      if (!raw || !Number.isInteger(v) || v < lo || v > hi)
        throw new UsageError(`--model-limit '${spec}': ${key} must be an integer in [${lo}, ${hi}], got '${raw}'`);
      out[name][field] = v;
    }
  }
  return out;
}

export async function serveCommand(o: ServeOptions, log: Logger): Promise<void> {
  const folders = parseModelArgs(o.model);
  const models = applyModelLimits(folders, o.modelLimit ?? []);
  const defaultPolicies = o.policy ? Object.fromEntries(Object.keys(models).map((n) => [n, o.policy!])) : undefined;
  const server = await createServer({
    models,
    device: o.device,
    apiKey: o.apiKey ?? process.env.OFFRAMP_API_KEY,
    maxBatch: o.maxBatch,
    maxSeqLen: o.maxSeqLen,
    maxWaitMs: o.maxWaitMs,
    maxQueue: o.maxQueue,
    scheduler: o.scheduler,
    cors: o.cors,
    warmup: o.warmup !== false,
    rateLimit: o.rateLimit ? { max: o.rateLimit, timeWindowMs: 60_000 } : false,
    defaultPolicies,
    logger: { level: process.env.LOG_LEVEL ?? 'info' },
  });
  // The first SIGTERM/SIGINT drains and stops. A signal sent to the whole process group (Ctrl-C in a
  // terminal, `kill -- -PGID`) reaches this process twice (directly and forwarded by the CLI's wrapper), so
  // repeats within 2 s are ignored; a later one stops at once without draining.
  let first = 0;
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const)
      process.on(sig, () => {
        const now = Date.now();
        if (!first) {
          first = now;
          resolve(sig);
        } else if (now - first > 2000) {
          log.warn(`${sig} again: stopping without waiting for the requests in flight`);
          process.exit(sig === 'SIGINT' ? 130 : 143);
        }
      });
  });
  const url = await server.listen(o.port, o.host);
  log.info(
    `offramp server on ${url} serving ${Object.keys(models).join(', ')} (device: ${server.context.device.describe()}; classify scheduler: ${o.scheduler ?? 'window'})`,
  );
  for (const [name, lm] of server.context.lms)
    log.info(`language model ${name}: ${lm.backend.path} (${lm.backend.pathDetail})`);
  const sig = await stopped;
  log.info(`${sig}: finishing the requests in flight, then stopping`);
  await server.close();
  log.info('stopped');
}
