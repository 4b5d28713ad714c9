import path from 'node:path';
import os from 'node:os';
import { loadCodeSearch } from '../src/data/code-search.js';
import { buildTruncatedGpt2Tokenizer, encodeTexts, loadBpeTokenizer, codeWords } from '../src/embeddings/tokenizer.js';
const s = loadCodeSearch();
console.log('extracted', s.extracted, JSON.stringify(s.dropped), 'train', s.train.length, s.trainModules.length, 'test', s.test.length, s.testModules.length);
console.log('test units:', s.testModules.join(', '));
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log('median query/code chars (train)', med(s.train.map((r) => r.query.length)), med(s.train.map((r) => r.code.length)));
const f = path.join(os.tmpdir(), 'emb-tok.json');
const { padId } = buildTruncatedGpt2Tokenizer(f, 8000);
const tok = loadBpeTokenizer(f);
const sample = s.train.filter((_, i) => i % 10 === 0);
for (const form of ['one-line', 'words'] as const) {
  const c = encodeTexts(tok, sample.map((r) => r.code), 100000, padId, form);
  const q = encodeTexts(tok, sample.map((r) => r.query), 100000, padId, form);
  console.log(form, 'median code tokens', med(c.map((x) => x.length)), 'share over 128', (c.filter((x) => x.length > 128).length / c.length).toFixed(3), 'over 256', (c.filter((x) => x.length > 256).length / c.length).toFixed(3), 'median query tokens', med(q.map((x) => x.length)));
  // share of query tokens that also occur in the paired code
  let hit = 0, all = 0;
  q.forEach((qq, i) => { const set = new Set(c[i]); for (const t of qq) { all++; if (set.has(t)) hit++; } });
  console.log(form, 'query tokens found in own code', (hit / all).toFixed(3));
}
// vocabulary coverage: words (words form) that are one BPE token
const words = new Map<string, number>();
for (const r of sample) for (const w of codeWords(`${r.query} ${r.code}`).split(' ')) if (/^\p{L}+$/u.test(w)) words.set(w, (words.get(w) ?? 0) + 1);
let one = 0, tot = 0, pieces = 0;
for (const [w, n] of words) { const k = tok.encode(` ${w}`).length; tot += n; pieces += k * n; if (k === 1) one += n; }
console.log('word occurrences that are one token', (one / tot).toFixed(3), 'mean tokens per word', (pieces / tot).toFixed(2), 'distinct words', words.size);
