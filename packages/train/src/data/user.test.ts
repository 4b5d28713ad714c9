// User data loaders: JSONL and CSV with {text, label} or {image, label} rows, and strict errors with line numbers.

import { constants as bufferConstants } from 'node:buffer';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCsv, loadJsonl, USER_DATA_MAX_BYTES, USER_IMAGE_MAX_VALUES } from './user.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'userdata-'));
let counter = 0;
const hasControl = (s: string) => [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
function file(ext: string, content: string): string {
  const p = path.join(dir, `f${counter++}.${ext}`);
  writeFileSync(p, content);
  return p;
}

describe('loadJsonl', () => {
  it('reads text rows with string labels (classes sorted) and skips blank lines', () => {
    const f = file(
      'jsonl',
      '{"text":"good film","label":"pos"}\n\n{"label":"neg","text":"bad"}\n{"text":"ok","label":"pos"}\n',
    );
    expect(loadJsonl(f)).toEqual({
      kind: 'text',
      examples: [
        { text: 'good film', label: 1 },
        { text: 'bad', label: 0 },
        { text: 'ok', label: 1 },
      ],
      classNames: ['neg', 'pos'],
    });
  });

  it('reads image rows with integer labels', () => {
    const f = file('jsonl', '{"image":[0,0.5,1],"label":2}\n{"image":[1,1,0],"label":0}\n');
    const d = loadJsonl(f);
    expect(d.kind).toBe('image');
    if (d.kind !== 'image') return;
    expect([d.n, d.features]).toEqual([2, 3]);
    expect(Array.from(d.images)).toEqual([0, 0.5, 1, 1, 1, 0]);
    expect(Array.from(d.labels)).toEqual([2, 0]);
    expect(d.classNames).toEqual(['0', '1', '2']);
  });

  const bad: [string, string, RegExp][] = [
    ['invalid JSON', '{"text":"a","label":0}\n{"text":"b",\n', /line 2: not valid JSON/],
    ['an array row', '[1,2]\n', /line 1: row is an array; expected an object/],
    [
      'extra fields',
      '{"text":"a","label":0,"id":3}\n',
      /line 1: fields are \{text, label, id\}; expected exactly \{text, label\} or \{image, label\}/,
    ],
    [
      'mixed kinds',
      '{"text":"a","label":0}\n{"image":[1],"label":0}\n',
      /line 2: row is \{image, label\} but earlier rows are \{text, label\}/,
    ],
    [
      'a negative label',
      '{"text":"a","label":-1}\n',
      /line 1: label is -1; expected an integer in \[0, 100000\) or a non-empty string/,
    ],
    ['a fractional label', '{"text":"a","label":0.5}\n', /line 1: label is 0.5/],
    [
      'mixed label types',
      '{"text":"a","label":0}\n\n{"text":"b","label":"x"}\n',
      /line 3: label "x" is a string, earlier labels are numbers/,
    ],
    ['an empty text', '{"text":"  ","label":0}\n', /line 1: text is " {2}"; expected a non-empty string/],
    ['a non-numeric pixel', '{"image":[0,"x"],"label":0}\n', /line 1: image value 1 is "x"; expected a finite number/],
    [
      'images of different sizes',
      '{"image":[0,1],"label":0}\n{"image":[0],"label":1}\n',
      /line 2: image has 1 values, the first image has 2/,
    ],
    ['no rows', '\n\n', /no rows/],
  ];
  for (const [name, content, message] of bad) {
    it(`rejects ${name}, naming the file and line`, () => {
      const f = file('jsonl', content);
      expect(() => loadJsonl(f)).toThrow(message);
      expect(() => loadJsonl(f)).toThrow(f);
    });
  }
});

describe('loadCsv', () => {
  it('reads text rows (quoted fields with commas and newlines) with integer labels', () => {
    const f = file('csv', 'label,text\n1,"great, really"\n0,"line one\nline two"\n1,fine\n');
    expect(loadCsv(f)).toEqual({
      kind: 'text',
      examples: [
        { text: 'great, really', label: 1 },
        { text: 'line one\nline two', label: 0 },
        { text: 'fine', label: 1 },
      ],
      classNames: ['0', '1'],
    });
  });

  it('reads image rows of space-separated values with string labels', () => {
    const f = file('csv', 'image,label\n0 0.25 1e-1,cat\n1 .5 -2,dog\n');
    const d = loadCsv(f);
    if (d.kind !== 'image') throw new Error('expected image data');
    expect(Array.from(d.images)).toEqual([0, 0.25, 0.1, 1, 0.5, -2].map(Math.fround));
    expect(Array.from(d.labels)).toEqual([0, 1]);
    expect(d.classNames).toEqual(['cat', 'dog']);
  });

  const bad: [string, string, RegExp][] = [
    ['a wrong header', 'sentence,label\na,0\n', /line 1: fields are \{sentence, label\}/],
    ['a short row', 'text,label\na,0\nb\n', /not valid CSV .*line 3/i],
    ['an empty text', 'text,label\na,0\n"",1\n', /line 3: text is ""/],
    ['a bad pixel', 'image,label\n0 1,a\n0 x,b\n', /line 3: image value 1 is "x"/],
    ['an empty label', 'text,label\na,0\nb,\n', /line 3: label is ""/],
    ['an empty file', '', /empty; expected a header row/],
  ];
  for (const [name, content, message] of bad) {
    it(`rejects ${name}`, () => {
      const f = file('csv', content);
      expect(() => loadCsv(f)).toThrow(message);
    });
  }
});

describe('labels mapped through given class names', () => {
  it('maps a one-class file by the model classes, not by its own label set', () => {
    const f = file('jsonl', '{"text":"win money","label":"spam"}\n{"text":"cheap pills","label":"spam"}\n');
    const own = loadJsonl(f);
    expect(own.kind === 'text' && own.examples.map((x) => x.label)).toEqual([0, 0]);
    const d = loadJsonl(f, { classNames: ['ham', 'spam'] });
    expect(d.classNames).toEqual(['ham', 'spam']);
    expect(d.kind === 'text' && d.examples.map((x) => x.label)).toEqual([1, 1]);
    const c = loadCsv(file('csv', 'text,label\nhello,spam\n'), { classNames: ['ham', 'spam'] });
    expect(c.kind === 'text' && c.examples[0].label).toBe(1);
  });

  it('takes integer labels as class indices below the number of classes', () => {
    const f = file('jsonl', '{"image":[0,1],"label":2}\n');
    const d = loadJsonl(f, { classNames: ['a', 'b', 'c'] });
    expect(d.kind === 'image' && Array.from(d.labels)).toEqual([2]);
    expect(loadJsonl(f, { numClasses: 3 }).classNames).toEqual(['0', '1', '2']);
    expect(() => loadJsonl(f, { numClasses: 2 })).toThrow(
      /line 1: label 2 is not a class of the model: labels are 0..1/,
    );
  });

  it('refuses an unseen label, naming the label, the file and the line', () => {
    const f = file('jsonl', '{"text":"a","label":"ham"}\n\n{"text":"b","label":"eggs"}\n');
    expect(() => loadJsonl(f, { classNames: ['ham', 'spam'] })).toThrow(
      `${f}, line 3: label "eggs" is not one of the 2 classes of the model ("ham", "spam")`,
    );
    expect(() => loadJsonl(f, { classNames: ['ham', 'spam'], classesOf: 'train.jsonl' })).toThrow(
      /label "eggs" is not one of the 2 classes of train.jsonl/,
    );
    expect(() => loadJsonl(f, { numClasses: 2 })).toThrow(
      /line 1: label "ham" cannot be mapped: the model has no class names \(meta.class_names\); use integer labels 0..1/,
    );
  });
});

describe('the kind of rows wanted', () => {
  it('refuses rows of the other kind before looking at the labels', () => {
    const f = file('jsonl', '{"image":[0,1],"label":7}\n');
    expect(() => loadJsonl(f, { kind: 'text', numClasses: 2 })).toThrow(
      `${f} holds image data ({image, label} rows) but the model takes text data ({text, label} rows)`,
    );
  });
});

describe('reading data files', () => {
  it('escapes control characters and cuts long text echoed in messages', () => {
    const long = `x${'\u0007'.repeat(3)}${'y'.repeat(500)}`;
    const header = file('csv', `${long},label\na,0\n`);
    let msg = '';
    try {
      loadCsv(header);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain('fields are {"x\\u0007\\u0007\\u0007yyy');
    expect(hasControl(msg)).toBe(false);
    expect(msg.length).toBeLessThan(header.length + 200);
    const label = file('jsonl', `{"text":"a","label":0}\n{"text":"b","label":"\\u001b[31m${'z'.repeat(300)}"}\n`);
    expect(() => loadJsonl(label)).toThrow(/line 2: label "\\u001b\[31mz{60,}… is a string/);
    const badJson = file('jsonl', `{"text":"\u0001${'q'.repeat(300)}\n`);
    try {
      loadJsonl(badJson);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/line 1: not valid JSON/);
    expect(hasControl(msg)).toBe(false);
    expect(msg.length).toBeLessThan(badJson.length + 120);
  });

  it('refuses a file over the size cap, a directory and a missing file, naming the file and the limit', () => {
    const f = file('jsonl', '{"text":"a","label":0}\n'.repeat(100));
    expect(() => loadJsonl(f, { maxBytes: 1000 })).toThrow(
      `${f} is 2.2 KiB, larger than the 1000 bytes allowed for a JSON Lines file`,
    );
    expect(() => loadCsv(f, { maxBytes: 1000 })).toThrow(/larger than the 1000 bytes allowed for a CSV file/);
    expect(() => loadJsonl(dir)).toThrow(`${dir} is a directory; expected a JSON Lines file`);
    expect(() => loadJsonl(path.join(dir, 'nope.jsonl'))).toThrow(/nope.jsonl does not exist/);
    expect(USER_DATA_MAX_BYTES).toBeLessThanOrEqual(bufferConstants.MAX_STRING_LENGTH);
  });

  it('refuses a file larger than a string can hold before reading it, and a device', () => {
    // a sparse file one byte over the default cap: refused from its size, never read
    const big = path.join(dir, 'big.jsonl');
    writeFileSync(big, '');
    truncateSync(big, USER_DATA_MAX_BYTES + 1);
    let msg = '';
    try {
      loadJsonl(big);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/big.jsonl is [\d.]+ MiB, larger than the [\d.]+ MiB allowed for a JSON Lines file/);
    rmSync(big);
    expect(msg).not.toMatch(/Invalid typed array length|Cannot create a string/);
    expect(() => loadCsv('/dev/zero')).toThrow('/dev/zero is not a regular file (a device, FIFO or socket)');
  });

  it('refuses an image dataset too large for one array instead of an "Invalid typed array length"', () => {
    const f = file('jsonl', '{"image":[0,1,2,3],"label":0}\n'.repeat(5));
    expect(() => loadJsonl(f, { maxImageValues: 16 })).toThrow(
      `${f}: 5 images of 4 values are 20 values, more than the 16 one dataset may hold; use fewer rows`,
    );
    expect(loadJsonl(f, { maxImageValues: 20 }).kind).toBe('image');
    expect(USER_IMAGE_MAX_VALUES).toBeGreaterThanOrEqual(USER_DATA_MAX_BYTES / 2);
  });
});
