// Trace files: a round trip keeps every signal bit for bit (NaN included) and every replay identical; bad
// files are refused with what is wrong and where.
import { describe, expect, it } from 'vitest';
import { createPolicy } from '../registry.js';
import { randomTrace } from '../testing-internal/random-trace.js';
import { simulate } from './simulate.js';
import type { Trace } from './trace.js';
import { parseTraceFile, traceToJson } from './trace-file.js';

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
    expect(errorOf({ ...good, offramp_trace: 2 })).toContain("'offramp_trace' must be 1 (the only trace file version)");
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
});
