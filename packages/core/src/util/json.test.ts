// Tests of the JSON checks: nesting limit before JSON.parse, duplicate keys, and messages naming the source.
import { describe, expect, it } from 'vitest';
import { FormatError } from '../errors.js';
import { MAX_JSON_DEPTH, parseJsonText, scanJson } from './json.js';

function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
    return (e as Error).message;
  }
  throw new Error('expected a FormatError');
}

describe('parseJsonText', () => {
  it('parses valid JSON, strings holding brackets and escaped quotes included', () => {
    const text = '{"a":"[[{{\\"}}","b":[1,{"c":"\\\\"}]}';
    expect(parseJsonText(text, 'x.json', { rejectDuplicateKeys: true })).toEqual(JSON.parse(text));
    expect(scanJson(text).depth).toBe(3);
  });

  it('refuses nesting past the limit before any recursive walk of the value could overflow the stack', () => {
    const deep = `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`;
    expect(message(() => parseJsonText(deep, '/m/config.json'))).toBe(
      `/m/config.json nests arrays/objects more than ${MAX_JSON_DEPTH} levels deep (at character ${MAX_JSON_DEPTH}); at most ${MAX_JSON_DEPTH} levels are allowed`,
    );
    const atLimit = `${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}`;
    expect(() => parseJsonText(atLimit, 'x')).not.toThrow();
    expect(message(() => parseJsonText('{"a":[[1]]}', 'x', { maxDepth: 2 }))).toMatch(/more than 2 levels deep/);
  });

  it('names the source of invalid JSON', () => {
    expect(message(() => parseJsonText('{"a":', '/m/config.json'))).toMatch(/^\/m\/config\.json is not valid JSON: /);
  });

  it('finds a repeated key and the path of its object only when asked', () => {
    const text = '{"a":{"x":1,"y":[{"k":1},{"k":2,"k":3}]}}';
    expect(parseJsonText(text, 'x')).toEqual({ a: { x: 1, y: [{ k: 1 }, { k: 3 }] } });
    expect(message(() => parseJsonText(text, 'f.json', { rejectDuplicateKeys: true }))).toMatch(
      /^f\.json repeats the key "k" in the object at a\.y\[1\] \(character \d+\); every key must appear once$/,
    );
    // values equal to keys, and keys repeated in sibling objects, are not duplicates
    expect(scanJson('{"a":"a","b":{"a":1},"c":{"a":2}}', { duplicates: true }).duplicate).toBeUndefined();
    expect(scanJson('{"a\\u0062":1,"ab":2}', { duplicates: true }).duplicate?.key).toBe('ab');
  });
});
