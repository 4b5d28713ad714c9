// Cascade spec files for `offramp eval -m SPEC.json`: the stage model folders (paths relative to the spec
// file, never leaving its folder), each stage's own exit policy, and the deferral rule between stages.
//   { "offramp_cascade": 1,
//     "stages": [{ "model": "s0" }, { "model": "s1", "policy": "confidence:threshold=0.9" }],
//     "defer": "window:wLo=0.55,wHi=0.97" }
// "defer" is a policy spec read after each stage on the combined output (default: never, the full ensemble);
// a stage's "policy" is its exit policy inside its own model (default: none, full depth).
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type ExitPolicy, neverExit, parseJsonText } from '@offramp/core';
import { policyFromSpec } from '@offramp/policies';
import * as z from 'zod';
import { UsageError } from './errors.js';

export const CASCADE_SPEC_VERSION = 1;
export const MAX_CASCADE_STAGES = 16;

const policyText = z.string().min(1, { error: 'must be a non-empty policy spec such as confidence:threshold=0.9' });
const stageSchema = z.strictObject({
  model: z.string().min(1, { error: 'must be a non-empty folder path relative to the spec file' }),
  policy: policyText.optional(),
});
const specSchema = z.strictObject({
  offramp_cascade: z.literal(CASCADE_SPEC_VERSION, { error: `must be ${CASCADE_SPEC_VERSION}` }),
  stages: z
    .array(stageSchema, { error: 'must be an array of stages ({ "model": "folder" })' })
    .min(1, { error: `must list 1 to ${MAX_CASCADE_STAGES} stages` })
    .max(MAX_CASCADE_STAGES, { error: `must list 1 to ${MAX_CASCADE_STAGES} stages` }),
  defer: policyText.optional(),
});
export type CascadeSpecJson = z.infer<typeof specSchema>;

export interface CascadeSpec {
  file: string;
  stages: { dir: string; model: string; policy?: ExitPolicy<any>; policySpec?: string }[];
  defer: ExitPolicy<any>;
  deferSpec: string;
}

/** True when `--model` names a cascade spec file rather than a model folder. */
export function isCascadeSpecPath(p: string): boolean {
  if (!p.toLowerCase().endsWith('.json')) return false;
  try {
    return statSync(resolve(p)).isFile();
  } catch {
    return false;
  }
}

/** Parses and validates a cascade spec's text; `file` is its path (stage folders resolve against its folder). */
export async function parseCascadeSpec(text: string, file: string): Promise<CascadeSpec> {
  const { resolveInside } = await import('@offramp/core/node');
  let raw: unknown;
  try {
    raw = parseJsonText(text, file);
  } catch (e) {
    throw new UsageError(`cascade spec ${file}: ${(e as Error).message}`);
  }
  const r = specSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    const msg =
      issue.code === 'unrecognized_keys'
        ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}; allowed: ${where === '(top level)' ? 'offramp_cascade, stages, defer' : 'model, policy'}`
        : issue.message;
    throw new UsageError(`cascade spec ${file}: ${where}: ${msg}`);
  }
  const folder = dirname(resolve(file));
  const stages = r.data.stages.map((s, k) => {
    let dir: string;
    try {
      dir = resolveInside(folder, s.model, `cascade spec ${file} (stages.${k}.model)`);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    if (!existsSync(resolve(dir, 'config.json')))
      throw new UsageError(
        `cascade spec ${file}: stages.${k}.model: '${s.model}' is not a model folder (no config.json in ${dir})`,
      );
    let policy: ExitPolicy<any> | undefined;
    if (s.policy !== undefined) {
      try {
        policy = policyFromSpec(s.policy);
      } catch (e) {
        throw new UsageError(`cascade spec ${file}: stages.${k}.policy: ${(e as Error).message}`);
      }
    }
    return { dir, model: s.model, policy, policySpec: s.policy };
  });
  let defer: ExitPolicy<any> = neverExit();
  if (r.data.defer !== undefined) {
    try {
      defer = policyFromSpec(r.data.defer);
    } catch (e) {
      throw new UsageError(`cascade spec ${file}: defer: ${(e as Error).message}`);
    }
  }
  return { file, stages, defer, deferSpec: r.data.defer ?? 'never (every stage runs: the full ensemble)' };
}

/** Reads and parses a cascade spec file. */
export async function loadCascadeSpec(file: string): Promise<CascadeSpec> {
  const { readBoundedTextSync, FILE_LIMITS } = await import('@offramp/core/node');
  const text = readBoundedTextSync(resolve(file), { maxBytes: FILE_LIMITS.json, what: 'cascade spec' });
  return parseCascadeSpec(text, file);
}
