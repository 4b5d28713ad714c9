// Combinators: anyOf / allOf (leave when any / all parts say so), minBlock / maxBlock (never before / at
// the latest at a block; minExit / maxExit count exits instead). Every part's decide runs at every exit so
// stateful parts (patience, ponder) keep counting. The device form exists when every part has one: each
// part's WGSL is renamed (its top-level names get a `pK_` prefix, its `policy_state[i]` becomes
// `policy_state[(i) + offsetK]`, so parts use STATE_SIZE only as the row stride) and called in turn.
import {
  type DevicePolicy,
  type ExitContext,
  type ExitPolicy,
  type ExitSignals,
  type PolicyInit,
  type SignalName,
  ValidationError,
} from '@offramp/core';
import { optionError } from './options.js';
import { wgslPerExitU32 } from './wgsl.js';

const KINDS: Record<string, string> = {
  'any-of': 'anyOf',
  'all-of': 'allOf',
  'min-block': 'minBlock',
  'max-block': 'maxBlock',
  'min-exit': 'minExit',
  'max-exit': 'maxExit',
};

/** The combinator a policy was built with ('anyOf', ...), from its name; undefined for other policies. */
export function combinatorKind(policy: ExitPolicy<any>): string | undefined {
  const m = /^(any-of|all-of|min-block|max-block|min-exit|max-exit)\(/.exec(policy.name);
  return m ? KINDS[m[1]] : undefined;
}

/** { name, options } of a part, as policy files store it (combinators by their kind). */
export function partSpec(p: ExitPolicy<any>): { name: string; options: Record<string, unknown> } {
  return { name: combinatorKind(p) ?? p.name, options: (p.options ?? {}) as Record<string, unknown> };
}

const DECL = /\b(?:fn|const|override|struct|alias|var(?:<[^>]*>)?)\s+([A-Za-z_]\w*)/g;

/** Renames a part's declarations with `prefix` and shifts its state indices by `offset`. */
export function renameWgsl(code: string, prefix: string, offset: number): string {
  const names = new Set<string>();
  for (const m of code.matchAll(DECL)) names.add(m[1]);
  let out = code;
  for (const name of names) out = out.replace(new RegExp(`(?<![.\\w])${name}\\b`, 'g'), `${prefix}${name}`);
  if (offset === 0) return out;
  // policy_state[EXPR] → policy_state[(EXPR) + offset], with nested brackets
  let res = '';
  let i = 0;
  const key = 'policy_state';
  for (;;) {
    const j = out.indexOf(key, i);
    if (j < 0) break;
    let k = j + key.length;
    while (k < out.length && /\s/.test(out[k])) k++;
    if (out[k] !== '[' || /\w/.test(out[j - 1] ?? '')) {
      res += out.slice(i, k);
      i = k;
      continue;
    }
    let depth = 0;
    let e = k;
    for (; e < out.length; e++) {
      if (out[e] === '[') depth++;
      else if (out[e] === ']' && --depth === 0) break;
    }
    if (e >= out.length) throw new ValidationError(`unbalanced brackets after policy_state in a part's WGSL`);
    res += `${out.slice(i, j)}policy_state[(${out.slice(k + 1, e)}) + ${offset}u]`;
    i = e + 1;
  }
  return res + out.slice(i);
}

function composeDevice(
  parts: readonly ExitPolicy<any>[],
  combine: (calls: string[]) => string,
): DevicePolicy | undefined {
  if (!parts.every((p) => p.device)) return undefined;
  let offset = 0;
  const codes: string[] = [];
  const initState: number[] = [];
  parts.forEach((p, k) => {
    const d = p.device!;
    codes.push(renameWgsl(d.code, `p${k}_`, offset));
    for (let i = 0; i < d.stateSize; i++) initState.push(d.initState?.[i] ?? 0);
    offset += d.stateSize;
  });
  const calls = parts.map((_, k) => `let d${k} = p${k}_policy_decide(sid, exit_index, s);`);
  return {
    stateSize: offset,
    initState,
    code: `${codes.join('\n')}
fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool {
  ${calls.join('\n  ')}
  return ${combine(parts.map((_, k) => `d${k}`))};
}`,
  };
}

function unionNeeds(parts: readonly ExitPolicy<any>[]): SignalName[] {
  const set = new Set<SignalName>();
  for (const p of parts) for (const n of p.needs ?? []) set.add(n);
  return [...set];
}

function runParts(
  parts: readonly ExitPolicy<any>[],
  ctx: ExitContext,
  s: ExitSignals,
  states: unknown[],
): ArrayLike<boolean | number>[] {
  return parts.map((p, k) => {
    const d = p.decide(ctx, s, states[k]);
    if (!d || d.length !== s.count)
      throw new ValidationError(
        `policy '${p.name}' returned ${d?.length ?? 'nothing'} decisions for ${s.count} rows at exit ${ctx.exitIndex}`,
      );
    return d;
  });
}

/** Most parts one anyOf / allOf takes. */
export const MAX_COMBINATOR_PARTS = 32;
/** Deepest nesting of combinators (anyOf(minExit(allOf(...))) is 3 deep). */
export const MAX_COMBINATOR_DEPTH = 8;
/** Most policies (leaves) one combined policy holds, over all its levels. */
export const MAX_COMBINATOR_POLICIES = 64;

/** Nesting depth and leaf count of the combinators built here (a plain policy is depth 0, one leaf). */
const shapes = new WeakMap<object, { depth: number; leaves: number }>();
const shapeOf = (p: ExitPolicy<any>) => shapes.get(p) ?? { depth: 0, leaves: 1 };

/**
 * Checks the size of a combined policy before anything (names, WGSL) is built from its parts: a shader for
 * thousands of parts takes minutes and gigabytes to build and then fails to compile. Returns its shape.
 */
function checkSize(kind: string, parts: readonly ExitPolicy<any>[]): { depth: number; leaves: number } {
  if (parts.length > MAX_COMBINATOR_PARTS)
    throw new ValidationError(
      `${kind}: got ${parts.length} policies, at most ${MAX_COMBINATOR_PARTS} are allowed in one combinator (nest combinators to group more, up to ${MAX_COMBINATOR_POLICIES} policies in all)`,
    );
  let depth = 0;
  let leaves = 0;
  for (const p of parts) {
    const s = shapeOf(p);
    depth = Math.max(depth, s.depth);
    leaves += s.leaves;
  }
  depth += 1;
  if (depth > MAX_COMBINATOR_DEPTH)
    throw new ValidationError(
      `${kind}: combinators nested ${depth} levels deep, at most ${MAX_COMBINATOR_DEPTH} levels are allowed`,
    );
  if (leaves > MAX_COMBINATOR_POLICIES)
    throw new ValidationError(
      `${kind}: the combined policy holds ${leaves} policies over all its levels, at most ${MAX_COMBINATOR_POLICIES} are allowed`,
    );
  return { depth, leaves };
}

function logical(kind: 'any-of' | 'all-of', parts: readonly ExitPolicy<any>[]): ExitPolicy<unknown[]> {
  if (parts.length === 0) throw new ValidationError(`${kind} needs at least one policy`);
  const shape = checkSize(kind === 'any-of' ? 'anyOf' : 'allOf', parts);
  const any = kind === 'any-of';
  const policy: ExitPolicy<unknown[]> = {
    name: `${kind}(${parts.map((p) => p.name).join(',')})`,
    needs: unionNeeds(parts),
    options: { policies: parts.map(partSpec) },
    init: (info: PolicyInit) => parts.map((p) => p.init(info)),
    decide(ctx, s, states) {
      const ds = runParts(parts, ctx, s, states);
      const out = new Uint8Array(s.count);
      for (let r = 0; r < s.count; r++) out[r] = (any ? ds.some((d) => d[r]) : ds.every((d) => d[r])) ? 1 : 0;
      return out;
    },
    get device() {
      return composeDevice(parts, (ds) => ds.join(any ? ' || ' : ' && '));
    },
  };
  shapes.set(policy, shape);
  return policy;
}

/** Leaves when any part says so. */
export function anyOf(...parts: ExitPolicy<any>[]): ExitPolicy<unknown[]> {
  return logical('any-of', parts);
}

/** Leaves when every part says so. */
export function allOf(...parts: ExitPolicy<any>[]): ExitPolicy<unknown[]> {
  return logical('all-of', parts);
}

export interface DepthLimitOptions {
  /** The model's exit blocks: gives minBlock/maxBlock a device form (checked against the model at init). */
  exitBlocks?: readonly number[];
}

function depthLimit(
  kind: 'min' | 'max',
  unit: 'block' | 'exit',
  part: ExitPolicy<any>,
  at: number,
  o: DepthLimitOptions = {},
): ExitPolicy<unknown> {
  const name = `${kind}${unit === 'block' ? 'Block' : 'Exit'}`;
  if (!Number.isInteger(at) || at < 0)
    throw new ValidationError(`${name}: the ${unit} must be an integer ≥ 0, got ${at}`);
  const shape = checkSize(name, [part]);
  const where = (ctx: ExitContext) => (unit === 'block' ? ctx.block : ctx.exitIndex);
  const gate = (at_: string) => (kind === 'min' ? `d0 && ${at_} >= ${at}u` : `d0 || ${at_} >= ${at}u`);
  const policy: ExitPolicy<unknown> = {
    name: `${kind}-${unit}(${part.name},${at})`,
    needs: part.needs,
    options: { policy: partSpec(part), [unit]: at, ...(o.exitBlocks ? { exitBlocks: [...o.exitBlocks] } : {}) },
    init(info) {
      if (unit === 'block' && o.exitBlocks && o.exitBlocks.join() !== info.exitBlocks.join()) {
        optionError(
          name,
          'exitBlocks',
          `must equal the model's exit blocks [${info.exitBlocks.join(', ')}]`,
          o.exitBlocks,
        );
      }
      return part.init(info);
    },
    decide(ctx, s, state) {
      const [d] = runParts([part], ctx, s, [state]);
      const ok = where(ctx) >= at;
      const out = new Uint8Array(s.count);
      for (let r = 0; r < s.count; r++) out[r] = (kind === 'min' ? d[r] && ok : d[r] || ok) ? 1 : 0;
      return out;
    },
    get device() {
      if (unit === 'block' && !o.exitBlocks) return undefined;
      const inner = composeDevice([part], () => gate(unit === 'block' ? 'block_of(exit_index)' : 'exit_index'));
      if (!inner || unit === 'exit') return inner;
      return { ...inner, code: `${wgslPerExitU32('block_of', o.exitBlocks!)}\n${inner.code}` };
    },
  };
  shapes.set(policy, shape);
  return policy;
}

/** Never leaves before `block` (the part decides from there on). */
export function minBlock(part: ExitPolicy<any>, block: number, o?: DepthLimitOptions): ExitPolicy<unknown> {
  return depthLimit('min', 'block', part, block, o);
}
/** Leaves at `block` at the latest. */
export function maxBlock(part: ExitPolicy<any>, block: number, o?: DepthLimitOptions): ExitPolicy<unknown> {
  return depthLimit('max', 'block', part, block, o);
}
/** Never leaves before exit index `exit`. */
export function minExit(part: ExitPolicy<any>, exit: number): ExitPolicy<unknown> {
  return depthLimit('min', 'exit', part, exit);
}
/** Leaves at exit index `exit` at the latest. */
export function maxExit(part: ExitPolicy<any>, exit: number): ExitPolicy<unknown> {
  return depthLimit('max', 'exit', part, exit);
}
