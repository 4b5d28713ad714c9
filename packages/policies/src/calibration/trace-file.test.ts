// Trace files: a round trip keeps every signal bit for bit (NaN included) and every replay identical; bad
// files are refused with what is wrong and where.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mulberry32 } from '@offramp/core';
import { describe, expect, it } from 'vitest';
import { createPolicy } from '../registry.js';
import { randomTrace } from '../testing-internal/random-trace.js';
import { simulate } from './simulate.js';
import type { Trace } from './trace.js';
import { parseTraceFile, readTraceFile, TRACE_MAX_DEPTH, traceToJson } from './trace-file.js';

const trace = randomTrace(300, 7);
const text = JSON.stringify(traceToJson(trace, { model: 'test', split: 'test' }));

function errorOf(doc: unknown): string {
  try {
    parseTraceFile(typeof doc === 'string' ? doc : JSON.stringify(doc), 't.json');
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
}

describe('trace files', () => {
  it('round-trips every sample and signal exactly, NaN included, with the metadata', () => {
    const { trace: back, meta } = parseTraceFile(text, 't.json');
    expect(meta).toEqual({ model: 'test', split: 'test' });
    expect(back.numExits).toBe(trace.numExits);
    expect(back.exitBlocks).toEqual(trace.exitBlocks);
    expect(back.costFractions).toEqual(trace.costFractions);
    expect(back.samples).toHaveLength(trace.samples.length);
    trace.samples.forEach((s, i) => {
      const b = back.samples[i];
      expect(b.label).toBe(s.label);
      expect(b.finalPrediction).toBe(s.finalPrediction);
      for (const k of ['maxProb', 'entropy', 'margin', 'argmax', 'gate', 'similarity'] as const)
        expect(Array.from(b[k]), `${k} of sample ${i}`).toEqual(Array.from(s[k]));
    });
    expect(Number.isNaN(back.samples[0].similarity[0])).toBe(true);
  });

  it('replays to the same exits for every policy family', () => {
    const { trace: back } = parseTraceFile(text);
    for (const [name, o] of [
      ['confidence', { threshold: 0.7 }],
      ['entropy', { threshold: 0.6 }],
      ['patience', { patience: 2 }],
      ['gate', { threshold: 0.5 }],
      ['saturation', { threshold: 0.5 }],
    ] as const) {
      const a = simulate(createPolicy(name, o), trace);
      const b = simulate(createPolicy(name, o), back);
      expect(Array.from(b.exits), name).toEqual(Array.from(a.exits));
      expect(b.accuracy).toBe(a.accuracy);
    }
  });

  it('keeps unlabelled traces unlabelled', () => {
    const unlabelled: Trace = { ...trace, samples: trace.samples.map(({ label: _, ...s }) => s) };
    const f = traceToJson(unlabelled);
    expect(f.labels).toBeNull();
    expect(parseTraceFile(f).trace.samples[0].label).toBeUndefined();
  });

  it('refuses bad files with what is wrong', () => {
    const good = JSON.parse(text);
    expect(errorOf('{oops')).toMatch(/^t\.json: not valid JSON/);
    expect(errorOf([1, 2])).toContain('expected a JSON object');
    expect(errorOf({ ...good, offramp_trace: 3 })).toContain(
      "'offramp_trace' must be 2 (or 1, the older version without hashes), got 3",
    );
    expect(errorOf({ ...good, extra: 1 })).toContain("unknown field 'extra'");
    expect(errorOf({ ...good, max_prob: good.max_prob.slice(1) })).toContain(
      'max_prob has 1199 values; 300 samples × 4 exits need 1200',
    );
    expect(errorOf({ ...good, exit_blocks: [1, 3, 3, 7] })).toContain('exit_blocks must be increasing block indices');
    expect(errorOf({ ...good, cost_fractions: [0.3, 0.2, 0.8, 1] })).toContain('cost_fractions must not decrease');
    expect(errorOf({ ...good, labels: good.labels.slice(0, 10) })).toContain('labels has 10 entries for 300 samples');
    expect(errorOf({ ...good, argmax: good.argmax.map(() => 5) })).toContain('argmax holds a class id ≥ num_classes 5');
    expect(errorOf({ ...good, entropy: good.entropy.map(() => 'x') })).toContain("'entropy.0' must be numbers or null");
    expect(errorOf({ ...good, num_exits: 0 })).toContain("'num_exits' must be an integer ≥ 1");
  });

  it('stores the weights and data hashes (version 2) and reads version-1 files as unchecked', () => {
    const w = 'a'.repeat(64);
    const d = 'b'.repeat(64);
    const f = traceToJson(trace, { model: 'x' }, { weightsSha256: w, dataSha256: d });
    expect(f.offramp_trace).toBe(2);
    const back = parseTraceFile(JSON.stringify(f), 't.json');
    expect(back.version).toBe(2);
    expect(back.fingerprint).toEqual({ weightsSha256: w, dataSha256: d });
    const { weights_sha256: _w, data_sha256: _d, ...v1 } = { ...f, offramp_trace: 1 };
    const old = parseTraceFile(v1, 't.json');
    expect(old.version).toBe(1);
    expect(old.fingerprint).toEqual({ weightsSha256: null, dataSha256: null });
    expect(old.trace.samples).toHaveLength(trace.samples.length);
    expect(errorOf({ ...f, weights_sha256: 'abc' })).toContain("'weights_sha256' must be a hex SHA-256");
    expect(errorOf({ ...v1, weights_sha256: w })).toContain("unknown field 'weights_sha256'");
  });

  it('refuses signals outside the ranges the engine produces, and faked final predictions', () => {
    const good = JSON.parse(text);
    const at = (col: string, i: number, v: unknown) => ({
      ...good,
      [col]: good[col].map((x: unknown, j: number) => (j === i ? v : x)),
    });
    // sample 2, exit 1 is index 2 × 4 + 1 = 9
    expect(errorOf(at('max_prob', 9, 5))).toContain(
      'max_prob of sample 2 at exit 1 is 5; max_prob must be in [1/C, 1]',
    );
    expect(errorOf(at('max_prob', 9, 0.1))).toContain('max_prob must be in [1/C, 1] = [0.2000, 1] for C=5');
    expect(errorOf(at('entropy', 9, -0.5))).toContain(
      'entropy of sample 2 at exit 1 is -0.5; entropy must be in [0, ln C]',
    );
    expect(errorOf(at('entropy', 9, 1.7))).toContain('[0, 1.60944] for C=5 classes');
    expect(errorOf(at('margin', 9, 1.5))).toContain('margin of sample 2 at exit 1 is 1.5; margin must be in [0, 1]');
    expect(errorOf(at('gate', 9, -0.1))).toContain('gate must be in [0, 1] (a sigmoid)');
    expect(errorOf(at('similarity', 9, 1.2))).toContain('similarity must be in [-1, 1]');
    // f32 rounding at the edges is accepted
    expect(errorOf(at('max_prob', 9, 1 + 1e-7))).toBe('no error');
    expect(errorOf(at('entropy', 9, -1e-7))).toBe('no error');
    const fp = good.final_prediction.slice();
    fp[3] = (fp[3] + 1) % 5;
    expect(errorOf({ ...good, final_prediction: fp })).toContain(
      `final_prediction of sample 3 is ${fp[3]} but the last exit's argmax is ${good.argmax[3 * 4 + 3]}`,
    );
    expect(errorOf({ ...good, final_prediction: good.final_prediction.map(() => 7) })).toContain(
      'final_prediction holds a class id ≥ num_classes 5',
    );
  });

  it('keeps logits when recorded, bit for bit, and checks their shape and their argmax', () => {
    const rand = mulberry32(5);
    const withLogits: Trace = {
      ...trace,
      samples: trace.samples.map((s) => ({
        ...s,
        logits: s.argmax.map((a) => {
          const z = Float32Array.from({ length: trace.numClasses }, () => rand() * 4 - 2);
          z[a] = 3 + rand();
          return z;
        }),
      })),
    };
    const f = traceToJson(withLogits);
    expect(f.logits).toHaveLength(300 * 4 * 5);
    const back = parseTraceFile(JSON.stringify(f), 't.json').trace;
    back.samples.forEach((s, i) => {
      expect(s.logits).toHaveLength(4);
      s.logits!.forEach((z, e) => {
        expect(Array.from(z)).toEqual(Array.from(withLogits.samples[i].logits![e]));
      });
    });
    expect(parseTraceFile(text).trace.samples[0].logits).toBeUndefined();
    expect(errorOf({ ...f, logits: f.logits!.slice(1) })).toContain(
      'logits has 5999 values; 300 samples × 4 exits × 5 classes need 6000',
    );
    const moved = f.logits!.slice();
    const a0 = f.argmax[0];
    moved[(a0 + 1) % 5] = 99;
    expect(errorOf({ ...f, logits: moved })).toContain(
      `logits of sample 0 at exit 0 peak at class ${(a0 + 1) % 5} but argmax is ${a0}`,
    );
    expect(errorOf({ ...f, logits: f.logits!.map(() => 'x') })).toContain("'logits.0' must be finite numbers");
    expect(errorOf({ ...f, offramp_trace: 1, weights_sha256: undefined, data_sha256: undefined })).toContain(
      "unknown field 'logits'",
    );
  });

  it('accepts a byte-order mark; refuses deep nesting and oversized files naming the file', async () => {
    expect(parseTraceFile(`\ufeff${text}`, 't.json').trace.samples).toHaveLength(300);
    const dir = mkdtempSync(join(tmpdir(), 'offramp-trace-file-'));
    const bom = join(dir, 'bom.trace.json');
    writeFileSync(bom, `\ufeff${text}`);
    expect((await readTraceFile(bom)).trace.samples).toHaveLength(300);
    // built as text: JSON.stringify itself overflows the stack on such a value
    const deep = `${text.trimEnd().slice(0, -1)},"meta":{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`;
    expect(errorOf(deep)).toContain(`t.json: nested deeper than ${TRACE_MAX_DEPTH} levels at 'meta.a[0][0]`);
    const big = join(dir, 'big.trace.json');
    writeFileSync(big, text);
    await expect(readTraceFile(big, { maxBytes: 1000 })).rejects.toThrow(
      `${big} is ${(text.length / 1024).toFixed(1)} KiB, larger than the 1000 bytes allowed for a trace file`,
    );
    await expect(readTraceFile(join(dir, 'missing.json'))).rejects.toThrow(
      `${join(dir, 'missing.json')} does not exist`,
    );
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"offramp_trace": 2,');
    await expect(readTraceFile(broken)).rejects.toThrow(`${broken}: not valid JSON`);
  });
});
