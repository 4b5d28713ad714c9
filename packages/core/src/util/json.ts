// JSON text checks that JSON.parse does not make: a nesting limit (a deeply nested document otherwise ends
// in "Maximum call stack size exceeded", naming nothing) and duplicate keys in one object (JSON.parse keeps
// the last silently). One linear scan; strings are skipped with their escapes.
import { FormatError } from '../errors.js';

/** Deepest nesting of arrays and objects accepted by {@link parseJsonText} by default. */
export const MAX_JSON_DEPTH = 256;

export interface JsonScan {
  /** Deepest nesting of arrays/objects seen (stops counting past the limit). */
  depth: number;
  /** Byte-agnostic character position where the nesting first exceeded the limit. */
  tooDeepAt?: number;
  /** The first key repeated within one object, with the path of that object (`(root)`, `a.b`, `a[3]`). */
  duplicate?: { key: string; path: string; at: number };
}

interface Frame {
  kind: 'object' | 'array';
  keys?: Set<string>;
  expectKey: boolean;
  lastKey?: string;
  index: number;
  label: string;
}

/**
 * Scans JSON text for its nesting depth and (with `duplicates`) the first key repeated within one object.
 * Meant to run on text JSON.parse accepts (the depth part works on any text).
 */
export function scanJson(text: string, o: { maxDepth?: number; duplicates?: boolean } = {}): JsonScan {
  const maxDepth = o.maxDepth ?? MAX_JSON_DEPTH;
  const stack: Frame[] = [];
  const out: JsonScan = { depth: 0 };
  const childLabel = (): string => {
    const top = stack[stack.length - 1];
    if (!top) return '(root)';
    const base = top.label === '(root)' ? '' : top.label;
    if (top.kind === 'array') return `${base}[${top.index}]`;
    const k = top.lastKey ?? '?';
    return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? (base ? `${base}.${k}` : k) : `${base}[${JSON.stringify(k)}]`;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22 /* " */) {
      const start = i;
      i++;
      let escaped = false;
      for (; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c === 0x5c /* \ */) {
          escaped = true;
          i++;
        } else if (c === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (o.duplicates && top?.kind === 'object' && top.expectKey) {
        const raw = text.slice(start, i + 1);
        let key = raw.slice(1, -1);
        if (escaped) {
          try {
            key = JSON.parse(raw) as string;
          } catch {
            // invalid JSON: JSON.parse reports it
          }
        }
        if (top.keys!.has(key) && !out.duplicate) out.duplicate = { key, path: top.label, at: start };
        top.keys!.add(key);
        top.lastKey = key;
        top.expectKey = false;
      }
    } else if (ch === 0x7b /* { */ || ch === 0x5b /* [ */) {
      const label = o.duplicates ? childLabel() : '';
      stack.push({
        kind: ch === 0x7b ? 'object' : 'array',
        keys: ch === 0x7b && o.duplicates ? new Set() : undefined,
        expectKey: ch === 0x7b,
        index: 0,
        label,
      });
      if (stack.length > out.depth) out.depth = stack.length;
      if (stack.length > maxDepth) {
        out.tooDeepAt = i;
        return out;
      }
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      stack.pop();
    } else if (ch === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.kind === 'object') top.expectKey = true;
      else if (top) top.index++;
    }
  }
  return out;
}

export interface ParseJsonOptions {
  /** Deepest nesting accepted (default {@link MAX_JSON_DEPTH}). */
  maxDepth?: number;
  /** Reject a key repeated within one object. */
  rejectDuplicateKeys?: boolean;
}

/**
 * JSON.parse with errors that name `source` and the problem: invalid JSON, nesting deeper than the limit
 * (checked before parsing, so no stack overflow), and optionally duplicate keys.
 */
export function parseJsonText(text: string, source: string, o: ParseJsonOptions = {}): unknown {
  const maxDepth = o.maxDepth ?? MAX_JSON_DEPTH;
  const pre = scanJson(text, { maxDepth });
  if (pre.tooDeepAt !== undefined)
    throw new FormatError(
      `${source} nests arrays/objects more than ${maxDepth} levels deep (at character ${pre.tooDeepAt}); at most ${maxDepth} levels are allowed`,
    );
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    // the parser's message quotes the text: escape control characters and cut it
    const why = JSON.stringify((e as Error).message).slice(1, -1);
    throw new FormatError(`${source} is not valid JSON: ${why.length > 160 ? `${why.slice(0, 160)}…` : why}`, {
      cause: e,
    });
  }
  if (o.rejectDuplicateKeys) {
    const d = scanJson(text, { maxDepth, duplicates: true }).duplicate;
    if (d)
      throw new FormatError(
        `${source} repeats the key ${JSON.stringify(d.key.length > 80 ? `${d.key.slice(0, 80)}…` : d.key)} in the object at ${d.path} (character ${d.at}); every key must appear once`,
      );
  }
  return value;
}
