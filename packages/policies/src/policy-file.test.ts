// Policy files: round trips through JSON and disk, combinators included, and strict, clear refusals.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError, ValidationError } from '@offramp/core';
import { afterAll, describe, expect, it } from 'vitest';
import { anyOf, minBlock } from './combinators.js';
import { loadPolicyFile, parsePolicyFile, policyFromJson, policyToJson, savePolicyFile } from './policy-file.js';
import { createPolicy } from './registry.js';

const dir = await mkdtemp(join(tmpdir(), 'offramp-policy-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('policy files', () => {
  it('round-trips a calibrated policy through disk', async () => {
    const path = join(dir, 'entropy.json');
    const calibration = { method: 'learn-then-test', epsilon: 0.05, delta: 0.1, n: 2000, meanCost: 0.61 };
    const written = await savePolicyFile(path, createPolicy('entropy', { threshold: [0.2, 0.3, 0.4] }), calibration);
    expect(written).toEqual({
      offramp_policy: 1,
      name: 'entropy',
      options: { threshold: [0.2, 0.3, 0.4] },
      calibration,
    });
    const { policy, file } = await loadPolicyFile(path);
    expect(policy.name).toBe('entropy');
    expect(policy.options).toEqual({ threshold: [0.2, 0.3, 0.4] });
    expect(file.calibration).toEqual(calibration);
  });

  it('round-trips combinators', () => {
    const p = minBlock(
      anyOf(createPolicy('confidence', { threshold: 0.8 }), createPolicy('patience', { patience: 2 })),
      3,
      { exitBlocks: [1, 3, 5] },
    );
    const json = policyToJson(p);
    expect(json.name).toBe('minBlock');
    const back = policyFromJson(JSON.stringify(json));
    expect(back.name).toBe(p.name);
    expect(back.device?.code).toBe(p.device?.code);
  });

  it('refuses bad documents with the field, the reason and the value', async () => {
    expect(() => policyFromJson('{"offramp_policy": 2, "name": "gate", "options": {}}')).toThrow(
      "policy file: 'offramp_policy' must be 1 (the only policy file version), got 2",
    );
    expect(() => policyFromJson('{"offramp_policy": 1, "name": "gate", "options": {}, "extra": 1}')).toThrow(
      /unknown field 'extra' \(allowed: offramp_policy, name, options, calibration\)/,
    );
    expect(() => policyFromJson('{"offramp_policy": 1, "name": "gate", "options": []}')).toThrow(
      /'options' must be an object/,
    );
    expect(() => policyFromJson('{"offramp_policy": 1, "name": "gate", "options": {"threshold": 2}}')).toThrow(
      "policy 'gate': option 'threshold' must be a number in [0, 1) or an array of such numbers (one per exit), got 2",
    );
    expect(() => policyFromJson('{"offramp_policy": 1, "name": "magic", "options": {}}')).toThrow(
      /unknown policy 'magic'/,
    );
    expect(() => policyFromJson('{"offramp_policy": 1, "name": "anyOf", "options": {"policies": []}}')).toThrow(
      /anyOf takes \{ policies/,
    );
    expect(() => policyFromJson('not json')).toThrow(FormatError);
    expect(() => parsePolicyFile([1, 2])).toThrow(/expected a JSON object/);
    const path = join(dir, 'bad.json');
    await writeFile(path, '{"offramp_policy": 1}');
    await expect(loadPolicyFile(path)).rejects.toThrow(
      `policy file '${path}': 'name' must be a policy name, got nothing`,
    );
    await expect(loadPolicyFile(join(dir, 'missing.json'))).rejects.toThrow(ValidationError);
  });

  it('reads a policy file with a leading byte-order mark, as the weights loader does', async () => {
    const path = join(dir, 'bom.json');
    await writeFile(path, '\ufeff{"offramp_policy": 1, "name": "entropy", "options": {"threshold": 0.3}}\n');
    const { policy, file } = await loadPolicyFile(path);
    expect(file.name).toBe('entropy');
    expect(policy.options).toEqual({ threshold: 0.3 });
    expect(policyFromJson('\ufeff{"offramp_policy": 1, "name": "gate", "options": {}}').name).toBe('gate');
  });

  it('refuses deeply nested documents with an error naming the file, not a stack overflow', async () => {
    const n = 20000;
    const lists = join(dir, 'deep-lists.json');
    await writeFile(
      lists,
      `{"offramp_policy":1,"name":"entropy","options":{"threshold":${'['.repeat(n)}${']'.repeat(n)}}}`,
    );
    await expect(loadPolicyFile(lists)).rejects.toThrow(
      `policy file '${lists}': JSON nested more than 64 levels deep (arrays and objects); at most 64 levels are allowed`,
    );
    const parts = join(dir, 'deep-parts.json');
    const open = '{"name":"anyOf","options":{"policies":['.repeat(5000);
    await writeFile(
      parts,
      `{"offramp_policy":1,"name":"anyOf","options":{"policies":[${open}{"name":"confidence"}${']}}'.repeat(5000)}]}}`,
    );
    await expect(loadPolicyFile(parts)).rejects.toThrow(FormatError);
    await expect(loadPolicyFile(parts)).rejects.toThrow(`policy file '${parts}': JSON nested more than 64 levels`);
  });

  it('reads policy files through the bounded reader: no directories, devices or oversized files', async () => {
    await expect(loadPolicyFile(dir)).rejects.toThrow(`cannot read policy file: ${dir} is a directory`);
    await expect(loadPolicyFile('/dev/zero')).rejects.toThrow(/not a regular file/);
    const big = join(dir, 'big.json');
    await writeFile(big, Buffer.alloc(16 * 1024 * 1024 + 1, 0x20));
    await expect(loadPolicyFile(big)).rejects.toThrow(/larger than the 16 MiB allowed for a policy file \(JSON\)/);
  });

  it('refuses to write what it could not read back', () => {
    expect(() => policyToJson({ name: 'confidence', options: { threshold: 7 } })).toThrow(/policy 'confidence'/);
    expect(() => policyToJson({ name: 'custom', init: () => null, decide: () => [] } as never)).toThrow(
      /'custom' is not a built-in policy or combinator/,
    );
  });
});
