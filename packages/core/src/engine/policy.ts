// The exit-policy interface. A policy sees, after each exit head, a few scalars per live row (the exit
// signals) and decides which rows leave now. Host mode calls `decide` in TypeScript; device mode runs the
// policy's optional WGSL form on the GPU with the same signals and per-sample state.
// Third-party policies are written against this file alone.
import { ValidationError } from '../errors.js';

/** Names of the per-row exit signals. */
export type SignalName = 'maxProb' | 'entropy' | 'margin' | 'argmax' | 'gate' | 'similarity' | 'logits';

/** Exit signals of the live rows at one exit (struct of arrays, `count` rows). */
export interface ExitSignals {
  count: number;
  /** Index of each live row in the caller's batch (stable across compaction). */
  sampleIds: Int32Array;
  /** max_c softmax(z)_c */
  maxProb: Float32Array;
  /** Shannon entropy of softmax(z), in nats. */
  entropy: Float32Array;
  /** top-1 minus top-2 softmax probability. */
  margin: Float32Array;
  argmax: Int32Array;
  /** σ(gate logit) of the exit's gate/λ head; NaN when the exit has none. */
  gate: Float32Array;
  /** Cosine similarity of this exit's pooled hidden state with the previous exit's; NaN at the first exit. */
  similarity: Float32Array;
  /** Raw logits (count × classes), present in host mode when the policy lists 'logits' in `needs`. */
  logits?: Float32Array;
}

export interface ExitContext {
  /** 0-based index of this exit among the model's exits. */
  exitIndex: number;
  numExits: number;
  /** 0-based block after which this exit sits. */
  block: number;
  numBlocks: number;
  /** True at the final exit: every row leaves whatever the policy says. */
  isLast: boolean;
  /** Fraction of full-depth compute a sample has spent when it leaves here (0..1]. */
  costFraction: number;
  numClasses: number;
}

export interface PolicyInit {
  batchSize: number;
  numExits: number;
  numClasses: number;
  /** Block index of each exit. */
  exitBlocks: readonly number[];
  /** Compute fraction spent at each exit. */
  costFractions: readonly number[];
}

/**
 * The device-mode (WGSL) form of a policy. `code` defines
 *   fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool
 * and may read and write `policy_state[sid * STATE_SIZE + k]` (f32, STATE_SIZE = stateSize).
 * Options are baked into the code as constants; the host form must compare in f32 too (Math.fround) so
 * both forms decide identically on values at a threshold. Available:
 *   struct Signals { max_prob: f32, entropy: f32, margin: f32, argmax: u32, gate: f32, similarity: f32, cost: f32 }
 *   const NUM_EXITS: u32; const NUM_CLASSES: u32;
 */
export interface DevicePolicy {
  stateSize: number;
  /** Initial value of each state slot (default 0). */
  initState?: readonly number[];
  code: string;
}

export interface ExitPolicy<State = unknown> {
  name: string;
  /** Signals this policy reads; 'logits' makes host mode read back the full logits. */
  needs?: readonly SignalName[];
  /** Fresh per-request state. Policies keep no state outside it. */
  init(info: PolicyInit): State;
  /** Per live row: truthy = leave now. Rows are ordered as in `signals`. */
  decide(ctx: ExitContext, signals: ExitSignals, state: State): ArrayLike<boolean | number>;
  /** Optional device-mode form; must decide exactly as `decide` does. */
  device?: DevicePolicy;
  /** Options, for logs and serialised policy files. */
  options?: Record<string, unknown>;
}

/**
 * Candidate values of one option for sweeps: a list, or `steps` evenly spaced numbers from `from` to `to`
 * (both ends included).
 */
export type SweepValues = readonly unknown[] | { from: number; to: number; steps: number };

/** A sweep grid: option name → candidate values. Sweeps run every combination. */
export type SweepGrid = Readonly<Record<string, SweepValues>>;

/** A policy declared with its options: the form `definePolicy({ name, defaults, sweep, create })` takes. */
export interface PolicyDefinition<O extends Record<string, unknown>, S> {
  /** The policy's name, for errors (the policy `create` returns names itself). */
  name: string;
  /** Every option with its default value. Option names not listed here are refused. */
  defaults: O;
  /** What a sweep tries when the policy is named without options (`offramp eval -p module:...`). */
  sweep?: { readonly [K in keyof O]?: SweepValues };
  /** Builds the policy from the options, defaults filled in (its `options` default to those). */
  create(options: O): ExitPolicy<S>;
}

/** What `definePolicy` returns: the factory, with what it knows about the options attached. */
export interface PolicyFactory<O, S> {
  (options: O): ExitPolicy<S>;
  /** The option names the factory takes (unknown names are refused); absent when not known. */
  readonly optionNames?: readonly string[];
  /** Default options (object form). */
  readonly defaults?: Readonly<Record<string, unknown>>;
  /** The declared sweep grid, if any. */
  readonly sweep?: SweepGrid;
}

/** Settings of the function form of `definePolicy`. */
export interface DefinePolicyOptions {
  /** The option names the factory takes. Default: the names in `factory({}).options`. */
  options?: readonly string[];
  /** The sweep grid (option name → candidate values). */
  sweep?: SweepGrid;
  /** Let unknown option names through unchecked (default false). */
  allowUnknownOptions?: boolean;
}

/**
 * Defines a policy factory. Two forms:
 *   definePolicy({ name, defaults, sweep?, create })  options declared with their defaults
 *   definePolicy((options) => policy, { options?, sweep? })  a plain factory
 * Either way, an option name the policy does not take is refused with a ValidationError naming the policy,
 * the unknown option, the closest known name and every allowed one. The function form learns the names
 * from the `options` the policy reports when built with none (`factory({})`), unless given `options`; when
 * that build fails or reports none, the names of the built policy's `options` are the allowed ones.
 */
export function definePolicy<O extends Record<string, unknown>, S>(
  def: PolicyDefinition<O, S>,
): PolicyFactory<Partial<O>, S> & ((options?: Partial<O>) => ExitPolicy<S>);
export function definePolicy<O, S>(
  factory: (options: O) => ExitPolicy<S>,
  settings?: DefinePolicyOptions,
): PolicyFactory<O, S>;
export function definePolicy(
  def: PolicyDefinition<Record<string, unknown>, unknown> | ((options: any) => ExitPolicy<unknown>),
  settings: DefinePolicyOptions = {},
): PolicyFactory<any, unknown> {
  if (typeof def === 'function') return defineFromFunction(def, settings);
  if (!def || typeof def !== 'object' || typeof def.create !== 'function' || typeof def.name !== 'string')
    throw new ValidationError(
      'definePolicy: expected { name, defaults, create } or a factory function (options) => policy',
    );
  const defaults = def.defaults ?? {};
  if (typeof defaults !== 'object' || Array.isArray(defaults))
    throw new ValidationError(`policy '${def.name}': defaults must be an object of option name → default value`);
  const names = Object.keys(defaults);
  checkSweep(def.name, def.sweep, names);
  const factory = (options?: Record<string, unknown>) => {
    const given = checkOptionNames(def.name, options, names);
    // an option given as undefined takes its default
    const resolved: Record<string, unknown> = { ...defaults };
    for (const [k, v] of Object.entries(given)) if (v !== undefined) resolved[k] = v;
    const p = def.create(resolved);
    return p.options === undefined ? { ...p, options: resolved } : p;
  };
  return Object.assign(factory, {
    optionNames: Object.freeze([...names]),
    defaults: Object.freeze({ ...defaults }),
    ...(def.sweep ? { sweep: Object.freeze({ ...def.sweep }) as SweepGrid } : {}),
  });
}

function defineFromFunction(
  fn: (options: any) => ExitPolicy<unknown>,
  settings: DefinePolicyOptions,
): PolicyFactory<any, unknown> {
  let learned: { name?: string; names?: readonly string[] } | undefined;
  const known = () => {
    if (settings.options) return { names: settings.options };
    if (!learned) {
      learned = {};
      try {
        const p = fn({});
        const names = p.options ? Object.keys(p.options) : [];
        learned = { name: p.name, names: names.length ? names : undefined };
      } catch {
        // options are needed to build it: fall back to the names the built policy reports
      }
    }
    return learned;
  };
  const factory = (options: any) => {
    if (settings.allowUnknownOptions || !isPlainObject(options)) return fn(options);
    const k = known();
    if (k.names) {
      checkOptionNames(k.name ?? '?', options, k.names, () => fn({}).name);
      return fn(options);
    }
    const p = fn(options);
    if (p.options) checkOptionNames(p.name, options, Object.keys(p.options));
    return p;
  };
  if (settings.sweep) checkSweep('?', settings.sweep, settings.options);
  return Object.assign(factory, {
    ...(settings.options ? { optionNames: Object.freeze([...settings.options]) } : {}),
    ...(settings.sweep ? { sweep: Object.freeze({ ...settings.sweep }) } : {}),
  });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Refuses option names outside `names`; returns the options (an empty object for undefined). */
function checkOptionNames(
  policy: string,
  options: unknown,
  names: readonly string[],
  nameOf?: () => string,
): Record<string, unknown> {
  if (options === undefined || options === null) return {};
  if (!isPlainObject(options))
    throw new ValidationError(`policy '${policy}': options must be an object of name → value, got ${typeof options}`);
  const unknown = Object.keys(options).filter((k) => !names.includes(k));
  if (!unknown.length) return options;
  let name = policy;
  if (name === '?' && nameOf) {
    try {
      name = nameOf();
    } catch {}
  }
  const first = unknown[0];
  const hint = closestName(first, names);
  throw new ValidationError(
    `policy '${name}': unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}${hint ? ` (did you mean '${hint}'?)` : ''}; ${names.length ? `allowed options: ${names.join(', ')}` : 'it takes no options'}`,
  );
}

function checkSweep(policy: string, sweep: unknown, names?: readonly string[]): void {
  if (sweep === undefined) return;
  if (!isPlainObject(sweep))
    throw new ValidationError(`policy '${policy}': sweep must be an object of option name → candidate values`);
  for (const [k, v] of Object.entries(sweep)) {
    if (names && !names.includes(k))
      throw new ValidationError(
        `policy '${policy}': sweep names option '${k}', which the policy does not take (options: ${names.join(', ')})`,
      );
    sweepValues(v as SweepValues, `policy '${policy}': sweep of '${k}'`);
  }
}

/** The candidate values of one sweep entry (a list as is, a range expanded). */
export function sweepValues(v: SweepValues, where = 'sweep'): unknown[] {
  if (Array.isArray(v)) {
    if (!v.length) throw new ValidationError(`${where} must list at least one value`);
    return [...v];
  }
  const r = v as { from: number; to: number; steps: number };
  if (
    !isPlainObject(r) ||
    !Number.isFinite(r.from) ||
    !Number.isFinite(r.to) ||
    !Number.isInteger(r.steps) ||
    r.steps < 1
  )
    throw new ValidationError(
      `${where} must be a list of values or { from, to, steps } (finite numbers, steps an integer ≥ 1), got ${JSON.stringify(v)}`,
    );
  if (r.steps === 1) return [r.from];
  return Array.from({ length: r.steps }, (_, k) =>
    k === r.steps - 1 ? r.to : r.from + ((r.to - r.from) * k) / (r.steps - 1),
  );
}

/** Every combination of a sweep grid, as option sets (the last option varies fastest). */
export function sweepOptions(grid: SweepGrid): Record<string, unknown>[] {
  let out: Record<string, unknown>[] = [{}];
  for (const [k, v] of Object.entries(grid)) {
    const values = sweepValues(v, `sweep of '${k}'`);
    out = out.flatMap((o) => values.map((x) => ({ ...o, [k]: x })));
  }
  return out;
}

/** The known name closest to `name` when it is close enough to be a typo (edit distance ≤ max(1, ⌊len/3⌋)). */
export function closestName(name: string, names: readonly string[]): string | undefined {
  const n = name.toLowerCase();
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of names) {
    const d = editDistance(n, c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(n.length / 3)) ? best : undefined;
}

/** Edit distance (insertions, deletions, substitutions of one character each). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** The reference policy: exit when max softmax probability ≥ threshold. */
export const maxProbThreshold = definePolicy((o: { threshold: number }) => ({
  name: 'max-prob',
  needs: ['maxProb'] as const,
  options: { threshold: o.threshold },
  init: () => null,
  decide: (_ctx, s) => {
    // compare in f32, exactly as the WGSL form does
    const t = Math.fround(o.threshold);
    const out = new Uint8Array(s.count);
    for (let i = 0; i < s.count; i++) out[i] = s.maxProb[i] >= t ? 1 : 0;
    return out;
  },
  device: {
    stateSize: 0,
    code: `fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool { return s.max_prob >= f32(${wgslFloat(o.threshold)}); }`,
  },
}));

/** Never exits early: every sample runs the full depth. */
export const neverExit = (): ExitPolicy<null> => ({
  name: 'never',
  options: {},
  init: () => null,
  decide: (_ctx, s) => new Uint8Array(s.count),
  device: { stateSize: 0, code: 'fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool { return false; }' },
});

/** Formats a number as a WGSL f32 literal (exact for f32 values). */
export function wgslFloat(x: number): string {
  if (Number.isNaN(x)) return '(0.0 / 0.0)';
  if (x === Number.POSITIVE_INFINITY) return '3.40282347e38';
  if (x === Number.NEGATIVE_INFINITY) return '-3.40282347e38';
  const f = Math.fround(x);
  const s = f.toPrecision(9);
  return s.includes('.') || s.includes('e') ? s : `${s}.0`;
}
