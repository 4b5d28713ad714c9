// Built-ins by name: the registry, createPolicy, spec strings, and their errors.
import { ValidationError } from '@offramp/core';
import { describe, expect, it } from 'vitest';
import {
  builtinPolicies,
  builtinPolicyNames,
  createPolicy,
  parsePolicySpec,
  policyFromSpec,
  validateOptions,
} from './registry.js';

describe('registry', () => {
  it('lists every built-in with a schema, a factory and a description', () => {
    expect([...builtinPolicyNames].sort()).toEqual(
      [
        'budget',
        'confidence',
        'entropy',
        'gate',
        'margin',
        'online',
        'oracle',
        'patience',
        'ponder',
        'quality',
        'saturation',
        'schedule',
        'static',
        'window',
      ].sort(),
    );
    for (const name of builtinPolicyNames) {
      const e = builtinPolicies[name];
      expect(typeof e.create).toBe('function');
      expect(e.description.length).toBeGreaterThan(10);
      expect(typeof e.schema.safeParse).toBe('function');
    }
  });

  it('creates by name with defaults filled in', () => {
    const p = createPolicy('ponder');
    expect(p.name).toBe('ponder');
    expect(p.options).toEqual({ mode: 'q-exit', q: 0.5, seed: 0, epsilon: 0.05 });
    expect(createPolicy('gate', { threshold: 0.7 }).options).toEqual({ threshold: 0.7 });
    expect(validateOptions('patience', {})).toEqual({ patience: 3, mode: 'argmax', delta: 0.1, signal: 'maxProb' });
  });

  it('refuses unknown names and bad options with ValidationErrors naming them', () => {
    expect(() => createPolicy('entrophy', {})).toThrow(ValidationError);
    expect(() => createPolicy('entrophy', {})).toThrow(
      /unknown policy 'entrophy': built-in policies are confidence, entropy/,
    );
    expect(() => createPolicy('patience', { patience: 0 })).toThrow(
      "policy 'patience': option 'patience' must be an integer in [1, 1000000], got 0",
    );
    expect(() => createPolicy('ponder', { mode: 'median' })).toThrow(
      "policy 'ponder': option 'mode' must be 'q-exit', 'sample' or 'expectation', got \"median\"",
    );
    expect(() => createPolicy('online', { thresholds: [0.5, 2] })).toThrow(
      "policy 'online': option 'thresholds.1' must be a number in [0, 1], got 2",
    );
    expect(() => createPolicy('budget', {})).toThrow(
      "policy 'budget': option 'target' must be a number in (0, 1], got nothing",
    );
  });
});

describe('policy spec strings', () => {
  it('parses name:key=value,... with numbers, booleans, words and [lists]', () => {
    expect(parsePolicySpec('entropy:threshold=0.3')).toEqual({ name: 'entropy', options: { threshold: 0.3 } });
    expect(parsePolicySpec(' confidence ')).toEqual({ name: 'confidence', options: { threshold: 0.9 } });
    expect(parsePolicySpec('entropy:threshold=[0.4, 0.3,0.2]').options).toEqual({ threshold: [0.4, 0.3, 0.2] });
    expect(parsePolicySpec('patience:patience=2,mode=regression,delta=0.05').options).toMatchObject({
      patience: 2,
      mode: 'regression',
      delta: 0.05,
    });
    expect(policyFromSpec('ponder:mode=sample,seed=9').options).toMatchObject({ mode: 'sample', seed: 9 });
  });

  it('explains malformed specs', () => {
    expect(() => parsePolicySpec('')).toThrow(/no policy name/);
    expect(() => parsePolicySpec('nope:x=1')).toThrow(/unknown policy 'nope'/);
    expect(() => parsePolicySpec('entropy:threshold')).toThrow(/expected key=value, got 'threshold'/);
    expect(() => parsePolicySpec('entropy:threshold=[0.1,0.2')).toThrow(/unbalanced '\['/);
    expect(() => parsePolicySpec('entropy:threshold=0.1,threshold=0.2')).toThrow(/option 'threshold' given twice/);
    expect(() => parsePolicySpec('entropy:threshold=low')).toThrow(
      /policy 'entropy': option 'threshold' must be a number in \(0, ln C\]/,
    );
    expect(() => parsePolicySpec('confidence:thresh=0.5')).toThrow(
      "policy 'confidence': unknown option 'thresh' (allowed: threshold)",
    );
  });
});
