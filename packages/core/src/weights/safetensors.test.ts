// Round-trip, fuzz and corruption tests of the safetensors reader and writer.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError, ValidationError } from '../errors.js';
import {
  halfToNumber,
  MAX_HEADER_BYTES,
  numberToBFloat16,
  numberToHalf,
  parseSafetensors,
  readSafetensorsHeader,
  SAFETENSORS_DTYPES,
  type SafetensorsDType,
  type TensorInput,
  tensorView,
  writeSafetensors,
} from './safetensors.js';

// ---- helpers written from the format description, independent of the code under test -------------------

/** Builds a file: u64 LE length of `header` (UTF-8), the header, then `data`. */
function file(header: string | Uint8Array, data: ArrayLike<number> = [], lengthOverride?: number | bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(lengthOverride ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** binary16 → number by the textbook formula (−1)^s · 2^(e−15) · 1.m, subnormals 2^−14 · 0.m. */
function refHalf(bits: number): number {
  const s = bits >> 15 ? -1 : 1;
  const e = (bits >> 10) & 31;
  const f = (bits & 1023) / 1024;
  if (e === 31) return f === 0 ? s * Infinity : NaN;
  return e === 0 ? s * 2 ** -14 * f : s * 2 ** (e - 15) * (1 + f);
}

/** bfloat16 → number: the top 16 bits of a float32. */
function refBf16(bits: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setUint16(0, bits, false);
  dv.setUint16(2, 0, false);
  return dv.getFloat32(0, false);
}

const isFloat = (d: SafetensorsDType) => d === 'F32' || d === 'F64' || d === 'F16' || d === 'BF16';
const isSigned = (d: SafetensorsDType) => d === 'I8' || d === 'I16' || d === 'I32';

function expectSame(actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i]))
      throw new Error(`element ${i}: got ${actual[i]}, expected ${expected[i]} (Object.is)`);
  }
}

function expectFormatError(bytes: Uint8Array, message: RegExp): void {
  let err: unknown;
  try {
    parseSafetensors(bytes);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FormatError);
  expect((err as Error).message).toMatch(message);
}

// ---- arbitraries ----------------------------------------------------------------------------------------

interface Case {
  dtype: SafetensorsDType;
  shape: number[];
  /** Values handed to the writer. */
  input: number[];
  /** Values the reader must return (after widening / rounding to float32). */
  expected: number[];
}

function valuesOf(dtype: SafetensorsDType, n: number): fc.Arbitrary<{ input: number[]; expected: number[] }> {
  const same = (a: fc.Arbitrary<number>) =>
    fc.array(a, { minLength: n, maxLength: n }).map((v) => ({ input: v, expected: v }));
  switch (dtype) {
    case 'F32':
      return same(fc.float());
    case 'F64':
      return fc
        .array(fc.double(), { minLength: n, maxLength: n })
        .map((v) => ({ input: v, expected: v.map(Math.fround) }));
    case 'F16':
      return same(fc.integer({ min: 0, max: 0xffff }).map(refHalf));
    case 'BF16':
      return same(fc.integer({ min: 0, max: 0xffff }).map(refBf16));
    case 'I64':
      return same(fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 2 ** 53 - 1)));
    case 'I32':
      return same(fc.integer());
    case 'I16':
      return same(fc.integer({ min: -32768, max: 32767 }));
    case 'I8':
      return same(fc.integer({ min: -128, max: 127 }));
    case 'U32':
      return same(fc.integer({ min: 0, max: 2 ** 32 - 1 }));
    case 'U16':
      return same(fc.integer({ min: 0, max: 65535 }));
    case 'U8':
      return same(fc.integer({ min: 0, max: 255 }));
    case 'BOOL':
      return same(fc.integer({ min: 0, max: 1 }));
  }
}

const caseArb: fc.Arbitrary<Case> = fc
  .tuple(fc.constantFrom(...SAFETENSORS_DTYPES), fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 }))
  .chain(([dtype, shape]) =>
    valuesOf(
      dtype,
      shape.reduce((a, b) => a * b, 1),
    ).map((v) => ({ dtype, shape, ...v })),
  );

const nameArb = fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }).filter((s) => s !== '__metadata__');

const tensorSetArb = fc.uniqueArray(fc.tuple(nameArb, caseArb), { selector: ([n]) => n, maxLength: 12 });
const metadataArb = fc.option(fc.dictionary(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' })), {
  nil: undefined,
});

function toInput(set: [string, Case][]): Record<string, TensorInput> {
  const out: Record<string, TensorInput> = {};
  for (const [name, c] of set) {
    // Typed arrays for the 4-byte types (F32 keeps its exact bits), plain arrays otherwise.
    const data = c.dtype === 'F32' ? Float32Array.from(c.input) : c.input;
    Object.defineProperty(out, name, { value: { dtype: c.dtype, shape: c.shape, data }, enumerable: true });
  }
  return out;
}

const validFileArb = fc.tuple(tensorSetArb, metadataArb).map(([set, meta]) => writeSafetensors(toInput(set), meta));

// ---- tests -----------------------------------------------------------------------------------------------

describe('safetensors: reading files built by hand from the format description', () => {
  it('reads an F32 2×2 tensor, an I64 vector and metadata', () => {
    const data = new Uint8Array(16 + 16);
    const dv = new DataView(data.buffer);
    for (const [i, v] of [1, -2.5, 0, 3e38].entries()) dv.setFloat32(4 * i, v, true);
    dv.setBigInt64(16, -7n, true);
    dv.setBigInt64(24, 2n ** 40n, true);
    const header =
      '{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},' +
      '"ids":{"data_offsets":[16,32],"shape":[2],"dtype":"I64"}}   ';
    const { tensors, metadata } = parseSafetensors(file(header, data));
    expect(metadata).toEqual({ format: 'pt' });
    expect([...tensors.keys()]).toEqual(['w', 'ids']);
    expect(tensors.get('w')!.shape).toEqual([2, 2]);
    expectSame(tensors.get('w')!.data, [1, -2.5, 0, Math.fround(3e38)]);
    const ids = tensors.get('ids')!;
    expect(ids.dtype).toBe('I64');
    expect(ids.data).toBeInstanceOf(Float64Array); // 2^40 does not fit int32
    expectSame(ids.data, [-7, 2 ** 40]);
  });

  it('widens every dtype to the documented array type', () => {
    const cases: [SafetensorsDType, number[], ArrayLike<number>, abstract new (n: number) => ArrayLike<number>][] = [
      ['F16', [0x00, 0x3c, 0x00, 0xc0], [1, -2], Float32Array],
      ['BF16', [0x80, 0x3f, 0x49, 0x40], [1, refBf16(0x4049)], Float32Array],
      ['F64', [0, 0, 0, 0, 0, 0, 0xf0, 0x3f], [1], Float32Array],
      ['I16', [0xff, 0xff, 0x00, 0x80], [-1, -32768], Int32Array],
      ['I8', [0xff, 0x7f], [-1, 127], Int32Array],
      ['U16', [0xff, 0xff], [65535], Uint32Array],
      ['U8', [0xff, 0x00], [255, 0], Uint32Array],
      ['BOOL', [1, 0], [1, 0], Uint32Array],
      ['U32', [0xff, 0xff, 0xff, 0xff], [2 ** 32 - 1], Uint32Array],
      ['I32', [0, 0, 0, 0x80], [-(2 ** 31)], Int32Array],
      ['I64', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [-1], Int32Array],
    ];
    for (const [dtype, bytes, expected, Ctor] of cases) {
      const n = expected.length;
      const header = `{"t":{"dtype":"${dtype}","shape":[${n}],"data_offsets":[0,${bytes.length}]}}`;
      const t = parseSafetensors(file(header, bytes)).tensors.get('t')!;
      expect(t.data, dtype).toBeInstanceOf(Ctor);
      expectSame(t.data, expected);
    }
  });

  it('accepts an empty file "{}" and zero-length tensors at the end of the previous range', () => {
    expect(parseSafetensors(file('{}')).tensors.size).toBe(0);
    const header =
      '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]}}';
    const t = parseSafetensors(file(header, [0, 0, 0x80, 0x3f])).tensors;
    expect(t.get('e')!.data.length).toBe(0);
    expect(t.get('e')!.shape).toEqual([0, 3]);
    expectSame(t.get('a')!.data, [1]);
  });
});

describe('safetensors: half-precision conversions', () => {
  it('decodes all 65536 binary16 patterns as the textbook formula does', () => {
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) if (!Object.is(halfToNumber(h), refHalf(h))) wrong.push(h);
    expect(wrong).toEqual([]);
    expect([halfToNumber(0x7bff), halfToNumber(0x0001), halfToNumber(0x0400)]).toEqual([65504, 2 ** -24, 2 ** -14]);
  });

  it('re-encodes every non-NaN binary16 and bfloat16 value to its own bits', () => {
    const wrong: string[] = [];
    for (let h = 0; h < 65536; h++) {
      const v = refHalf(h);
      if (Number.isNaN(v) ? !Number.isNaN(refHalf(numberToHalf(v))) : numberToHalf(v) !== h) wrong.push(`f16 ${h}`);
      const b = refBf16(h);
      if (Number.isNaN(b) ? !Number.isNaN(refBf16(numberToBFloat16(b))) : numberToBFloat16(b) !== h)
        wrong.push(`bf16 ${h}`);
    }
    expect(wrong).toEqual([]);
  });

  it('rounds to the nearest representable value, ties to even (binary16 and bfloat16)', () => {
    const check = (x: number, enc: (x: number) => number, dec: (b: number) => number) => {
      const b = enc(x);
      const v = dec(b);
      const err = Math.abs(x - v);
      // Neighbours one unit in the last place away (in magnitude), when finite.
      for (const nb of [b - 1, b + 1]) {
        if ((nb & 0x7fff) !== (b & 0x7fff) - 1 && (nb & 0x7fff) !== (b & 0x7fff) + 1) continue;
        const w = dec(nb);
        if (!Number.isFinite(w) || (Math.sign(w) !== Math.sign(v) && w !== 0)) continue;
        const e2 = Math.abs(x - w);
        if (Number.isFinite(v)) {
          expect(err <= e2, `x=${x}: ${v} is farther than ${w}`).toBe(true);
          if (err === e2) expect(b & 1, `x=${x}: tie must go to even`).toBe(0);
        }
      }
    };
    fc.assert(
      fc.property(fc.double({ min: -70000, max: 70000, noNaN: true }), (x) => {
        check(x, numberToHalf, refHalf);
        check(x, numberToBFloat16, refBf16);
        check(x * 1e-5, numberToHalf, refHalf); // subnormal range of binary16
      }),
      { numRuns: 2000 },
    );
    expect(numberToHalf(65519.99)).toBe(0x7bff);
    expect(numberToHalf(65520)).toBe(0x7c00); // the tie above the largest finite value goes to infinity
    expect(numberToHalf(-(2 ** -25))).toBe(0x8000); // tie between 0 and the smallest subnormal → even (−0)
    expect(numberToHalf(3 * 2 ** -25)).toBe(0x0002);
    expect(numberToBFloat16(1e39)).toBe(0x7f80);
  });
});

describe('safetensors: writer', () => {
  it('round-trips random tensor sets exactly (all dtypes, scalars, empty tensors, metadata)', () => {
    fc.assert(
      fc.property(tensorSetArb, metadataArb, (set, meta) => {
        const bytes = writeSafetensors(toInput(set), meta);
        const { tensors, metadata } = parseSafetensors(bytes);
        expect(metadata).toEqual(meta && Object.keys(meta).length ? meta : {});
        expect(tensors.size).toBe(set.length);
        for (const [name, c] of set) {
          const t = tensors.get(name)!;
          expect(t.dtype).toBe(c.dtype);
          expect(t.shape).toEqual(c.shape);
          if (isFloat(c.dtype)) expect(t.data).toBeInstanceOf(Float32Array);
          else if (c.dtype === 'I64')
            expect(t.data).toBeInstanceOf(c.expected.every((v) => v === (v | 0)) ? Int32Array : Float64Array);
          else expect(t.data).toBeInstanceOf(isSigned(c.dtype) ? Int32Array : Uint32Array);
          expectSame(t.data, c.expected);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips many tensors', () => {
    const input: Record<string, TensorInput> = {};
    for (let i = 0; i < 2000; i++)
      input[`blocks.${i}.w`] = { shape: [i % 3, 2], data: new Float32Array((i % 3) * 2).fill(i) };
    const { tensors } = parseSafetensors(writeSafetensors(input));
    expect(tensors.size).toBe(2000);
    expectSame(tensors.get('blocks.1999.w')!.data, [1999, 1999]); // 1999 % 3 = 1 row
    expect(tensors.get('blocks.3.w')!.shape).toEqual([0, 2]);
  });

  it('is deterministic, pads the header with spaces to a multiple of 8 and aligns every tensor', () => {
    fc.assert(
      fc.property(tensorSetArb, metadataArb, (set, meta) => {
        const a = writeSafetensors(toInput(set), meta);
        const b = writeSafetensors(toInput(set.slice().reverse()), meta);
        expect(b).toEqual(a);
        const n = Number(new DataView(a.buffer).getBigUint64(0, true));
        expect(n % 8).toBe(0);
        const text = new TextDecoder().decode(a.subarray(8, 8 + n));
        const padding = text.slice(text.lastIndexOf('}') + 1);
        expect(padding).toMatch(/^ {0,7}$/);
        const json = JSON.parse(text);
        const names = Object.keys(json).filter((k) => k !== '__metadata__');
        expect(names).toEqual(names.slice().sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
        for (const k of names) {
          const size =
            { F64: 8, I64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2 }[json[k].dtype as string] ?? 1;
          expect((8 + n + json[k].data_offsets[0]) % size).toBe(0);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('rejects inputs it cannot write, naming the tensor', () => {
    const w = (t: Record<string, TensorInput>) => () => writeSafetensors(t);
    expect(w({ a: { shape: [2, 3], data: [1, 2, 3] } })).toThrow(/"a": shape \[2, 3\] holds 6 elements but data has 3/);
    expect(w({ a: { shape: [-1], data: [] } })).toThrow(ValidationError);
    expect(w({ a: { dtype: 'U8', shape: [1], data: [256] } })).toThrow(
      /"a" \(U8\) element 0 is 256; allowed: integers in \[0, 255\]/,
    );
    expect(w({ a: { dtype: 'I32', shape: [2], data: [1, 0.5] } })).toThrow(/element 1 is 0.5/);
    expect(w({ a: { dtype: 'I64', shape: [1], data: [2 ** 53] } })).toThrow(/allowed: integers in/);
    expect(w({ a: { dtype: 'X' as never, shape: [1], data: [0] } })).toThrow(/dtype the string "X" is not supported/);
    expect(w({ __metadata__: { shape: [1], data: [0] } })).toThrow(/must be non-empty and not "__metadata__"/);
    expect(() => writeSafetensors({}, { k: 1 as never })).toThrow(/metadata value "k" must be a string/);
  });
});

describe('safetensors: lazy reads', () => {
  it('reads single tensors from a header-only parse; aligned 4-byte tensors are views, others copies', () => {
    const bytes = writeSafetensors({
      w: { shape: [3], data: [1, 2, 3] },
      h: { dtype: 'F16', shape: [1], data: [0.5] },
      i: { dtype: 'I32', shape: [2], data: [-1, 7] },
    });
    const header = readSafetensorsHeader(bytes);
    expect([...header.entries.keys()]).toEqual(['h', 'i', 'w']);
    expect(header.dataStart % 8).toBe(0);
    const w = tensorView(bytes, header, 'w');
    expect(w.data.buffer).toBe(bytes.buffer);
    expectSame(w.data, [1, 2, 3]);
    expect(tensorView(bytes, header, 'w', { copy: true }).data.buffer).not.toBe(bytes.buffer);
    expectSame(tensorView(bytes, header, 'h').data, [0.5]);
    expectSame(tensorView(bytes, header, 'i').data, [-1, 7]);
    expect(() => tensorView(bytes, header, 'nope')).toThrow(
      /no tensor named "nope"; the file holds 3 tensors: "h", "i", "w"/,
    );
    expect(() => tensorView(bytes.subarray(0, bytes.length - 1), header, 'w')).toThrow(ValidationError);
  });

  it('copies F32 data that is not 4-byte aligned in memory', () => {
    const bytes = writeSafetensors({ w: { shape: [2, 2], data: [1, -2, 3, -4] } });
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const view = shifted.subarray(1);
    const t = parseSafetensors(view).tensors.get('w')!;
    expect(t.data.buffer).not.toBe(shifted.buffer);
    expectSame(t.data, [1, -2, 3, -4]);
  });
});

describe('safetensors: fuzzing', () => {
  /** Parsing either succeeds with a self-consistent result or throws FormatError — nothing else. */
  function parseOrFormatError(bytes: Uint8Array): void {
    let result: ReturnType<typeof parseSafetensors>;
    try {
      result = parseSafetensors(bytes);
    } catch (e) {
      if (!(e instanceof FormatError)) throw new Error(`expected FormatError, got ${String(e)}`, { cause: e });
      expect(e.message.startsWith('safetensors: ')).toBe(true);
      return;
    }
    let total = 0;
    for (const t of result.tensors.values()) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      expect(t.data.length).toBe(n);
      total += n * { F64: 8, I64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2 }[t.dtype as string]! || n;
    }
    const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    expect(total).toBe(bytes.length - 8 - headerLength);
  }

  it('random byte strings', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), parseOrFormatError), { numRuns: 1000 });
  });

  it('random JSON headers with a correct length prefix', () => {
    const entryArb = fc.record(
      {
        dtype: fc.oneof(fc.constantFrom(...SAFETENSORS_DTYPES), fc.jsonValue()),
        shape: fc.oneof(fc.array(fc.integer({ min: -1, max: 4 }), { maxLength: 3 }), fc.jsonValue()),
        data_offsets: fc.oneof(fc.array(fc.integer({ min: -1, max: 40 }), { maxLength: 3 }), fc.jsonValue()),
        extra: fc.jsonValue(),
      },
      { requiredKeys: [] },
    );
    const headerArb = fc.oneof(
      fc.json(),
      fc
        .dictionary(fc.oneof(fc.string(), fc.constant('__metadata__')), fc.oneof(entryArb, fc.jsonValue()))
        .map((o) => JSON.stringify(o)),
    );
    fc.assert(
      fc.property(headerArb, fc.uint8Array({ maxLength: 64 }), (h, data) => parseOrFormatError(file(h, data))),
      { numRuns: 1500 },
    );
  });

  it('mutations of valid files: truncation, flipped bytes, changed length, offsets, dtype and shape', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({
        kind: fc.constant('length' as const),
        at: fc.integer({ min: 0, max: 7 }),
        value: fc.integer({ min: 0, max: 255 }),
      }),
      fc.record({ kind: fc.constant('append' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 9 }) }),
      fc.record({
        kind: fc.constant('entry' as const),
        pick: fc.nat(),
        field: fc.constantFrom('dtype', 'shape', 'data_offsets', 'begin', 'end'),
        dtype: fc.oneof(fc.constantFrom(...SAFETENSORS_DTYPES), fc.string()),
        shape: fc.array(fc.integer({ min: -1, max: 6 }), { maxLength: 4 }),
        delta: fc.integer({ min: -9, max: 9 }),
      }),
    );
    fc.assert(
      fc.property(validFileArb, fc.array(mutation, { minLength: 1, maxLength: 3 }), (original, mutations) => {
        let bytes: Uint8Array = original.slice();
        for (const m of mutations) {
          if (m.kind === 'truncate') bytes = bytes.slice(0, m.at % (bytes.length + 1));
          else if (m.kind === 'flip' && bytes.length) bytes[m.at % bytes.length] ^= 1 << m.bit;
          else if (m.kind === 'byte' && bytes.length) bytes[m.at % bytes.length] = m.value;
          else if (m.kind === 'length' && bytes.length > m.at) bytes[m.at] = m.value;
          else if (m.kind === 'append') bytes = Uint8Array.from([...bytes, ...m.extra]);
          else if (m.kind === 'entry') {
            let header: Record<string, any>;
            let n: number;
            try {
              n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
              header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
            } catch {
              continue;
            }
            const names = Object.keys(header ?? {}).filter((k) => k !== '__metadata__');
            if (!names.length) continue;
            const e = header[names[m.pick % names.length]];
            if (typeof e !== 'object' || e === null) continue;
            if (m.field === 'dtype') e.dtype = m.dtype;
            else if (m.field === 'shape') e.shape = m.shape;
            else if (m.field === 'data_offsets') e.data_offsets = [e.data_offsets?.[1], e.data_offsets?.[0]];
            else if (Array.isArray(e.data_offsets)) e.data_offsets[m.field === 'begin' ? 0 : 1] += m.delta;
            bytes = file(JSON.stringify(header), bytes.subarray(8 + n));
          }
        }
        parseOrFormatError(bytes);
      }),
      { numRuns: 1500 },
    );
  });
});

describe('safetensors: corrupt files, each with its own message', () => {
  const F32_1 = '{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
  const one = [0, 0, 0x80, 0x3f];
  const entry = (e: string) => `{"t":${e}}`;

  it('length prefix', () => {
    expectFormatError(new Uint8Array(5), /file is 5 bytes, shorter than the 8-byte little-endian header length/);
    expectFormatError(file('', []), /header length \(bytes 0\.\.7\) is 0/);
    expectFormatError(file(F32_1, one, 200), /header length \(bytes 0\.\.7\) is 200 bytes but only 58 bytes follow/);
    expectFormatError(file(F32_1, one, 2n ** 40n), /above the limit of 100000000 bytes/);
    expectFormatError(file(F32_1, one, MAX_HEADER_BYTES + 1), /is 100000001 bytes, above the limit/);
  });

  it('header text', () => {
    expectFormatError(file(' {}'), /must start with '\{' \(0x7B\), found 0x20/);
    expectFormatError(file('[1]'), /must start with '\{' \(0x7B\), found 0x5B/);
    expectFormatError(file(Uint8Array.from([0x7b, 0xff, 0x7d])), /header \(bytes 8\.\.10\) is not valid UTF-8/);
    expectFormatError(file('{"t":'), /header \(bytes 8\.\.12\) is not valid JSON/);
    expectFormatError(file('{}\0\0'), /is not valid JSON/);
  });

  it('a tensor name or key that appears twice (JSON.parse would keep the last one silently)', () => {
    const a = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
    expectFormatError(
      file(`{"t":${a},"t":${a}}`, one),
      /header \(bytes 8\.\.\d+\) repeats the key "t" in the object at \(root\)/,
    );
    // spelled differently, the same name after unescaping
    expectFormatError(file(`{"t":${a},"\\u0074":${a}}`, one), /repeats the key "t"/);
    expectFormatError(
      file('{"t":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', one),
      /repeats the key "dtype" in the object at t /,
    );
    expectFormatError(file('{"__metadata__":{"k":"1","k":"2"}}'), /repeats the key "k" in the object at __metadata__/);
    // the same name in different objects is fine
    const ok = parseSafetensors(
      file('{"__metadata__":{"t":"x"},"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', one),
    );
    expect([...ok.tensors.keys()]).toEqual(['t']);
  });

  it('a deeply nested header is refused by a clear message, not a stack overflow', () => {
    const deep = `{"__metadata__":${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
    expectFormatError(file(deep), /header \(bytes 8\.\.\d+\) nests arrays\/objects more than 256 levels deep/);
  });

  it('entries', () => {
    expectFormatError(
      file(entry('5')),
      /tensor "t": entry must be an object \{ dtype, shape, data_offsets \}, got number 5/,
    );
    expectFormatError(
      file(entry('{"dtype":"F32","shape":[1],"data_offsets":[0,4],"scale":2}'), one),
      /tensor "t": unknown key "scale"; an entry has exactly dtype, shape and data_offsets/,
    );
    expectFormatError(file(entry('{"dtype":"F32","data_offsets":[0,4]}'), one), /tensor "t": missing key "shape"/);
    expectFormatError(
      file(entry('{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}'), one),
      /tensor "t": dtype the string "F8_E4M3" is not supported; allowed: F64, F32, F16, BF16, I64, I32, I16, I8, U32, U16, U8, BOOL/,
    );
    expectFormatError(
      file(entry('{"dtype":"F32","shape":4,"data_offsets":[0,4]}'), one),
      /shape must be an array.*got number 4/,
    );
    expectFormatError(
      file(entry('{"dtype":"F32","shape":[1,-1],"data_offsets":[0,4]}'), one),
      /shape\[1\] must be a non-negative safe integer, got number -1/,
    );
    expectFormatError(
      file(entry('{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}'), one),
      /shape\[0\] must be .* got number 1\.5/,
    );
    expectFormatError(
      file(entry('{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}'), one),
      /shape\[0\] .* got the string "1"/,
    );
    expectFormatError(
      file(entry('{"dtype":"F32","shape":[1],"data_offsets":[0]}'), one),
      /data_offsets must be two non-negative integers \[begin, end\], got \[0\]/,
    );
    expectFormatError(
      file(entry('{"dtype":"F32","shape":[1],"data_offsets":[0,"4"]}'), one),
      /data_offsets must be two/,
    );
    expectFormatError(
      file(entry('{"dtype":"F32","shape":[0],"data_offsets":[4,0]}'), one),
      /data_offsets \[4, 0\] has begin > end/,
    );
    expectFormatError(
      file(entry('{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'), one),
      /data_offsets \[0, 8\] run past the end of the data section \(4 bytes\)/,
    );
    expectFormatError(
      file(entry('{"dtype":"F16","shape":[1],"data_offsets":[0,4]}'), one),
      /data_offsets \[0, 4\] span 4 bytes but F16\[1\] needs 1 × 2 = 2 bytes/,
    );
    expectFormatError(
      file(entry('{"dtype":"U8","shape":[9007199254740991,3],"data_offsets":[0,4]}'), one),
      /span 4 bytes but U8\[9007199254740991, 3\] needs/,
    );
  });

  it('coverage of the data section', () => {
    const two =
      '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[%B]}}';
    const eight = [...one, ...one];
    expectFormatError(
      file(two.replace('%B', '0,4'), one),
      /tensor "b" data_offsets \[0, 4\] start inside the range of tensor "a" \[0, 4\]; tensor ranges must not overlap/,
    );
    expectFormatError(
      file(two.replace('%B', '4,8'), [...eight, 0, 0, 0, 0]),
      /4 trailing bytes \[8, 12\) that belong to no tensor/,
    );
    expectFormatError(
      file(two.replace('%B', '8,12'), [...eight, 0, 0, 0, 0]),
      /data bytes \[4, 8\) belong to no tensor \(gap before tensor "b"\)/,
    );
    expectFormatError(
      file(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}',
        eight,
      ),
      /tensor "e" data_offsets \[4, 4\] start inside the range of tensor "a" \[0, 8\]/,
    );
    expectFormatError(file('{}', [1]), /1 trailing bytes \[0, 1\)/);
  });

  it('metadata and values', () => {
    expectFormatError(
      file('{"__metadata__":{"epoch":3}}'),
      /"__metadata__" value "epoch" must be a string, got number 3/,
    );
    expectFormatError(
      file('{"__metadata__":["x"]}'),
      /"__metadata__" must be an object of string values, got an array/,
    );
    expectFormatError(
      file(entry('{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}'), [1, 2]),
      /tensor "t" \(BOOL\) element 1 is byte 2; BOOL bytes must be 0 or 1/,
    );
    expectFormatError(
      file(entry('{"dtype":"I64","shape":[1],"data_offsets":[0,8]}'), [0, 0, 0, 0, 0, 0, 0x20, 0]),
      /tensor "t" \(I64\) element 0 is 9007199254740992, outside ±\(2\^53 − 1\)/,
    );
  });
});

it('copies tensors out of a Node Buffer when asked (Buffer.slice shares memory)', () => {
  const file = writeSafetensors({ a: { dtype: 'F32', shape: [3], data: new Float32Array([1, 2, 3]) } });
  const pool = Buffer.alloc(file.length + 1);
  Buffer.from(file).copy(pool, 1); // unaligned inside a larger Node buffer
  const buf = pool.subarray(1);
  const parsed = parseSafetensors(buf, { copy: true });
  const a = parsed.tensors.get('a')!.data as Float32Array;
  expect(Array.from(a)).toEqual([1, 2, 3]);
  pool.fill(0);
  expect(Array.from(a)).toEqual([1, 2, 3]);
});
