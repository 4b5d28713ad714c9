// Device loss in a real listening server on the GPU device (lavapipe in CI): the underlying GPUDevice is
// destroyed (as a driver reset would) while classify requests and a streamed completion are in flight.
// Those get 503 with a message (the stream: an error event, then its end), /ready and new requests get
// 503 with Retry-After while the server recreates the device and reloads the models, and afterwards every
// request is answered exactly as before the loss. The recovery is held at a gate (recreateDevice) so
// that the test sees the recovering state for as long as it needs.
import { join } from 'node:path';
import { createDevice, type Device, type GpuDevice } from '@offramp/core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createServer, type OfframpServer } from './index.js';
import { testImages } from './testing-internal/images.js';

const ck = join(import.meta.dirname, '../../../checkpoints');
let srv: OfframpServer;
let url: string;
let release: () => void = () => {};
let gate: Promise<void> = Promise.resolve();
let recreated = 0;

beforeAll(async () => {
  srv = await createServer({
    models: { fashion: join(ck, 'fashion-cnn'), imdb: join(ck, 'imdb-encoder'), austen: join(ck, 'austen-mamba') },
    device: 'gpu',
    maxBatch: 4,
    maxWaitMs: 2,
    concurrency: 1,
    async recreateDevice(): Promise<Device> {
      await gate;
      recreated++;
      return createDevice({ backend: 'gpu' });
    },
  });
  url = await srv.listen(0);
});
afterAll(async () => {
  release();
  await srv?.close();
});

const post = async (path: string, body: unknown) => {
  const r = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, retryAfter: r.headers.get('retry-after'), json: (await r.json()) as any };
};
const metric = async (name: string) => {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
};

test('a lost device fails the requests in flight with 503, recovers, then answers as before', async () => {
  const images = testImages(24);
  const bodies = images.map((image) => ({ model: 'fashion', input: { image } }));
  const text = { model: 'imdb', input: { text: 'A wonderful, moving film. I loved every minute of it.' } };
  const completion = {
    model: 'austen',
    prompt: 'It is a truth universally acknowledged',
    max_tokens: 12,
    temperature: 0,
  };
  // answers before the loss, one by one
  const before: unknown[] = [];
  for (const b of bodies) before.push((await post('/v1/classify', b)).json);
  const textBefore = (await post('/v1/classify', text)).json;
  const compBefore = (await post('/v1/completions', completion)).json;
  expect(compBefore.choices[0].text.length).toBeGreaterThan(0);
  expect(await metric('offramp_device_losses_total')).toBe(0);
  expect(await metric('offramp_buffer_pool_bytes')).toBeGreaterThan(0);

  // in flight: every classify request at once, and a long streamed completion
  ({ gate, release } = (() => {
    let r!: () => void;
    return { gate: new Promise<void>((res) => (r = res)), release: () => r() };
  })());
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...completion, max_tokens: 4000, stream: true }),
  });
  let streamed = '';
  const stream = (async () => {
    const decoder = new TextDecoder();
    for await (const part of res.body!) streamed += decoder.decode(part, { stream: true });
    return { status: res.status, body: streamed };
  })();
  // lose the device once tokens are streaming and classify requests are queued or running
  while ((streamed.match(/^data: /gm)?.length ?? 0) < 3) await new Promise((r) => setTimeout(r, 1));
  const inflight = bodies.map((b) => post('/v1/classify', b));
  while (srv.context.scheduler.depth === 0) await new Promise((r) => setTimeout(r, 1));
  const lost = srv.context.device as GpuDevice;
  lost.gpu.destroy(); // the GPUDevice itself, not the server's wrapper: the server did not ask for this

  const answers = await Promise.all(inflight);
  const failed = answers.filter((a) => a.status === 503);
  // queued or running at the loss: device_lost; arrived after it (still on their way in): recovering
  expect(failed.filter((a) => a.json.error.code === 'device_lost').length).toBeGreaterThan(0);
  for (const a of failed) {
    expect(a.json.error.message).toMatch(
      a.json.error.code === 'device_lost'
        ? /^the GPU device was lost while this request was in flight \(destroyed: .*\); the server is recreating it .*retry after \d+ s$/
        : /^the server is recovering from a lost GPU device .*retry after \d+ s$/,
    );
    expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
  }
  // the others finished before the loss, with the answers they had before
  answers.forEach((a, i) => {
    if (a.status !== 503) expect([a.status, a.json]).toEqual([200, before[i]]);
  });
  const s = await stream;
  expect(s.status).toBe(200); // the stream had started: its error comes as an event, then the stream ends
  const events = s.body
    .split('\n\n')
    .filter(Boolean)
    .map((e) => e.replace(/^data: /, ''));
  expect(events.length).toBeGreaterThan(3); // tokens, then the error
  expect(JSON.parse(events[0]).choices[0].text.length).toBeGreaterThan(0);
  expect(events.at(-1)).not.toBe('[DONE]');
  const last = JSON.parse(events.at(-1)!);
  expect(last.error).toMatchObject({ type: 'server_error', code: 'device_lost' });
  expect(last.error.message).toMatch(/GPU device was lost/);

  // recovering: held at the gate
  expect(srv.context.recovering).toBe(true);
  const ready = await fetch(`${url}/ready`);
  expect(ready.status).toBe(503);
  expect(Number(ready.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(((await ready.json()) as any).reason).toMatch(/recovering from a lost GPU device/);
  const refused = await post('/v1/classify', bodies[0]);
  expect([refused.status, refused.json.error.code]).toEqual([503, 'recovering']);
  expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
  const refusedLm = await post('/v1/completions', completion);
  expect([refusedLm.status, refusedLm.json.error.code, refusedLm.json.error.type]).toEqual([
    503,
    'recovering',
    'server_error',
  ]);
  expect(await metric('offramp_device_recovering')).toBe(1);
  expect((await fetch(`${url}/health`)).status).toBe(200);

  release();
  await srv.context.recovered();
  expect(recreated).toBe(1);
  expect(srv.context.device).not.toBe(lost);
  expect((await fetch(`${url}/ready`)).status).toBe(200);
  expect(await metric('offramp_device_losses_total')).toBe(1);
  expect(await metric('offramp_device_recovering')).toBe(0);
  // the same answers as before the loss, one by one and all at once
  const after: unknown[] = [];
  for (const b of bodies) after.push((await post('/v1/classify', b)).json);
  expect(after).toEqual(before);
  const together = await Promise.all(bodies.map((b) => post('/v1/classify', b)));
  expect(together.map((a) => a.json)).toEqual(before);
  expect((await post('/v1/classify', text)).json).toEqual(textBefore);
  const compAfter = (await post('/v1/completions', completion)).json;
  expect(compAfter.choices).toEqual(compBefore.choices);
  expect(compAfter.offramp).toEqual(compBefore.offramp);
}, 120_000);

test('a GPU error during a run (the device still alive) is answered 503 and recovered from the same way', async () => {
  const images = testImages(4);
  const body = (image: number[]) => ({ model: 'fashion', input: { image } });
  const before: unknown[] = [];
  for (const img of images) before.push((await post('/v1/classify', body(img))).json);
  const losses = await metric('offramp_device_losses_total');
  const dev = srv.context.device as GpuDevice;
  // a weight buffer destroyed behind the engine's back: the next submit fails Dawn's validation
  const w = [...srv.context.models.get('fashion')!.model.weights.values()][0];
  (w.handle as GPUBuffer).destroy();
  const r = await post('/v1/classify', body(images[0]));
  expect([r.status, r.json.error.code]).toEqual([503, 'device_lost']);
  expect(r.json.error.message).toMatch(
    /^the GPU device failed while this request was in flight \(GPU error in work containing kernel/,
  );
  expect(dev.lostReason).toBeNull(); // not lost: the server recovers from the error all the same
  await srv.context.recovered();
  expect(srv.context.device).not.toBe(dev);
  expect(dev.isDestroyed).toBe(true); // the old device is released
  expect(await metric('offramp_device_losses_total')).toBe(losses + 1);
  const after: unknown[] = [];
  for (const img of images) after.push((await post('/v1/classify', body(img))).json);
  expect(after).toEqual(before);
}, 60_000);
