// The completions routes against a real listening server with the official `openai` client, on the shipped
// Austen character model (checkpoints/austen-mamba) on the GPU device (lavapipe in CI): whole and streamed
// completions and chat, early exit, stop sequences, continuous batching (concurrent and joining requests
// give the tokens each gives alone; a client that leaves frees its slot), and 4xx (never 5xx) for bad input.
import { fileURLToPath } from 'node:url';
import { createDevice, type Device } from '@offramp/core';
import fc from 'fast-check';
import fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completionsPlugin, createLoadedLm, type LoadedLm, loadLm } from './completions.js';

const MODEL_DIR = fileURLToPath(new URL('../../../checkpoints/austen-mamba', import.meta.url));
const MODEL = 'austen-mamba';
const PROMPT = 'It is a truth universally acknowledged, that a single man';

let device: Device;
let lm: LoadedLm;
/** The same model behind a scheduler with one slot and no queue. */
let busy: LoadedLm;
let app: FastifyInstance;
let base: string;
let client: OpenAI;

beforeAll(async () => {
  device = await createDevice({ backend: 'gpu' }); // the WebGPU path (completions-ort.test.ts: the ORT one)
  lm = await loadLm(device, MODEL_DIR, { maxBatch: 8 });
  const a = fastify().withTypeProvider<ZodTypeProvider>();
  a.setValidatorCompiler(validatorCompiler);
  a.setSerializerCompiler(serializerCompiler);
  busy = createLoadedLm(lm.model, lm.tokenizer, { maxBatch: 1, maxQueue: 0 });
  await a.register(completionsPlugin({ models: { [MODEL]: lm, 'austen-one-slot': busy } }));
  await a.listen({ host: '127.0.0.1', port: 0 });
  app = a;
  const addr = a.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no port');
  base = `http://127.0.0.1:${addr.port}/v1`;
  client = new OpenAI({ baseURL: base, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
});

afterAll(async () => {
  await app?.close();
  lm?.model.dispose();
  device?.destroy();
});

type Offramp = { offramp: { exit_blocks: number[]; depth_fraction: number } };

async function streamCompletion(body: Record<string, unknown>) {
  const stream = await client.completions.create({ model: MODEL, prompt: PROMPT, ...body, stream: true } as never);
  const chunks: (OpenAI.Completions.Completion & Offramp)[] = [];
  for await (const c of stream as unknown as AsyncIterable<OpenAI.Completions.Completion & Offramp>) chunks.push(c);
  return {
    chunks,
    text: chunks.map((c) => c.choices[0]?.text ?? '').join(''),
    blocks: chunks.flatMap((c) => c.offramp?.exit_blocks ?? []),
    finish: chunks.at(-1)?.choices[0]?.finish_reason,
  };
}

describe('completions with the openai client', () => {
  it('completes a prompt, and streaming gives the same text chunk by chunk', async () => {
    const whole = (await client.completions.create({
      model: MODEL,
      prompt: PROMPT,
      max_tokens: 24,
      temperature: 0,
    })) as OpenAI.Completions.Completion & Offramp;
    expect(whole.object).toBe('text_completion');
    expect(whole.model).toBe(MODEL);
    expect(whole.id).toMatch(/^cmpl-/);
    const text = whole.choices[0].text;
    expect(text).toHaveLength(24);
    expect(whole.choices[0].finish_reason).toBe('length');
    expect(whole.usage).toEqual({
      prompt_tokens: PROMPT.length,
      completion_tokens: 24,
      total_tokens: PROMPT.length + 24,
    });
    expect(whole.offramp.exit_blocks).toEqual(new Array(24).fill(5));
    expect(whole.offramp.depth_fraction).toBe(1);

    const s = await streamCompletion({ max_tokens: 24, temperature: 0, stream_options: { include_usage: true } });
    expect(s.text).toBe(text);
    expect(s.chunks.length).toBeGreaterThan(20); // one chunk per character, not one at the end
    expect(s.blocks).toEqual(whole.offramp.exit_blocks);
    const last = s.chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(whole.usage);
    expect(last.offramp).toEqual({ exit_blocks: [], depth_fraction: 1 });
    expect(s.chunks.at(-2)!.choices[0].finish_reason).toBe('length');
  });

  it('is reproducible with a seed when sampling', async () => {
    const body = { model: MODEL, prompt: PROMPT, max_tokens: 16, temperature: 0.9, top_p: 0.95, seed: 7 };
    const a = await client.completions.create(body);
    const b = await client.completions.create(body);
    expect(a.choices[0].text).toBe(b.choices[0].text);
  });

  it('answers chat completions, whole and streamed', async () => {
    const messages = [
      { role: 'system' as const, content: 'A conversation at Longbourn.' },
      { role: 'user' as const, content: 'What do you think of Mr. Darcy?' },
    ];
    const whole = (await client.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 20,
      temperature: 0,
    })) as OpenAI.Chat.Completions.ChatCompletion & Offramp;
    expect(whole.object).toBe('chat.completion');
    expect(whole.choices[0].message.role).toBe('assistant');
    expect(whole.choices[0].message.content).toHaveLength(20);
    const rendered = 'A conversation at Longbourn.\n\nUser: What do you think of Mr. Darcy?\nAssistant: ';
    expect(whole.usage?.prompt_tokens).toBe(rendered.length);
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages,
      max_completion_tokens: 20,
      temperature: 0,
      stream: true,
    });
    let text = '';
    let role: string | undefined;
    let finish: string | null = null;
    for await (const c of stream) {
      expect(c.object).toBe('chat.completion.chunk');
      role ??= c.choices[0]?.delta.role;
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(role).toBe('assistant');
    expect(text).toBe(whole.choices[0].message.content);
    expect(finish).toBe('length');
  });

  it('shows early exit in offramp.exit_blocks with a confidence policy', async () => {
    const res = (await client.completions.create({
      model: MODEL,
      prompt: PROMPT,
      max_tokens: 40,
      temperature: 0,
      offramp: { policy: 'confidence:threshold=0.5', skip: 'partial' },
    } as never)) as unknown as OpenAI.Completions.Completion & Offramp;
    const blocks = res.offramp.exit_blocks;
    expect(blocks).toHaveLength(40);
    expect(blocks[0]).toBe(5); // the first token comes from the prefill, at full depth
    expect(blocks.some((b) => b < 5)).toBe(true);
    expect(blocks.every((b) => [3, 4, 5].includes(b))).toBe(true);
    const expectedDepth = blocks.slice(1).reduce((a, b) => a + b + 1, 0) / (39 * 6);
    expect(res.offramp.depth_fraction).toBeCloseTo(expectedDepth, 12);
    expect(res.offramp.depth_fraction).toBeLessThan(1);
    const fixed = (await client.completions.create({
      model: MODEL,
      prompt: PROMPT,
      max_tokens: 5,
      temperature: 0,
      offramp: { policy: 'fixed:block=3' },
    } as never)) as unknown as OpenAI.Completions.Completion & Offramp;
    expect(fixed.offramp.exit_blocks).toEqual([5, 3, 3, 3, 3]);
  });

  it('stops at a stop sequence, leaving it out, whole and streamed', async () => {
    const full = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 40, temperature: 0 });
    const text = full.choices[0].text;
    const stop = text.slice(10, 12); // a stop sequence the greedy text contains
    const cut = text.indexOf(stop);
    const whole = (await client.completions.create({
      model: MODEL,
      prompt: PROMPT,
      max_tokens: 40,
      temperature: 0,
      stop: ['\u00a7never', stop],
    })) as OpenAI.Completions.Completion & Offramp;
    expect(whole.choices[0].text).toBe(text.slice(0, cut));
    expect(whole.choices[0].finish_reason).toBe('stop');
    expect(whole.usage?.completion_tokens).toBe(cut + stop.length);
    expect(whole.offramp.exit_blocks).toHaveLength(cut + stop.length);
    const s = await streamCompletion({ max_tokens: 40, temperature: 0, stop });
    expect(s.text).toBe(text.slice(0, cut));
    expect(s.finish).toBe('stop');
    expect(s.blocks).toHaveLength(cut + stop.length);
  });
});

describe('continuous batching', () => {
  it('gives concurrent streamed requests the tokens each gets alone', async () => {
    const jobs: Record<string, unknown>[] = [
      { prompt: PROMPT, max_tokens: 30, temperature: 0 },
      { prompt: 'Emma Woodhouse, handsome, clever, and rich,', max_tokens: 24, temperature: 0 },
      { prompt: 'Sir Walter Elliot', max_tokens: 28, temperature: 0.8, seed: 3 },
      { prompt: PROMPT, max_tokens: 20, temperature: 0, offramp: { policy: 'confidence:threshold=0.6' } },
      {
        prompt: 'The family of Dashwood',
        max_tokens: 26,
        temperature: 0,
        offramp: { policy: 'confidence:threshold=0.6' },
      },
    ];
    const alone: Awaited<ReturnType<typeof streamCompletion>>[] = [];
    for (const j of jobs) alone.push(await streamCompletion(j));
    const before = lm.scheduler.stats();
    const together = await Promise.all(jobs.map((j) => streamCompletion(j)));
    const after = lm.scheduler.stats();
    together.forEach((r, k) => {
      expect(r.text, `request ${k}`).toBe(alone[k].text);
      expect(r.blocks, `request ${k}`).toEqual(alone[k].blocks);
    });
    // the requests shared decode steps: fewer steps than tokens, batches of several rows
    expect(after.maxStepRows).toBeGreaterThan(1);
    expect(after.stepRows - before.stepRows).toBeGreaterThan(after.steps - before.steps);
    expect(after.active).toBe(0);
  });

  it('lets a request join a running batch', async () => {
    const longJob = { prompt: PROMPT, max_tokens: 120, temperature: 0 };
    const shortJob = { prompt: 'Elizabeth', max_tokens: 20, temperature: 0.7, seed: 11 };
    const longAlone = await streamCompletion(longJob);
    const shortAlone = await streamCompletion(shortJob);
    const stream = await client.completions.create({ model: MODEL, ...longJob, stream: true });
    let longText = '';
    let joined: Promise<Awaited<ReturnType<typeof streamCompletion>>> | null = null;
    let rowsWhileJoined = 0;
    for await (const c of stream) {
      longText += c.choices[0]?.text ?? '';
      if (!joined && longText.length >= 10) joined = streamCompletion(shortJob);
      rowsWhileJoined = Math.max(rowsWhileJoined, lm.scheduler.stats().active);
    }
    const short = await joined!;
    expect(longText).toBe(longAlone.text);
    expect(short.text).toBe(shortAlone.text);
    expect(rowsWhileJoined).toBe(2);
  });

  it('frees the slot of a client that disconnects mid-stream', async () => {
    const before = lm.scheduler.stats();
    const ac = new AbortController();
    const stream = await client.completions.create(
      { model: MODEL, prompt: PROMPT, max_tokens: 4000, temperature: 0, stream: true },
      { signal: ac.signal },
    );
    let n = 0;
    for await (const _ of stream) {
      if (++n === 5) {
        ac.abort();
        break;
      }
    }
    const t0 = Date.now();
    while (lm.scheduler.stats().active > 0 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
    const after = lm.scheduler.stats();
    expect(after.active).toBe(0);
    expect(after.tokens - before.tokens).toBeLessThan(500);
    // a non-streamed request whose client leaves is dropped as well
    const ac2 = new AbortController();
    const gone = client.completions
      .create({ model: MODEL, prompt: PROMPT, max_tokens: 4000, temperature: 0 }, { signal: ac2.signal })
      .catch((e) => e);
    while (lm.scheduler.stats().active === 0) await new Promise((r) => setTimeout(r, 10));
    ac2.abort();
    expect(await gone).toBeInstanceOf(OpenAI.APIUserAbortError);
    const t1 = Date.now();
    while (lm.scheduler.stats().active > 0 && Date.now() - t1 < 10_000) await new Promise((r) => setTimeout(r, 20));
    expect(lm.scheduler.stats().active).toBe(0);
    // and the server still answers
    const r = await client.completions.create({ model: MODEL, prompt: 'Anne', max_tokens: 3, temperature: 0 });
    expect(r.choices[0].text).toHaveLength(3);
  });
});

describe('bad input', () => {
  async function post(path: string, body: unknown, contentType = 'application/json') {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return {
      status: res.status,
      body: (await res.json()) as { error: { message: string; type: string; param: string | null } },
    };
  }

  it('answers 400 in OpenAI error shape, and the client raises BadRequestError', async () => {
    const cases: [Record<string, unknown>, string | null, RegExp][] = [
      [{ n: 2 }, 'n', /only n = 1/],
      [{ max_tokens: -1 }, 'max_tokens', /max_tokens/],
      [{ max_tokens: 1.5 }, 'max_tokens', /max_tokens/],
      [{ temperature: 3 }, 'temperature', /temperature/],
      [{ max_tokens_typo: 3 }, 'max_tokens_typo', /max_tokens_typo/],
      [{ prompt: 'x'.repeat(9000) }, 'prompt', /9000 tokens, more than this model's limit of 8192/],
      [{ prompt: 'x'.repeat(40_000) }, 'prompt', /40000 characters/],
      [{ prompt: '' }, 'prompt', /empty/],
      [{ offramp: { policy: 'confidence:threshold=7' } }, 'offramp.policy', /threshold' must be in \[0, 1\]/],
      [{ offramp: { policy: 'fixed:block=1' } }, 'offramp.policy', /exit block/],
      [{ stream_options: { include_usage: true } }, 'stream_options', /only allowed when stream/],
      [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop', /stop/],
    ];
    for (const [extra, param, message] of cases) {
      const r = await post('/completions', { model: MODEL, prompt: 'Anne', max_tokens: 2, ...extra });
      expect(r.status, JSON.stringify(extra).slice(0, 80)).toBe(400);
      expect(r.body.error.type).toBe('invalid_request_error');
      expect(r.body.error.param, JSON.stringify(extra).slice(0, 80)).toBe(param);
      expect(r.body.error.message).toMatch(message);
    }
    const err = await client.completions.create({ model: MODEL, prompt: 'Anne', n: 2 }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.param).toBe('n');
    const chat = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: 'tool', content: 'x', tool_call_id: '1' }] })
      .catch((e) => e);
    expect(chat).toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('answers 503 when every slot and the queue are taken', async () => {
    const ac = new AbortController();
    const stream = await client.completions.create(
      { model: 'austen-one-slot', prompt: PROMPT, max_tokens: 4000, stream: true },
      { signal: ac.signal },
    );
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const err = await client.completions
      .create({ model: 'austen-one-slot', prompt: 'Anne', max_tokens: 2 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err.status).toBe(503);
    expect(err.code).toBe('overloaded');
    expect(err.headers.get('retry-after')).toBe('1');
    ac.abort();
    await it.return?.();
  });

  it('answers 415 and 400 for other content types and broken JSON', async () => {
    expect((await post('/completions', 'hello', 'text/plain')).status).toBe(400);
    expect((await post('/completions', '<a/>', 'application/xml')).status).toBe(415);
    const broken = await post('/chat/completions', '{"model":');
    expect(broken.status).toBe(400);
    expect(broken.body.error.type).toBe('invalid_request_error');
  });

  it('answers 404 for an unknown model', async () => {
    const err = await client.completions.create({ model: 'gpt-4', prompt: 'Anne' }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err.code).toBe('model_not_found');
    expect(err.param).toBe('model');
  });

  it('never answers 5xx to any body shape (fuzz)', async () => {
    const value = fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.integer({ min: -5, max: 5 }),
      fc.double(),
      fc.string({ maxLength: 12 }),
      fc.array(fc.string({ maxLength: 6 }), { maxLength: 5 }),
      fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.string({ maxLength: 6 }), fc.integer()), { maxKeys: 3 }),
    );
    const field = fc.constantFrom(
      'model',
      'prompt',
      'messages',
      'max_tokens',
      'max_completion_tokens',
      'temperature',
      'top_p',
      'seed',
      'stop',
      'n',
      'stream',
      'stream_options',
      'offramp',
      'echo',
      'logprobs',
      'user',
      'bogus',
    );
    const valid = fc.record({
      model: fc.constantFrom(MODEL, 'nope'),
      prompt: fc.string({ maxLength: 10 }),
      messages: fc.constant([{ role: 'user', content: 'Hi' }]),
      max_tokens: fc.constant(2),
    });
    const body = fc.oneof(
      valid.chain((v) => fc.dictionary(field, value, { maxKeys: 3 }).map((d) => ({ ...v, ...d }))),
      fc.dictionary(field, value, { maxKeys: 5 }),
      value,
      fc.constant('{"model":'),
      fc.constant(''),
    );
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom('/completions', '/chat/completions'), async (b, path) => {
        const raw = typeof b === 'string' && (b === '' || b.startsWith('{')) ? b : JSON.stringify(b);
        const res = await fetch(`${base}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: raw,
        });
        const text = await res.text();
        seen.add(res.status);
        expect(res.status, `${path} ${raw.slice(0, 200)} → ${text.slice(0, 200)}`).toBeLessThan(500);
        if (res.status >= 400) expect(JSON.parse(text).error.message).toEqual(expect.any(String));
      }),
      { numRuns: 150 },
    );
    expect(seen.has(400)).toBe(true);
  });
});
