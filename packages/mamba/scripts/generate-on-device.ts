// Streams text from the shipped Austen Mamba with the whole decode loop on the device: maxProb exits with
// frozen state above the exit, seeded sampling, 16 tokens per submission and readback.
//   pnpm --filter @offramp/mamba run example:device-loop [prompt]
import path from 'node:path';
import { createGpuDevice } from '@offramp/core';
import { CharTokenizer } from '@offramp/train';
import { mambaGenerateOnDevice } from '../src/device-loop.js';
import { loadMambaLM } from '../src/node.js';

const dir = path.resolve(import.meta.dirname, '../../../checkpoints/austen-mamba');
const device = await createGpuDevice();
const { model } = await loadMambaLM(device, dir);
const tok = CharTokenizer.load(path.join(dir, 'char-tokenizer.json'));
const text = process.argv[2] ?? 'It is a truth universally acknowledged, that ';
process.stdout.write(text);
const r = await mambaGenerateOnDevice(model, [Array.from(tok.encode(text))], {
  maxNewTokens: 160,
  sampling: { temperature: 0.6, topP: 0.9, seed: 1 },
  exit: { rule: { kind: 'maxProb', threshold: 0.5 }, skip: 'freeze' },
  stepsPerSubmit: 16,
  onTokens: (_row, tokens) => process.stdout.write(tok.decode(tokens)),
});
const steps = r.tokens[0].length - 1;
console.log(
  `\n\n${r.tokens[0].length} tokens, ${r.readbacks} readbacks; the tokens needed ${(r.blocksRun / steps).toFixed(2)} of ${model.L} blocks on average`,
);
model.dispose();
device.destroy();
