// Any exit policy, per token: the adapter turns an ExitPolicy (built-in, from a policy file, or a plugin
// made with definePolicy) into a token-level exit rule for the generation models (DecoderLM's 'custom' rule,
// MambaLM's 'custom' rule, GenerationModel.step). Each decode step is one "request" of the policy over the
// rows of the batch: a fresh state from `init` at every new token (patience counts over the exits of one
// token), `decide` at each early exit with the live rows (sampleIds = cache rows), and the last exit forced
// by the model. Policies that learn between requests (budget's controller) get the token's costs afterwards.
import {
  type DecoderExitRule,
  type ExitContext,
  type ExitPolicy,
  type ExitSignalArrays,
  type ExitSignals,
  type PolicyInit,
  type TokenExitDecide,
  ValidationError,
} from '@offramp/core';

/** What the adapter needs to know of the model. */
export interface TokenModelShape {
  numLayers: number;
  /** Exit blocks, increasing; the last is numLayers − 1. */
  exits: readonly number[];
  vocabSize: number;
}

/** The init info a policy gets per token: PolicyInit plus where in the generation the token is. */
export interface TokenPolicyInit extends PolicyInit {
  token: {
    /** 0-based index of the token being decided among the generated ones (the prefill's is 0). */
    index: number;
    /** The generation's maxNewTokens (N of CALM's decaying threshold). */
    maxNewTokens: number;
  };
}

/** Cost fraction of leaving after block b of L: (b + 1) / L (the head's cost is not counted). */
export function tokenCostFractions(shape: TokenModelShape): number[] {
  return shape.exits.map((b) => (b + 1) / shape.numLayers);
}

export interface TokenExitRuleOptions {
  /** Rows of the decode batch (sample ids are cache rows in [0, batch)). */
  batch: number;
  /** N, for policies that read the token's place (default 1). */
  maxNewTokens?: number;
}

/** One policy driving token-level exits: call `beginToken` before each step and `endToken` after it. */
export class TokenExitRule {
  private state: unknown = undefined;
  private started = false;
  private readonly init: Omit<PolicyInit, 'batchSize'> & { batchSize: number };
  readonly costFractions: readonly number[];
  private readonly maxNewTokens: number;
  /** The index of the token under way. */
  tokenIndex = 0;

  constructor(
    readonly policy: ExitPolicy<any>,
    readonly shape: TokenModelShape,
    options: TokenExitRuleOptions,
  ) {
    if (!policy || typeof policy.decide !== 'function' || typeof policy.init !== 'function')
      throw new ValidationError('token exit rule: expected an exit policy { name, init, decide }');
    if (policy.needs?.includes('logits'))
      throw new ValidationError(
        `policy '${policy.name}' needs the raw logits of every exit, which token-level exits do not read back; use a policy on the exit signals (maxProb, entropy, margin, argmax, gate, similarity)`,
      );
    if (!Number.isInteger(options.batch) || options.batch < 1)
      throw new ValidationError(`token exit rule: batch must be a positive integer, got ${options.batch}`);
    const E = shape.exits.length;
    if (E < 1 || shape.exits[E - 1] !== shape.numLayers - 1)
      throw new ValidationError(
        `token exit rule: exits must end with the last block ${shape.numLayers - 1}, got [${shape.exits.join(', ')}]`,
      );
    this.costFractions = tokenCostFractions(shape);
    this.init = {
      batchSize: options.batch,
      numExits: E,
      numClasses: shape.vocabSize,
      exitBlocks: shape.exits,
      costFractions: this.costFractions,
    };
    this.maxNewTokens = options.maxNewTokens ?? 1;
  }

  /** A fresh policy state for token `index` (patience, per-request budgets start over). */
  beginToken(index: number): void {
    this.tokenIndex = index;
    const info: TokenPolicyInit = { ...this.init, token: { index, maxNewTokens: this.maxNewTokens } };
    this.state = this.policy.init(info);
    this.started = true;
  }

  /** The exit context at early exit block `block`. */
  context(block: number): ExitContext {
    const e = this.shape.exits.indexOf(block);
    if (e < 0)
      throw new ValidationError(`token exit rule: block ${block} is not an exit; exits are [${this.shape.exits}]`);
    return {
      exitIndex: e,
      numExits: this.shape.exits.length,
      block,
      numBlocks: this.shape.numLayers,
      isLast: e === this.shape.exits.length - 1,
      costFraction: this.costFractions[e],
      numClasses: this.shape.vocabSize,
    };
  }

  /** The rule: which of the live rows leave at `block`. */
  readonly decide: TokenExitDecide = (signals, ctx) => {
    if (!this.started) this.beginToken(this.tokenIndex);
    const n = ctx.rows.length;
    const s: ExitSignals = { count: n, sampleIds: Int32Array.from(ctx.rows), ...pick(signals, n) };
    const d = this.policy.decide(this.context(ctx.block), s, this.state);
    if (!d || d.length !== n)
      throw new ValidationError(
        `policy '${this.policy.name}' returned ${d?.length ?? 'nothing'} decisions for ${n} rows at block ${ctx.block}`,
      );
    const out = new Uint8Array(n);
    for (let r = 0; r < n; r++) out[r] = d[r] ? 1 : 0;
    return out;
  };

  /** After a step: feeds policies that learn between requests (budget's controller) the token's costs. */
  endToken(exitBlocks: ArrayLike<number>, rows?: readonly number[]): void {
    this.started = false;
    const p = this.policy as ExitPolicy & { update?: (f: unknown) => unknown };
    // budget's 'controller' mode moves τ between requests; its 'batch' mode is a per-request cap
    if (p.name !== 'budget' || typeof p.update !== 'function' || p.options?.mode !== 'controller') return;
    const ids = rows ?? Array.from({ length: exitBlocks.length }, (_, i) => i);
    if (!ids.length) return;
    p.update({ samples: ids.map((b) => ({ costFraction: (exitBlocks[b] + 1) / this.shape.numLayers })) });
  }

  /** DecoderLM's exit rule ('custom'); call beginToken / endToken around each step. */
  decoderRule(): DecoderExitRule {
    return { kind: 'custom', decide: (s, c) => Array.from(this.decide(s, c), Boolean) };
  }
}

function pick(s: ExitSignalArrays, n: number): Omit<ExitSignals, 'count' | 'sampleIds'> {
  const cut = <T extends Float32Array | Int32Array>(a: T): T => (a.length === n ? a : (a.subarray(0, n) as T));
  return {
    maxProb: cut(s.maxProb),
    entropy: cut(s.entropy),
    margin: cut(s.margin),
    argmax: cut(s.argmax),
    gate: cut(s.gate),
    similarity: cut(s.similarity),
  };
}

/** A token exit rule for `policy` (see TokenExitRule). */
export function tokenExitRule(
  policy: ExitPolicy<any>,
  shape: TokenModelShape,
  options: TokenExitRuleOptions,
): TokenExitRule {
  return new TokenExitRule(policy, shape, options);
}
