// On a device that carries the ONNX Runtime CPU path ('auto' on a software adapter), the completions routes
// run decoder and Mamba folders on OrtDecoderLM / OrtMambaLM: a real server answers /v1/completions (whole
// and streamed) and /v1/chat/completions with the tokens (greedy) and exit blocks of the same server on the
// WebGPU device, for a request alone, two requests prefilled together, and a request joining a running decode
// batch (rows merged and compacted by copying host-array state), with no exit policy and with the confidence,
// entropy and fixed policies; /v1/models says which path each LM runs on.
import { join } from 'node:path';
import { GpuDevice, isSoftwareAdapter } from '@offramp/core';
import { expect, test } from 'vitest';
import { createServer, type OfframpServer } from './index.js';

const ck = join(import.meta.dirname, '../../../checkpoints');

type Completion = {
  choices: { text?: string; message?: { content: string }; delta?: { content?: string }; finish_reason: string }[];
  offramp: { exit_blocks: number[] };
};

const post = (url: string, route: string, body: Record<string, unknown>) =>
  fetch(`${url}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'lm', temperature: 0, ...body }),
  });

const whole = async (url: string, body: Record<string, unknown>) => {
  const r = await post(url, '/v1/completions', body);
  const j = (await r.json()) as Completion;
  expect(r.status, JSON.stringify(j)).toBe(200);
  expect(typeof j.choices[0].text).toBe('string');
  return { text: j.choices[0].text as string, blocks: j.offramp.exit_blocks, finish: j.choices[0].finish_reason };
};

/** The text of a streamed completion, and once its first chunk has arrived, `onFirst` is called. */
const streamed = async (url: string, body: Record<string, unknown>, onFirst?: () => void) => {
  const r = await post(url, '/v1/completions', { ...body, stream: true });
  expect(r.status).toBe(200);
  const reader = r.body!.getReader();
  const dec = new TextDecoder();
  let raw = '';
  let first = true;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    raw += dec.decode(value, { stream: true });
    if (first && raw.includes('data: {')) {
      first = false;
      onFirst?.();
    }
  }
  return raw
    .split('\n')
    .filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]')
    .map((l) => (JSON.parse(l.slice(6)) as Completion).choices[0]?.text ?? '')
    .join('');
};

async function answers(dir: string, device: 'gpu' | 'auto', policy: string | undefined) {
  const srv: OfframpServer = await createServer({ models: { lm: dir }, device, maxBatch: 4 });
  try {
    const url = await srv.listen(0);
    const list = (await (await fetch(`${url}/v1/models`)).json()) as {
      data: { id: string; execution_path: string }[];
    };
    const path = list.data.find((d) => d.id === 'lm')!.execution_path;
    const lm = srv.context.lms.get('lm')!;
    expect(lm.backend.path).toBe(path);
    const ext = policy ? { offramp: { policy } } : {};
    const prompts = ['It is a truth universally', 'Anne Elliot', 'The Musgroves were'];
    const alone = await whole(url, { prompt: prompts[0], max_tokens: 16, ...ext });
    const together = await Promise.all(prompts.slice(1).map((p) => whole(url, { prompt: p, max_tokens: 16, ...ext })));
    // a second request sent once the first has streamed its first token joins the running decode batch
    let joined!: Promise<Awaited<ReturnType<typeof whole>>>;
    const before = lm.scheduler.stats();
    const stream = await streamed(url, { prompt: prompts[1], max_tokens: 24, ...ext }, () => {
      joined = whole(url, { prompt: prompts[2], max_tokens: 12, ...ext });
    });
    const join = await joined;
    const after = lm.scheduler.stats();
    // the joiner was prefilled on its own and then stepped together with the stream
    expect(after.prefills - before.prefills).toBe(2);
    expect(after.maxStepRows).toBeGreaterThanOrEqual(2);
    const chat = await post(url, '/v1/chat/completions', {
      messages: [{ role: 'user', content: 'Emma' }],
      max_tokens: 10,
      ...ext,
    });
    const chatJson = (await chat.json()) as Completion;
    expect(chat.status, JSON.stringify(chatJson)).toBe(200);
    return {
      path,
      device: srv.context.device,
      L: lm.backend.L,
      alone,
      together,
      stream,
      join,
      chat: chatJson.choices[0].message!.content,
      chatBlocks: chatJson.offramp.exit_blocks,
    };
  } finally {
    await srv.close();
  }
}

for (const name of ['austen-decoder', 'austen-mamba'])
  test(`${name}: 'auto' on a software adapter serves completions on ONNX Runtime with the WebGPU path's tokens`, async () => {
    const dir = join(ck, name);
    for (const policy of [undefined, 'confidence:threshold=0.5', 'entropy:threshold=1.5', 'fixed:block=3']) {
      const gpu = await answers(dir, 'gpu', policy);
      const auto = await answers(dir, 'auto', policy);
      expect(gpu.path).toBe('webgpu');
      // this machine's only adapter is lavapipe: 'auto' must have picked the ORT path
      if (gpu.device instanceof GpuDevice && isSoftwareAdapter(gpu.device.adapter)) expect(auto.path).toBe('ort-cpu');
      const { device: _g, path: _gp, ...g } = gpu;
      const { device: _a, path: _ap, ...a } = auto;
      expect(a).toEqual(g);
      // the streamed request equals the same request whole (its first 16 tokens: the alone answers' length)
      expect(g.stream.length).toBeGreaterThan(0);
      expect(g.together[0].text).toBe(g.stream.slice(0, g.together[0].text.length));
      // the first token comes from the full-depth prefill, the others from block 3
      if (policy?.startsWith('fixed')) expect(new Set(g.alone.blocks.slice(1))).toEqual(new Set([3]));
      else if (policy)
        expect([...g.alone.blocks, ...g.together.flatMap((t) => t.blocks)].some((b) => b < g.L - 1)).toBe(true);
    }
  }, 180_000);
