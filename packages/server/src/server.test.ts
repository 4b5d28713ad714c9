// The server in-process: routes, validation messages, batching (answers identical to running alone, batches
// larger than one), queue limit, auth, metrics and the OpenAPI document. Runs on lavapipe like the engine tests.
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type BatchInfo, createServer, type OfframpServer } from './index.js';
import { testImages } from './testing-internal/images.js';

const ck = join(import.meta.dirname, '../../../checkpoints');
const models = { fashion: join(ck, 'fashion-cnn'), imdb: join(ck, 'imdb-encoder') };
let srv: OfframpServer;
let url: string;
const batches: BatchInfo[] = [];
const images: number[][] = [];

beforeAll(async () => {
  images.push(...testImages(24));
  // the WebGPU device itself ('auto' on a software adapter runs classifiers on the ONNX Runtime CPU path:
  // cpu-path.test.ts)
  srv = await createServer({
    models,
    device: 'gpu',
    maxBatch: 8,
    maxWaitMs: 30,
    concurrency: 1,
    onBatch: (b) => batches.push(b),
  });
  url = await srv.listen(0);
});
afterAll(async () => {
  await srv?.close();
});

const classify = async (body: unknown, headers: Record<string, string> = {}) => {
  const r = await fetch(`${url}/v1/classify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: r.status, headers: r.headers, json: (await r.json()) as any };
};

test('health, ready, models', async () => {
  expect(await (await fetch(`${url}/health`)).json()).toEqual({ status: 'ok' });
  const ready = await fetch(`${url}/ready`);
  expect(ready.status).toBe(200);
  expect(((await ready.json()) as any).models).toEqual(['fashion', 'imdb']);
  const list = (await (await fetch(`${url}/v1/models`)).json()) as any;
  expect(list.data.map((m: any) => [m.id, m.architecture, m.exit_blocks.length, m.classes.length])).toEqual([
    ['fashion', 'cnn_classifier', 3, 10],
    ['imdb', 'encoder_classifier', 3, 2],
  ]);
  expect(list.data[0].classes[9]).toBe('Ankle boot');
});

test('classifies an image and a text', async () => {
  const a = await classify({ model: 'fashion', input: { image: images[0] }, trace: true });
  expect(a.status).toBe(200);
  expect(a.json.label).toBe(list10()[a.json.prediction]);
  expect(a.json.probabilities).toHaveLength(10);
  expect(a.json.probabilities.reduce((x: number, y: number) => x + y, 0)).toBeCloseTo(1, 4);
  expect(a.json.cost_fraction).toBeGreaterThan(0);
  expect(a.json.cost_fraction).toBeLessThanOrEqual(1);
  expect(a.json.trace.maxProb.length).toBe(a.json.exit_index + 1);
  const full = await classify({ model: 'fashion', input: { image: images[0] }, policy: 'static:exit=2' });
  expect([full.json.exit_index, full.json.cost_fraction]).toEqual([2, 1]);
  const t = await classify({ model: 'imdb', input: { text: 'A wonderful, moving film. I loved every minute.' } });
  expect(t.status).toBe(200);
  expect(['negative', 'positive']).toContain(t.json.label);
  expect(t.json.truncated).toBe(false);
});

function list10() {
  return ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
}

test('a PNG gives the same answer as its pixel array', async () => {
  const png = new PNG({ width: 28, height: 28 });
  images[3].forEach((v, i) => {
    const g = Math.round(v * 255);
    png.data.set([g, g, g, 255], i * 4);
  });
  const b64 = PNG.sync.write(png).toString('base64');
  const a = await classify({ model: 'fashion', input: { image: b64 } });
  const b = await classify({ model: 'fashion', input: { image: images[3] } });
  expect(a.status).toBe(200);
  expect(a.json).toEqual(b.json);
});

test('bad requests get 4xx with a message', async () => {
  const cases: [unknown, number, RegExp][] = [
    [{ model: 'fashion', input: { image: images[0] }, extra: 1 }, 400, /"extra"/],
    [{ model: 'nope', input: { image: images[0] } }, 404, /model 'nope' is not served here; served: fashion, imdb/],
    [{ model: 'fashion', input: { image: images[0] }, policy: 'confidense' }, 400, /policy: /],
    [{ model: 'fashion', input: { image: images[0] }, policy: 'confidence:threshold=7' }, 400, /threshold/],
    [{ model: 'fashion', input: { image: [0.5, 0.5] } }, 400, /has 2 values, model 'fashion' takes 784/],
    [{ model: 'fashion', input: { text: 'hi' } }, 400, /takes images/],
    [{ model: 'imdb', input: { image: images[0] } }, 400, /takes text/],
    [{ model: 'imdb', input: { text: 'word '.repeat(400) } }, 400, /more than 256 tokens.*truncate: true/],
    [{ model: 'fashion', input: { image: 'not a png' } }, 400, /base64|PNG/],
    [{ model: 'fashion' }, 400, /input/],
  ];
  for (const [body, status, msg] of cases) {
    const r = await classify(body);
    expect([r.status, r.json.error?.message], JSON.stringify(body).slice(0, 80)).toEqual([
      status,
      expect.stringMatching(msg),
    ]);
  }
  const long = await classify({ model: 'imdb', input: { text: 'word '.repeat(400) }, truncate: true });
  expect([long.status, long.json.truncated]).toEqual([200, true]);
});

test('concurrent requests batch, and each answer equals the request run alone', async () => {
  const policy = 'confidence:threshold=0.9';
  const alone = [];
  for (const img of images) alone.push((await classify({ model: 'fashion', input: { image: img }, policy })).json);
  batches.length = 0;
  const together = await Promise.all(
    images.map((img) => classify({ model: 'fashion', input: { image: img }, policy })),
  );
  expect(together.map((r) => r.json)).toEqual(alone); // probabilities bit for bit (float32 → JSON → float64)
  expect(Math.max(...batches.map((b) => b.size))).toBeGreaterThan(1);
  expect(batches.every((b) => b.mode === 'device')).toBe(true);
  expect(new Set(alone.map((r: any) => r.exit_index)).size).toBeGreaterThan(1); // rows leave at different exits
  // two policies at once: never mixed in one batch
  batches.length = 0;
  const mixed = await Promise.all(
    images
      .slice(0, 8)
      .map((img, i) => classify({ model: 'fashion', input: { image: img }, policy: i % 2 ? 'static:exit=0' : policy })),
  );
  expect(mixed.filter((_, i) => i % 2 === 0).map((r) => r.json)).toEqual(
    alone.slice(0, 8).filter((_, i) => i % 2 === 0),
  );
  expect(mixed.filter((_, i) => i % 2).every((r) => r.json.exit_index === 0)).toBe(true);
  expect(new Set(batches.map((b) => b.policy))).toEqual(new Set([policy, 'static:exit=0']));
  const metrics = await (await fetch(`${url}/metrics`)).text();
  expect(metrics).toMatch(/offramp_batch_size_bucket\{le="1",model="fashion"\}/);
  expect(metrics).toMatch(/offramp_exit_block_count\{model="fashion",policy="confidence:threshold=0.9"\} \d+/);
  expect(metrics).toMatch(/offramp_flops_saved_ratio\{model="fashion"\} 0\.\d+/);
  expect(metrics).toMatch(/offramp_http_requests_total\{method="POST",route="\/v1\/classify",status="200"\} \d+/);
  expect(metrics).toMatch(/offramp_queue_wait_seconds_bucket/);
  expect(metrics).toMatch(/offramp_queue_depth 0/);
});

test('OpenAPI document from the schemas', async () => {
  const doc = (await (await fetch(`${url}/docs/json`)).json()) as any;
  expect(doc.openapi).toMatch(/^3/);
  expect(doc.paths['/v1/classify'].post.requestBody).toBeDefined();
  expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/health', '/ready', '/v1/models']));
});

test('API key, queue limit (429 + Retry-After), graceful close answers in-flight requests', async () => {
  const s = await createServer({
    models: { fashion: models.fashion },
    device: srv.context.device,
    apiKey: 'sekret',
    maxQueue: 3,
    maxWaitMs: 300,
    maxBatch: 8,
  });
  const u = await s.listen(0);
  const post = (headers: Record<string, string>) =>
    fetch(`${u}/v1/classify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model: 'fashion', input: { image: images[0] } }),
    });
  expect((await post({})).status).toBe(401);
  expect((await post({ authorization: 'Bearer wrong' })).status).toBe(401);
  expect((await fetch(`${u}/health`)).status).toBe(200);
  const auth = { authorization: 'Bearer sekret' };
  const four = [post(auth), post(auth), post(auth), post(auth)];
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 100));
  const closing = s.close(); // the queued requests are still answered
  const answered = await Promise.all(four);
  expect(answered.map((r) => r.status).sort()).toEqual([200, 200, 200, 429]);
  const over = answered.find((r) => r.status === 429)!;
  expect(over.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(((await over.json()) as any).error.message).toMatch(/queue is full/);
  await closing;
  expect(performance.now() - t0).toBeLessThan(10_000);
});

test('policy specs are canonical: spacing and number spelling share one queue', async () => {
  const a = await classify({ model: 'fashion', input: { image: images[1] }, policy: 'confidence: threshold=0.90' });
  expect([a.status, a.json.policy]).toEqual([200, 'confidence:threshold=0.9']);
});

test('under pressure (heap over a limit): 503 with Retry-After, /health still answers', async () => {
  const s = await createServer({
    models: { fashion: models.fashion },
    device: srv.context.device,
    underPressure: { maxHeapUsedBytes: 1, retryAfterS: 7 },
  });
  try {
    let r = await s.app.inject({
      method: 'POST',
      url: '/v1/classify',
      payload: { model: 'fashion', input: { image: images[0] } },
    });
    for (let i = 0; i < 40 && r.statusCode !== 503; i++) {
      await new Promise((res) => setTimeout(res, 50));
      r = await s.app.inject({
        method: 'POST',
        url: '/v1/classify',
        payload: { model: 'fashion', input: { image: images[0] } },
      });
    }
    expect(r.statusCode).toBe(503);
    expect(r.headers['retry-after']).toBe('7');
    expect(r.json().error.message).toMatch(/./);
    expect((await s.app.inject({ url: '/health' })).statusCode).toBe(200);
  } finally {
    await s.close();
  }
});

test('inputs: several inputs in one request, each answered as alone; limits per request', async () => {
  const policy = 'confidence:threshold=0.9';
  const many = await classify({ model: 'fashion', inputs: images.slice(0, 5).map((image) => ({ image })), policy });
  expect(many.status).toBe(200);
  const alone = [];
  for (const image of images.slice(0, 5)) {
    const { model, policy: p, ...rest } = (await classify({ model: 'fashion', input: { image }, policy })).json;
    expect([model, p]).toEqual(['fashion', policy]);
    alone.push(rest);
  }
  expect(many.json).toEqual({ model: 'fashion', policy, results: alone });
  const cases: [unknown, RegExp][] = [
    [{ model: 'fashion', inputs: images.slice(0, 9).map((image) => ({ image })) }, /inputs has 9 entries; at most 8/],
    [{ model: 'fashion', inputs: [{ image: images[0] }, { image: [1] }] }, /inputs\[1\]: image has 1 values/],
    [{ model: 'fashion', input: { image: images[0] }, inputs: [{ image: images[0] }] }, /either input .* or inputs/],
    [{ model: 'fashion', inputs: [] }, /inputs/],
  ];
  for (const [body, msg] of cases) {
    const r = await classify(body);
    expect([r.status, r.json.error?.message]).toEqual([400, expect.stringMatching(msg)]);
  }
});

test('text requests of different lengths batch by length bucket and answer as alone; plugins get app.offramp', async () => {
  const texts = [
    'Great.',
    'A dull, lifeless film with nothing to say.',
    'I loved the acting, the music and the story; one of the best films of the year, and I will watch it again.',
    'terrible '.repeat(40),
    'An average movie. Some good scenes, some bad ones.',
    'wonderful '.repeat(120),
  ];
  const alone = [];
  for (const text of texts) alone.push((await classify({ model: 'imdb', input: { text } })).json);
  const together = await Promise.all(texts.map((text) => classify({ model: 'imdb', input: { text } })));
  expect(together.map((r) => r.json)).toEqual(alone);

  const s = await createServer({
    models: { fashion: models.fashion },
    device: srv.context.device,
    plugins: [
      async (app) => {
        app.get('/v1/extra', async () => ({ models: [...app.offramp.models.keys()] }));
      },
    ],
  });
  try {
    const r = await s.app.inject({ url: '/v1/extra', headers: { 'x-request-id': 'abc-1' } });
    expect([r.statusCode, r.json(), r.headers['x-request-id']]).toEqual([200, { models: ['fashion'] }, 'abc-1']);
  } finally {
    await s.close();
  }
});

test('rate limit per client (429 + Retry-After, /health exempt); CORS off by default, on when asked', async () => {
  expect(
    (await fetch(`${url}/v1/models`, { headers: { origin: 'https://example.org' } })).headers.get(
      'access-control-allow-origin',
    ),
  ).toBeNull();
  const s = await createServer({
    models: { fashion: models.fashion },
    device: srv.context.device,
    rateLimit: { max: 2, timeWindowMs: 60_000 },
    cors: true,
  });
  try {
    const get = () => s.app.inject({ url: '/v1/models', headers: { origin: 'https://example.org' } });
    const [a, b, c] = [await get(), await get(), await get()];
    expect([a.statusCode, b.statusCode, c.statusCode]).toEqual([200, 200, 429]);
    expect(a.headers['access-control-allow-origin']).toBe('https://example.org');
    expect(Number(c.headers['retry-after'])).toBeGreaterThan(0);
    expect(c.json().error.message).toMatch(/rate limit: at most 2 requests/);
    expect((await s.app.inject({ url: '/health' })).statusCode).toBe(200);
  } finally {
    await s.close();
  }
});

test('on the CPU device batches run in host mode and agree with the GPU', async () => {
  const seen: BatchInfo[] = [];
  const s = await createServer({ models: { fashion: models.fashion }, device: 'cpu', onBatch: (b) => seen.push(b) });
  try {
    for (const image of images.slice(0, 3)) {
      const cpu = (
        await s.app.inject({ method: 'POST', url: '/v1/classify', payload: { model: 'fashion', input: { image } } })
      ).json();
      const gpu = (await classify({ model: 'fashion', input: { image } })).json;
      expect([cpu.prediction, cpu.exit_index]).toEqual([gpu.prediction, gpu.exit_index]);
      const diff = Math.max(...cpu.probabilities.map((p: number, i: number) => Math.abs(p - gpu.probabilities[i])));
      expect(diff).toBeLessThan(1e-4);
    }
    expect(seen.map((b) => b.mode)).toEqual(['host', 'host', 'host']);
  } finally {
    await s.close();
  }
});

test('a request that gets no answer within requestTimeoutMs gets 503', async () => {
  const s = await createServer({
    models: { fashion: models.fashion },
    device: srv.context.device,
    requestTimeoutMs: 100,
    maxWaitMs: 1000,
  });
  try {
    const r = await s.app.inject({
      method: 'POST',
      url: '/v1/classify',
      payload: { model: 'fashion', input: { image: images[0] } },
    });
    expect([r.statusCode, r.json().error.message]).toEqual([503, expect.stringMatching(/no answer within 100 ms/)]);
  } finally {
    await s.close();
  }
});

test('a Mamba language model folder is served by the completions routes of the same server', async () => {
  // classifiers and a language model side by side: /v1/models lists both kinds, /ready counts both,
  // /v1/completions answers from the language model, /v1/classify still from the classifier
  const both = await createServer({
    models: { fashion: models.fashion, austen: join(ck, 'austen-mamba') },
    maxBatch: 4,
    logger: false,
  });
  try {
    const u = await both.listen(0);
    const ready = (await (await fetch(`${u}/ready`)).json()) as any;
    expect(ready.models).toEqual(['fashion', 'austen']);
    const list = (await (await fetch(`${u}/v1/models`)).json()) as any;
    expect(list.data.map((m: any) => [m.id, m.kind])).toEqual([
      ['fashion', 'classifier'],
      ['austen', 'language-model'],
    ]);
    expect(list.data[1].routes).toEqual(['/v1/completions', '/v1/chat/completions']);
    const r = await fetch(`${u}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'austen', prompt: 'It is a truth universally', max_tokens: 6 }),
    });
    expect(r.status).toBe(200);
    const body = (await r.json()) as any;
    expect(body.choices[0].text).toHaveLength(6); // a character-level model: one character a token
    expect(body.usage.completion_tokens).toBe(6);
    expect(body.offramp.exit_blocks).toHaveLength(6);
    const c = await fetch(`${u}/v1/classify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fashion', input: { image: images[1] } }),
    });
    expect(c.status).toBe(200);
    const wrong = await fetch(`${u}/v1/classify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'austen', input: { text: 'x' } }),
    });
    expect(wrong.status).toBe(404);
    // the decode scheduler's counts reach /metrics
    const text = await (await fetch(`${u}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name}\\{model="austen"\\} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('offramp_lm_tokens_total')).toBeGreaterThanOrEqual(6);
    expect(value('offramp_lm_decode_steps_total')).toBeGreaterThanOrEqual(5);
    expect(value('offramp_lm_active_sequences')).toBe(0);
  } finally {
    await both.close();
  }
});
