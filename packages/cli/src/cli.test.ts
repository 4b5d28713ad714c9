// Unit tests of the command line's parts: suggestions, policy lists and option strings, exit codes.
import { FormatError, ValidationError } from '@offramp/core';
import { describe, expect, it } from 'vitest';
import { EXIT_RUNTIME, EXIT_USAGE, exitCodeOf, RuntimeError, UsageError } from './errors.js';
import { parseOptionString, parsePolicyList, splitPolicyList } from './policies.js';
import { bars, pct, pp } from './util/format.js';
import { levenshtein, nearest } from './util/suggest.js';

describe('suggestions', () => {
  it('levenshtein distance', () => {
    expect(levenshtein('entropy', 'entropy')).toBe(0);
    expect(levenshtein('entropi', 'entropy')).toBe(1);
    expect(levenshtein('', 'abc')).toBe(3);
    expect(levenshtein('kitten', 'sitting')).toBe(3);
  });
  it('nearest name only when it is a likely typo', () => {
    const names = ['confidence', 'entropy', 'margin', 'patience'];
    expect(nearest('entrpy', names)).toBe('entropy');
    expect(nearest('Confidance', names)).toBe('confidence');
    expect(nearest('pat', names)).toBe('patience');
    expect(nearest('banana', names)).toBeUndefined();
  });
});

describe('policy lists', () => {
  it('splits on commas but keeps key=value options with their policy', () => {
    expect(splitPolicyList(['confidence,entropy:threshold=0.3,patience'])).toEqual([
      'confidence',
      'entropy:threshold=0.3',
      'patience',
    ]);
    expect(splitPolicyList(['patience:patience=2,mode=regression,delta=0.1', 'entropy:threshold=[0.4,0.3]'])).toEqual([
      'patience:patience=2,mode=regression,delta=0.1',
      'entropy:threshold=[0.4,0.3]',
    ]);
    expect(() => splitPolicyList(['threshold=0.3'])).toThrow(UsageError);
  });
  it('parses option strings with numbers, booleans, words and lists', () => {
    expect(parseOptionString('a=1,b=true,c=word,d=[1,2.5]', 'x')).toEqual({ a: 1, b: true, c: 'word', d: [1, 2.5] });
    expect(() => parseOptionString('a=1,a=2', 'x')).toThrow(/given twice/);
    expect(() => parseOptionString('nokey', 'x')).toThrow(/key=value/);
  });
  it('expands all, keeps sweeps and fixed settings, refuses unknown names with a suggestion', async () => {
    const all = await parsePolicyList(['all']);
    expect(all.map((r) => r.kind)).toEqual(all.map(() => 'sweep'));
    const mixed = await parsePolicyList(['confidence:threshold=0.8', 'patience']);
    expect(mixed[0]).toMatchObject({ kind: 'builtin', name: 'confidence', options: { threshold: 0.8 } });
    expect(mixed[1]).toMatchObject({ kind: 'sweep', name: 'patience' });
    await expect(parsePolicyList(['margn'])).rejects.toThrow("did you mean 'margin'");
    await expect(parsePolicyList(['window'])).rejects.toThrow(/window:wLo=/);
    await expect(parsePolicyList(['margin:threshold=-1'])).rejects.toThrow(/policy 'margin'.*threshold/);
  });
});

describe('exit codes', () => {
  it('usage errors are 2, runtime errors 1', () => {
    expect(exitCodeOf(new UsageError('x'))).toBe(EXIT_USAGE);
    expect(exitCodeOf(new ValidationError('x'))).toBe(EXIT_USAGE);
    expect(exitCodeOf(new RuntimeError('x'))).toBe(EXIT_RUNTIME);
    expect(exitCodeOf(new FormatError('x'))).toBe(EXIT_RUNTIME);
    expect(exitCodeOf(new Error('x'))).toBe(EXIT_RUNTIME);
  });
});

describe('formatting', () => {
  it('percentages, signed points and bars', () => {
    expect(pct(0.8736)).toBe('87.36%');
    expect(pp(-0.0123)).toBe('−1.23 pp');
    expect(pp(0)).toBe('0.00 pp');
    const lines = bars(
      [
        { label: 'a', value: 10 },
        { label: 'bb', value: 5 },
      ],
      10,
    );
    expect(lines[0]).toMatch(/^a {3}█{10} +10 \(66\.7%\)$/);
    expect(lines[1]).toMatch(/^bb {2}█{5} +5 \(33\.3%\)$/);
  });
});
