// The code-search tokenizer: GPT-2's byte-level BPE cut to its first `merges` merges (a valid BPE of its own:
// the 256 byte tokens plus one token per kept merge, ids unchanged), plus a <|pad|> token. Code is put on one
// line first (runs of whitespace → one space) so indentation does not eat the context. A model folder may hold
// text_form.json ({"form": "words"}): then texts are also split into words before BPE (identifiers at `_` and
// camelCase boundaries, punctuation apart, lower case), so `read_file` in code and "read file" in a docstring
// give the same tokens. Without the file the form is 'one-line' (folders made before the words form).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { FormatError } from '@offramp/core';
import { type BpeTokenizer, byteLevelBpeJson, gpt3EncoderDir, loadBpeTokenizer } from '../tokenizers/bpe.js';
import { readJsonFile, writeJsonFile } from '../tokenizers/json.js';

export const PAD_TOKEN = '<|pad|>';
export const CODE_TOKENIZER_FILE = 'tokenizer.json';

/** Writes the tokenizer.json of GPT-2's BPE with its first `merges` merges; returns the vocabulary size. */
export function buildTruncatedGpt2Tokenizer(outPath: string, merges: number): { vocabSize: number; padId: number } {
  const dir = gpt3EncoderDir();
  const encoder = readJsonFile(path.join(dir, 'encoder.json'), 'GPT-2 encoder') as Record<string, number>;
  const lines = readFileSync(path.join(dir, 'vocab.bpe'), 'utf8').split('\n').slice(1).filter(Boolean);
  if (!Number.isInteger(merges) || merges < 1 || merges > lines.length) {
    throw new FormatError(`merges is ${merges}; expected an integer in [1, ${lines.length}]`);
  }
  const vocab: Record<string, number> = {};
  for (const [tok, id] of Object.entries(encoder)) if (id < 256) vocab[tok] = id;
  const kept = lines.slice(0, merges);
  kept.forEach((line, k) => {
    const [a, b] = line.split(' ');
    const id = encoder[a + b];
    // GPT-2 numbers merged tokens by merge rank: the k-th merge makes id 256 + k
    if (id !== 256 + k) throw new FormatError(`vocab.bpe merge ${k} (${line}) has id ${id}; expected ${256 + k}`);
    vocab[a + b] = id;
  });
  const padId = 256 + merges;
  vocab[PAD_TOKEN] = padId;
  writeJsonFile(outPath, byteLevelBpeJson(vocab, kept, { id: padId, content: PAD_TOKEN }));
  return { vocabSize: padId + 1, padId };
}

/** Text as the code-search model reads it: whitespace runs collapsed to one space, trimmed. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/**
 * The 'words' form: identifiers split at underscores and camelCase boundaries (`parseHTTPResponse_v2` →
 * `parse http response v2`), every run of other punctuation set apart by spaces, lower case, one line.
 */
export function codeWords(text: string): string {
  return oneLine(
    text
      .replace(/(\p{Ll}|\p{N})(\p{Lu})/gu, '$1 $2')
      .replace(/(\p{Lu})(\p{Lu}\p{Ll})/gu, '$1 $2')
      .replace(/_+/g, ' ')
      .replace(/([^\p{L}\p{N}\s]+)/gu, ' $1 ')
      .toLowerCase(),
  );
}

export const TEXT_FORMS = ['one-line', 'words'] as const;
export type TextForm = (typeof TEXT_FORMS)[number];
export const TEXT_FORM_FILE = 'text_form.json';

/**
 * A text in the given form. The words form starts with a space, so the first word gets the same BPE tokens
 * (GPT-2's words carry their leading space) as it does anywhere else.
 */
export function textIn(form: TextForm, text: string): string {
  if (form === 'one-line') return oneLine(text);
  const w = codeWords(text);
  return w.length > 0 ? ` ${w}` : '';
}

/** The text form of a model folder: its text_form.json, or 'one-line' when there is none. */
export function readTextForm(dir: string): TextForm {
  const file = path.join(dir, TEXT_FORM_FILE);
  if (!existsSync(file)) return 'one-line';
  const raw = readJsonFile(file, 'the text form') as { form?: unknown };
  if (!TEXT_FORMS.includes(raw?.form as TextForm)) {
    throw new FormatError(
      `${file}: "form" is ${JSON.stringify(raw?.form)}; allowed: ${TEXT_FORMS.map((f) => `"${f}"`).join(', ')}`,
    );
  }
  return raw.form as TextForm;
}

/**
 * Token ids of each text (in `form`, default one line; at most `maxLen` ids, at least one: an empty text gives
 * [pad]).
 */
export function encodeTexts(
  tok: BpeTokenizer,
  texts: readonly string[],
  maxLen: number,
  padId: number,
  form: TextForm = 'one-line',
): number[][] {
  return texts.map((t) => {
    const ids = Array.from(tok.encode(textIn(form, t)).subarray(0, maxLen));
    return ids.length > 0 ? ids : [padId];
  });
}

export { loadBpeTokenizer };
