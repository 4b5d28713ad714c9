// Reader and writer of the safetensors format: an 8-byte little-endian u64 header length N, N bytes of UTF-8
// JSON `{ name: { dtype, shape, data_offsets }, "__metadata__"?: { key: string } }`, then the raw data.
//
// Validation is strict; every problem is a FormatError naming the tensor or byte position and what is
// allowed. Rules beyond the JSON schema:
//   * The header must start with '{' and be at most 100 MB; trailing spaces (padding) are allowed; no key may
//     appear twice in one object (tensor names included) and nesting is limited (util/json.ts).
//   * Each tensor's byte range must hold exactly product(shape) · itemsize bytes.
//   * The data section must be covered exactly: ranges sorted by offset must follow each other with no
//     overlap, no gap and no trailing bytes (a zero-length tensor must sit at the current end of the
//     previous range). Anything else is reported as an overlap, a gap or trailing bytes.
//   * BOOL bytes must be 0 or 1; I64 values must lie within ±(2^53 − 1).
// Decoded element types: F32, F16, BF16, F64 → Float32Array (F64 rounded to float32); I8, I16, I32 →
// Int32Array; U8, U16, U32, BOOL → Uint32Array; I64 → Int32Array when every value fits in int32, else
// Float64Array (exact integers). F32/I32/U32 tensors whose data starts at a 4-byte aligned address are
// views into the input bytes (no copy) unless `copy: true` is asked for; all others are fresh arrays.
// The writer lays tensors out by descending item size, then name, so every tensor is aligned to its
// item size; header keys are sorted by name and the header is padded with spaces to a multiple of 8.
import { FormatError, ValidationError } from '../errors.js';
import { parseJsonText } from '../util/json.js';

export const SAFETENSORS_DTYPES = [
  'F64',
  'F32',
  'F16',
  'BF16',
  'I64',
  'I32',
  'I16',
  'I8',
  'U32',
  'U16',
  'U8',
  'BOOL',
] as const;
export type SafetensorsDType = (typeof SAFETENSORS_DTYPES)[number];

/** Bytes per element of each dtype. */
export const SAFETENSORS_ITEM_SIZE: Record<SafetensorsDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

/** The largest header accepted (100 MB); a longer one means a corrupt length prefix. */
export const MAX_HEADER_BYTES = 100_000_000;

export type SafetensorsData = Float32Array | Int32Array | Uint32Array | Float64Array;

export interface SafetensorsTensor {
  /** The dtype stored in the file (the data may have been widened, see the file comment). */
  dtype: SafetensorsDType;
  shape: number[];
  data: SafetensorsData;
}

export interface SafetensorsEntry {
  dtype: SafetensorsDType;
  shape: number[];
  /** [begin, end) relative to the start of the data section. */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  /** N, the JSON header's byte length. */
  headerLength: number;
  /** Absolute offset of the data section within the file (8 + N). */
  dataStart: number;
  /** Byte length of the data section. */
  dataLength: number;
  /** Entries in the order the header lists them. */
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

export interface ReadOptions {
  /** Always copy, never return views that share memory with the input bytes. */
  copy?: boolean;
}

/** Input of the writer: `data` holds product(shape) numbers; `dtype` defaults to 'F32'. */
export interface TensorInput {
  dtype?: SafetensorsDType;
  shape: readonly number[];
  data: ArrayLike<number>;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const ENTRY_KEYS = ['dtype', 'shape', 'data_offsets'];
const METADATA_KEY = '__metadata__';

function isDType(s: unknown): s is SafetensorsDType {
  return typeof s === 'string' && (SAFETENSORS_DTYPES as readonly string[]).includes(s);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

/** Sets an own property even for the key "__proto__". */
function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function q(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
}

// ---------------------------------------------------------------------------------------------------------
// Reading

/**
 * Parses and validates the header of a safetensors file. `bytes` is the whole file (the data section is
 * needed only for its length). Throws FormatError on any violation of the format.
 */
export function readSafetensorsHeader(bytes: Uint8Array): SafetensorsHeader {
  if (!(bytes instanceof Uint8Array))
    throw new ValidationError(`safetensors: expected a Uint8Array, got ${describe(bytes)}`);
  const fileLength = bytes.byteLength;
  if (fileLength < 8)
    throw new FormatError(
      `safetensors: file is ${fileLength} bytes, shorter than the 8-byte little-endian header length that starts every file`,
    );
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  const headerLength = hi * 2 ** 32 + lo; // exact below 2^53; anything above the limits is rejected anyway
  if (headerLength === 0)
    throw new FormatError("safetensors: header length (bytes 0..7) is 0; a valid header holds at least '{}'");
  if (hi !== 0 || headerLength > MAX_HEADER_BYTES)
    throw new FormatError(
      `safetensors: header length (bytes 0..7) is ${hi === 0 ? headerLength : `about ${headerLength.toExponential(3)}`} bytes, above the limit of ${MAX_HEADER_BYTES} bytes`,
    );
  if (headerLength > fileLength - 8)
    throw new FormatError(
      `safetensors: header length (bytes 0..7) is ${headerLength} bytes but only ${fileLength - 8} bytes follow the length prefix (file is ${fileLength} bytes; truncated?)`,
    );
  const dataStart = 8 + headerLength;
  const dataLength = fileLength - dataStart;
  const headerBytes = bytes.subarray(8, dataStart);
  if (headerBytes[0] !== 0x7b)
    throw new FormatError(
      `safetensors: header (byte 8) must start with '{' (0x7B), found 0x${headerBytes[0].toString(16).padStart(2, '0').toUpperCase()}`,
    );

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch (e) {
    throw new FormatError(`safetensors: header (bytes 8..${dataStart - 1}) is not valid UTF-8`, { cause: e });
  }
  // a repeated tensor name would silently keep the last entry (JSON.parse), hiding a corrupt or forged header
  const json = parseJsonText(text, `safetensors: header (bytes 8..${dataStart - 1})`, { rejectDuplicateKeys: true });
  if (!isPlainObject(json))
    throw new FormatError(
      `safetensors: header must be a JSON object mapping tensor names to entries, got ${describe(json)}`,
    );

  let metadata: Record<string, string> = {};
  const entries = new Map<string, SafetensorsEntry>();
  for (const [name, raw] of Object.entries(json)) {
    if (name === METADATA_KEY) {
      metadata = parseMetadata(raw);
      continue;
    }
    entries.set(name, parseEntry(name, raw, dataLength));
  }
  checkCoverage(entries, dataLength);
  return { headerLength, dataStart, dataLength, entries, metadata };
}

function parseMetadata(raw: unknown): Record<string, string> {
  if (!isPlainObject(raw))
    throw new FormatError(`safetensors: "__metadata__" must be an object of string values, got ${describe(raw)}`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string')
      throw new FormatError(`safetensors: "__metadata__" value ${q(k)} must be a string, got ${describe(v)}`);
    setOwn(out, k, v);
  }
  return out;
}

function parseEntry(name: string, raw: unknown, dataLength: number): SafetensorsEntry {
  const where = `safetensors: tensor ${q(name)}`;
  if (!isPlainObject(raw))
    throw new FormatError(`${where}: entry must be an object { dtype, shape, data_offsets }, got ${describe(raw)}`);
  for (const k of Object.keys(raw))
    if (!ENTRY_KEYS.includes(k))
      throw new FormatError(`${where}: unknown key ${q(k)}; an entry has exactly dtype, shape and data_offsets`);
  for (const k of ENTRY_KEYS) if (!(k in raw)) throw new FormatError(`${where}: missing key "${k}"`);

  const { dtype, shape, data_offsets: offsets } = raw;
  if (!isDType(dtype))
    throw new FormatError(
      `${where}: dtype ${describe(dtype)} is not supported; allowed: ${SAFETENSORS_DTYPES.join(', ')}`,
    );

  if (!Array.isArray(shape))
    throw new FormatError(`${where}: shape must be an array of non-negative integers, got ${describe(shape)}`);
  let elements = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)
      throw new FormatError(`${where}: shape[${i}] must be a non-negative safe integer, got ${describe(d)}`);
    elements *= d;
  }
  if (shape.includes(0)) elements = 0;

  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)
  )
    throw new FormatError(
      `${where}: data_offsets must be two non-negative integers [begin, end], got ${Array.isArray(offsets) ? JSON.stringify(offsets).slice(0, 80) : describe(offsets)}`,
    );
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw new FormatError(`${where}: data_offsets [${begin}, ${end}] has begin > end`);
  if (end > dataLength)
    throw new FormatError(
      `${where}: data_offsets [${begin}, ${end}] run past the end of the data section (${dataLength} bytes)`,
    );
  const itemSize = SAFETENSORS_ITEM_SIZE[dtype];
  const expected = elements * itemSize;
  if (!Number.isSafeInteger(expected) || expected !== end - begin)
    throw new FormatError(
      `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype}[${shape.join(', ')}] needs ${elements} × ${itemSize} = ${expected} bytes`,
    );
  return { dtype, shape: shape.slice() as number[], dataOffsets: [begin, end] };
}

function checkCoverage(entries: Map<string, SafetensorsEntry>, dataLength: number): void {
  const sorted = [...entries].sort(
    ([, a], [, b]) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1],
  );
  let cursor = 0;
  let prev: [string, SafetensorsEntry] | undefined;
  for (const item of sorted) {
    const [name, e] = item;
    const [begin, end] = e.dataOffsets;
    if (begin < cursor && prev)
      throw new FormatError(
        `safetensors: tensor ${q(name)} data_offsets [${begin}, ${end}] start inside the range of tensor ${q(prev[0])} [${prev[1].dataOffsets[0]}, ${prev[1].dataOffsets[1]}]; tensor ranges must not overlap`,
      );
    if (begin > cursor)
      throw new FormatError(
        `safetensors: data bytes [${cursor}, ${begin}) belong to no tensor (gap before tensor ${q(name)}); the data section must be covered exactly`,
      );
    cursor = end;
    prev = item;
  }
  if (cursor !== dataLength)
    throw new FormatError(
      `safetensors: data section has ${dataLength - cursor} trailing bytes [${cursor}, ${dataLength}) that belong to no tensor; the data section must be covered exactly`,
    );
}

/** Decodes one tensor of a file whose header was read with readSafetensorsHeader. */
export function tensorView(
  bytes: Uint8Array,
  header: SafetensorsHeader,
  name: string,
  options: ReadOptions = {},
): SafetensorsTensor {
  const entry = header.entries.get(name);
  if (!entry) {
    const names = [...header.entries.keys()];
    const shown = names.slice(0, 10).map(q).join(', ');
    throw new ValidationError(
      `safetensors: no tensor named ${q(name)}; the file holds ${names.length} tensors${names.length ? `: ${shown}${names.length > 10 ? ', …' : ''}` : ''}`,
    );
  }
  if (bytes.byteLength !== header.dataStart + header.dataLength)
    throw new ValidationError(
      `safetensors: bytes are ${bytes.byteLength} long but the header was read from a file of ${header.dataStart + header.dataLength} bytes; pass the same bytes`,
    );
  const [begin, end] = entry.dataOffsets;
  const src = bytes.subarray(header.dataStart + begin, header.dataStart + end);
  return {
    dtype: entry.dtype,
    shape: entry.shape.slice(),
    data: decode(name, entry.dtype, src, options.copy === true),
  };
}

/** Parses and validates a whole safetensors file. */
export function parseSafetensors(bytes: Uint8Array, options: ReadOptions = {}): SafetensorsFile {
  const header = readSafetensorsHeader(bytes);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const name of header.entries.keys()) tensors.set(name, tensorView(bytes, header, name, options));
  return { tensors, metadata: header.metadata };
}

function decode(name: string, dtype: SafetensorsDType, src: Uint8Array, copy: boolean): SafetensorsData {
  const n = src.byteLength / SAFETENSORS_ITEM_SIZE[dtype];
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  switch (dtype) {
    case 'F32':
    case 'I32':
    case 'U32': {
      if (LITTLE_ENDIAN_HOST) {
        if (!copy && src.byteOffset % 4 === 0) return view32(dtype, src.buffer, src.byteOffset, n);
        // a real copy: Node Buffers' slice() returns a view of the same memory
        return view32(dtype, Uint8Array.prototype.slice.call(src).buffer, 0, n);
      }
      const out = view32(dtype, new ArrayBuffer(4 * n), 0, n);
      for (let i = 0; i < n; i++)
        out[i] =
          dtype === 'F32'
            ? dv.getFloat32(4 * i, true)
            : dtype === 'I32'
              ? dv.getInt32(4 * i, true)
              : dv.getUint32(4 * i, true);
      return out;
    }
    case 'F64': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToNumber(dv.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = dv.getUint16(2 * i, true) << 16;
      return out;
    }
    case 'I16': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true);
      return out;
    }
    case 'I8': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      return out;
    }
    case 'U16': {
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, true);
      return out;
    }
    case 'U8':
      return Uint32Array.from(src);
    case 'BOOL': {
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) {
        const b = src[i];
        if (b > 1)
          throw new FormatError(
            `safetensors: tensor ${q(name)} (BOOL) element ${i} is byte ${b}; BOOL bytes must be 0 or 1`,
          );
        out[i] = b;
      }
      return out;
    }
    case 'I64': {
      const values = new Float64Array(n);
      let fitsInt32 = true;
      for (let i = 0; i < n; i++) {
        const lo = dv.getUint32(8 * i, true);
        const hi = dv.getInt32(8 * i + 4, true);
        const v = hi * 2 ** 32 + lo;
        if (hi >= 2 ** 21 || hi < -(2 ** 21) || !Number.isSafeInteger(v))
          throw new FormatError(
            `safetensors: tensor ${q(name)} (I64) element ${i} is ${(BigInt(hi) << 32n) + BigInt(lo)}, outside ±(2^53 − 1), the integers a number holds exactly`,
          );
        values[i] = v;
        if (v < -(2 ** 31) || v >= 2 ** 31) fitsInt32 = false;
      }
      return fitsInt32 ? Int32Array.from(values) : values;
    }
  }
}

function view32(
  dtype: 'F32' | 'I32' | 'U32',
  buffer: ArrayBufferLike,
  byteOffset: number,
  length: number,
): Float32Array | Int32Array | Uint32Array {
  if (dtype === 'F32') return new Float32Array(buffer, byteOffset, length);
  if (dtype === 'I32') return new Int32Array(buffer, byteOffset, length);
  return new Uint32Array(buffer, byteOffset, length);
}

/** IEEE 754 binary16 bits → number (exact). */
export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1024 + m) * 2 ** (e - 25);
}

/** number → IEEE 754 binary16 bits, rounded to nearest even (overflow → ±Infinity, NaN → quiet NaN). */
export function numberToHalf(x: number): number {
  return encodeSmallFloat(x, 5, 10);
}

/** number → bfloat16 bits, rounded to nearest even (overflow → ±Infinity, NaN → quiet NaN). */
export function numberToBFloat16(x: number): number {
  return encodeSmallFloat(x, 8, 7);
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const r = v - f;
  if (r > 0.5) return f + 1;
  if (r < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

// Rounds straight from the float64 value (no intermediate float32), so there is exactly one rounding.
function encodeSmallFloat(x: number, expBits: number, mantBits: number): number {
  const bias = (1 << (expBits - 1)) - 1;
  const expMask = ((1 << expBits) - 1) << mantBits;
  if (Number.isNaN(x)) return expMask | (1 << (mantBits - 1));
  const sign = x < 0 || Object.is(x, -0) ? 1 << (expBits + mantBits) : 0;
  const a = Math.abs(x);
  if (a === 0) return sign;
  if (a === Number.POSITIVE_INFINITY) return sign | expMask;
  const minExp = 1 - bias;
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  // Subnormal: units of 2^(minExp − mantBits); a result of 2^mantBits is the smallest normal, encoded alike.
  if (e < minExp) return sign | roundHalfEven(a * 2 ** (mantBits - minExp));
  const mant = roundHalfEven(a * 2 ** (mantBits - e)); // in [2^mantBits, 2^(mantBits+1)]
  const bits = ((e + bias) << mantBits) + mant - (1 << mantBits);
  return sign | Math.min(bits, expMask); // beyond the largest finite value → infinity
}

// ---------------------------------------------------------------------------------------------------------
// Writing

const INT_RANGE: Partial<Record<SafetensorsDType, [number, number]>> = {
  I64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  I32: [-(2 ** 31), 2 ** 31 - 1],
  I16: [-(2 ** 15), 2 ** 15 - 1],
  I8: [-128, 127],
  U32: [0, 2 ** 32 - 1],
  U16: [0, 2 ** 16 - 1],
  U8: [0, 255],
  BOOL: [0, 1],
};

/**
 * Serialises tensors to a safetensors file. Deterministic: header keys sorted by name (`__metadata__`
 * first), data laid out by descending item size then name, header padded with spaces so the data section
 * starts at a multiple of 8. Throws ValidationError when a shape does not match its data, a name is
 * empty or reserved, or an integer value does not fit its dtype.
 */
export function writeSafetensors(
  tensors: Record<string, TensorInput> | Map<string, TensorInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const items = (tensors instanceof Map ? [...tensors] : Object.entries(tensors)).map(([name, t]) => {
    const where = `writeSafetensors: tensor ${q(name)}`;
    if (name === '' || name === METADATA_KEY)
      throw new ValidationError(`${where}: the name must be non-empty and not "${METADATA_KEY}"`);
    if (!t || typeof t !== 'object')
      throw new ValidationError(`${where}: expected { dtype?, shape, data }, got ${describe(t)}`);
    const dtype = t.dtype ?? 'F32';
    if (!isDType(dtype))
      throw new ValidationError(
        `${where}: dtype ${describe(dtype)} is not supported; allowed: ${SAFETENSORS_DTYPES.join(', ')}`,
      );
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new ValidationError(
        `${where}: shape must be an array of non-negative integers, got ${JSON.stringify(t.shape)}`,
      );
    const elements = t.shape.reduce((a, b) => a * b, 1);
    if (!t.data || typeof t.data.length !== 'number' || t.data.length !== elements)
      throw new ValidationError(
        `${where}: shape [${t.shape.join(', ')}] holds ${elements} elements but data has ${t.data?.length ?? 'no'} elements`,
      );
    return { name, dtype, shape: t.shape.slice(), data: t.data, bytes: elements * SAFETENSORS_ITEM_SIZE[dtype] };
  });
  if (metadata !== undefined) {
    if (!isPlainObject(metadata))
      throw new ValidationError(`writeSafetensors: metadata must be an object, got ${describe(metadata)}`);
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== 'string')
        throw new ValidationError(`writeSafetensors: metadata value ${q(k)} must be a string, got ${describe(v)}`);
  }

  const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const layout = items
    .slice()
    .sort((a, b) => SAFETENSORS_ITEM_SIZE[b.dtype] - SAFETENSORS_ITEM_SIZE[a.dtype] || byName(a, b));
  const offsets = new Map<string, [number, number]>();
  let cursor = 0;
  for (const it of layout) {
    offsets.set(it.name, [cursor, cursor + it.bytes]);
    cursor += it.bytes;
  }
  const dataLength = cursor;

  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    const sortedMeta: Record<string, string> = {};
    for (const k of Object.keys(metadata).sort()) setOwn(sortedMeta, k, metadata[k]);
    header[METADATA_KEY] = sortedMeta;
  }
  for (const it of items.slice().sort(byName))
    setOwn(header, it.name, { dtype: it.dtype, shape: it.shape, data_offsets: offsets.get(it.name) });
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.byteLength / 8) * 8;

  const out = new Uint8Array(8 + headerLength + dataLength);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, headerLength, true);
  dv.setUint32(4, 0, true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + headerLength);
  const dataStart = 8 + headerLength;
  for (const it of layout) encode(it.name, it.dtype, it.data, dv, dataStart + offsets.get(it.name)![0]);
  return out;
}

function encode(name: string, dtype: SafetensorsDType, data: ArrayLike<number>, dv: DataView, at: number): void {
  const n = data.length;
  const range = INT_RANGE[dtype];
  if (range) {
    for (let i = 0; i < n; i++) {
      const v = data[i];
      if (!Number.isInteger(v) || v < range[0] || v > range[1])
        throw new ValidationError(
          `writeSafetensors: tensor ${q(name)} (${dtype}) element ${i} is ${v}; allowed: integers in [${range[0]}, ${range[1]}]`,
        );
    }
  }
  // The layout puts 4-byte types at 4-byte aligned offsets, so typed views work (and copy F32 bits exactly).
  if (LITTLE_ENDIAN_HOST && (dtype === 'F32' || dtype === 'I32' || dtype === 'U32')) {
    view32(dtype, dv.buffer, dv.byteOffset + at, n).set(data);
    return;
  }
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) dv.setFloat32(at + 4 * i, data[i], true);
      return;
    case 'F64':
      for (let i = 0; i < n; i++) dv.setFloat64(at + 8 * i, data[i], true);
      return;
    case 'F16':
      for (let i = 0; i < n; i++) dv.setUint16(at + 2 * i, numberToHalf(data[i]), true);
      return;
    case 'BF16':
      for (let i = 0; i < n; i++) dv.setUint16(at + 2 * i, numberToBFloat16(data[i]), true);
      return;
    case 'I64':
      for (let i = 0; i < n; i++) dv.setBigInt64(at + 8 * i, BigInt(data[i]), true);
      return;
    case 'I32':
      for (let i = 0; i < n; i++) dv.setInt32(at + 4 * i, data[i], true);
      return;
    case 'U32':
      for (let i = 0; i < n; i++) dv.setUint32(at + 4 * i, data[i], true);
      return;
    case 'I16':
      for (let i = 0; i < n; i++) dv.setInt16(at + 2 * i, data[i], true);
      return;
    case 'U16':
      for (let i = 0; i < n; i++) dv.setUint16(at + 2 * i, data[i], true);
      return;
    case 'I8':
      for (let i = 0; i < n; i++) dv.setInt8(at + i, data[i]);
      return;
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < n; i++) dv.setUint8(at + i, data[i]);
      return;
  }
}
