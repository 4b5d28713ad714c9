// StopMatcher: however the text arrives in pieces, the emitted text is what precedes the stop sequence that
// the text completes first (or all of it), and nothing that could begin a stop sequence is emitted early;
// exit policy specs; chat rendering.
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { exitRuleOf } from './completions-policy.js';
import { renderChat } from './completions-schema.js';
import { StopMatcher } from './completions-stop.js';

function expected(text: string, stops: string[]): { text: string; stopped: boolean } {
  // generation stops at the first character that completes a stop sequence
  for (let e = 1; e <= text.length; e++) {
    const done = stops.filter((s) => text.slice(0, e).endsWith(s));
    if (done.length) return { text: text.slice(0, e - Math.max(...done.map((s) => s.length))), stopped: true };
  }
  return { text, stopped: false };
}

it('emits the text before the first completed stop sequence, whatever the pieces', () => {
  const alphabet = fc.constantFrom('a', 'b', 'c', '\n');
  const str = (min: number, max: number) =>
    fc.array(alphabet, { minLength: min, maxLength: max }).map((a) => a.join(''));
  fc.assert(
    fc.property(fc.array(str(0, 4), { maxLength: 12 }), fc.array(str(1, 4), { maxLength: 4 }), (pieces, stops) => {
      const m = new StopMatcher(stops);
      let out = '';
      let stopped = false;
      for (const p of pieces) {
        const r = m.push(p);
        out += r.emit;
        // never emits a prefix that could still turn into a stop sequence
        expect(expected(out, stops).stopped).toBe(false);
        if (r.stopped) {
          stopped = true;
          break;
        }
      }
      if (!stopped) out += m.flush();
      expect({ text: out, stopped }).toEqual(expected(pieces.join(''), stops));
    }),
    { numRuns: 2000 },
  );
});

it('releases text as soon as no stop sequence can begin in it', () => {
  const m = new StopMatcher(['END']);
  expect(m.push('abc')).toEqual({ emit: 'abc', stopped: false });
  expect(m.push('xE')).toEqual({ emit: 'x', stopped: false });
  expect(m.push('N')).toEqual({ emit: '', stopped: false });
  expect(m.push('D!')).toEqual({ emit: '', stopped: true });
});

it('parses exit policies and names what is wrong', () => {
  const exits = [3, 4, 5];
  expect(exitRuleOf('never', exits)).toEqual({ kind: 'never' });
  expect(exitRuleOf('confidence', exits)).toEqual({ kind: 'maxProb', threshold: 0.9 });
  expect(exitRuleOf('confidence:threshold=0.5', exits)).toEqual({ kind: 'maxProb', threshold: 0.5 });
  expect(exitRuleOf('entropy:threshold=1', exits)).toEqual({ kind: 'entropy', threshold: 1 });
  expect(exitRuleOf('fixed:block=3', exits)).toEqual({ kind: 'fixed', block: 3 });
  expect(() => exitRuleOf('fixed:block=2', exits)).toThrow(/exit block of this model \(3, 4, 5\), got 2/);
  expect(() => exitRuleOf('confidence:threshold=2', exits)).toThrow(/'threshold' must be in \[0, 1\], got 2/);
  expect(() => exitRuleOf('entropy', exits)).toThrow(/'threshold' is required/);
  expect(() => exitRuleOf('confidence:t=1', exits)).toThrow(/unknown option 't'/);
  expect(() => exitRuleOf('patience:n=2', exits)).toThrow(/not available for generation/);
});

it('renders chat messages to one prompt', () => {
  expect(
    renderChat([
      { role: 'system', content: 'A letter.' },
      { role: 'user', content: 'Who is she?' },
      { role: 'assistant', content: [{ type: 'text', text: 'Emma.' }] },
      { role: 'user', content: 'And?' },
    ]),
  ).toBe('A letter.\n\nUser: Who is she?\nAssistant: Emma.\nUser: And?\nAssistant: ');
});
