// The official `openai` client against `offramp serve` as a real process (the built CLI, the shipped
// austen-mamba checkpoint and fashion-cnn beside it): completions and chat, whole and streamed. The reference
// is the same model loaded in this test process and run with MambaLM.generate (greedy), no HTTP involved.
import { join } from 'node:path';
import { createDevice, type Device } from '@offramp/core';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadedLm, loadLm } from '../src/completions-model.js';
import { CHECKPOINTS, freePort, type Replica, startServe, warmUp } from './helpers.js';

const MODEL = 'austen';
const PROMPT = 'It is a truth universally acknowledged, that a single man';
type Offramp = { offramp: { exit_blocks: number[]; depth_fraction: number } };

let server: Replica;
let client: OpenAI;
let device: Device;
let lm: LoadedLm;

/** Greedy continuation of `prompt` by MambaLM.generate in this process: the text and the exit blocks. */
async function reference(prompt: string, maxNewTokens: number) {
  const r = await lm.model.generate([Array.from(lm.tokenizer.encode(prompt))], { maxNewTokens });
  return { text: lm.tokenizer.decode(r.tokens[0]), blocks: r.exitBlocks[0] };
}

beforeAll(async () => {
  const port = await freePort();
  [server, device] = await Promise.all([
    startServe(
      [
        '--model',
        `${MODEL}=${join(CHECKPOINTS, 'austen-mamba')}`,
        '--model',
        `fashion=${join(CHECKPOINTS, 'fashion-cnn')}`,
      ],
      port,
    ),
    createDevice(),
  ]);
  lm = await loadLm(device, join(CHECKPOINTS, 'austen-mamba'));
  // pipelines compiled before the checks (slow once on a machine with a cold shader cache)
  await warmUp(server.url, '/v1/completions', { model: MODEL, prompt: PROMPT, max_tokens: 2, temperature: 0 });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
}, 600_000);

afterAll(async () => {
  // SIGTERM to the CLI process only, as a container runtime sends it: a graceful stop, exit code 0
  server?.child.kill('SIGTERM');
  expect(await server?.exited).toBe(0);
  lm?.model.dispose();
  device?.destroy();
});

describe('the openai client against offramp serve (a separate process)', () => {
  it('completes a prompt, whole and streamed, with the tokens MambaLM.generate gives', async () => {
    const ref = await reference(PROMPT, 24);
    const whole = (await client.completions.create({
      model: MODEL,
      prompt: PROMPT,
      max_tokens: 24,
      temperature: 0,
    })) as OpenAI.Completions.Completion & Offramp;
    expect(whole.object).toBe('text_completion');
    expect(whole.model).toBe(MODEL);
    expect(whole.choices[0].text).toBe(ref.text);
    expect(whole.choices[0].finish_reason).toBe('length');
    expect(whole.usage?.completion_tokens).toBe(24);
    expect(whole.offramp.exit_blocks).toEqual(ref.blocks);

    const stream = await client.completions.create({
      model: MODEL,
      prompt: PROMPT,
      max_tokens: 24,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let chunks = 0;
    let usage: OpenAI.Completions.CompletionUsage | undefined;
    const blocks: number[] = [];
    for await (const c of stream as AsyncIterable<OpenAI.Completions.Completion & Offramp>) {
      chunks++;
      text += c.choices[0]?.text ?? '';
      blocks.push(...(c.offramp?.exit_blocks ?? []));
      usage = c.usage ?? usage;
    }
    expect(text).toBe(ref.text);
    expect(chunks).toBeGreaterThan(20); // token by token, not one chunk at the end
    expect(blocks).toEqual(ref.blocks);
    expect(usage).toEqual(whole.usage);
  });

  it('answers chat completions, whole and streamed, with the rendered prompt continued greedily', async () => {
    const messages = [
      { role: 'system' as const, content: 'A conversation at Longbourn.' },
      { role: 'user' as const, content: 'What do you think of Mr. Darcy?' },
    ];
    const ref = await reference(
      'A conversation at Longbourn.\n\nUser: What do you think of Mr. Darcy?\nAssistant: ',
      20,
    );
    const whole = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 20, temperature: 0 });
    expect(whole.object).toBe('chat.completion');
    expect(whole.choices[0].message.role).toBe('assistant');
    expect(whole.choices[0].message.content).toBe(ref.text);

    const stream = await client.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 20,
      temperature: 0,
      stream: true,
    });
    let text = '';
    let finish: string | null = null;
    for await (const c of stream) {
      expect(c.object).toBe('chat.completion.chunk');
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(ref.text);
    expect(finish).toBe('length');
  });

  it('lists the served models, and raises the client errors for a bad request and an unknown model', async () => {
    await expect(
      client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 4, n: 2 }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(client.completions.create({ model: 'gpt-4', prompt: PROMPT, max_tokens: 4 })).rejects.toBeInstanceOf(
      OpenAI.NotFoundError,
    );
    const models = await client.models.list();
    expect(models.data.map((m) => m.id).sort()).toEqual(['austen', 'fashion']);
  });
});
