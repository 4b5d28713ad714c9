// The built-in policies by name: `builtinPolicies[name]` = { schema, create, description }, and
// `createPolicy(name, options)` / `parsePolicySpec('entropy:threshold=0.3')` on top of it.
import { type ExitPolicy, ValidationError } from '@offramp/core';
import type * as z from 'zod';
import { parseOptions } from './options.js';
import { budget, budgetSchema } from './policies/budget.js';
import { confidence, confidenceSchema } from './policies/confidence.js';
import { entropy, entropySchema } from './policies/entropy.js';
import { gate, gateSchema } from './policies/gate.js';
import { margin, marginSchema } from './policies/margin.js';
import { online, onlineSchema } from './policies/online.js';
import { oracle, oracleSchema } from './policies/oracle.js';
import { patience, patienceSchema } from './policies/patience.js';
import { ponder, ponderSchema } from './policies/ponder.js';
import { quality, qualitySchema } from './policies/quality.js';
import { saturation, saturationSchema } from './policies/saturation.js';
import { schedule, scheduleSchema } from './policies/schedule.js';
import { staticPolicy, staticSchema } from './policies/static.js';
import { windowPolicy, windowSchema } from './policies/window.js';

export interface PolicyEntry<S extends z.ZodType = z.ZodType> {
  /** Zod schema of the options (defaults filled in by parsing). */
  schema: S;
  /** Validates the options and builds the policy. */
  create: (options: z.input<S>) => ExitPolicy<any>;
  description: string;
}

function entry<S extends z.ZodType>(
  schema: S,
  create: (options: z.input<S>) => ExitPolicy<any>,
  description: string,
): PolicyEntry<S> {
  return { schema, create, description };
}

export const builtinPolicies = {
  confidence: entry(confidenceSchema, confidence, 'leave when max softmax probability ≥ threshold'),
  entropy: entry(entropySchema, entropy, 'DeeBERT: leave when the softmax entropy < threshold (one or one per exit)'),
  margin: entry(marginSchema, margin, 'CALM: leave when top-1 − top-2 probability ≥ threshold'),
  saturation: entry(
    saturationSchema,
    saturation,
    "CALM: leave when the cosine similarity with the previous exit's hidden state ≥ threshold",
  ),
  patience: entry(
    patienceSchema,
    patience,
    'PABEE: leave after `patience` consecutive exits agree (argmax, or |Δ scalar| < delta)',
  ),
  ponder: entry(
    ponderSchema,
    ponder,
    'PALBERT Q-exit / PonderNet: halting distribution from the gate λ (q-exit, sample, expectation)',
  ),
  gate: entry(gateSchema, gate, 'learned gate: leave when σ(gate) > threshold'),
  window: entry(windowSchema, windowPolicy, 'cascade window: leave when the score is above wHi or below wLo'),
  budget: entry(budgetSchema, budget, 'confidence threshold adapted to a target mean cost fraction'),
  online: entry(onlineSchema, online, 'FTRL with log-barrier over a grid of thresholds, learning between requests'),
  schedule: entry(
    scheduleSchema,
    schedule,
    'SkipDecode-style: exit depth from the sequence position by a monotone schedule',
  ),
  quality: entry(qualitySchema, quality, 'RBQE-style: leave when a quality score signal ≥ threshold'),
  static: entry(staticSchema, staticPolicy, 'leave at a fixed exit index'),
  oracle: entry(
    oracleSchema,
    oracle,
    "evaluation only: leave at the earliest exit whose argmax equals the sample's final prediction",
  ),
} satisfies Record<string, PolicyEntry<any>>;

export type BuiltinPolicyName = keyof typeof builtinPolicies;
export type BuiltinPolicyOptions<N extends BuiltinPolicyName> = z.input<(typeof builtinPolicies)[N]['schema']>;

export const builtinPolicyNames: readonly BuiltinPolicyName[] = Object.freeze(
  Object.keys(builtinPolicies) as BuiltinPolicyName[],
);

export function isBuiltinPolicy(name: string): name is BuiltinPolicyName {
  return Object.hasOwn(builtinPolicies, name);
}

function unknownPolicy(name: string): never {
  throw new ValidationError(`unknown policy '${name}': built-in policies are ${builtinPolicyNames.join(', ')}`);
}

/** Builds a built-in policy by name; options are validated (errors name the policy and the option). */
export function createPolicy<N extends BuiltinPolicyName>(name: N, options?: BuiltinPolicyOptions<N>): ExitPolicy<any>;
export function createPolicy(name: string, options?: Record<string, unknown>): ExitPolicy<any>;
export function createPolicy(name: string, options: Record<string, unknown> = {}): ExitPolicy<any> {
  if (!isBuiltinPolicy(name)) unknownPolicy(name);
  const e = builtinPolicies[name] as PolicyEntry;
  return e.create(options as never);
}

/** Validates and fills in defaults of a built-in policy's options. */
export function validateOptions(name: string, options: unknown): Record<string, unknown> {
  if (!isBuiltinPolicy(name)) unknownPolicy(name);
  return parseOptions(name, builtinPolicies[name].schema as z.ZodType, options) as Record<string, unknown>;
}

/**
 * Parses `name` or `name:key=value,key=value`. Values: numbers, true/false, bare words (strings), and
 * lists in brackets, `entropy:threshold=[0.4,0.3,0.2]`. Returns the name and the validated options.
 */
export function parsePolicySpec(spec: string): { name: BuiltinPolicyName; options: Record<string, unknown> } {
  const text = spec.trim();
  const colon = text.indexOf(':');
  const name = (colon < 0 ? text : text.slice(0, colon)).trim();
  if (!name) throw new ValidationError(`policy spec '${spec}': no policy name (expected name:key=value,...)`);
  if (!isBuiltinPolicy(name)) unknownPolicy(name);
  const options: Record<string, unknown> = {};
  const body = colon < 0 ? '' : text.slice(colon + 1).trim();
  for (const part of splitTop(body, spec)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ValidationError(`policy spec '${spec}': expected key=value, got '${part}'`);
    const key = part.slice(0, eq).trim();
    if (Object.hasOwn(options, key)) throw new ValidationError(`policy spec '${spec}': option '${key}' given twice`);
    options[key] = parseValue(part.slice(eq + 1).trim(), spec);
  }
  return { name, options: validateOptions(name, options) };
}

/** Builds the policy a spec string names. */
export function policyFromSpec(spec: string): ExitPolicy<any> {
  const { name, options } = parsePolicySpec(spec);
  return createPolicy(name, options);
}

function splitTop(body: string, spec: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of body) {
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    if (depth < 0) throw new ValidationError(`policy spec '${spec}': unbalanced ']'`);
    if (ch === ',' && depth === 0) {
      parts.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) throw new ValidationError(`policy spec '${spec}': unbalanced '['`);
  if (cur.trim()) parts.push(cur.trim());
  return parts.filter((p, i) => p !== '' || i < parts.length - 1);
}

function parseValue(v: string, spec: string): unknown {
  if (v.startsWith('[')) {
    if (!v.endsWith(']')) throw new ValidationError(`policy spec '${spec}': list '${v}' must end with ']'`);
    return splitTop(v.slice(1, -1), spec).map((x) => parseValue(x, spec));
  }
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (v !== '' && Number.isFinite(Number(v))) return Number(v);
  return v;
}
