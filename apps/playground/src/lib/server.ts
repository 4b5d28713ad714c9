// Server mode: the views send their inputs to an `offramp serve` instead of running the models in the page.
// The server must allow the page's origin (`offramp serve --cors`) and serve the checkpoints under their names
// (fashion-cnn, imdb-encoder, austen-mamba, austen-decoder), e.g.
// `offramp serve -m fashion-cnn=checkpoints/fashion-cnn -m austen-mamba=checkpoints/austen-mamba --cors`.
import type { Trace, TraceSample } from '@offramp/policies';

export interface ServerBatch {
  /** Rows of the engine batch the input ran in (other requests' rows included). */
  size: number;
  mode: 'device' | 'host';
  queue_ms: number;
  compute_ms: number;
  /** Rows of the batch that entered each block (servers that report it; not with scheduler 'refill'). */
  rows_per_block?: number[];
  /** Host mode only: wall ms of each block that ran (absent in device mode). */
  block_ms?: number[];
}

export interface ServerClassifyResult {
  prediction: number;
  label: string;
  probabilities: number[];
  exit_block: number;
  exit_index: number;
  num_exits: number;
  flops: number;
  cost_fraction: number;
  trace?: Partial<Record<'maxProb' | 'entropy' | 'margin' | 'argmax' | 'gate' | 'similarity', (number | null)[]>>;
  /** With trace: the engine batch (from servers that report it). */
  batch?: ServerBatch;
}

export type ClassifyInput = { image: number[] } | { text: string };

/** A served model as GET /v1/models lists it (the fields the views read). */
export interface ServerModel {
  id: string;
  kind: 'classifier' | 'language-model' | 'embedder' | 'enhancer';
  num_blocks: number;
  exit_blocks: number[];
  classes?: string[];
  max_batch?: number;
}

function endpoint(base: string, path: string): URL {
  try {
    return new URL(path, base.endsWith('/') ? base : `${base}/`);
  } catch {
    throw new Error(
      `server: '${base}' is not a URL; expected the address of offramp serve, e.g. http://127.0.0.1:8080`,
    );
  }
}

async function request(base: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
  const url = endpoint(base, path);
  let res: Response;
  try {
    res = await fetch(
      url,
      body === undefined
        ? { signal }
        : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal },
    );
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new Error(
      `server: no answer from ${url.origin} (${(e as Error).message}); is offramp serve running there with --cors?`,
    );
  }
  if (!res.ok) {
    const err = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
    throw new Error(`server: HTTP ${res.status}${err?.error?.message ? `: ${err.error.message}` : ''}`);
  }
  return res;
}

async function json<T>(base: string, path: string, body?: unknown): Promise<T> {
  const res = await request(base, path, body);
  const out = (await res.json().catch(() => null)) as T | null;
  if (out === null) throw new Error(`server: ${path} answered with something that is not JSON`);
  return out;
}

/** GET /v1/models. */
export async function serverModels(base: string): Promise<ServerModel[]> {
  return (await json<{ data: ServerModel[] }>(base, 'v1/models')).data;
}

/** The served model `name` of the `kind` wanted; an error names what the server serves instead. */
export async function serverModel(base: string, name: string, kind: ServerModel['kind']): Promise<ServerModel> {
  const list = await serverModels(base);
  const m = list.find((x) => x.id === name);
  if (!m || m.kind !== kind)
    throw new Error(
      `server: no ${kind} named '${name}' is served there (served: ${list.map((x) => `${x.id} (${x.kind})`).join(', ') || 'none'}); start it with -m ${name}=checkpoints/${name}`,
    );
  return m;
}

/** POST /v1/classify of one input; throws an Error with the server's own message on a refusal. */
export async function classifyOnServer(
  base: string,
  model: string,
  input: ClassifyInput,
  policy: string,
): Promise<ServerClassifyResult> {
  return json<ServerClassifyResult>(base, 'v1/classify', { model, input, policy, trace: true, truncate: true });
}

/** POST /v1/classify of several inputs (at most the model's max_batch) in one request. */
export async function classifyManyOnServer(
  base: string,
  model: string,
  inputs: ClassifyInput[],
  policy: string,
  trace = true,
): Promise<ServerClassifyResult[]> {
  const r = await json<{ results: ServerClassifyResult[] }>(base, 'v1/classify', {
    model,
    inputs,
    policy,
    trace,
    truncate: true,
  });
  return r.results;
}

/**
 * `inputs` classified on the server in requests of at most the model's max_batch (and `chunk`) inputs, in
 * order; `onChunk` gets the count done after each request.
 */
export async function classifyAllOnServer(
  base: string,
  model: ServerModel,
  inputs: ClassifyInput[],
  policy: string,
  options: { trace?: boolean; chunk?: number; parallel?: boolean; onChunk?: (done: number) => void } = {},
): Promise<ServerClassifyResult[]> {
  const size = Math.max(1, Math.min(options.chunk ?? Number.POSITIVE_INFINITY, model.max_batch ?? 16));
  const parts: ClassifyInput[][] = [];
  for (let a = 0; a < inputs.length; a += size) parts.push(inputs.slice(a, a + size));
  if (options.parallel) {
    const all = await Promise.all(parts.map((p) => classifyManyOnServer(base, model.id, p, policy, options.trace)));
    options.onChunk?.(inputs.length);
    return all.flat();
  }
  const out: ServerClassifyResult[] = [];
  for (const p of parts) {
    out.push(...(await classifyManyOnServer(base, model.id, p, policy, options.trace)));
    options.onChunk?.(out.length);
  }
  return out;
}

const SIGNALS = ['maxProb', 'entropy', 'margin', 'argmax', 'gate', 'similarity'] as const;

/**
 * A full-depth trace recorded through the server, the same shape `recordTrace` gives in the page: every
 * input classified with the static policy at the last exit and `trace: true` (the signals at every exit;
 * those the server leaves out, and nulls, are NaN as in the page), the model's shape from GET /v1/models,
 * and each exit's cost fraction from one input run with `static:exit=k`.
 */
export async function recordTraceOnServer(
  base: string,
  name: string,
  images: ArrayLike<number>[],
  labels: readonly number[],
  options: { chunk?: number; onProgress?: (done: number) => void } = {},
): Promise<Trace> {
  if (images.length === 0 || images.length !== labels.length)
    throw new Error(`recordTraceOnServer: ${images.length} images for ${labels.length} labels; give one label each`);
  const m = await serverModel(base, name, 'classifier');
  const E = m.exit_blocks.length;
  const inputs = images.map((x) => ({ image: Array.from(x) }));
  const last = `static:exit=${E - 1}`;
  const costs = await Promise.all(
    Array.from({ length: E - 1 }, (_, k) =>
      classifyOnServer(base, name, inputs[0], `static:exit=${k}`).then((r) => r.cost_fraction),
    ),
  );
  const results = await classifyAllOnServer(base, m, inputs, last, {
    trace: true,
    chunk: options.chunk,
    onChunk: options.onProgress,
  });
  const samples = results.map((r, i): TraceSample => {
    const t = r.trace ?? {};
    const sig = (k: (typeof SIGNALS)[number]) =>
      Array.from({ length: E }, (_, e) => {
        const v = t[k]?.[e];
        return v === null || v === undefined ? Number.NaN : v;
      });
    if (r.exit_index !== E - 1 || (t.maxProb?.length ?? 0) !== E)
      throw new Error(`server: input ${i} has no full-depth trace (exit ${r.exit_index}); is the server up to date?`);
    return {
      maxProb: sig('maxProb'),
      entropy: sig('entropy'),
      margin: sig('margin'),
      argmax: sig('argmax'),
      gate: sig('gate'),
      similarity: sig('similarity'),
      finalPrediction: r.prediction,
      label: labels[i],
    };
  });
  return {
    numExits: E,
    numClasses: m.classes?.length ?? samples[0].maxProb.length,
    numBlocks: m.num_blocks,
    exitBlocks: m.exit_blocks.slice(),
    costFractions: [...costs, results[0].cost_fraction],
    samples,
  };
}

/** A built-in policy and its options as a spec the server takes: `confidence:threshold=0.9`. */
export function policySpec(name: string, options: Record<string, unknown>): string {
  const o = Object.entries(options).map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.join(',')}]` : String(v)}`);
  return o.length ? `${name}:${o.join(',')}` : name;
}

export interface StreamedPiece {
  /** Text released with this chunk (one token's, or several when a stop sequence held text back). */
  text: string;
  /** The exit block of each token in the chunk. */
  exitBlocks: number[];
}

export interface CompletionRequest {
  model: string;
  prompt: string;
  maxTokens: number;
  /** `offramp.policy`: never | confidence:threshold=τ | entropy:threshold=S | fixed:block=K. */
  policy: string;
  skip?: 'freeze' | 'partial';
}

function completionBody(r: CompletionRequest, stream: boolean) {
  return {
    model: r.model,
    prompt: r.prompt,
    max_tokens: r.maxTokens,
    temperature: 0,
    stream,
    offramp: { policy: r.policy, ...(r.skip ? { skip: r.skip } : {}) },
  };
}

/**
 * POST /v1/completions with `stream: true` (greedy): each server-sent chunk's text and exit blocks go to
 * `onPiece` as they arrive; resolves with the finish reason.
 */
export async function streamCompletionOnServer(
  base: string,
  r: CompletionRequest,
  onPiece: (p: StreamedPiece) => void,
  signal?: AbortSignal,
): Promise<string | null> {
  const res = await request(base, 'v1/completions', completionBody(r, true), signal);
  if (!res.body) throw new Error('server: the stream has no body');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let finish: string | null = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    for (let cut = buf.indexOf('\n\n'); cut >= 0; cut = buf.indexOf('\n\n')) {
      const event = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') return finish;
        const c = JSON.parse(data) as {
          error?: { message?: string };
          choices?: { text?: string; finish_reason?: string | null }[];
          offramp?: { exit_blocks?: number[] };
        };
        if (c.error) throw new Error(`server: the stream failed: ${c.error.message ?? 'unknown error'}`);
        const choice = c.choices?.[0];
        if (!choice) continue;
        if (choice.finish_reason) finish = choice.finish_reason;
        const blocks = c.offramp?.exit_blocks ?? [];
        if (choice.text || blocks.length) onPiece({ text: choice.text ?? '', exitBlocks: blocks });
      }
    }
  }
  throw new Error('server: the stream ended before [DONE]');
}

/** POST /v1/completions without streaming (greedy): the text and every token's exit block. */
export async function completeOnServer(
  base: string,
  r: CompletionRequest,
): Promise<{ text: string; exitBlocks: number[]; finishReason: string }> {
  const out = await json<{
    choices: { text: string; finish_reason: string }[];
    offramp: { exit_blocks: number[] };
  }>(base, 'v1/completions', completionBody(r, false));
  return { text: out.choices[0].text, exitBlocks: out.offramp.exit_blocks, finishReason: out.choices[0].finish_reason };
}
