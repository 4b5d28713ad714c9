// A short load test, as CI runs it (the full numbers come from `pnpm bench:server`): autocannon against
// `offramp serve` as a real process (the built CLI, shipped fashion-cnn and austen-mamba), a few seconds of
// classify requests and of streamed completions. Every answer is checked (classify: the answer the server
// gives the same image alone; stream: the text of the same request unstreamed, and the closing [DONE]); no
// error, timeout or non-2xx; the server's own request counters agree with autocannon's.
import { join } from 'node:path';
import autocannon from 'autocannon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testImages } from '../src/testing-internal/images.js';
import { CHECKPOINTS, freePort, promValue, type Replica, startServe, warmUp } from './helpers.js';

const SECONDS = 4;
let server: Replica;

beforeAll(async () => {
  server = await startServe(
    [
      '--model',
      `fashion-cnn=${join(CHECKPOINTS, 'fashion-cnn')}`,
      '--model',
      `austen=${join(CHECKPOINTS, 'austen-mamba')}`,
      '--max-wait-ms',
      '2',
    ],
    await freePort(),
  );
  // pipelines compiled before the load (slow once on a machine with a cold shader cache)
  await warmUp(server.url, '/v1/classify', { model: 'fashion-cnn', input: { image: new Array(784).fill(0.5) } });
  await warmUp(server.url, '/v1/completions', { model: 'austen', prompt: 'It was', max_tokens: 2, stream: true });
}, 600_000);

afterAll(async () => {
  server?.child.kill('SIGTERM');
  expect(await server?.exited).toBe(0);
});

async function requestsServed(route: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return promValue(text, 'offramp_http_requests_total', { route, status: '200' });
}

function summary(name: string, r: autocannon.Result) {
  return `${name}: ${r.requests.total} requests in ${r.duration.toFixed(1)} s, ${r.requests.average} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, errors ${r.errors}, timeouts ${r.timeouts}, non-2xx ${r.non2xx}`;
}

describe(`autocannon against offramp serve, ${SECONDS} s per route`, () => {
  it('classify: 8 connections, no failed request, every answer right', async () => {
    const bodies = testImages(8).map((img) => JSON.stringify({ model: 'fashion-cnn', input: { image: img } }));
    const want: string[] = [];
    for (const b of bodies) {
      const res = await fetch(`${server.url}/v1/classify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: b,
      });
      const a = await res.json();
      want.push(JSON.stringify([a.prediction, a.exit_block, a.probabilities]));
    }
    const before = await requestsServed('/v1/classify');
    let checked = 0;
    let wrong = 0;
    const r = await autocannon({
      url: server.url,
      connections: 8,
      duration: SECONDS,
      requests: bodies.map((body, i) => ({
        method: 'POST' as const,
        path: '/v1/classify',
        headers: { 'content-type': 'application/json' },
        body,
        onResponse: (status: number, text: string) => {
          checked++;
          if (status !== 200) return;
          const a = JSON.parse(text);
          if (JSON.stringify([a.prediction, a.exit_block, a.probabilities]) !== want[i]) wrong++;
        },
      })),
    });
    console.log(summary('classify', r));
    expect(r.errors).toBe(0);
    expect(r.timeouts).toBe(0);
    expect(r.non2xx).toBe(0);
    expect(r['2xx']).toBeGreaterThan(0);
    expect(r.requests.average).toBeGreaterThan(0);
    expect(checked).toBe(r['2xx']);
    expect(wrong).toBe(0);
    // the server counted what autocannon did, plus at most the requests still in flight when it stopped
    await new Promise((res) => setTimeout(res, 1000));
    const served = (await requestsServed('/v1/classify')) - before;
    expect(served).toBeGreaterThanOrEqual(r['2xx']);
    expect(served).toBeLessThanOrEqual(r['2xx'] + 8);
  });

  it('streamed completions: 4 connections, every stream whole and closed with [DONE]', async () => {
    const body = {
      model: 'austen',
      prompt: 'Emma Woodhouse, handsome, clever, and rich,',
      max_tokens: 12,
      temperature: 0,
    };
    const plain = await (
      await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    ).json();
    const want: string = plain.choices[0].text;
    expect(want).toHaveLength(12);
    const before = await requestsServed('/v1/completions');
    let checked = 0;
    let wrong = 0;
    const r = await autocannon({
      url: server.url,
      connections: 4,
      duration: SECONDS,
      requests: [
        {
          method: 'POST',
          path: '/v1/completions',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ ...body, stream: true }),
          onResponse: (status: number, text: string) => {
            checked++;
            if (status !== 200) return;
            const events = text
              .split('\n\n')
              .map((e) => e.trim())
              .filter(Boolean);
            const done = events.at(-1) === 'data: [DONE]';
            const got = events
              .slice(0, -1)
              .map((e) => JSON.parse(e.replace(/^data: /, '')).choices[0]?.text ?? '')
              .join('');
            if (!done || got !== want) wrong++;
          },
        },
      ],
    });
    console.log(summary('streamed completions', r));
    expect(r.errors).toBe(0);
    expect(r.timeouts).toBe(0);
    expect(r.non2xx).toBe(0);
    expect(r['2xx']).toBeGreaterThan(0);
    expect(r.requests.average).toBeGreaterThan(0);
    expect(checked).toBe(r['2xx']);
    expect(wrong).toBe(0);
    // the server counted what autocannon did, plus at most the requests still in flight when it stopped
    await new Promise((res) => setTimeout(res, 1000));
    const served = (await requestsServed('/v1/completions')) - before;
    expect(served).toBeGreaterThanOrEqual(r['2xx']);
    expect(served).toBeLessThanOrEqual(r['2xx'] + 4);
  });
});
