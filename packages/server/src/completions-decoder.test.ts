// The completions routes serve a Llama-style decoder folder (checkpoints/austen-decoder) as they serve the
// Mamba LM: each request's tokens and exit blocks equal DecoderLM.generate run alone (greedy, with and
// without a token-exit policy), whether the requests arrive alone, together or join a running batch (rows
// merged and compacted by copying their keys, values and lengths); streaming gives the same; the context
// limit of the decoder's cache is enforced with a message.
import { join } from 'node:path';
import type { DecoderLM } from '@offramp/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type OfframpServer } from './index.js';

const dir = join(import.meta.dirname, '../../../checkpoints/austen-decoder');
let srv: OfframpServer;
let url: string;

beforeAll(async () => {
  srv = await createServer({ models: { austen: dir }, device: 'gpu', maxBatch: 4 });
  url = await srv.listen(0);
});
afterAll(async () => {
  await srv?.close();
});

type Completion = { choices: { text: string; finish_reason: string }[]; offramp: { exit_blocks: number[] } };
const complete = async (body: Record<string, unknown>) => {
  const r = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'austen', temperature: 0, ...body }),
  });
  return { status: r.status, json: (await r.json()) as Completion & { error?: { message: string; code: string } } };
};

describe('a decoder folder behind /v1/completions', () => {
  const prompts = ['It is a truth universally', 'Anne Elliot', 'The Musgroves were', 'Captain Wentworth had'];

  it('is listed with its blocks and exits', async () => {
    const list = (await (await fetch(`${url}/v1/models`)).json()) as {
      data: { id: string; num_blocks: number; exit_blocks: number[]; vocab_size: number }[];
    };
    const m = list.data.find((d) => d.id === 'austen')!;
    expect([m.num_blocks, m.exit_blocks, m.vocab_size]).toEqual([6, [1, 2, 3, 4, 5], 82]);
  });

  it('answers alone and together with the tokens and exit blocks of DecoderLM.generate', async () => {
    const lm = srv.context.lms.get('austen')!;
    const model = lm.model as DecoderLM;
    expect(lm.backend.kind).toBe('decoder');
    const enc = (t: string) => Array.from(lm.tokenizer.encode(t));
    for (const policy of [undefined, 'confidence:threshold=0.5']) {
      const rule = policy ? { kind: 'maxProb' as const, threshold: 0.5 } : { kind: 'never' as const };
      const expected: { text: string; blocks: number[] }[] = [];
      for (const p of prompts) {
        const g = await model.generate([enc(p)], { maxNewTokens: 16, exit: { rule } });
        expected.push({ text: lm.tokenizer.decode(g.tokens[0]), blocks: g.exitBlocks[0] });
      }
      const body = (p: string) => ({ prompt: p, max_tokens: 16, ...(policy ? { offramp: { policy } } : {}) });
      // together (one prefill, one decode batch), then staggered (later requests join a running batch)
      const together = await Promise.all(prompts.map((p) => complete(body(p))));
      const staggered = await Promise.all(
        prompts.map((p, i) => new Promise((r) => setTimeout(r, i * 40)).then(() => complete(body(p)))),
      );
      for (const got of [together, staggered])
        got.forEach((r, i) => {
          expect(r.status).toBe(200);
          expect({ text: r.json.choices[0].text, blocks: r.json.offramp.exit_blocks }).toEqual(expected[i]);
        });
      if (policy) expect(expected.flatMap((e) => e.blocks).some((b) => b < 5)).toBe(true);
    }
  });

  it('streams the same text', async () => {
    const whole = await complete({ prompt: prompts[0], max_tokens: 12 });
    const r = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'austen', temperature: 0, prompt: prompts[0], max_tokens: 12, stream: true }),
    });
    const text = (await r.text())
      .split('\n')
      .filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]')
      .map((l) => JSON.parse(l.slice(6)) as Completion)
      .map((c) => c.choices[0]?.text ?? '')
      .join('');
    expect(text).toBe(whole.json.choices[0].text);
  });

  it('refuses a request longer than the context of the decoder', async () => {
    const r = await complete({ prompt: 'Emma', max_tokens: 200 });
    expect(r.status).toBe(400);
    expect(r.json.error?.code).toBe('context_length_exceeded');
    expect(r.json.error?.message).toMatch(/context is 128 tokens/);
  });
});
