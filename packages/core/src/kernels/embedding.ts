// Token embedding lookup with an optional learned position embedding, one thread per output element:
//   y[i, :] = table[ids[i], :] + (addPosition ? pos[i mod seqLen, :] : 0)
// ids: (n) u32; table: (vocab, dim); pos: (maxPos ≥ seqLen, dim); y: (n, dim). The n ids are a batch of
// sequences of seqLen tokens laid end to end. An id ≥ vocab writes a row of zeros (no position term).
// Chunked tables (spec chunk: a table bigger than one storage binding, bound as row windows): table holds
// rows [idBase, idBase + vocab) of the full table; rows whose id falls outside the window are left
// untouched, so one dispatch per window writes every row exactly once.
import { ValidationError } from '../errors.js';
import { defineKernel } from '../runtime/kernel.js';

export interface EmbeddingSpec {
  [k: string]: string | number | boolean;
  chunk: boolean;
}

const WG = 256;

export const embedding = defineKernel<EmbeddingSpec>({
  name: 'embedding',
  bindings: {
    ids: { access: 'read', type: 'u32' },
    table: { access: 'read', type: 'f32' },
    pos: { access: 'read', type: 'f32' },
    y: { access: 'write', type: 'f32' },
  },
  params: { n: 'u32', dim: 'u32', vocab: 'u32', seqLen: 'u32', addPosition: 'u32', idBase: 'u32' },
  spec: { chunk: false },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => [Math.ceil((p.n * p.dim) / WG), 1, 1],
  sizes: (p) => {
    if (p.addPosition && p.seqLen < 1) {
      throw new ValidationError(`kernel 'embedding': seqLen must be ≥ 1 when addPosition is set, got ${p.seqLen}`);
    }
    return {
      ids: p.n,
      table: p.vocab * p.dim,
      pos: p.addPosition ? p.seqLen * p.dim : 1,
      y: p.n * p.dim,
    };
  },
  wgsl: ({ chunk }) => `
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = linear_wg(wg, nwg) * ${WG}u + li;
  if (i >= P.n * P.dim) { return; }
  let r = i / P.dim;
  let j = i - r * P.dim;
  let id = ids[r] - P.idBase;
  if (id >= P.vocab) { ${chunk ? 'return;' : 'y[i] = 0.0; return;'} }
  var v = table[id * P.dim + j];
  if (P.addPosition != 0u) { v += pos[(r % P.seqLen) * P.dim + j]; }
  y[i] = v;
}`,
  reference: ({ ids, table, pos, y }, p, { chunk }) => {
    for (let i = 0; i < p.n; i++) {
      const id = ids[i] - (p.idBase ?? 0);
      const inWindow = id >= 0 && id < p.vocab;
      if (chunk && !inWindow) continue;
      const t = i % Math.max(1, p.seqLen);
      for (let j = 0; j < p.dim; j++) {
        y[i * p.dim + j] = !inWindow ? 0 : table[id * p.dim + j] + (p.addPosition ? pos[t * p.dim + j] : 0);
      }
    }
  },
  testInputs: (p, _s, rand) => {
    // In-range ids, with one out-of-range id (alternately vocab itself and the largest u32) when n > 1.
    const ids = new Uint32Array(Math.max(1, p.n));
    const span = p.idBase ? p.vocab * 3 : p.vocab; // chunk cases: ids spread over three windows
    for (let i = 0; i < p.n; i++) ids[i] = Math.floor(rand() * span);
    if (p.n > 1) ids[Math.floor(p.n / 2)] = p.n % 2 ? 0xffffffff : p.vocab;
    return { ids };
  },
  testCases: [
    { params: { n: 1, dim: 1, vocab: 1, seqLen: 1, addPosition: 1, idBase: 0 }, label: 'n=1, dim=1, vocab=1' },
    { params: { n: 7, dim: 13, vocab: 31, seqLen: 7, addPosition: 1, idBase: 0 }, label: 'one sequence, primes' },
    {
      params: { n: 24, dim: 257, vocab: 50, seqLen: 8, addPosition: 1, idBase: 0 },
      label: 'batch of 3 sequences, dim 257',
    },
    { params: { n: 37, dim: 300, vocab: 1000, seqLen: 37, addPosition: 0, idBase: 0 }, label: 'no position' },
    {
      params: { n: 512, dim: 768, vocab: 3001, seqLen: 128, addPosition: 1, idBase: 0 },
      label: '4×128 tokens, dim 768',
    },
    { params: { n: 1000, dim: 3, vocab: 17, seqLen: 1000, addPosition: 1, idBase: 0 }, label: 'dim 3, 1000 tokens' },
    {
      params: { n: 40, dim: 9, vocab: 16, seqLen: 8, addPosition: 1, idBase: 16 },
      spec: { chunk: true },
      label: 'chunk window [16, 32)',
    },
    {
      params: { n: 40, dim: 9, vocab: 16, seqLen: 8, addPosition: 0, idBase: 16 },
      spec: { chunk: false },
      label: 'window without chunk: zeros outside',
    },
  ],
  tolerance: 'elementwise',
});
