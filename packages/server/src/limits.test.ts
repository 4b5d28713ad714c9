// Per-model limits: maxBatch and maxSeqLen on createServer's model entries (with server-wide defaults).
// A request over a model's sequence limit gets 413 naming the limit (or is cut with truncate: true, then
// answered as the same model without the limit answers the cut text); batches never exceed the model's
// maxBatch; language models refuse prompt + max_tokens over their limit (400 context_length_exceeded).
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type BatchInfo, createServer, type OfframpServer } from './index.js';
import { testImages } from './testing-internal/images.js';

const ck = join(import.meta.dirname, '../../../checkpoints');
let srv: OfframpServer;
let url: string;
const batches: BatchInfo[] = [];

beforeAll(async () => {
  srv = await createServer({
    models: {
      fashion: { path: join(ck, 'fashion-cnn'), maxBatch: 2 },
      imdb: { path: join(ck, 'imdb-encoder'), maxSeqLen: 16 },
      'imdb-full': join(ck, 'imdb-encoder'),
      austen: { path: join(ck, 'austen-mamba'), maxSeqLen: 40 },
    },
    maxBatch: 8,
    maxWaitMs: 20,
    onBatch: (b) => batches.push(b),
  });
  url = await srv.listen(0);
});
afterAll(async () => {
  await srv?.close();
});

const post = async (path: string, body: unknown) => {
  const r = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as any };
};

test('/v1/models shows each model its own limits', async () => {
  const list = (await (await fetch(`${url}/v1/models`)).json()) as any;
  const byId = Object.fromEntries(list.data.map((m: any) => [m.id, [m.max_batch, m.max_seq_len]]));
  expect(byId).toEqual({
    fashion: [2, undefined],
    imdb: [8, 16],
    'imdb-full': [8, undefined],
    austen: [8, 40],
  });
});

test("a model's maxBatch bounds its batches and the inputs of one request", async () => {
  const images = testImages(9);
  batches.length = 0;
  const all = await Promise.all(images.map((image) => post('/v1/classify', { model: 'fashion', input: { image } })));
  expect(all.every((r) => r.status === 200)).toBe(true);
  const sizes = batches.filter((b) => b.model === 'fashion').map((b) => b.size);
  expect(sizes.reduce((a, b) => a + b, 0)).toBe(9);
  expect(Math.max(...sizes)).toBe(2); // full batches of the model's 2, not the server's 8
  const over = await post('/v1/classify', { model: 'fashion', inputs: images.slice(0, 3).map((image) => ({ image })) });
  expect(over.status).toBe(400);
  expect(over.json.error.message).toMatch(/inputs has 3 entries; at most 2 per request \(model 'fashion''s maxBatch\)/);
  // imdb-full keeps the server-wide 8
  const eight = await post('/v1/classify', {
    model: 'imdb-full',
    inputs: Array.from({ length: 8 }, (_, i) => ({ text: `film number ${i} was fine` })),
  });
  expect(eight.status).toBe(200);
});

test('over the sequence limit: 413 naming it; truncate: true cuts to it', async () => {
  const words = Array.from({ length: 30 }, (_, i) => ['good', 'bad', 'film', 'story', 'acting'][i % 5]);
  const long = words.join(' ');
  const r = await post('/v1/classify', { model: 'imdb', input: { text: long } });
  expect(r.status).toBe(413);
  expect(r.json.error.code).toBe('too_long');
  expect(r.json.error.message).toMatch(
    /more than 16 tokens \(\[CLS\] included\), this server's maxSeqLen for model 'imdb'/,
  );
  // within the limit: answered as the unlimited model answers it
  const short = words.slice(0, 15).join(' '); // 15 words + [CLS] = 16 tokens
  const a = await post('/v1/classify', { model: 'imdb', input: { text: short } });
  const b = await post('/v1/classify', { model: 'imdb-full', input: { text: short } });
  expect(a.status).toBe(200);
  expect(a.json.truncated).toBe(false);
  expect(a.json.probabilities).toEqual(b.json.probabilities);
  // cut: the same answer as the first 15 words
  const cut = await post('/v1/classify', { model: 'imdb', input: { text: long }, truncate: true });
  expect([cut.status, cut.json.truncated]).toEqual([200, true]);
  expect(cut.json.probabilities).toEqual(b.json.probabilities);
  // the model's own limit (256) still answers 400 on the unlimited one
  const huge = await post('/v1/classify', { model: 'imdb-full', input: { text: 'word '.repeat(300) } });
  expect([huge.status, huge.json.error.message]).toEqual([400, expect.stringMatching(/more than 256 tokens/)]);
});

test('a language model refuses prompt + max_tokens over its maxSeqLen', async () => {
  const prompt = 'It is a truth universally acknowledged'; // 38 characters: 38 tokens of the char model
  const r = await post('/v1/completions', { model: 'austen', prompt, max_tokens: 10 });
  expect(r.status).toBe(400);
  expect(r.json.error).toMatchObject({ code: 'context_length_exceeded', param: 'max_tokens' });
  expect(r.json.error.message).toMatch(
    /maximum sequence length for model 'austen' \(maxSeqLen\) is 40 tokens; this request asks for 48 \(38 in the prompt, 10 to generate\)/,
  );
  const ok = await post('/v1/completions', { model: 'austen', prompt, max_tokens: 2, temperature: 0 });
  expect(ok.status).toBe(200);
  expect(ok.json.usage.total_tokens).toBeLessThanOrEqual(40);
});

test('bad limits are refused when the server is created', async () => {
  await expect(
    createServer({ models: { f: { path: join(ck, 'fashion-cnn'), maxSeqLen: 16 } }, device: 'cpu' }),
  ).rejects.toThrow(/model 'f' .* takes images: maxSeqLen applies to text models only/);
  await expect(
    createServer({ models: { i: { path: join(ck, 'imdb-encoder'), maxSeqLen: 1000 } }, device: 'cpu' }),
  ).rejects.toThrow(/maxSeqLen 1000 is more than the model's own maximum of 256 tokens/);
  await expect(createServer({ models: { f: { path: join(ck, 'fashion-cnn'), maxBatch: 0 } } })).rejects.toThrow(
    /models\.f\.maxBatch must be an integer in \[1, 1024\], got 0/,
  );
  // a server-wide maxSeqLen leaves image models alone and caps text models at their own maximum
  const s = await createServer({
    models: { f: join(ck, 'fashion-cnn'), i: join(ck, 'imdb-encoder') },
    maxSeqLen: 1000,
    device: 'cpu',
  });
  try {
    expect([s.context.models.get('f')!.maxSeqLen, s.context.models.get('i')!.maxSeqLen]).toEqual([undefined, 256]);
  } finally {
    await s.close();
  }
});
