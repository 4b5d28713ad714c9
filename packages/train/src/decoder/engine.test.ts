// The shipped decoder checkpoints run by the inference engine (@offramp/core's DecoderLM on the WebGPU device,
// loaded from the Llama folder) give the same held-out loss at every exit as this package's float64 forward,
// an implementation written apart from the engine's kernels and its own reference.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDevice } from '@offramp/core';
import { loadDecoderLM } from '@offramp/core/node';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAusten } from '../data/austen.js';
import { CharTokenizer } from '../tokenizers/char.js';
import { dimsFromLlamaConfig, readDecoderSafetensors } from './export.js';
import { referenceLoss } from './reference.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const device = await createDevice({ backend: 'gpu' });
afterAll(() => device.destroy());

describe('the engine on the shipped decoder checkpoints', () => {
  for (const name of ['austen-decoder', 'austen-decoder-selfdistill']) {
    it(`${name}: per-exit held-out loss equals the float64 forward's`, async () => {
      const dir = path.join(root, 'checkpoints', name);
      const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
      const dims = dimsFromLlamaConfig(config);
      const tensors = readDecoderSafetensors(new Uint8Array(readFileSync(path.join(dir, 'model.safetensors'))));
      const exits: number[] = config.offramp.exits;
      const tok = CharTokenizer.load(path.join(dir, config.offramp.tokenizer));
      const held = tok.encode(loadAusten().heldOut.text);
      const W = 96;
      const { model, loaded } = await loadDecoderLM(dir, device);
      try {
        expect(model.exits).toEqual(exits);
        expect(loaded.tokenizer?.encode('Anne Elliot')).toEqual(Array.from(tok.encode('Anne Elliot')));
        // three windows from different places of Persuasion, scored in one batch
        const starts = [0, 50_000, 300_000];
        const seqs = starts.map((s) => Array.from(held.subarray(s, s + W + 1)));
        const s = await model.score(seqs);
        expect(s.count).toBe(starts.length * W);
        const ref = exits.map(() => 0);
        for (const st of starts) {
          const l = referenceLoss(tensors, dims, held.subarray(st, st + W), held.subarray(st + 1, st + W + 1), exits);
          l.forEach((x, j) => {
            ref[j] += x / starts.length;
          });
        }
        for (const [j, r] of ref.entries()) {
          const engine = s.nll[j] / s.count;
          expect(Math.abs(engine - r) / r, `exit after block ${exits[j]}`).toBeLessThan(1e-4);
        }
      } finally {
        model.dispose();
      }
    });
  }
});
