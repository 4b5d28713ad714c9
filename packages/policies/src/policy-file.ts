// Policy files: a calibrated policy as a small JSON document,
//   { "offramp_policy": 1, "name": "entropy", "options": { ... }, "calibration": { ... } }
// validated strictly on load (version, known name, options through the policy's schema).
// Combinators are stored as anyOf/allOf { policies: [...] } and minBlock/maxBlock/minExit/maxExit
// { policy, block | exit }.
import { type ExitPolicy, FormatError, ValidationError } from '@offramp/core';
import * as z from 'zod';
import { allOf, anyOf, combinatorKind, maxBlock, maxExit, minBlock, minExit } from './combinators.js';
import { jsonObject, MAX_JSON_DEPTH, show } from './options.js';
import { createPolicy, isBuiltinPolicy, validateOptions } from './registry.js';

export const POLICY_FILE_VERSION = 1;

export interface PolicyFile {
  offramp_policy: 1;
  name: string;
  options: Record<string, unknown>;
  /** Free-form metadata of the calibration (method, ε, δ, trace size, metrics, date...). */
  calibration?: Record<string, unknown>;
}

const COMBINATORS = ['anyOf', 'allOf', 'minBlock', 'maxBlock', 'minExit', 'maxExit'] as const;
type Combinator = (typeof COMBINATORS)[number];

const fileSchema = z.strictObject({
  offramp_policy: z.literal(1, { error: `must be ${POLICY_FILE_VERSION} (the only policy file version)` }),
  name: z.string({ error: 'must be a policy name' }).min(1, { error: 'must be a policy name' }),
  options: z.record(z.string(), z.unknown(), { error: 'must be an object' }).default({}),
  calibration: z.record(z.string(), z.unknown(), { error: 'must be an object' }).optional(),
});

const partSchema = z.strictObject({ name: z.string(), options: z.record(z.string(), z.unknown()).default({}) });

/** The file entry of a policy: built-ins by name and options, combinators by their parts. */
export function policySpecOf(policy: ExitPolicy<any>): { name: string; options: Record<string, unknown> } {
  const o = (policy.options ?? {}) as Record<string, unknown>;
  const kind = combinatorKind(policy);
  if (kind) return { name: kind, options: o };
  if (!isBuiltinPolicy(policy.name))
    throw new ValidationError(
      `policy '${policy.name}' is not a built-in policy or combinator: it cannot be written to a policy file`,
    );
  return { name: policy.name, options: o };
}

/** The JSON document of a policy (or of a name and options) with optional calibration metadata. */
export function policyToJson(
  policy: ExitPolicy<any> | { name: string; options?: Record<string, unknown> },
  calibration?: Record<string, unknown>,
): PolicyFile {
  const spec = 'decide' in policy ? policySpecOf(policy) : { name: policy.name, options: policy.options ?? {} };
  // build it once: a file that cannot be loaded is never written
  fromSpec(spec.name, spec.options, 'policy');
  const file: PolicyFile = { offramp_policy: 1, name: spec.name, options: JSON.parse(JSON.stringify(spec.options)) };
  if (calibration) file.calibration = JSON.parse(JSON.stringify(calibration));
  return file;
}

/** Validates a policy file document (a parsed object or its JSON text). */
export function parsePolicyFile(json: string | unknown, where = 'policy file'): PolicyFile {
  const doc = jsonObject(json, where, '{ "offramp_policy": 1, "name", "options" }', MAX_JSON_DEPTH);
  const r = fileSchema.safeParse(doc, { reportInput: true });
  if (!r.success) {
    const msg = r.error.issues
      .map((i) =>
        i.code === 'unrecognized_keys'
          ? `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `'${k}'`).join(', ')} (allowed: offramp_policy, name, options, calibration)`
          : `'${i.path.join('.')}' ${i.message}, got ${show((i as { input?: unknown }).input)}`,
      )
      .join('; ');
    throw new FormatError(`${where}: ${msg}`);
  }
  const file = r.data as PolicyFile;
  fromSpec(file.name, file.options, where);
  return file;
}

/** Builds the policy of a policy file document (a parsed object or its JSON text). */
export function policyFromJson(json: string | unknown, where = 'policy file'): ExitPolicy<any> {
  const file = parsePolicyFile(json, where);
  return fromSpec(file.name, file.options, where);
}

function fromSpec(name: string, options: Record<string, unknown>, where: string): ExitPolicy<any> {
  if ((COMBINATORS as readonly string[]).includes(name)) return combinator(name as Combinator, options, where);
  if (!isBuiltinPolicy(name))
    throw new ValidationError(
      `${where}: unknown policy '${name}': use a built-in policy or one of ${COMBINATORS.join(', ')}`,
    );
  validateOptions(name, options);
  return createPolicy(name, options);
}

function part(x: unknown, where: string): ExitPolicy<any> {
  const r = partSchema.safeParse(x);
  if (!r.success)
    throw new ValidationError(`${where}: a combined policy must be { "name", "options" }, got ${show(x)}`);
  return fromSpec(r.data.name, r.data.options as Record<string, unknown>, where);
}

function combinator(name: Combinator, o: Record<string, unknown>, where: string): ExitPolicy<any> {
  if (name === 'anyOf' || name === 'allOf') {
    const keys = Object.keys(o).filter((k) => k !== 'policies');
    if (keys.length || !Array.isArray(o.policies) || o.policies.length === 0) {
      throw new ValidationError(
        `${where}: ${name} takes { policies: [{ name, options }, ...] } (at least one), got ${show(o)}`,
      );
    }
    const parts = o.policies.map((p) => part(p, where));
    return name === 'anyOf' ? anyOf(...parts) : allOf(...parts);
  }
  const unit = name.endsWith('Block') ? 'block' : 'exit';
  const allowed = unit === 'block' ? ['policy', 'block', 'exitBlocks'] : ['policy', 'exit'];
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  const at = o[unit];
  if (extra.length || !Number.isInteger(at) || (at as number) < 0) {
    throw new ValidationError(
      `${where}: ${name} takes { policy: { name, options }, ${unit}: integer ≥ 0 }, got ${show(o)}`,
    );
  }
  const p = part(o.policy, where);
  if (name === 'minExit') return minExit(p, at as number);
  if (name === 'maxExit') return maxExit(p, at as number);
  const eb = o.exitBlocks as number[] | undefined;
  return name === 'minBlock'
    ? minBlock(p, at as number, { exitBlocks: eb })
    : maxBlock(p, at as number, { exitBlocks: eb });
}

/** Writes a policy file (Node). */
export async function savePolicyFile(
  path: string,
  policy: ExitPolicy<any> | { name: string; options?: Record<string, unknown> },
  calibration?: Record<string, unknown>,
): Promise<PolicyFile> {
  const file = policyToJson(policy, calibration);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(path, `${JSON.stringify(file, null, 2)}\n`);
  return file;
}

/** Reads a policy file (Node) and builds its policy; the document is returned too. */
export async function loadPolicyFile(path: string): Promise<{ policy: ExitPolicy<any>; file: PolicyFile }> {
  // bounded read: a regular file of at most FILE_LIMITS.json, a leading byte-order mark removed
  const { readBoundedText, FILE_LIMITS } = await import('@offramp/core/node');
  let text: string;
  try {
    text = await readBoundedText(path, { maxBytes: FILE_LIMITS.json, what: 'a policy file (JSON)' });
  } catch (e) {
    throw new ValidationError(`cannot read policy file: ${(e as Error).message}`, { cause: e });
  }
  const file = parsePolicyFile(text, `policy file '${path}'`);
  return { policy: fromSpec(file.name, file.options, `policy file '${path}'`), file };
}
