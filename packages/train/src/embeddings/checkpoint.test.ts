// The shipped code-search checkpoint run by the inference engine (loadEmbedder: the tokenizer with the folder's
// text form, @offramp/core's EncoderEmbedder and embed() on the WebGPU device) gives the same unit-length
// embeddings at every exit as the training graph (TfEmbedder on TensorFlow.js's CPU backend) from the same
// weights: the exported weights mean in the engine what they meant in training.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDevice, parseEmbedderConfig, parseSafetensors } from '@offramp/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEmbedder } from './load.js';
import { padBatch, TfEmbedder } from './model.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const dir = path.join(root, 'checkpoints', 'code-search');
const device = await createDevice({ backend: 'gpu' });
afterAll(() => device.destroy());

const texts = [
  'Return the number of bytes in the file.',
  'def read_file(path, encoding="utf-8"):\n    with open(path, encoding=encoding) as f:\n        return f.read()',
  'class HTTPServer: parseHeaders(self, rawBytes)',
  `def long(x):\n${'    x = x + 1\n'.repeat(120)}    return x`, // longer than the context: cut
];

describe('the engine on the shipped code-search checkpoint', () => {
  it('every exit equals the training graph, and the words text form is in use', async () => {
    await tf.setBackend('cpu');
    const config = parseEmbedderConfig(JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')));
    const { tensors } = parseSafetensors(new Uint8Array(readFileSync(path.join(dir, 'model.safetensors'))));
    const weights = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [n, t] of tensors) weights.set(n, { shape: t.shape, data: Float32Array.from(t.data) });
    const m = await loadEmbedder(dir, device);
    const ref = new TfEmbedder(config, { weights });
    try {
      expect(m.textForm).toBe('words');
      const ids = m.tokenize(texts);
      expect(ids[3].length).toBe(config.max_position);
      const got = await m.embedTexts(texts, { exit: 'all' });
      expect(got.exits.length).toBe(config.exit_blocks.length);
      const pb = padBatch(ids, config.pad_token_id ?? 0);
      const want = ref.embed(pb.ids, pb.lengths);
      const p = config.embedding_dim;
      for (let j = 0; j < want.length; j++) {
        const w = await want[j].data();
        const g = got.vectors[j];
        expect(g.length).toBe(texts.length * p);
        let worst = 0;
        for (let k = 0; k < g.length; k++) worst = Math.max(worst, Math.abs(g[k] - w[k]));
        expect(worst).toBeLessThan(1e-4);
        for (let i = 0; i < texts.length; i++) {
          let n = 0;
          for (let k = 0; k < p; k++) n += g[i * p + k] ** 2;
          expect(Math.abs(Math.sqrt(n) - 1)).toBeLessThan(1e-5);
        }
      }
      tf.dispose([...want, pb.ids, pb.lengths]);
    } finally {
      ref.dispose();
      m.dispose();
    }
  }, 120_000);
});
