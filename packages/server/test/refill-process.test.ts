// `offramp serve --scheduler refill` as a real process (the built CLI): it says which scheduler it runs,
// answers concurrent classify requests with mixed policies exactly as an in-process server with the window
// scheduler does, and stops on SIGTERM with exit 0; an unknown scheduler is a usage error (exit 2).
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { createServer } from '../src/index.js';
import { testImages } from '../src/testing-internal/images.js';
import { CHECKPOINTS, CLI_BIN, ensureCliBuilt, freePort, type Replica, spawnGroup, startServe } from './helpers.js';

let server: Replica | undefined;
afterAll(() => server?.kill());

test('offramp serve --scheduler refill answers as the window scheduler does', async () => {
  server = await startServe(
    ['--model', `fashion=${join(CHECKPOINTS, 'fashion-cnn')}`, '--scheduler', 'refill', '--max-batch', '8'],
    await freePort(),
  );
  expect(server.output()).toMatch(/classify scheduler: refill/);
  const policies = ['confidence:threshold=0.9', 'patience:patience=1', 'static:exit=2'];
  const bodies = testImages(18).map((image, i) => ({ model: 'fashion', input: { image }, policy: policies[i % 3] }));
  const url = server.url;
  const got = await Promise.all(
    bodies.map(async (b) => {
      const r = await fetch(`${url}/v1/classify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(b),
      });
      expect(r.status).toBe(200);
      return (await r.json()) as { exit_index: number; prediction: number; probabilities: number[] };
    }),
  );
  const window = await createServer({
    models: { fashion: join(CHECKPOINTS, 'fashion-cnn') },
    maxBatch: 8,
    logger: false,
  });
  try {
    for (const [i, b] of bodies.entries()) {
      const want = (await window.app.inject({ method: 'POST', url: '/v1/classify', payload: b })).json();
      expect([i, got[i].exit_index, got[i].prediction]).toEqual([i, want.exit_index, want.prediction]);
      got[i].probabilities.forEach((p, c) => {
        expect(Math.abs(p - want.probabilities[c])).toBeLessThan(1e-4);
      });
    }
  } finally {
    await window.close();
  }
  expect(new Set(got.map((g) => g.exit_index)).size).toBeGreaterThan(1);
  server.kill('SIGTERM');
  expect(await server.exited).toBe(0);
});

test('an unknown --scheduler is a usage error naming the choices', async () => {
  ensureCliBuilt();
  const p = spawnGroup(process.execPath, [CLI_BIN, 'serve', '--model', 'fashion-cnn', '--scheduler', 'fifo']);
  expect(await p.exited).toBe(2);
  expect(p.output()).toMatch(/--scheduler.*'fifo'.*(window|refill)/s);
});
