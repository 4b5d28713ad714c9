// Reader for R's serialisation format (XDR, versions 2 and 3) and R lazy-load databases (`.rdx` index +
// `.rdb` chunks). Supports the value types data sets use: NULL, symbols, pairlists, character, logical,
// integer, double, raw vectors and generic lists, with attributes. Anything else is rejected with an error.

import { inflateSync } from 'node:zlib';
import { FormatError } from '@offramp/core';
import { gunzip, isGzip } from './idx.js';

export type RAttributes = Map<string, RValue>;

/** A value read from R. Integer and logical NA is -2147483648; character NA is null. */
export type RValue =
  | { type: 'NULL' }
  | { type: 'symbol'; name: string }
  | { type: 'character'; value: (string | null)[]; attributes: RAttributes }
  | { type: 'logical'; value: Int32Array; attributes: RAttributes }
  | { type: 'integer'; value: Int32Array; attributes: RAttributes }
  | { type: 'double'; value: Float64Array; attributes: RAttributes }
  | { type: 'raw'; value: Uint8Array; attributes: RAttributes }
  | { type: 'list'; value: RValue[]; attributes: RAttributes }
  | { type: 'pairlist'; value: { tag: string | null; value: RValue }[]; attributes: RAttributes };

export const R_NA_INTEGER = -2147483648;

// SEXP type codes (R's Rinternals.h) and the serialisation-only pseudo types (serialize.c).
const SXP = {
  SYM: 1,
  LIST: 2,
  CLO: 3,
  ENV: 4,
  PROM: 5,
  LANG: 6,
  SPECIAL: 7,
  BUILTIN: 8,
  CHAR: 9,
  LGL: 10,
  INT: 13,
  REAL: 14,
  CPLX: 15,
  STR: 16,
  DOT: 17,
  ANY: 18,
  VEC: 19,
  EXPR: 20,
  BCODE: 21,
  EXTPTR: 22,
  WEAKREF: 23,
  RAW: 24,
  S4: 25,
  ALTREP: 238,
  ATTRLIST: 239,
  ATTRLANG: 240,
  BASEENV: 241,
  EMPTYENV: 242,
  BCREPREF: 243,
  BCREPDEF: 244,
  GENERICREF: 245,
  CLASSREF: 246,
  PERSIST: 247,
  PACKAGE: 248,
  NAMESPACE: 249,
  BASENAMESPACE: 250,
  MISSINGARG: 251,
  UNBOUNDVALUE: 252,
  GLOBALENV: 253,
  NILVALUE: 254,
  REF: 255,
} as const;

const SXP_NAMES: Record<number, string> = Object.fromEntries(Object.entries(SXP).map(([k, v]) => [v, `${k}SXP`]));

const SUPPORTED = 'NULL, symbol, pairlist, character, logical, integer, double, raw and list';

// Flags of a CHARSXP's encoding (the "levels" bits of the item flags).
const LATIN1_MASK = 1 << 2;
const BYTES_MASK = 1 << 1;

const MAX_DEPTH = 512;

class XdrReader {
  private readonly view: DataView;
  pos = 0;
  private readonly refs: RValue[] = [];
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });
  private readonly latin1 = new TextDecoder('latin1');
  nativeLatin1 = false;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly source: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(message: string, at = this.pos): FormatError {
    return new FormatError(`${this.source}: R serialisation, byte ${at}: ${message}`);
  }

  private need(n: number, what: string): void {
    if (n > this.bytes.length - this.pos) {
      throw this.fail(`${what} needs ${n} bytes but only ${this.bytes.length - this.pos} remain (data truncated)`);
    }
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  int(what = 'integer'): number {
    this.need(4, what);
    const v = this.view.getInt32(this.pos, false);
    this.pos += 4;
    return v;
  }

  bytesOf(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /** Vector length: a non-negative int, or -1 followed by a 64-bit length as two ints. */
  private length(type: number, elementBytes: number): number {
    const at = this.pos;
    let n = this.int('vector length');
    if (n === -1) {
      const hi = this.int('long vector length');
      const lo = this.int('long vector length');
      if (hi < 0 || lo < 0) throw this.fail(`long vector length (${hi}, ${lo}) is negative`, at);
      n = hi * 2 ** 32 + lo;
    } else if (n < 0) {
      throw this.fail(`${SXP_NAMES[type]} length is ${n}; lengths are non-negative (or -1 for a long vector)`, at);
    }
    if (n * elementBytes > this.remaining) {
      throw this.fail(
        `${SXP_NAMES[type]} of length ${n} needs at least ${n * elementBytes} bytes but only ${this.remaining} remain (data truncated)`,
        at,
      );
    }
    return n;
  }

  header(): void {
    const magic = this.bytesOf(2, 'format magic');
    const m = String.fromCharCode(magic[0], magic[1]);
    if (m !== 'X\n') {
      const known: Record<string, string> = { 'A\n': 'ASCII', 'B\n': 'native binary' };
      throw this.fail(
        `format is ${known[m] ?? `unknown (bytes 0x${magic[0].toString(16)} 0x${magic[1].toString(16)})`}; only XDR ("X\\n") is supported`,
        0,
      );
    }
    const version = this.int('format version');
    if (version !== 2 && version !== 3) {
      throw this.fail(`serialisation format version ${version}; versions 2 and 3 are supported`, 2);
    }
    this.int('writer R version');
    this.int('minimal reader R version');
    if (version === 3) {
      const n = this.int('native encoding length');
      if (n < 0 || n > 64) throw this.fail(`native encoding name length ${n} is outside [0, 64]`);
      const enc = this.latin1.decode(this.bytesOf(n, 'native encoding')).toUpperCase();
      this.nativeLatin1 = enc === 'LATIN1' || enc === 'ISO-8859-1' || enc === 'CP1252';
    }
  }

  private charsxp(flags: number): string | null {
    const at = this.pos;
    const n = this.int('string length');
    if (n === -1) return null;
    if (n < 0) throw this.fail(`string length is ${n}; expected >= 0 or -1 (NA)`, at);
    const b = this.bytesOf(n, 'string');
    const levels = flags >>> 12;
    if (levels & BYTES_MASK) {
      throw this.fail('string is marked as raw bytes (no encoding); only text strings are supported', at);
    }
    if (levels & LATIN1_MASK || (this.nativeLatin1 && !(levels & (1 << 3)))) return this.latin1.decode(b);
    try {
      return this.utf8.decode(b);
    } catch {
      throw this.fail(`string of ${n} bytes is not valid UTF-8`, at);
    }
  }

  private attributes(hasAttr: boolean, depth: number): RAttributes {
    const attrs: RAttributes = new Map();
    if (!hasAttr) return attrs;
    const at = this.pos;
    const list = this.item(depth + 1);
    if (list.type !== 'pairlist') throw this.fail(`attributes are a ${list.type}; expected a pairlist`, at);
    for (const { tag, value } of list.value) {
      if (tag === null) throw this.fail('an attribute has no name', at);
      attrs.set(tag, value);
    }
    return attrs;
  }

  item(depth = 0): RValue {
    if (depth > MAX_DEPTH) throw this.fail(`values nested deeper than ${MAX_DEPTH} levels`);
    const at = this.pos;
    const flags = this.int('item flags');
    const type = flags & 0xff;
    const hasAttr = (flags & (1 << 9)) !== 0;
    switch (type) {
      case SXP.NILVALUE:
        return { type: 'NULL' };
      case SXP.REF: {
        let index = flags >>> 8;
        if (index === 0) index = this.int('reference index');
        const ref = this.refs[index - 1];
        if (index < 1 || ref === undefined) {
          throw this.fail(`reference to item ${index}, but only ${this.refs.length} items can be referred to`, at);
        }
        return ref;
      }
      case SXP.SYM: {
        const nameAt = this.pos;
        const nameFlags = this.int('symbol name flags');
        if ((nameFlags & 0xff) !== SXP.CHAR) {
          throw this.fail(
            `symbol name is ${SXP_NAMES[nameFlags & 0xff] ?? `type ${nameFlags & 0xff}`}; expected CHARSXP`,
            nameAt,
          );
        }
        const name = this.charsxp(nameFlags);
        if (name === null) throw this.fail('symbol name is NA', nameAt);
        const sym: RValue = { type: 'symbol', name };
        this.refs.push(sym);
        return sym;
      }
      case SXP.LIST: {
        // A pairlist: (attributes) (tag) car cdr, the cdr chain read iteratively.
        const value: { tag: string | null; value: RValue }[] = [];
        let attributes: RAttributes | null = null;
        let f = flags;
        for (;;) {
          const cellAttrs = this.attributes((f & (1 << 9)) !== 0, depth);
          if (attributes === null) attributes = cellAttrs;
          let tag: string | null = null;
          if (f & (1 << 10)) {
            const tagAt = this.pos;
            const t = this.item(depth + 1);
            if (t.type !== 'symbol') throw this.fail(`pairlist tag is a ${t.type}; expected a symbol`, tagAt);
            tag = t.name;
          }
          value.push({ tag, value: this.item(depth + 1) });
          const nextAt = this.pos;
          f = this.int('pairlist link flags');
          const nextType = f & 0xff;
          if (nextType === SXP.NILVALUE) break;
          if (nextType !== SXP.LIST) {
            throw this.fail(
              `pairlist continues with ${SXP_NAMES[nextType] ?? `type ${nextType}`}; expected LISTSXP or NULL`,
              nextAt,
            );
          }
        }
        return { type: 'pairlist', value, attributes: attributes ?? new Map() };
      }
      case SXP.CHAR: {
        // A bare CHARSXP outside a character vector (e.g. a symbol's name read through item()).
        const s = this.charsxp(flags);
        if (hasAttr) this.attributes(true, depth);
        return { type: 'character', value: [s], attributes: new Map() };
      }
      case SXP.STR: {
        const n = this.length(type, 8);
        const value: (string | null)[] = new Array(n);
        for (let i = 0; i < n; i++) {
          const elAt = this.pos;
          const f = this.int('string element flags');
          if ((f & 0xff) !== SXP.CHAR) {
            throw this.fail(
              `element ${i} of a character vector is ${SXP_NAMES[f & 0xff] ?? `type ${f & 0xff}`}; expected CHARSXP`,
              elAt,
            );
          }
          value[i] = this.charsxp(f);
          if (f & (1 << 9)) this.attributes(true, depth);
        }
        return { type: 'character', value, attributes: this.attributes(hasAttr, depth) };
      }
      case SXP.LGL:
      case SXP.INT: {
        const n = this.length(type, 4);
        const value = new Int32Array(n);
        for (let i = 0; i < n; i++) value[i] = this.int();
        return { type: type === SXP.LGL ? 'logical' : 'integer', value, attributes: this.attributes(hasAttr, depth) };
      }
      case SXP.REAL: {
        const n = this.length(type, 8);
        const value = new Float64Array(n);
        for (let i = 0; i < n; i++) value[i] = this.view.getFloat64(this.pos + 8 * i, false);
        this.pos += 8 * n;
        return { type: 'double', value, attributes: this.attributes(hasAttr, depth) };
      }
      case SXP.RAW: {
        const n = this.length(type, 1);
        const value = this.bytesOf(n, 'raw vector').slice();
        return { type: 'raw', value, attributes: this.attributes(hasAttr, depth) };
      }
      case SXP.VEC:
      case SXP.EXPR: {
        if (type === SXP.EXPR)
          throw this.fail(`EXPRSXP (expression vector) is not supported; supported: ${SUPPORTED}`, at);
        const n = this.length(type, 4);
        const value: RValue[] = new Array(n);
        for (let i = 0; i < n; i++) value[i] = this.item(depth + 1);
        return { type: 'list', value, attributes: this.attributes(hasAttr, depth) };
      }
      default: {
        const name = SXP_NAMES[type];
        throw this.fail(
          name
            ? `${name} values are not supported; supported: ${SUPPORTED}`
            : `unknown item type ${type} (flags 0x${(flags >>> 0).toString(16)})`,
          at,
        );
      }
    }
  }
}

/** Decodes one XDR-serialised R value (the bytes after decompression). `source` names the input in errors. */
export function unserializeR(bytes: Uint8Array, source = 'R data'): RValue {
  const r = new XdrReader(bytes, source);
  r.header();
  const value = r.item();
  if (r.remaining !== 0) throw r.fail(`${r.remaining} trailing bytes after the value`);
  return value;
}

/** Reads an `.rds`-style buffer: gzip-compressed or plain XDR serialisation. */
export function readRds(bytes: Uint8Array, source = 'R data'): RValue {
  let raw: Uint8Array;
  try {
    raw = isGzip(bytes) ? gunzip(bytes) : bytes;
  } catch (e) {
    throw new FormatError(`${source}: ${(e as Error).message}`, { cause: e });
  }
  if (raw.length >= 3 && raw[0] === 0x42 && raw[1] === 0x5a && raw[2] === 0x68) {
    throw new FormatError(`${source}: bzip2-compressed; only gzip-compressed or uncompressed data is supported`);
  }
  if (raw.length >= 6 && raw[0] === 0xfd && raw[1] === 0x37 && raw[2] === 0x7a) {
    throw new FormatError(`${source}: xz-compressed; only gzip-compressed or uncompressed data is supported`);
  }
  return unserializeR(raw, source);
}

/** The `names` attribute of a value, or null. */
export function rNames(v: RValue): (string | null)[] | null {
  if (!('attributes' in v)) return null;
  const n = v.attributes.get('names');
  return n?.type === 'character' ? n.value : null;
}

/** The element of a named list, or undefined. */
export function rListGet(v: RValue, name: string): RValue | undefined {
  if (v.type !== 'list') return undefined;
  const i = rNames(v)?.indexOf(name) ?? -1;
  return i >= 0 ? v.value[i] : undefined;
}

function keyOf(v: RValue | undefined): [number, number] | null {
  if (v === undefined || (v.type !== 'integer' && v.type !== 'double') || v.value.length !== 2) return null;
  const [offset, length] = v.value;
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0) return null;
  return [offset, length];
}

/**
 * Reads every variable of an R lazy-load database: the index (`.rdx`: a gzip-compressed serialised list of
 * `variables` (name → c(offset, length)), `references` and `compressed`) and the chunks (`.rdb`: per value,
 * a 4-byte big-endian uncompressed length, then a zlib stream of the serialised value).
 */
export function readLazyLoadDb(
  rdx: Uint8Array,
  rdb: Uint8Array,
  rdxName = 'index',
  rdbName = 'database',
): Map<string, RValue> {
  const index = readRds(rdx, rdxName);
  const bad = (what: string) => new FormatError(`${rdxName}: lazy-load index ${what}`);
  if (index.type !== 'list') throw bad(`is a ${index.type}; expected a list`);
  const variables = rListGet(index, 'variables');
  const references = rListGet(index, 'references');
  const compressed = rListGet(index, 'compressed');
  if (variables === undefined || variables.type !== 'list') throw bad('has no `variables` list');
  if (references !== undefined && references.type === 'list' && references.value.length > 0) {
    throw bad(`has ${references.value.length} references (environments); only plain values are supported`);
  }
  let compression = 1;
  if (compressed !== undefined && (compressed.type === 'logical' || compressed.type === 'integer')) {
    compression = compressed.value[0];
  }
  if (compression !== 0 && compression !== 1 && compression !== 2 && compression !== 3) {
    throw bad(`has compression ${compression}; expected 0 (none), 1 (zlib), 2 (bzip2) or 3 (xz)`);
  }
  const names = rNames(variables);
  if (names === null || names.length !== variables.value.length) throw bad('`variables` has no names');
  const out = new Map<string, RValue>();
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const key = keyOf(variables.value[i]);
    if (name === null || key === null) throw bad(`entry ${i} is not a named c(offset, length) key`);
    const [offset, length] = key;
    const where = `${rdbName} (variable \`${name}\`, bytes ${offset}-${offset + length})`;
    if (offset + length > rdb.length) {
      throw new FormatError(`${where}: chunk ends past the end of the ${rdb.length}-byte file (file truncated)`);
    }
    out.set(name, readRds(decodeChunk(rdb.subarray(offset, offset + length), compression, where), where));
  }
  return out;
}

function decodeChunk(chunk: Uint8Array, compression: number, where: string): Uint8Array {
  if (compression === 0) return chunk;
  const headerBytes = compression === 1 ? 4 : 5;
  if (chunk.length < headerBytes) {
    throw new FormatError(`${where}: chunk of ${chunk.length} bytes is shorter than its ${headerBytes}-byte header`);
  }
  const expected = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength).getUint32(0, false);
  let body = chunk.subarray(headerBytes);
  if (compression !== 1) {
    const kind = String.fromCharCode(chunk[4]);
    if (kind === '0') body = chunk.subarray(5);
    else if (kind !== 'Z') {
      const names: Record<string, string> = { '2': 'bzip2', X: 'xz' };
      throw new FormatError(`${where}: chunk is ${names[kind] ?? `type '${kind}'`}-compressed; only zlib is supported`);
    }
    if (kind === '0') {
      if (body.length !== expected)
        throw new FormatError(`${where}: stored chunk is ${body.length} bytes, header says ${expected}`);
      return body;
    }
  }
  let out: Uint8Array;
  try {
    // one byte past the declared length is enough to tell a wrong header from a right one
    out = inflateSync(body, { maxOutputLength: expected + 1 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new FormatError(`${where}: chunk inflates past the ${expected} bytes its header says`, { cause: e });
    }
    throw new FormatError(`${where}: zlib stream is damaged (${(e as Error).message})`, { cause: e });
  }
  if (out.length !== expected) {
    throw new FormatError(`${where}: chunk inflates to ${out.length} bytes, its header says ${expected}`);
  }
  return out;
}
