// The `offramp.policy` request field → the language model's exit rule:
//   never | confidence[:threshold=τ] (max softmax probability ≥ τ, default 0.9)
//   | entropy:threshold=S (softmax entropy ≤ S nats) | fixed:block=K (every token leaves after block K)
import type { ExitRule } from '@offramp/mamba';

export const GENERATION_POLICIES = ['never', 'confidence', 'entropy', 'fixed'] as const;

/** A policy spec that cannot be used; the message names the policy, the option and what is allowed. */
export class PolicySpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicySpecError';
  }
}

function parseOptions(text: string, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim();
    const raw = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (!key || eq < 0)
      throw new PolicySpecError(`policy '${name}': expected key=value options, got ${JSON.stringify(part)}`);
    const v = raw === '' ? Number.NaN : Number(raw);
    if (!Number.isFinite(v))
      throw new PolicySpecError(`policy '${name}': option '${key}' must be a number, got ${JSON.stringify(raw)}`);
    if (key in out) throw new PolicySpecError(`policy '${name}': option '${key}' is given twice`);
    out[key] = v;
  }
  return out;
}

/** Parses a policy spec for a model whose exit blocks are `exits` (0-based; the last is full depth). */
export function exitRuleOf(spec: string, exits: readonly number[]): ExitRule {
  const colon = spec.indexOf(':');
  const name = (colon < 0 ? spec : spec.slice(0, colon)).trim();
  const o = colon < 0 || spec.slice(colon + 1).trim() === '' ? {} : parseOptions(spec.slice(colon + 1), name);
  const only = (...keys: string[]) => {
    for (const k of Object.keys(o))
      if (!keys.includes(k))
        throw new PolicySpecError(`policy '${name}': unknown option '${k}'; options: ${keys.join(', ') || 'none'}`);
  };
  const num = (k: string, lo: number, hi: number, def?: number): number => {
    const v = o[k] ?? def;
    if (v === undefined) throw new PolicySpecError(`policy '${name}': option '${k}' is required (${name}:${k}=…)`);
    if (!(v >= lo && v <= hi))
      throw new PolicySpecError(`policy '${name}': option '${k}' must be in [${lo}, ${hi}], got ${v}`);
    return v;
  };
  switch (name) {
    case 'never':
      only();
      return { kind: 'never' };
    case 'confidence':
      only('threshold');
      return { kind: 'maxProb', threshold: num('threshold', 0, 1, 0.9) };
    case 'entropy':
      only('threshold');
      return { kind: 'entropy', threshold: num('threshold', 0, 100) };
    case 'fixed': {
      only('block');
      const b = num('block', 0, Number.MAX_SAFE_INTEGER);
      if (!exits.includes(b))
        throw new PolicySpecError(
          `policy 'fixed': option 'block' must be an exit block of this model (${exits.join(', ')}), got ${b}`,
        );
      return { kind: 'fixed', block: b };
    }
    default:
      throw new PolicySpecError(
        `policy '${name}' is not available for generation: use ${GENERATION_POLICIES.join(', ')} (e.g. confidence:threshold=0.9)`,
      );
  }
}
