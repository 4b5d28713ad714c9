// DecodeScheduler against MambaLM.generate on the shipped Austen model (GPU device, lavapipe in CI):
// requests that arrive together (prefilled together), join a running batch, use different exit rules
// (separate groups), wait in the queue, or are aborted, each get the tokens and exit blocks that generate()
// gives them alone.
import { fileURLToPath } from 'node:url';
import { createDevice, type Device } from '@offramp/core';
import type { GenerateOptions, MambaLM } from '@offramp/mamba';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { type LoadedLm, loadLm } from './completions-model.js';
import type { DecodeRequest } from './completions-scheduler.js';

const MODEL_DIR = fileURLToPath(new URL('../../../checkpoints/austen-mamba', import.meta.url));

let device: Device;
let lm: LoadedLm;

beforeAll(async () => {
  device = await createDevice({ backend: 'gpu' }); // the WebGPU path (completions-ort.test.ts: the ORT one)
  lm = await loadLm(device, MODEL_DIR, { maxBatch: 3 });
});
afterAll(() => {
  lm?.model.dispose();
  device?.destroy();
});

const enc = (t: string) => Array.from(lm.tokenizer.encode(t));

interface Job {
  prompt: string;
  o: GenerateOptions;
  /** Submit after this many tokens of job 0 have been produced. */
  after?: number;
}

it('gives each request what generate() gives it alone, arriving together or joining later', async () => {
  const jobs: Job[] = [
    { prompt: 'It is a truth universally acknowledged', o: { maxNewTokens: 40 } },
    { prompt: 'Emma', o: { maxNewTokens: 12, sampling: { temperature: 0.8, topP: 0.9, seed: 5 } }, after: 3 },
    {
      prompt: 'Sir Walter Elliot, of Kellynch Hall',
      o: { maxNewTokens: 20, exit: { rule: { kind: 'maxProb', threshold: 0.5 }, skip: 'partial' } },
    },
    {
      prompt: 'The family of Dashwood',
      o: { maxNewTokens: 25, exit: { rule: { kind: 'maxProb', threshold: 0.5 }, skip: 'partial' } },
      after: 8,
    },
    { prompt: 'Mr. Knightley', o: { maxNewTokens: 9, exit: { rule: { kind: 'entropy', threshold: 1 } } }, after: 12 },
    // queued: maxBatch is 3, so this waits for a slot
    { prompt: 'Anne', o: { maxNewTokens: 15, exit: { rule: { kind: 'fixed', block: 4 } } } },
  ];
  const mamba = lm.model as MambaLM;
  const alone: Awaited<ReturnType<MambaLM['generate']>>[] = [];
  for (const j of jobs) alone.push(await mamba.generate([enc(j.prompt)], j.o));

  const got = jobs.map(() => ({ tokens: [] as number[], blocks: [] as number[] }));
  const submit = (k: number) => {
    const j = jobs[k];
    const req: DecodeRequest = {
      prompt: enc(j.prompt),
      maxTokens: j.o.maxNewTokens,
      sampling: j.o.sampling,
      exit: j.o.exit,
      onToken(t, b) {
        got[k].tokens.push(t);
        got[k].blocks.push(b);
        for (let m = 0; m < jobs.length; m++)
          if (jobs[m].after === got[0].tokens.length && k === 0) started.push(submit(m));
        return undefined;
      },
    };
    return lm.scheduler.submit(req);
  };
  const started = jobs.map((j, k) => (j.after === undefined ? submit(k) : null)).filter((p) => p !== null);
  // submissions made from onToken are appended to `started` while the first ones run
  for (let i = 0; i < started.length; i++) expect((await started[i]).finishReason).toBe('length');
  expect(started).toHaveLength(jobs.length);
  got.forEach((g, k) => {
    expect(g.tokens, `request ${k}`).toEqual(alone[k].tokens[0]);
    expect(g.blocks, `request ${k}`).toEqual(alone[k].exitBlocks[0]);
  });
  const s = lm.scheduler.stats();
  expect(s.maxStepRows).toBeGreaterThan(1);
  expect(s.maxStepRows).toBeLessThanOrEqual(3);
  expect(s.prefillRows).toBeGreaterThan(s.prefills); // the three requests submitted together were prefilled together
  expect(s.active).toBe(0);
  expect(s.queued).toBe(0);
});

it('ends a request whose onToken asks to stop, and drops aborted ones', async () => {
  const ac = new AbortController();
  const tokens: number[] = [];
  const a = lm.scheduler.submit({
    prompt: enc('Elizabeth'),
    maxTokens: 500,
    signal: ac.signal,
    onToken(t) {
      tokens.push(t);
      if (tokens.length === 4) ac.abort();
      return undefined;
    },
  });
  let n = 0;
  const b = lm.scheduler.submit({ prompt: enc('Jane'), maxTokens: 500, onToken: () => ++n === 6 });
  expect(await a).toEqual({ finishReason: 'aborted', tokens: 4 });
  expect(await b).toEqual({ finishReason: 'stop', tokens: 6 });
  // aborted before it had a slot
  const c = new AbortController();
  c.abort();
  expect(
    await lm.scheduler.submit({ prompt: enc('x'), maxTokens: 3, signal: c.signal, onToken: () => undefined }),
  ).toEqual({
    finishReason: 'aborted',
    tokens: 0,
  });
  expect(lm.scheduler.stats().active).toBe(0);
});

it('fails only the bad prompt of a batched prefill', async () => {
  const spy = vi.spyOn(lm.model as MambaLM, 'prefill');
  const good = lm.scheduler.submit({ prompt: enc('Harriet'), maxTokens: 3, onToken: () => undefined });
  const bad = lm.scheduler.submit({ prompt: [1, 999], maxTokens: 3, onToken: () => undefined }).catch((e) => e);
  expect(await good).toEqual({ finishReason: 'length', tokens: 3 });
  expect(String(await bad)).toMatch(/token id 999 is outside \[0, 82\)/);
  expect(spy.mock.calls.map((c) => c[0].length)).toEqual([2, 1, 1]); // together, then one by one
  spy.mockRestore();
  expect(lm.scheduler.stats().active).toBe(0);
});
