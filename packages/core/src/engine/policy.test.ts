// definePolicy: unknown option names are refused by default (naming the policy, the option, the closest
// known name and the allowed ones), defaults are filled in, and the sweep grid is declared and expanded.
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { closestName, definePolicy, type ExitPolicy, sweepOptions, sweepValues } from './policy.js';

const decideNone = (_ctx: unknown, s: { count: number }) => new Uint8Array(s.count);

const rising = definePolicy({
  name: 'rising',
  defaults: { t0: 0.9, step: 0.05 },
  sweep: { t0: [0.7, 0.9], step: { from: 0, to: 0.1, steps: 3 } },
  create: () => ({ name: 'rising', init: () => null, decide: decideNone }),
});

describe('definePolicy', () => {
  it('object form: refuses an unknown option with the policy, the closest name and the allowed names', () => {
    expect(() => rising({ tO: 0.5 } as never)).toThrow(ValidationError);
    expect(() => rising({ tO: 0.5 } as never)).toThrow(
      "policy 'rising': unknown option 'tO' (did you mean 't0'?); allowed options: t0, step",
    );
    expect(() => rising({ t0: 0.5, speed: 1, x: 2 } as never)).toThrow(
      "policy 'rising': unknown options 'speed', 'x'; allowed options: t0, step",
    );
  });

  it('object form: fills in defaults and reports the resolved options', () => {
    expect(rising().options).toEqual({ t0: 0.9, step: 0.05 });
    expect(rising({ step: 0.1 }).options).toEqual({ t0: 0.9, step: 0.1 });
    expect(rising({ t0: undefined, step: 0.2 }).options).toEqual({ t0: 0.9, step: 0.2 });
    expect(rising.optionNames).toEqual(['t0', 'step']);
    expect(rising.defaults).toEqual({ t0: 0.9, step: 0.05 });
  });

  it('object form: declares a sweep grid, lists and ranges, and refuses one over an unknown option', () => {
    expect(rising.sweep).toEqual({ t0: [0.7, 0.9], step: { from: 0, to: 0.1, steps: 3 } });
    expect(sweepOptions(rising.sweep!)).toEqual([
      { t0: 0.7, step: 0 },
      { t0: 0.7, step: 0.05 },
      { t0: 0.7, step: 0.1 },
      { t0: 0.9, step: 0 },
      { t0: 0.9, step: 0.05 },
      { t0: 0.9, step: 0.1 },
    ]);
    expect(() =>
      definePolicy({ name: 'x', defaults: { a: 1 }, sweep: { b: [1] } as never, create: () => rising() }),
    ).toThrow("policy 'x': sweep names option 'b', which the policy does not take (options: a)");
    expect(() => sweepValues({ from: 0, to: 1, steps: 0 })).toThrow(/steps an integer ≥ 1/);
    expect(() => sweepValues([])).toThrow(/at least one value/);
  });

  it('function form: learns the option names from the policy built with none, and refuses a typo', () => {
    // the usual shape: defaults spread under the given options (a typo would otherwise run the defaults)
    const spread = definePolicy((o: { threshold?: number }): ExitPolicy<null> => {
      const options = { threshold: 0.5, ...o };
      return { name: 'spread', options, init: () => null, decide: decideNone };
    });
    expect(spread({ threshold: 0.7 }).options).toEqual({ threshold: 0.7 });
    expect(() => spread({ treshold: 0.7 } as never)).toThrow(
      "policy 'spread': unknown option 'treshold' (did you mean 'threshold'?); allowed options: threshold",
    );
    // options passed through as given: the built policy's names are the allowed ones
    const through = definePolicy((o: Record<string, number>) => ({
      name: 'through',
      options: o,
      init: () => null,
      decide: decideNone,
    }));
    expect(through({ a: 1 }).options).toEqual({ a: 1 });
    // declared names, and the opt-out
    const declared = definePolicy(
      (o: Record<string, number>) => ({ name: 'declared', options: o, init: () => null, decide: decideNone }),
      {
        options: ['a'],
        sweep: { a: [1, 2] },
      },
    );
    expect(() => declared({ b: 1 })).toThrow(
      "policy 'declared': unknown option 'b' (did you mean 'a'?); allowed options: a",
    );
    expect(declared.sweep).toEqual({ a: [1, 2] });
    const open = definePolicy(
      (_o: Record<string, number>) => ({ name: 'open', options: {}, init: () => null, decide: decideNone }),
      {
        options: [],
        allowUnknownOptions: true,
      },
    );
    expect(open({ anything: 1 }).name).toBe('open');
  });

  it('suggests only close names', () => {
    expect(closestName('tO', ['t0', 'step'])).toBe('t0');
    expect(closestName('patiense', ['patience', 'mode'])).toBe('patience');
    expect(closestName('zzz', ['patience', 'mode'])).toBeUndefined();
  });
});
