// The policy editor's compilation: the text is a `definePolicy(...)` expression (or any expression giving a
// policy factory), evaluated with core's definePolicy and wgslFloat in scope. Errors name where they came from.
import { definePolicy, type ExitPolicy, wgslFloat } from '@offramp/core';

export type Factory = (options: Record<string, unknown>) => ExitPolicy<unknown>;

export const EXAMPLE_POLICY = `definePolicy({
  name: 'my-confidence',
  defaults: { threshold: 0.9 },
  sweep: { threshold: [0.8, 0.9, 0.95] },
  create: (o) => ({
    name: 'my-confidence',
    needs: ['maxProb'],
    init: () => null,
    // compare in f32, as the WGSL form does
    decide: (ctx, s) => Array.from(s.maxProb, (p) => p >= Math.fround(o.threshold)),
    device: {
      stateSize: 0,
      code: \`fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool {
  return s.max_prob >= f32(\${wgslFloat(o.threshold)});
}\`,
    },
  }),
})`;

/** Compiles the editor's text into a factory; throws an Error saying what is wrong. */
export function compilePolicy(text: string): Factory {
  let value: unknown;
  try {
    value = new Function('definePolicy', 'wgslFloat', `"use strict"; return (\n${text}\n);`)(definePolicy, wgslFloat);
  } catch (e) {
    const err = e as Error;
    throw new Error(`${err.name} in the policy text: ${err.message}`);
  }
  if (typeof value !== 'function')
    throw new Error(
      `the policy text gives ${value === null ? 'null' : typeof value}; it must be a policy factory: definePolicy({ name, defaults, create }) or (options) => policy`,
    );
  return value as Factory;
}

/** Parses the valid-options field: a JSON array of option objects. */
export function parseOptionList(text: string): Record<string, unknown>[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(
      `options: not JSON (${(e as Error).message}); expected an array of option objects, e.g. [{"threshold": 0.9}]`,
    );
  }
  if (!Array.isArray(v) || v.length === 0 || v.some((o) => o === null || typeof o !== 'object' || Array.isArray(o)))
    throw new Error('options: expected a non-empty array of option objects, e.g. [{"threshold": 0.9}]');
  return v as Record<string, unknown>[];
}
