// `offramp serve` as a real process: it loads shipped models by name, answers classify requests over HTTP,
// and on SIGTERM answers the requests in flight before exiting 0.
import { spawn } from 'node:child_process';
import { expect, test } from 'vitest';
import { BIN, CLI_DIR, ensureBuilt } from './helpers.js';

test('serve: classify over HTTP, then SIGTERM drains and exits 0', async () => {
  ensureBuilt();
  const child = spawn(
    process.execPath,
    [BIN, 'serve', '--model', 'fashion-cnn', '--model', 'imdb=imdb-encoder', '--port', '0', '--max-wait-ms', '400'],
    { cwd: CLI_DIR, env: { ...process.env, NO_COLOR: '1', LOG_LEVEL: 'warn' } },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const t = setInterval(() => {
      const m = /offramp server on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) {
        clearInterval(t);
        resolve(m[1]);
      }
      if (child.exitCode !== null) {
        clearInterval(t);
        reject(new Error(`serve exited early:\n${out}`));
      }
    }, 50);
  });
  const post = (body: unknown) =>
    fetch(`${url}/v1/classify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const text = await post({ model: 'imdb', input: { text: 'An excellent film, I loved it.' } });
  expect(text.status).toBe(200);
  expect(['negative', 'positive']).toContain(((await text.json()) as any).label);
  const models = (await (await fetch(`${url}/v1/models`)).json()) as any;
  expect(models.data.map((m: any) => m.id)).toEqual(['fashion-cnn', 'imdb']);
  // requests still waiting for their batch (max wait 400 ms) when SIGTERM arrives are answered
  const inFlight = Array.from({ length: 4 }, (_, i) =>
    post({ model: 'fashion-cnn', input: { image: new Array(784).fill(i / 4) } }),
  );
  await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGTERM');
  const answered = await Promise.all(inFlight);
  expect(answered.map((r) => r.status)).toEqual([200, 200, 200, 200]);
  expect(await exited, out).toBe(0);
  expect(out).toMatch(/SIGTERM: finishing the requests in flight/);
}, 300_000);
