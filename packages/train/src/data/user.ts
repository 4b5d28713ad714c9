// Loaders for user data: JSON Lines or CSV files whose rows are {text, label} or {image, label}, validated
// strictly; every error names the file and the row's line number. Files are read bounded (a regular file no
// larger than a cap) and text from the file is echoed in messages escaped and cut to 80 characters.

import { constants as bufferConstants } from 'node:buffer';
import { FormatError, ValidationError } from '@offramp/core';
import { FILE_LIMITS, readBoundedFileSync } from '@offramp/core/node';
import { parse } from 'csv-parse/sync';

export interface UserTextDataset {
  kind: 'text';
  examples: { text: string; label: number }[];
  /** Class names by label index: the string labels sorted, or '0'..'max' for integer labels. */
  classNames: string[];
}

export interface UserImageDataset {
  kind: 'image';
  /** n·features values, row-major. */
  images: Float32Array;
  labels: Int32Array;
  n: number;
  /** Values per image. */
  features: number;
  classNames: string[];
}

export type UserDataset = UserTextDataset | UserImageDataset;

export interface UserDataOptions {
  /**
   * Map labels through these class names (a model's `meta.class_names`, or the classes of a training file)
   * instead of the file's own label set: a string label is the index of its name, an integer label is itself
   * (and must be below the number of names). A label outside them is an error naming the label, file and line.
   */
  classNames?: readonly string[];
  /** Without classNames: the number of classes integer labels must stay below (string labels are refused). */
  numClasses?: number;
  /** Whose classes these are, for messages (default 'the model'). */
  classesOf?: string;
  /** The kind of rows wanted: a file of the other kind is an error (checked before the labels). */
  kind?: 'text' | 'image';
  /** Largest file accepted, in bytes (default {@link USER_DATA_MAX_BYTES}). */
  maxBytes?: number;
  /** Most values an image dataset may hold in total (default {@link USER_IMAGE_MAX_VALUES}). */
  maxImageValues?: number;
}

/**
 * Default size cap of a data file: the data cap of `@offramp/core/node`, and no more than the longest string
 * JavaScript can hold (a UTF-8 file of that many bytes always decodes to a string that fits).
 */
export const USER_DATA_MAX_BYTES = Math.min(FILE_LIMITS.data, bufferConstants.MAX_STRING_LENGTH);

/** Most values an image dataset may hold in total (one Float32Array of 1 GiB; a file at the size cap fits). */
export const USER_IMAGE_MAX_VALUES = 2 ** 28;

/**
 * Text from a data file as it appears in messages: JSON-escaped (control characters as \n, \u0007, ...) and
 * cut to `max` characters with a trailing '…'.
 */
export function quoteForMessage(value: unknown, max = 80): string {
  let s: string;
  try {
    s =
      typeof value === 'string'
        ? JSON.stringify(value.length > 4 * max ? value.slice(0, 4 * max) : value)
        : String(JSON.stringify(value));
  } catch {
    s = String(value);
  }
  s = s.replace(/[\u2028\u2029\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** Like {@link quoteForMessage}, without the quotes (for a message quoted inside another one). */
function escapeForMessage(text: string, max: number): string {
  const q = quoteForMessage(text, max + 2);
  return q.endsWith('"') ? q.slice(1, -1) : q.slice(1);
}

/** A field name as shown in messages: bare when it is a short plain word, quoted and cut otherwise. */
function showKey(k: string): string {
  return /^[A-Za-z0-9_ -]{1,40}$/.test(k) && k.trim() === k && k !== '' ? k : quoteForMessage(k, 40);
}

function showKeys(keys: string[]): string {
  const shown = keys.slice(0, 6).map(showKey).join(', ');
  return keys.length > 6 ? `${shown}, … (${keys.length} fields)` : shown;
}

/** Reads a data file bounded (regular file, size cap) into a string. */
function readDataFile(file: string, what: string, maxBytes = USER_DATA_MAX_BYTES): string {
  const buf = readBoundedFileSync(file, { maxBytes, what });
  try {
    const text = buf.toString('utf8');
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch (e) {
    throw new FormatError(
      `${file}: ${buf.length} bytes do not fit in one string (${(e as Error).message}); split the file into parts below ${USER_DATA_MAX_BYTES} bytes`,
      { cause: e },
    );
  }
}

type RawLabel = number | string;
interface RawRow {
  line: number;
  text?: string;
  image?: number[];
  label: RawLabel;
}

const MAX_CLASSES = 100_000;

class RowError extends ValidationError {}

function rowError(file: string, line: number, message: string): RowError {
  return new RowError(`${file}, line ${line}: ${message}`);
}

function checkKeys(file: string, line: number, keys: string[]): 'text' | 'image' {
  const sorted = [...keys].sort().join(',');
  if (sorted === 'label,text') return 'text';
  if (sorted === 'image,label') return 'image';
  throw rowError(file, line, `fields are {${showKeys(keys)}}; expected exactly {text, label} or {image, label}`);
}

function checkLabel(file: string, line: number, label: unknown): RawLabel {
  if (typeof label === 'number' && Number.isInteger(label) && label >= 0 && label < MAX_CLASSES) return label;
  if (typeof label === 'string' && label.trim() !== '') return label;
  throw rowError(
    file,
    line,
    `label is ${quoteForMessage(label)}; expected an integer in [0, ${MAX_CLASSES}) or a non-empty string`,
  );
}

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, 10).map((n) => quoteForMessage(n, 40));
  return names.length > 10 ? `${shown.join(', ')}, … (${names.length} classes)` : shown.join(', ');
}

function finish(file: string, kind: 'text' | 'image', rows: RawRow[], o: UserDataOptions = {}): UserDataset {
  if (rows.length === 0) throw new ValidationError(`${file}: no rows; expected at least one {${kind}, label} row`);
  if (o.kind && o.kind !== kind)
    throw new ValidationError(
      `${file} holds ${kind} data ({${kind}, label} rows) but ${o.classesOf ?? 'the model'} takes ${o.kind} data ({${o.kind}, label} rows)`,
    );
  let classNames: string[];
  let labelOf: (r: RawRow) => number;
  if (o.classNames || o.numClasses !== undefined) {
    // labels mapped through given classes (a model's, or a training file's), not this file's own label set
    const names = o.classNames ? [...o.classNames] : Array.from({ length: o.numClasses! }, (_, i) => String(i));
    const index = new Map(names.map((c, i) => [c, i]));
    const C = names.length;
    const of = o.classesOf ?? 'the model';
    classNames = names;
    labelOf = (r) => {
      if (typeof r.label === 'number') {
        if (r.label < C) return r.label;
        throw rowError(
          file,
          r.line,
          `label ${r.label} is not a class of ${of}: labels are 0..${C - 1} (${listNames(names)})`,
        );
      }
      const i = index.get(r.label);
      if (i !== undefined) return i;
      if (!o.classNames)
        throw rowError(
          file,
          r.line,
          `label ${quoteForMessage(r.label)} cannot be mapped: ${of} has no class names (meta.class_names); use integer labels 0..${C - 1}`,
        );
      throw rowError(
        file,
        r.line,
        `label ${quoteForMessage(r.label)} is not one of the ${C} classes of ${of} (${listNames(names)})`,
      );
    };
  } else {
    const labelType = typeof rows[0].label;
    for (const r of rows) {
      if (typeof r.label !== labelType) {
        throw rowError(
          file,
          r.line,
          `label ${quoteForMessage(r.label)} is a ${typeof r.label}, earlier labels are ${labelType}s; use one kind`,
        );
      }
    }
    if (labelType === 'number') {
      let max = 0;
      for (const r of rows) max = Math.max(max, r.label as number);
      classNames = Array.from({ length: max + 1 }, (_, i) => String(i));
      labelOf = (r) => r.label as number;
    } else {
      classNames = [...new Set(rows.map((r) => r.label as string))].sort();
      const index = new Map(classNames.map((c, i) => [c, i]));
      labelOf = (r) => index.get(r.label as string)!;
    }
  }
  if (kind === 'text') {
    return { kind, examples: rows.map((r) => ({ text: r.text!, label: labelOf(r) })), classNames };
  }
  const features = rows[0].image!.length;
  const maxValues = o.maxImageValues ?? USER_IMAGE_MAX_VALUES;
  if (rows.length * features > maxValues)
    throw new ValidationError(
      `${file}: ${rows.length} images of ${features} values are ${rows.length * features} values, more than the ${maxValues} one dataset may hold; use fewer rows`,
    );
  const images = new Float32Array(rows.length * features);
  const labels = new Int32Array(rows.length);
  rows.forEach((r, i) => {
    if (r.image!.length !== features) {
      throw rowError(
        file,
        r.line,
        `image has ${r.image!.length} values, the first image has ${features}; all must match`,
      );
    }
    images.set(r.image!, i * features);
    labels[i] = labelOf(r);
  });
  return { kind, images, labels, n: rows.length, features, classNames };
}

function checkText(file: string, line: number, text: unknown): string {
  if (typeof text !== 'string' || text.trim() === '') {
    throw rowError(file, line, `text is ${quoteForMessage(text, 60)}; expected a non-empty string`);
  }
  return text;
}

function checkImage(file: string, line: number, image: unknown[]): number[] {
  if (image.length === 0) throw rowError(file, line, 'image is empty; expected at least one value');
  for (let i = 0; i < image.length; i++) {
    const v = image[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw rowError(file, line, `image value ${i} is ${quoteForMessage(v)}; expected a finite number`);
    }
  }
  return image as number[];
}

/**
 * Loads a JSON Lines file: one JSON object per line, every row {text, label} or every row {image, label}
 * (image: an array of numbers). Labels are all integers >= 0 or all strings. Blank lines are skipped.
 */
export function loadJsonl(file: string, options: UserDataOptions = {}): UserDataset {
  const lines = readDataFile(file, 'a JSON Lines file of {text, label} or {image, label} rows', options.maxBytes).split(
    '\n',
  );
  const rows: RawRow[] = [];
  let kind: 'text' | 'image' | null = null;
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const src = lines[i].trim();
    if (src === '') continue;
    let obj: unknown;
    try {
      obj = JSON.parse(src);
    } catch (e) {
      throw rowError(file, lineNo, `not valid JSON (${escapeForMessage((e as Error).message, 80)})`);
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      throw rowError(
        file,
        lineNo,
        `row is ${Array.isArray(obj) ? 'an array' : quoteForMessage(obj)}; expected an object`,
      );
    }
    const rec = obj as Record<string, unknown>;
    const k = checkKeys(file, lineNo, Object.keys(rec));
    if (kind !== null && k !== kind)
      throw rowError(file, lineNo, `row is {${k}, label} but earlier rows are {${kind}, label}`);
    kind = k;
    const label = checkLabel(file, lineNo, rec.label);
    if (k === 'text') rows.push({ line: lineNo, text: checkText(file, lineNo, rec.text), label });
    else {
      if (!Array.isArray(rec.image))
        throw rowError(file, lineNo, `image is ${typeof rec.image}; expected an array of numbers`);
      rows.push({ line: lineNo, image: checkImage(file, lineNo, rec.image), label });
    }
  }
  return finish(file, kind ?? 'text', rows, options);
}

/**
 * Loads a CSV file with a header row of exactly `text,label` or `image,label` (either order). An image is its
 * values separated by spaces. Labels that parse as integers >= 0 are integers, otherwise strings.
 */
export function loadCsv(file: string, options: UserDataOptions = {}): UserDataset {
  const text = readDataFile(file, 'a CSV file with a header text,label or image,label', options.maxBytes);
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(text, { info: true, skip_empty_lines: true, bom: true }) as unknown as typeof records;
  } catch (e) {
    throw new ValidationError(`${file}: not valid CSV (${escapeForMessage((e as Error).message, 200)})`, {
      cause: e,
    });
  }
  if (records.length === 0)
    throw new ValidationError(`${file}: empty; expected a header row text,label or image,label`);
  const header = records[0].record.map((h) => h.trim());
  const kind = checkKeys(file, records[0].info.lines, header);
  if (new Set(header).size !== header.length) throw rowError(file, records[0].info.lines, 'header repeats a column');
  const valueCol = header.indexOf(kind);
  const labelCol = header.indexOf('label');
  const allInts = records.slice(1).every((r) => /^\d+$/.test(r.record[labelCol]?.trim() ?? ''));
  const rows: RawRow[] = [];
  for (const { record, info } of records.slice(1)) {
    const line = info.lines;
    const rawLabel = record[labelCol].trim();
    const label = checkLabel(file, line, allInts ? Number(rawLabel) : rawLabel);
    if (kind === 'text') rows.push({ line, text: checkText(file, line, record[valueCol]), label });
    else {
      const parts = record[valueCol].trim().split(/\s+/);
      const image = parts.map((p) => (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(p) ? Number(p) : p));
      rows.push({ line, image: checkImage(file, line, image), label });
    }
  }
  return finish(file, kind, rows, options);
}
