// Word-level tokenizer for classification: lowercase, words (letters/digits with inner apostrophes) and single
// punctuation marks, a vocabulary of the top-N words of a training split; ids 0 = [PAD], 1 = [UNK], 2 = [CLS].
// text → Int32Array(length): [CLS] w1 w2 ... truncated to `length`, padded with [PAD].

import { FormatError, ValidationError } from '@offramp/core';
import { readJsonFile, writeJsonFile } from './json.js';

export const PAD_ID = 0;
export const UNK_ID = 1;
export const CLS_ID = 2;
export const RESERVED_TOKENS: readonly string[] = ['[PAD]', '[UNK]', '[CLS]'];

const TOKEN = /[\p{L}\p{N}]+(?:['’][\p{L}\p{N}]+)*|[^\s\p{L}\p{N}]/gu;

/** Lowercases and splits into words and single punctuation marks: "Don't stop!" → ["don't", "stop", "!"]. */
export function splitWords(text: string): string[] {
  return text.toLowerCase().match(TOKEN) ?? [];
}

export interface WordTokenizerJson {
  type: 'word';
  version: 1;
  /** Words in id order; word i has id i + 3. */
  words: string[];
}

export interface WordVocabOptions {
  /** Total number of ids, the 3 reserved ones included. */
  vocabSize: number;
  /** Words seen fewer times are left out (default 1). */
  minCount?: number;
}

export interface EncodeOptions {
  /** Put [CLS] first (default true). */
  cls?: boolean;
}

export class WordTokenizer {
  readonly words: readonly string[];
  private readonly ids: Map<string, number>;

  private constructor(words: string[]) {
    this.words = words;
    this.ids = new Map(words.map((w, i) => [w, i + RESERVED_TOKENS.length]));
  }

  /** The vocabulary of the vocabSize - 3 most frequent words (ties: code-unit order of the words). */
  static fromTexts(texts: Iterable<string>, options: WordVocabOptions): WordTokenizer {
    const { vocabSize, minCount = 1 } = options;
    if (!Number.isInteger(vocabSize) || vocabSize <= RESERVED_TOKENS.length) {
      throw new ValidationError(`vocabSize is ${vocabSize}; expected an integer > ${RESERVED_TOKENS.length}`);
    }
    if (!Number.isInteger(minCount) || minCount < 1) {
      throw new ValidationError(`minCount is ${minCount}; expected an integer >= 1`);
    }
    const counts = new Map<string, number>();
    for (const t of texts) for (const w of splitWords(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
    const ranked = [...counts].filter(([, c]) => c >= minCount);
    ranked.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return new WordTokenizer(ranked.slice(0, vocabSize - RESERVED_TOKENS.length).map(([w]) => w));
  }

  static fromJSON(json: unknown, source = 'word tokenizer JSON'): WordTokenizer {
    const j = json as Partial<WordTokenizerJson> | null;
    if (j === null || typeof j !== 'object' || j.type !== 'word' || j.version !== 1 || !Array.isArray(j.words)) {
      throw new FormatError(`${source}: expected {type: 'word', version: 1, words: string[]}`);
    }
    const seen = new Set<string>();
    j.words.forEach((w, i) => {
      if (typeof w !== 'string' || splitWords(w).length !== 1 || splitWords(w)[0] !== w) {
        throw new FormatError(`${source}: words[${i}] is ${JSON.stringify(w)}; expected one lowercase token`);
      }
      if (seen.has(w)) throw new FormatError(`${source}: words[${i}] ${JSON.stringify(w)} is repeated`);
      seen.add(w);
    });
    return new WordTokenizer([...j.words]);
  }

  static load(file: string): WordTokenizer {
    return WordTokenizer.fromJSON(readJsonFile(file, 'word tokenizer'), file);
  }

  get vocabSize(): number {
    return this.words.length + RESERVED_TOKENS.length;
  }

  idOf(word: string): number {
    return this.ids.get(word) ?? UNK_ID;
  }

  /** Ids of every token, without [CLS], padding or truncation. */
  tokenIds(text: string): number[] {
    return splitWords(text).map((w) => this.ids.get(w) ?? UNK_ID);
  }

  /**
   * Fixed-length ids: [CLS] (unless cls: false), then tokens, truncated to `length`, then [PAD]s (for packed
   * training batches). The engine treats trailing [PAD]s as padding when the model's pad_token_id is 0, as
   * models trained here have; for engine input, {@link encodeUnpadded} gives the ids without them.
   */
  encode(text: string, length: number, options?: EncodeOptions): Int32Array {
    const out = new Int32Array(length);
    this.encodeInto(out, 0, text, length, options);
    return out;
  }

  /** Ids without padding: [CLS] (unless cls: false), then tokens, truncated to at most `maxLength` ids. */
  encodeUnpadded(text: string, maxLength: number, options?: EncodeOptions): number[] {
    const row = new Int32Array(maxLength);
    const n = this.encodeInto(row, 0, text, maxLength, options);
    return Array.from(row.subarray(0, n));
  }

  /** encode() for many texts, rows packed into one (texts.length · length) array. */
  encodeBatch(texts: readonly string[], length: number, options?: EncodeOptions): Int32Array {
    const out = new Int32Array(texts.length * length);
    texts.forEach((t, i) => {
      this.encodeInto(out, i * length, t, length, options);
    });
    return out;
  }

  /** Writes the ids of `text` at `at`; returns how many (the rest stays [PAD]). */
  private encodeInto(out: Int32Array, at: number, text: string, length: number, options?: EncodeOptions): number {
    if (!Number.isInteger(length) || length < 1) {
      throw new ValidationError(`length is ${length}; expected an integer >= 1`);
    }
    let n = 0;
    if (options?.cls ?? true) out[at + n++] = CLS_ID;
    for (const w of splitWords(text)) {
      if (n >= length) break;
      out[at + n++] = this.ids.get(w) ?? UNK_ID;
    }
    return n;
  }

  /** Tokens of ids, reserved ids as [PAD]/[UNK]/[CLS]. */
  decode(ids: ArrayLike<number>): string[] {
    const out: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new ValidationError(`decode: ids[${i}] is ${id}; expected an integer in [0, ${this.vocabSize})`);
      }
      out.push(id < RESERVED_TOKENS.length ? RESERVED_TOKENS[id] : this.words[id - RESERVED_TOKENS.length]);
    }
    return out;
  }

  toJSON(): WordTokenizerJson {
    return { type: 'word', version: 1, words: [...this.words] };
  }

  save(file: string): void {
    writeJsonFile(file, this.toJSON());
  }
}
