// Fuzzing /v1/classify: bodies shaped like the schema with wrong parts, and raw garbage (invalid or truncated
// JSON, huge values, wrong content types). Every case must get 200 or a 4xx with a message, never a 5xx.
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createServer, type OfframpServer } from './index.js';

const ck = join(import.meta.dirname, '../../../checkpoints');
let srv: OfframpServer;

beforeAll(async () => {
  srv = await createServer({
    models: { fashion: join(ck, 'fashion-cnn'), imdb: join(ck, 'imdb-encoder') },
    maxWaitMs: 0,
    bodyLimit: 256 * 1024,
  });
});
afterAll(async () => {
  await srv?.close();
});

async function check(payload: string, contentType = 'application/json'): Promise<void> {
  const r = await srv.app.inject({
    method: 'POST',
    url: '/v1/classify',
    headers: { 'content-type': contentType },
    payload,
  });
  const where = `${contentType} ${payload.slice(0, 200)}`;
  expect(r.statusCode, where).toBeLessThan(500);
  if (r.statusCode !== 200) {
    expect(r.statusCode, where).toBeGreaterThanOrEqual(400);
    const msg = (r.json() as { error?: { message?: unknown } }).error?.message;
    expect(typeof msg === 'string' && msg.length > 0, `${where} → ${r.body}`).toBe(true);
  }
}

const weirdNumber = fc.oneof(
  fc.double(),
  fc.constantFrom(0, 1, -1, 0.5, 1e308, -1e308, 5e-324, 2 ** 53, -0),
  fc.integer(),
);
const weird = fc.oneof(
  fc.string(),
  fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e999', 'null', '', '0x10', '__proto__', 'constructor'),
  weirdNumber,
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.anything(), { maxLength: 4 }),
  fc.object({ maxDepth: 2 }),
);
const policy = fc.oneof(
  weird,
  fc.constantFrom('confidence', 'static:exit=0', 'static:exit=9', 'patience:patience=2', 'oracle', 'budget', 'gate'),
  fc
    .tuple(
      fc.constantFrom('confidence', 'entropy', 'margin', 'static'),
      fc.constantFrom('threshold', 'exit', 'x'),
      weirdNumber,
    )
    .map(([n, k, v]) => `${n}:${k}=${v}`),
);
const image = fc.oneof(
  fc.array(weirdNumber, { maxLength: 800 }),
  fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 784, maxLength: 784 }),
  fc.string(),
  fc.base64String({ maxLength: 200 }),
  weird,
);
const input = fc.oneof(
  fc.record({ text: fc.oneof(fc.string({ maxLength: 300 }), weird) }),
  fc.record({ image }),
  fc.record({ text: fc.string(), image }),
  fc.dictionary(fc.string(), weird, { maxKeys: 3 }),
  weird,
);
const body = fc.record(
  {
    model: fc.oneof(fc.constantFrom('fashion', 'imdb', '../fashion-cnn', '/etc/passwd', ''), weird),
    input,
    inputs: fc.oneof(fc.array(input, { maxLength: 20 }), weird),
    policy,
    trace: fc.oneof(fc.boolean(), weird),
    truncate: fc.oneof(fc.boolean(), weird),
    extra: weird,
  },
  { requiredKeys: [] },
);

test('schema-shaped bodies never give a 5xx', async () => {
  await fc.assert(
    fc.asyncProperty(body, async (b) => check(JSON.stringify(b))),
    { numRuns: 250, seed: 20261201 },
  );
}, 300_000);

test('raw garbage never gives a 5xx', async () => {
  const valid = JSON.stringify({ model: 'fashion', input: { image: new Array(784).fill(0.25) } });
  const raw = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.integer({ min: 0, max: valid.length - 1 }).map((n) => valid.slice(0, n)), // truncated JSON
    fc.constantFrom(
      '',
      'null',
      '[]',
      '{}',
      '"text"',
      '{"model": "fashion", "input": {"image": [1e999]}}',
      `{"model": "fashion", "input": {"image": [${'9'.repeat(400)}]}}`,
      '{"model": "fashion", "input": {"text": NaN}}',
      '{"__proto__": {"admin": true}, "model": "fashion", "input": {"text": "x"}}',
      '{"constructor": {"prototype": {}}, "model": "fashion"}',
      `{"model": "imdb", "input": {"text": "${'a'.repeat(300 * 1024)}"}}`, // over the body limit
      `${'['.repeat(5000)}${']'.repeat(5000)}`,
    ),
  );
  await fc.assert(
    fc.asyncProperty(raw, async (p) => check(p)),
    { numRuns: 150, seed: 7 },
  );
  const types = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', 'image/png', 'bogus'];
  for (const t of types) await check(valid, t);
  const health = await srv.app.inject({ url: '/health' });
  expect(health.statusCode).toBe(200);
}, 300_000);
