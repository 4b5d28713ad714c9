// Word tokenizer: splitting, top-N vocabulary with stable ties, reserved ids, fixed-length encoding, JSON round
// trip, and coverage on the real IMDB split.

import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadImdb } from '../data/imdb.js';
import { CLS_ID, PAD_ID, splitWords, UNK_ID, WordTokenizer } from './word.js';

describe('splitWords', () => {
  it('lowercases and splits words and single punctuation marks', () => {
    expect(splitWords("Don't STOP! It's 10/10... Café-au-lait")).toEqual([
      "don't",
      'stop',
      '!',
      "it's",
      '10',
      '/',
      '10',
      '.',
      '.',
      '.',
      'café',
      '-',
      'au',
      '-',
      'lait',
    ]);
    expect(splitWords('  \n ')).toEqual([]);
  });
});

describe('WordTokenizer', () => {
  const texts = ['the cat sat', 'the dog sat', 'the cat ran', 'a bird'];

  it('keeps the top-N words, ties in code-unit order, after the reserved ids', () => {
    const tok = WordTokenizer.fromTexts(texts, { vocabSize: 3 + 4 });
    // the ×3; cat, sat ×2; then a, bird, dog, ran ×1: 'a' wins the tie.
    expect(tok.words).toEqual(['the', 'cat', 'sat', 'a']);
    expect([tok.idOf('the'), tok.idOf('a'), tok.idOf('dog')]).toEqual([3, 6, UNK_ID]);
    expect(WordTokenizer.fromTexts(texts, { vocabSize: 100, minCount: 2 }).words).toEqual(['the', 'cat', 'sat']);
    expect(() => WordTokenizer.fromTexts(texts, { vocabSize: 3 })).toThrow(/vocabSize is 3; expected an integer > 3/);
  });

  it('encodes to a fixed length: [CLS], tokens, truncation, [PAD]', () => {
    const tok = WordTokenizer.fromTexts(texts, { vocabSize: 20 });
    const the = tok.idOf('the');
    const cat = tok.idOf('cat');
    expect(Array.from(tok.encode('The cat zebra', 6))).toEqual([CLS_ID, the, cat, UNK_ID, PAD_ID, PAD_ID]);
    expect(Array.from(tok.encode('the cat the cat the', 3))).toEqual([CLS_ID, the, cat]);
    expect(Array.from(tok.encode('the cat', 3, { cls: false }))).toEqual([the, cat, PAD_ID]);
    expect(Array.from(tok.encode('', 2))).toEqual([CLS_ID, PAD_ID]);
    expect(Array.from(tok.encodeBatch(['cat', 'the'], 2))).toEqual([CLS_ID, cat, CLS_ID, the]);
    expect(tok.decode(tok.encode('the zebra', 4))).toEqual(['[CLS]', 'the', '[UNK]', '[PAD]']);
    expect(() => tok.encode('x', 0)).toThrow(/length is 0; expected an integer >= 1/);
  });

  it('encodes without padding for the engine: the padded row with its trailing [PAD]s removed', () => {
    const tok = WordTokenizer.fromTexts(texts, { vocabSize: 20 });
    expect(tok.encodeUnpadded('The cat zebra', 6)).toEqual([CLS_ID, tok.idOf('the'), tok.idOf('cat'), UNK_ID]);
    expect(tok.encodeUnpadded('the cat the cat the', 3)).toEqual(Array.from(tok.encode('the cat the cat the', 3)));
    expect(tok.encodeUnpadded('', 4)).toEqual([CLS_ID]);
    expect(tok.encodeUnpadded('cat', 4, { cls: false })).toEqual([tok.idOf('cat')]);
    expect(() => tok.encodeUnpadded('x', 0)).toThrow(/length is 0/);
  });

  it('saves and loads JSON; rejects bad JSON', () => {
    const tok = WordTokenizer.fromTexts(texts, { vocabSize: 20 });
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'word-')), 'word.json');
    tok.save(file);
    const back = WordTokenizer.load(file);
    expect(back.words).toEqual(tok.words);
    expect(Array.from(back.encode('the bird ran', 8))).toEqual(Array.from(tok.encode('the bird ran', 8)));
    expect(() => WordTokenizer.fromJSON({ type: 'word', version: 1, words: ['a', 'a'] })).toThrow(
      /words\[1\] "a" is repeated/,
    );
    expect(() => WordTokenizer.fromJSON({ type: 'word', version: 1, words: ['Two words'] })).toThrow(
      /expected one lowercase token/,
    );
  });

  it('on IMDB: a 20,000-word vocabulary from the train split covers most test tokens', () => {
    const { train, test } = loadImdb();
    const tok = WordTokenizer.fromTexts(
      train.map((r) => r.text),
      { vocabSize: 20_000 },
    );
    expect(tok.vocabSize).toBe(20_000);
    let tokens = 0;
    let unknown = 0;
    for (const r of test.slice(0, 2000)) {
      for (const id of tok.tokenIds(r.text)) {
        tokens++;
        if (id === UNK_ID) unknown++;
      }
    }
    expect(unknown / tokens).toBeLessThan(0.05);
    const ids = tok.encodeBatch(
      test.slice(0, 10).map((r) => r.text),
      256,
    );
    expect(ids.length).toBe(2560);
    expect(Math.max(...ids)).toBeLessThan(20_000);
  });
});
