import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadAusten } from '../data/austen.js';
import { CharTokenizer } from '../tokenizers/char.js';
import { dimsFromLlamaConfig, hfShapes, readDecoderSafetensors } from './export.js';
import { referenceLoss } from './reference.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

describe('the shipped checkpoints/austen-decoder folders', () => {
  for (const name of ['austen-decoder', 'austen-decoder-selfdistill']) {
    it(`${name}: config, tensors and tokenizer agree, and the float64 forward reproduces the logged loss`, () => {
      const dir = path.join(root, 'checkpoints', name);
      const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
      const log = JSON.parse(readFileSync(path.join(dir, 'train-log.json'), 'utf8'));
      expect(config.architectures).toEqual(['LlamaForCausalLM']);
      expect(config.tie_word_embeddings).toBe(true);
      const dims = dimsFromLlamaConfig(config);
      const tensors = readDecoderSafetensors(new Uint8Array(readFileSync(path.join(dir, 'model.safetensors'))));
      const shapes = hfShapes(dims);
      expect(new Set(tensors.keys())).toEqual(new Set(shapes.keys()));
      for (const [n, t] of tensors) {
        expect(t.shape).toEqual(shapes.get(n));
        expect(t.dtype).toBe(config.torch_dtype === 'float16' ? 'F16' : 'F32');
      }
      const tok = CharTokenizer.load(path.join(dir, config.offramp.tokenizer));
      expect(tok.vocabSize).toBe(dims.vocab);
      const exits: number[] = config.offramp.exits;
      expect(exits[exits.length - 1]).toBe(dims.layers - 1);
      // first held-out window, computed again from the committed file
      const held = tok.encode(loadAusten().heldOut.text);
      const W = log.heldout.window;
      const bpc = referenceLoss(tensors, dims, held.subarray(0, W), held.subarray(1, W + 1), exits).map(
        (l) => l / Math.LN2,
      );
      const logged: number[] = log.reference_check.windows[0].reference_bpc;
      for (const [j, b] of bpc.entries()) expect(Math.abs(b - logged[j])).toBeLessThan(1e-9);
      for (const [j, b] of log.reference_check.windows[0].tfjs_bpc.entries())
        expect(Math.abs(b - bpc[j])).toBeLessThan(1e-4);
    });
  }
});
