// `offramp serve` as a real process: it loads shipped models by name, answers classify requests over HTTP,
// and on SIGTERM answers the requests in flight before exiting 0.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { BIN, CLI_DIR, ensureBuilt, ROOT } from './helpers.js';

/** The address `offramp serve` prints once it listens (rejects with its output if it exits first). */
function serverUrl(child: ChildProcess, out: () => string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const t = setInterval(() => {
      const m = /offramp server on (http:\/\/[\d.]+:\d+)/.exec(out());
      if (m) {
        clearInterval(t);
        resolve(m[1]);
      }
      if (child.exitCode !== null) {
        clearInterval(t);
        reject(new Error(`serve exited early:\n${out()}`));
      }
    }, 50);
  });
}

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
  const url = await serverUrl(child, () => out);
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

test('serve: the shipped embedder answers /v1/embeddings and the shipped enhancer /v1/enhance over HTTP', async () => {
  ensureBuilt();
  const child = spawn(process.execPath, [BIN, 'serve', '--model', 'code-search', '--model', 'rbqe', '--port', '0'], {
    cwd: CLI_DIR,
    env: { ...process.env, NO_COLOR: '1', LOG_LEVEL: 'warn' },
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    const url = await serverUrl(child, () => out);
    const post = (route: string, body: unknown) =>
      fetch(`${url}${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const models = (await (await fetch(`${url}/v1/models`)).json()) as any;
    expect(models.data.map((m: any) => [m.id, m.kind])).toEqual([
      ['code-search', 'embedder'],
      ['rbqe', 'enhancer'],
    ]);
    // embeddings at the first and the last exit: unit length, the model's width
    const width = JSON.parse(
      readFileSync(join(ROOT, 'checkpoints', 'code-search', 'config.json'), 'utf8'),
    ).embedding_dim;
    expect(width).toBeGreaterThan(0);
    for (const exit of [0, 2]) {
      const r = await post('/v1/embeddings', { model: 'code-search', input: ['Return the size of a file.'], exit });
      const b = (await r.json()) as any;
      expect(r.status, JSON.stringify(b)).toBe(200);
      const v: number[] = b.data[0].embedding;
      expect(v).toHaveLength(width);
      expect(Math.abs(Math.hypot(...v) - 1)).toBeLessThan(1e-5);
      expect(b.offramp.exit).toBe(exit);
    }
    // a 48 × 40 grey PNG in, a PNG of the same size out, with the exit and its quality scores
    const { PNG } = await import('pngjs');
    const png = new PNG({ width: 48, height: 40 });
    for (let i = 0; i < 48 * 40; i++)
      png.data.fill(((i * 37) % 251) & 0xff, 4 * i, 4 * i + 3).fill(255, 4 * i + 3, 4 * i + 4);
    const r = await post('/v1/enhance', { model: 'rbqe', image: PNG.sync.write(png).toString('base64') });
    const b = (await r.json()) as any;
    expect(r.status, JSON.stringify(b)).toBe(200);
    const back = PNG.sync.read(Buffer.from(b.image, 'base64'));
    expect([back.width, back.height, b.num_exits]).toEqual([48, 40, 3]);
    expect(b.quality_scores).toHaveLength(b.exit_index + 1);
    const bad = await post('/v1/enhance', { model: 'rbqe', image: Buffer.from('not an image').toString('base64') });
    expect(bad.status).toBe(400);
  } finally {
    child.kill('SIGTERM');
  }
  expect(await exited, out).toBe(0);
}, 300_000);
