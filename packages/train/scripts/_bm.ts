import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mulberry32 } from '@offramp/core';
import { loadCodeSearch, splitCodePairs } from '../src/data/code-search.js';
import { shuffleInPlace } from '../src/data/split.js';
import { buildTruncatedGpt2Tokenizer, encodeTexts, loadBpeTokenizer } from '../src/embeddings/tokenizer.js';
import { Bm25, dotScores, metricsFromRanks, rankOf } from '../src/embeddings/retrieval.js';
const f = path.join(os.tmpdir(), 'emb-tok2.json');
const { padId } = buildTruncatedGpt2Tokenizer(f, 8000);
const tok = loadBpeTokenizer(f);
const data = loadCodeSearch();
const inner = splitCodePairs(data.train, 0.05, 777);
const val = inner.test.filter((_, i) => i % Math.max(1, Math.floor(inner.test.length / 400)) === 0).slice(0, 400);
const test = shuffleInPlace([...data.test.keys()], mulberry32(4242)).slice(0, 800).sort((x, y) => x - y).map((i) => data.test[i]);
const pre = JSON.parse(readFileSync('/work/wt/emb/.data/runs/code-search-stage0-1234-256-64-words-500x256-39334.json', 'utf8'));
const table = Float32Array.from(pre.table); const d = 64;
const bag = (rows: number[][]) => { const out = new Float32Array(rows.length * d); rows.forEach((r, i) => { for (const t of r) for (let k = 0; k < d; k++) out[i * d + k] += table[t * d + k]; let n = 0; for (let k = 0; k < d; k++) n += out[i * d + k] ** 2; n = Math.sqrt(n) || 1; for (let k = 0; k < d; k++) out[i * d + k] /= n; }); return out; };
for (const [name, set] of [['val', val], ['test800', test], ['testall', data.test]] as const) {
  for (const form of ['one-line', 'words'] as const) {
    const q = encodeTexts(tok, set.map((r) => r.query), 256, padId, form);
    const c = encodeTexts(tok, set.map((r) => r.code), 256, padId, form);
    const bm = new Bm25(c);
    const m = metricsFromRanks(q.map((x, i) => rankOf(bm.scores(x), i)));
    let line = `${name} n=${set.length} ${form}: BM25 MRR ${m.mrr.toFixed(3)} R@1 ${m.recallAt1.toFixed(3)}`;
    if (form === 'words' && name !== 'testall') { const qv = bag(q), cv = bag(c); const mb = metricsFromRanks(q.map((_, i) => rankOf(dotScores(qv.subarray(i * d, i * d + d), cv, d), i))); line += ` | bag MRR ${mb.mrr.toFixed(3)} R@1 ${mb.recallAt1.toFixed(3)}`; }
    console.log(line);
  }
}
