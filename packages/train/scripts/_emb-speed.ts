import path from 'node:path';
import { createDevice } from '@offramp/core';
import { loadCodeSearch } from '../src/data/code-search.js';
import { loadEmbedder } from '../src/embeddings/load.js';
const data = loadCodeSearch();
for (const backend of ['gpu'] as const) {
  const device = await createDevice({ backend });
  const m = await loadEmbedder(path.resolve('../../checkpoints/code-search'), device, { maxBatch: 64 });
  const codes = data.test.slice(0, 128).map((r) => r.code);
  await m.embedTexts(codes.slice(0, 64), { exit: 'all' });
  const t0 = performance.now();
  const r = await m.embedTexts(codes, { exit: 'all' });
  const s = (performance.now() - t0) / 1000;
  console.log(backend, device.describe().slice(0, 60), `${codes.length} codes in ${s.toFixed(2)} s = ${(codes.length / s).toFixed(1)}/s`, r.dim);
  m.dispose();
}
process.exit(0);
