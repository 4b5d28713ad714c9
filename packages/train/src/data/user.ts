// Loaders for user data: JSON Lines or CSV files whose rows are {text, label} or {image, label}, validated
// strictly; every error names the file and the row's line number.

import { readFileSync } from 'node:fs';
import { ValidationError } from '@offramp/core';
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
  throw rowError(file, line, `fields are {${keys.join(', ')}}; expected exactly {text, label} or {image, label}`);
}

function checkLabel(file: string, line: number, label: unknown): RawLabel {
  if (typeof label === 'number' && Number.isInteger(label) && label >= 0 && label < MAX_CLASSES) return label;
  if (typeof label === 'string' && label.trim() !== '') return label;
  throw rowError(
    file,
    line,
    `label is ${JSON.stringify(label)}; expected an integer in [0, ${MAX_CLASSES}) or a non-empty string`,
  );
}

function finish(file: string, kind: 'text' | 'image', rows: RawRow[]): UserDataset {
  if (rows.length === 0) throw new ValidationError(`${file}: no rows; expected at least one {${kind}, label} row`);
  const labelType = typeof rows[0].label;
  for (const r of rows) {
    if (typeof r.label !== labelType) {
      throw rowError(
        file,
        r.line,
        `label ${JSON.stringify(r.label)} is a ${typeof r.label}, earlier labels are ${labelType}s; use one kind`,
      );
    }
  }
  let classNames: string[];
  let labelOf: (l: RawLabel) => number;
  if (labelType === 'number') {
    let max = 0;
    for (const r of rows) max = Math.max(max, r.label as number);
    classNames = Array.from({ length: max + 1 }, (_, i) => String(i));
    labelOf = (l) => l as number;
  } else {
    classNames = [...new Set(rows.map((r) => r.label as string))].sort();
    const index = new Map(classNames.map((c, i) => [c, i]));
    labelOf = (l) => index.get(l as string)!;
  }
  if (kind === 'text') {
    return { kind, examples: rows.map((r) => ({ text: r.text!, label: labelOf(r.label) })), classNames };
  }
  const features = rows[0].image!.length;
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
    labels[i] = labelOf(r.label);
  });
  return { kind, images, labels, n: rows.length, features, classNames };
}

function checkText(file: string, line: number, text: unknown): string {
  if (typeof text !== 'string' || text.trim() === '') {
    throw rowError(file, line, `text is ${JSON.stringify(text)?.slice(0, 60)}; expected a non-empty string`);
  }
  return text;
}

function checkImage(file: string, line: number, image: unknown[]): number[] {
  if (image.length === 0) throw rowError(file, line, 'image is empty; expected at least one value');
  for (let i = 0; i < image.length; i++) {
    const v = image[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw rowError(file, line, `image value ${i} is ${JSON.stringify(v)}; expected a finite number`);
    }
  }
  return image as number[];
}

/**
 * Loads a JSON Lines file: one JSON object per line, every row {text, label} or every row {image, label}
 * (image: an array of numbers). Labels are all integers >= 0 or all strings. Blank lines are skipped.
 */
export function loadJsonl(file: string): UserDataset {
  const lines = readFileSync(file, 'utf8').split('\n');
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
      throw rowError(file, lineNo, `not valid JSON (${(e as Error).message})`);
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      throw rowError(
        file,
        lineNo,
        `row is ${Array.isArray(obj) ? 'an array' : JSON.stringify(obj)}; expected an object`,
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
  return finish(file, kind ?? 'text', rows);
}

/**
 * Loads a CSV file with a header row of exactly `text,label` or `image,label` (either order). An image is its
 * values separated by spaces. Labels that parse as integers >= 0 are integers, otherwise strings.
 */
export function loadCsv(file: string): UserDataset {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(readFileSync(file), { info: true, skip_empty_lines: true, bom: true }) as unknown as typeof records;
  } catch (e) {
    throw new ValidationError(`${file}: not valid CSV (${(e as Error).message})`, { cause: e });
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
  return finish(file, kind, rows);
}
