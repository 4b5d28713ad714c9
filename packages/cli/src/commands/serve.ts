// `offramp serve`: the HTTP server of @offramp/server for the named model folders, until SIGTERM or SIGINT,
// then a graceful stop (no new requests; those in flight are answered) and exit 0.
import { createServer } from '@offramp/server';
import { UsageError } from '../errors.js';
import { modelKind, resolveModelDir } from '../model.js';
import type { Logger } from '../util/log.js';

export interface ServeOptions {
  model: string[];
  port: number;
  host: string;
  apiKey?: string;
  maxBatch: number;
  maxWaitMs: number;
  maxQueue: number;
  device: 'gpu' | 'cpu' | 'auto';
  cors?: boolean;
  rateLimit?: number;
  policy?: string;
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
    modelKind(dir); // a classifier (/v1/classify) or a Mamba LM (completions); anything else is refused here
    out[name] = dir;
  }
  return out;
}

export async function serveCommand(o: ServeOptions, log: Logger): Promise<void> {
  const models = parseModelArgs(o.model);
  const defaultPolicies = o.policy ? Object.fromEntries(Object.keys(models).map((n) => [n, o.policy!])) : undefined;
  const server = await createServer({
    models,
    device: o.device,
    apiKey: o.apiKey ?? process.env.OFFRAMP_API_KEY,
    maxBatch: o.maxBatch,
    maxWaitMs: o.maxWaitMs,
    maxQueue: o.maxQueue,
    cors: o.cors,
    rateLimit: o.rateLimit ? { max: o.rateLimit, timeWindowMs: 60_000 } : false,
    defaultPolicies,
    logger: { level: process.env.LOG_LEVEL ?? 'info' },
  });
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve(sig));
  });
  const url = await server.listen(o.port, o.host);
  log.info(
    `offramp server on ${url} serving ${Object.keys(models).join(', ')} (device: ${server.context.device.describe()})`,
  );
  const sig = await stopped;
  log.info(`${sig}: finishing the requests in flight, then stopping`);
  await server.close();
  log.info('stopped');
}
