// Character-level tokenizer: one id per Unicode code point seen in a corpus, ids in code-point order after the
// reserved unknown id 0. text → Int32Array of ids and back; saved as JSON.

import { FormatError, ValidationError } from '@offramp/core';
import { readJsonFile, writeJsonFile } from './json.js';

export interface CharTokenizerJson {
  type: 'char';
  version: 1;
  /** Characters in id order; character i has id i + 1 (id 0 is the unknown character). */
  chars: string[];
}

export class CharTokenizer {
  /** Id of any character not in the vocabulary. */
  static readonly UNK_ID = 0;
  /** What decode() writes for the unknown id. */
  static readonly UNK_CHAR = '\uFFFD';

  readonly chars: readonly string[];
  private readonly ids: Map<string, number>;

  private constructor(chars: string[]) {
    this.chars = chars;
    this.ids = new Map(chars.map((c, i) => [c, i + 1]));
  }

  /** Builds the vocabulary of every code point in the corpus, sorted by code point (so ids are stable). */
  static fromCorpus(corpus: string | Iterable<string>): CharTokenizer {
    const seen = new Set<string>();
    for (const text of typeof corpus === 'string' ? [corpus] : corpus) for (const c of text) seen.add(c);
    return new CharTokenizer([...seen].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
  }

  static fromJSON(json: unknown, source = 'char tokenizer JSON'): CharTokenizer {
    const j = json as Partial<CharTokenizerJson> | null;
    if (j === null || typeof j !== 'object' || j.type !== 'char' || j.version !== 1 || !Array.isArray(j.chars)) {
      throw new FormatError(`${source}: expected {type: 'char', version: 1, chars: string[]}`);
    }
    let prev = -1;
    j.chars.forEach((c, i) => {
      const cp = typeof c === 'string' ? c.codePointAt(0) : undefined;
      if (cp === undefined || [...c].length !== 1) {
        throw new FormatError(`${source}: chars[${i}] is ${JSON.stringify(c)}; expected one character`);
      }
      if (cp <= prev) throw new FormatError(`${source}: chars[${i}] is out of code-point order or repeated`);
      prev = cp;
    });
    return new CharTokenizer([...j.chars]);
  }

  static load(file: string): CharTokenizer {
    return CharTokenizer.fromJSON(readJsonFile(file, 'char tokenizer'), file);
  }

  /** Number of ids, the unknown id included. */
  get vocabSize(): number {
    return this.chars.length + 1;
  }

  idOf(char: string): number {
    return this.ids.get(char) ?? CharTokenizer.UNK_ID;
  }

  encode(text: string): Int32Array {
    const out = new Int32Array(text.length);
    let n = 0;
    for (const c of text) out[n++] = this.ids.get(c) ?? CharTokenizer.UNK_ID;
    return n === text.length ? out : out.slice(0, n);
  }

  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new ValidationError(`decode: ids[${i}] is ${id}; expected an integer in [0, ${this.vocabSize})`);
      }
      s += id === CharTokenizer.UNK_ID ? CharTokenizer.UNK_CHAR : this.chars[id - 1];
    }
    return s;
  }

  toJSON(): CharTokenizerJson {
    return { type: 'char', version: 1, chars: [...this.chars] };
  }

  save(file: string): void {
    writeJsonFile(file, this.toJSON());
  }
}
