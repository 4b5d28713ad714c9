// R serialisation reader: values written by an independent XDR writer in this file, the errors for corrupt or
// unsupported input, lazy-load databases, and the real janeaustenr database (six novels, 4.0M characters).

import { deflateSync, gzipSync } from 'node:zlib';
import { FormatError } from '@offramp/core';
import { describe, expect, it } from 'vitest';
import { AUSTEN_HELD_OUT, loadAusten } from './austen.js';
import { readCacheFile } from './cache.js';
import { R_NA_INTEGER, readLazyLoadDb, readRds, rListGet, rNames, unserializeR } from './rdata.js';

// --- A minimal XDR writer (R's serialize() layout), written from the format description. ---
const UTF8 = 1 << 3;
const LATIN1 = 1 << 2;
const ASCII = 1 << 6;

class Xdr {
  private bytes: number[] = [];
  private symbols = new Map<string, number>();
  int(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, false);
    this.bytes.push(...b);
    return this;
  }
  double(v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, false);
    this.bytes.push(...b);
    return this;
  }
  raw(b: ArrayLike<number>): this {
    this.bytes.push(...Array.from(b));
    return this;
  }
  header(version = 3): this {
    this.raw([0x58, 0x0a]).int(version).int(0x040201).int(0x030500);
    if (version === 3) this.int(5).raw(new TextEncoder().encode('UTF-8'));
    return this;
  }
  flags(type: number, o: { attr?: boolean; tag?: boolean; levels?: number } = {}): this {
    return this.int(type | (o.attr ? 1 << 9 : 0) | (o.tag ? 1 << 10 : 0) | ((o.levels ?? 0) << 12));
  }
  charsxp(s: string | null, levels = UTF8, bytes?: number[]): this {
    if (s === null) return this.flags(9).int(-1);
    const b = bytes ?? Array.from(new TextEncoder().encode(s));
    return this.flags(9, { levels }).int(b.length).raw(b);
  }
  symbol(name: string): this {
    const ref = this.symbols.get(name);
    if (ref !== undefined) return this.int((ref << 8) | 255);
    this.symbols.set(name, this.symbols.size + 1);
    return this.flags(1).charsxp(name, ASCII);
  }
  /** A tagged pairlist of (name, writer) entries. */
  pairlist(entries: [string, (w: Xdr) => void][]): this {
    for (const [tag, write] of entries) {
      this.flags(2, { tag: true }).symbol(tag);
      write(this);
    }
    return this.int(254);
  }
  strsxp(values: (string | null)[], names?: string[]): this {
    this.flags(16, { attr: names !== undefined }).int(values.length);
    for (const v of values) this.charsxp(v);
    if (names) this.pairlist([['names', (w) => w.strsxp(names)]]);
    return this;
  }
  intsxp(values: number[], type = 13): this {
    this.flags(type).int(values.length);
    for (const v of values) this.int(v);
    return this;
  }
  namedList(entries: [string, (w: Xdr) => void][]): this {
    this.flags(19, { attr: true }).int(entries.length);
    for (const [, write] of entries) write(this);
    return this.pairlist([['names', (w) => w.strsxp(entries.map(([n]) => n))]]);
  }
  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

describe('unserializeR', () => {
  it('reads a character vector with NA, UTF-8 and Latin-1 strings', () => {
    const w = new Xdr().header().flags(16).int(4);
    w.charsxp('plain', ASCII).charsxp('café').charsxp(null).charsxp('x', LATIN1, [0x63, 0x61, 0x66, 0xe9]);
    const v = unserializeR(w.done());
    expect(v).toEqual({ type: 'character', value: ['plain', 'café', null, 'café'], attributes: new Map() });
  });

  it('reads a named list of integer, double, logical and raw vectors, with symbol references', () => {
    const w = new Xdr().header().namedList([
      ['ints', (x) => x.intsxp([1, -2, R_NA_INTEGER])],
      ['reals', (x) => x.flags(14).int(2).double(1.5).double(-0.25)],
      ['flags', (x) => x.intsxp([1, 0, R_NA_INTEGER], 10)],
      ['bytes', (x) => x.flags(24).int(3).raw([0, 127, 255])],
      ['named', (x) => x.strsxp(['p', 'q'], ['first', 'second'])],
    ]);
    const v = unserializeR(w.done());
    expect(v.type).toBe('list');
    expect(rNames(v)).toEqual(['ints', 'reals', 'flags', 'bytes', 'named']);
    expect(rListGet(v, 'ints')).toMatchObject({ type: 'integer', value: Int32Array.from([1, -2, R_NA_INTEGER]) });
    expect(rListGet(v, 'reals')).toMatchObject({ type: 'double', value: Float64Array.from([1.5, -0.25]) });
    expect(rListGet(v, 'flags')).toMatchObject({ type: 'logical' });
    expect(rListGet(v, 'bytes')).toMatchObject({ type: 'raw', value: Uint8Array.from([0, 127, 255]) });
    // The second `names` symbol is written as a reference to the first.
    expect(rNames(rListGet(v, 'named')!)).toEqual(['first', 'second']);
    expect(rListGet(v, 'missing')).toBeUndefined();
  });

  it('reads format version 2 (no native encoding) and a long-vector length', () => {
    const v2 = new Xdr().header(2).strsxp(['a']).done();
    expect(unserializeR(v2)).toMatchObject({ type: 'character', value: ['a'] });
    const long = new Xdr().header().flags(13).int(-1).int(0).int(2).int(7).int(8).done();
    expect(unserializeR(long)).toMatchObject({ type: 'integer', value: Int32Array.from([7, 8]) });
  });

  it('reads gzip-compressed and plain .rds bytes alike', () => {
    const bytes = new Xdr().header().strsxp(['z']).done();
    expect(readRds(gzipSync(bytes))).toEqual(readRds(bytes));
  });

  const ok = () => new Xdr().header().strsxp(['hello', 'world']).done();
  const bad: [string, () => Uint8Array, RegExp][] = [
    ['ASCII format', () => Uint8Array.from([0x41, 0x0a, ...ok().slice(2)]), /format is ASCII; only XDR/],
    ['format version 4', () => new Xdr().raw([0x58, 0x0a]).int(4).int(0).int(0).done(), /version 4; versions 2 and 3/],
    [
      'truncated data',
      () => ok().subarray(0, ok().length - 3),
      /string needs 5 bytes but only 2 remain \(data truncated\)/,
    ],
    ['trailing bytes', () => Uint8Array.from([...ok(), 0, 0]), /2 trailing bytes after the value/],
    [
      'a closure',
      () => new Xdr().header().flags(3).done(),
      /byte 23: CLOSXP values are not supported; supported: NULL/,
    ],
    ['an environment', () => new Xdr().header().flags(4).int(0).done(), /ENVSXP values are not supported/],
    ['an unknown type', () => new Xdr().header().flags(99).done(), /unknown item type 99/],
    [
      'a negative string length',
      () => new Xdr().header().flags(16).int(1).flags(9).int(-5).done(),
      /string length is -5/,
    ],
    [
      'invalid UTF-8',
      () => new Xdr().header().flags(16).int(1).charsxp('', UTF8, [0xff, 0xfe]).done(),
      /not valid UTF-8/,
    ],
    [
      'a length beyond the data',
      () => new Xdr().header().flags(13).int(1_000_000).done(),
      /INTSXP of length 1000000 needs at least 4000000 bytes/,
    ],
    [
      'a dangling reference',
      () =>
        new Xdr()
          .header()
          .flags(19)
          .int(1)
          .int((3 << 8) | 255)
          .done(),
      /reference to item 3, but only 0/,
    ],
    [
      'a non-CHARSXP string element',
      () => new Xdr().header().flags(16).int(1).intsxp([1]).done(),
      /element 0 of a character vector is INTSXP/,
    ],
    [
      'deep nesting',
      () => {
        const w = new Xdr().header();
        for (let i = 0; i < 600; i++) w.flags(19).int(1);
        return w.int(254).done();
      },
      /nested deeper than 512 levels/,
    ],
  ];
  for (const [name, make, message] of bad) {
    it(`rejects ${name}`, () => {
      expect(() => unserializeR(make(), 'test.rds')).toThrow(FormatError);
      expect(() => unserializeR(make(), 'test.rds')).toThrow(message);
    });
  }
});

describe('readLazyLoadDb', () => {
  function db(chunkOf: (payload: Uint8Array) => Uint8Array, lengthDelta = 0) {
    const payload = new Xdr().header().strsxp(['line 1', 'line 2']).done();
    const chunk = chunkOf(payload);
    const rdb = Uint8Array.from([9, 9, 9, ...chunk]);
    const rdx = gzipSync(
      new Xdr()
        .header()
        .namedList([
          ['variables', (w) => w.namedList([['lines', (x) => x.intsxp([3, chunk.length + lengthDelta])]])],
          ['references', (w) => w.flags(19).int(0)],
          ['compressed', (w) => w.intsxp([1], 10)],
        ])
        .done(),
    );
    return { rdx, rdb };
  }
  const zlibChunk = (payload: Uint8Array, declared = payload.length) => {
    const z = deflateSync(payload);
    const out = new Uint8Array(4 + z.length);
    new DataView(out.buffer).setUint32(0, declared, false);
    out.set(z, 4);
    return out;
  };

  it('reads a variable from a zlib chunk at its offset', () => {
    const { rdx, rdb } = db((p) => zlibChunk(p));
    const vars = readLazyLoadDb(rdx, rdb, 'x.rdx', 'x.rdb');
    expect([...vars.keys()]).toEqual(['lines']);
    expect(vars.get('lines')).toMatchObject({ type: 'character', value: ['line 1', 'line 2'] });
  });

  it('rejects a chunk past the end, a wrong length header and a damaged stream', () => {
    const past = db((p) => zlibChunk(p), 10);
    expect(() => readLazyLoadDb(past.rdx, past.rdb, 'x.rdx', 'x.rdb')).toThrow(
      /x.rdb \(variable `lines`, bytes 3-\d+\): chunk ends past the end of the \d+-byte file/,
    );
    const wrong = db((p) => zlibChunk(p, p.length + 1));
    expect(() => readLazyLoadDb(wrong.rdx, wrong.rdb, 'x.rdx', 'x.rdb')).toThrow(
      /inflates to \d+ bytes, its header says/,
    );
    const damaged = db((p) => {
      const c = zlibChunk(p);
      c[6] ^= 0xff;
      return c;
    });
    expect(() => readLazyLoadDb(damaged.rdx, damaged.rdb, 'x.rdx', 'x.rdb')).toThrow(FormatError);
  });

  it('rejects an index that is not a lazy-load index', () => {
    const rdx = gzipSync(new Xdr().header().strsxp(['a']).done());
    expect(() => readLazyLoadDb(rdx, new Uint8Array(0), 'x.rdx')).toThrow('x.rdx: lazy-load index is a character');
  });
});

describe('janeaustenr database (real data)', () => {
  it('holds six character vectors of lines', () => {
    const vars = readLazyLoadDb(readCacheFile('austen', 'Rdata.rdx'), readCacheFile('austen', 'Rdata.rdb'));
    expect([...vars.keys()].sort()).toEqual([
      'emma',
      'mansfieldpark',
      'northangerabbey',
      'persuasion',
      'prideprejudice',
      'sensesensibility',
    ]);
    for (const v of vars.values()) {
      expect(v.type).toBe('character');
      if (v.type === 'character') expect(v.value.length).toBeGreaterThan(7000);
    }
  });

  it('loadAusten: six novels, about 4.0M characters, 81 distinct, Persuasion held out', () => {
    const { novels, train, heldOut } = loadAusten();
    expect(novels.map((n) => n.title)).toEqual([
      'Sense & Sensibility',
      'Pride & Prejudice',
      'Mansfield Park',
      'Emma',
      'Northanger Abbey',
      'Persuasion',
    ]);
    const chars = novels.reduce((s, n) => s + n.text.length, 0);
    expect(chars).toBeGreaterThan(3_950_000);
    expect(chars).toBeLessThan(4_100_000);
    expect(new Set(novels.map((n) => n.text).join('')).size).toBe(81);
    for (const n of novels) expect(n.text.length).toBeGreaterThan(400_000);
    expect(novels[1].text.startsWith('PRIDE AND PREJUDICE')).toBe(true);
    expect(novels[1].text).toContain(
      'It is a truth universally acknowledged, that a single man in possession\nof a good fortune, must be in want of a wife.',
    );
    expect(AUSTEN_HELD_OUT).toBe('Persuasion');
    expect(heldOut.title).toBe('Persuasion');
    expect(train.map((n) => n.title)).not.toContain('Persuasion');
    expect(train.length).toBe(5);
    expect(loadAusten({ heldOut: 'Emma' }).heldOut.key).toBe('emma');
    expect(() => loadAusten({ heldOut: 'Ulysses' })).toThrow(/heldOut is "Ulysses"; expected one of Sense/);
  });
});
