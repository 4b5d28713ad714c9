// The refill scheduler (scheduler: 'refill') in a real listening server on the ONNX Runtime CPU path: concurrent
// HTTP requests with mixed policies on fashion-cnn and imdb-encoder get the answers the window scheduler gives
// (same exits and predictions, probabilities within 1e-4), rows of different depths share steps (the refill
// happened), the metrics count every request; close() drains what is in flight; failAll (a device loss) fails
// the requests in flight with 503 and the server answers afterwards; a failing step fails the rows in flight
// and the scheduler runs on; a GPU-path model or an unknown scheduler is refused at start-up with a message.
import { join } from 'node:path';
import { type ExitPolicy, executionPath } from '@offramp/core';
import { describe, expect, test } from 'vitest';
import { type BatchInfo, createServer, DeviceLostError, type OfframpServer } from './index.js';
import { encodeInput } from './models.js';
import { RefillScheduler } from './refill-scheduler.js';
import { testImages } from './testing-internal/images.js';

const ck = join(import.meta.dirname, '../../../checkpoints');
const models = { fashion: join(ck, 'fashion-cnn'), imdb: join(ck, 'imdb-encoder') };

const images = testImages(40);
const texts = [
  'A wonderful, moving film.',
  'Dull and far too long; I left early.',
  'It was fine.',
  'The acting was superb but the plot made no sense at all, and the ending dragged on forever.',
  'I loved it.',
  'Worst movie of the year.',
  'Not bad, not great, somewhere in between with a few good scenes.',
  'An absolute masterpiece of modern cinema, beautifully shot.',
];
const fashionPolicies = ['confidence:threshold=0.9', 'patience:patience=1', 'static:exit=2'];
const imdbPolicies = ['confidence:threshold=0.6', 'patience:patience=1', 'static:exit=2'];
const bodies = [
  ...images.map((image, i) => ({ model: 'fashion', input: { image }, policy: fashionPolicies[i % 3], trace: true })),
  ...texts.map((text, i) => ({ model: 'imdb', input: { text }, policy: imdbPolicies[i % 3], trace: true })),
  // a multi-input request
  { model: 'imdb', inputs: texts.slice(0, 3).map((text) => ({ text })), policy: 'confidence:threshold=0.6' },
];

async function post(url: string, body: unknown) {
  const r = await fetch(`${url}/v1/classify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as any };
}

/** Polls until the scheduler holds at least `n` requests; throws after 20 s. */
async function untilDepth(srv: OfframpServer, n: number): Promise<number> {
  const deadline = Date.now() + 20_000;
  while (srv.context.scheduler.depth < n) {
    if (Date.now() > deadline) throw new Error(`the scheduler never held ${n} requests at once`);
    await new Promise((r) => setTimeout(r, 1));
  }
  return srv.context.scheduler.depth;
}

async function serve(scheduler: 'window' | 'refill', batches: BatchInfo[]): Promise<OfframpServer> {
  return createServer({
    models,
    device: 'auto',
    scheduler,
    maxBatch: 8,
    maxWaitMs: 2,
    logger: false,
    onBatch: (b) => batches.push(b),
  });
}

/** The answers' exit, prediction, probabilities (one entry per input). */
function flat(j: any): { exit: number; prediction: number; p: number[]; trace?: any }[] {
  return (j.results ?? [j]).map((r: any) => ({
    exit: r.exit_index,
    prediction: r.prediction,
    p: r.probabilities,
    trace: r.trace,
  }));
}

describe('scheduler refill', () => {
  test('concurrent requests get the window scheduler’s answers, rows of several depths share steps', async () => {
    const answers: Record<string, ReturnType<typeof flat>[]> = {};
    const seen: Record<string, BatchInfo[]> = {};
    for (const kind of ['window', 'refill'] as const) {
      const batches: BatchInfo[] = [];
      const srv = await serve(kind, batches);
      try {
        expect(executionPath(srv.context.device)).toBe('ort-cpu');
        const url = await srv.listen(0);
        // two waves, the second sent while the first is in flight
        const first = bodies.slice(0, 30).map((b) => post(url, b));
        await new Promise((r) => setTimeout(r, 5));
        const second = bodies.slice(30).map((b) => post(url, b));
        const out = await Promise.all([...first, ...second]);
        for (const r of out) expect(r.status, JSON.stringify(r.json)).toBe(200);
        answers[kind] = out.map((r) => flat(r.json));
        seen[kind] = batches;
        // metrics: every answered row is in the exit histogram, live rows per block were observed
        const text = await (await fetch(`${url}/metrics`)).text();
        const count = (model: string) =>
          [...text.matchAll(new RegExp(`^offramp_exit_block_count\\{model="${model}",[^}]*\\} (\\S+)`, 'gm'))].reduce(
            (a, m) => a + Number(m[1]),
            0,
          );
        expect(count('fashion')).toBe(images.length);
        expect(count('imdb')).toBe(texts.length + 3);
        expect(text).toMatch(/^offramp_block_live_rows_count\{model="fashion",block="2"\} [1-9]/m);
        expect(text).toMatch(/^offramp_queue_wait_seconds_count\{model="fashion"\} 40$/m);
      } finally {
        await srv.close();
      }
    }
    expect(answers.refill.length).toBe(answers.window.length);
    answers.refill.forEach((rows, i) => {
      rows.forEach((r, k) => {
        const w = answers.window[i][k];
        expect([i, k, r.exit, r.prediction]).toEqual([i, k, w.exit, w.prediction]);
        r.p.forEach((x, c) => {
          expect(Math.abs(x - w.p[c])).toBeLessThan(1e-4);
        });
        if (w.trace) expect(r.trace.argmax).toEqual(w.trace.argmax);
      });
    });
    // the refill really mixed depths: some step ran new rows at block 0 and older rows at the last block
    const mixed = seen.refill.filter((b) => b.rowsPerBlock[0] > 0 && b.rowsPerBlock[b.rowsPerBlock.length - 1] > 0);
    expect(mixed.length).toBeGreaterThan(0);
    expect(seen.refill.every((b) => b.mode === 'host')).toBe(true);
    expect(seen.refill.every((b) => b.rowsPerBlock.every((n) => n <= 8))).toBe(true);
  });

  test('close() drains the rows in flight; failAll fails them with 503 and the server answers afterwards', async () => {
    // drain
    let srv = await serve('refill', []);
    let url = await srv.listen(0);
    // requests that have not reached the scheduler when close() starts may be refused (503, or the
    // connection closed); every one the scheduler holds is answered
    const many = [...bodies, ...bodies, ...bodies];
    const pending = many.map((b) =>
      post(url, b).catch((e: Error) => ({ status: 0, json: { error: { message: e.message } } })),
    );
    const held = await untilDepth(srv, 5);
    await srv.close();
    expect(srv.context.scheduler.depth).toBe(0);
    const drained = await Promise.all(pending);
    for (const r of drained) expect([0, 200, 503]).toContain(r.status);
    expect(drained.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(held);

    // failAll, as a device loss calls it
    srv = await serve('refill', []);
    try {
      url = await srv.listen(0);
      const sent = [...bodies, ...bodies, ...bodies].filter((b) => !('inputs' in b));
      const inflight = sent.map((b) => post(url, b));
      await untilDepth(srv, 10);
      const failed = srv.context.scheduler.failAll(new DeviceLostError('forced in a test', 1));
      expect(failed).toBeGreaterThan(0);
      expect(srv.context.scheduler.depth).toBe(0);
      const out = await Promise.all(inflight);
      const lost = out.filter((r) => r.status === 503);
      expect(lost.length).toBe(failed);
      for (const r of lost) expect(r.json.error.message).toMatch(/forced in a test/);
      expect(out.filter((r) => r.status === 200).length).toBe(sent.length - failed);
      // afterwards: answered, and as before
      const again = await post(url, bodies[0]);
      expect(again.status).toBe(200);
      const before = out[0].status === 200 ? out[0] : await post(url, bodies[0]);
      expect(flat(again.json)[0].exit).toBe(flat(before.json)[0].exit);
      expect(srv.context.scheduler.depth).toBe(0);
    } finally {
      await srv.close();
    }
  });

  test('a step that fails answers every row in flight with its error; the scheduler runs on afterwards', async () => {
    const srv = await serve('refill', []);
    try {
      const m = srv.context.models.get('fashion')!;
      const good = srv.context.policy('static:exit=2');
      const boom: ExitPolicy<unknown> = {
        name: 'boom',
        init: () => ({}),
        decide(ctx, signals) {
          if (ctx.exitIndex === 1) throw new Error('boom at exit 1');
          return new Uint8Array(signals.count);
        },
      };
      const scheduler = new RefillScheduler({ maxWaitMs: 2, maxQueue: 64 });
      const job = (i: number, bad: boolean) => ({
        model: m,
        policySpec: bad ? 'boom' : good.spec,
        policy: bad ? boom : good.policy,
        row: encodeInput(m, { image: images[i] }, false),
        trace: false,
      });
      // the failing row reaches exit 1 at the second step, with the others in flight beside it
      const out = await Promise.allSettled(
        [job(0, false), job(1, true), job(2, false)].map((j) => scheduler.submit(j)),
      );
      expect(out.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected']);
      for (const o of out) expect(String((o as PromiseRejectedResult).reason)).toMatch(/boom at exit 1/);
      expect(scheduler.depth).toBe(0);
      const after = await scheduler.submit(job(3, false));
      expect(after.sample.exitIndex).toBe(2);
      expect(after.mode).toBe('host');
      await scheduler.drain();
    } finally {
      await srv.close();
    }
  });

  test('refused where it cannot run, with a message', async () => {
    await expect(createServer({ models, device: 'gpu', scheduler: 'refill', logger: false })).rejects.toThrow(
      /scheduler 'refill' needs the ONNX Runtime CPU path .*model 'fashion' runs on webgpu: use scheduler 'window'/,
    );
    await expect(createServer({ models, scheduler: 'fifo' as any, logger: false })).rejects.toThrow(
      /scheduler must be 'window' or 'refill', got 'fifo'/,
    );
  });
});
