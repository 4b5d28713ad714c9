// `offramp new policy NAME`: scaffolds a policy plugin package in plain ES-module JavaScript (no build step):
// package.json (depending on the current @offramp versions as ^ ranges), index.js (a definePolicy factory
// with host and WGSL forms, options and a sweep grid), test/policy.test.js (the conformance kit, node --test)
// and a README that states the rule.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FILE_LIMITS, readBoundedTextSync } from '@offramp/core/node';
import { RuntimeError, UsageError } from '../errors.js';
import type { Logger } from '../util/log.js';

export interface NewPolicyOptions {
  dir?: string;
  force?: boolean;
}

const BUILTINS = [
  'confidence',
  'entropy',
  'margin',
  'saturation',
  'patience',
  'ponder',
  'gate',
  'window',
  'budget',
  'online',
  'schedule',
  'quality',
  'static',
  'oracle',
  'never',
];

export function camelCase(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, ch: string) => ch.toUpperCase());
}

export function checkPolicyName(name: string): void {
  if (!/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(name)) {
    throw new UsageError(
      `policy name '${name}' is not allowed: use lowercase letters, digits and single hyphens, starting with a letter (e.g. 'steady-confidence')`,
    );
  }
  if (BUILTINS.includes(name))
    throw new UsageError(`'${name}' is the name of a built-in policy; choose another name (e.g. 'my-${name}')`);
}

/** Versions the scaffold depends on, as semver ranges (`^0.1.0`): what a registry install resolves. */
export interface ScaffoldVersions {
  core: string;
  policies: string;
}

/**
 * `^<version>` of the @offramp/core and @offramp/policies this command runs with (their package.json,
 * found by the node_modules lookup from this file), so a scaffold installs from a registry once they are
 * published at those versions. Never a `workspace:` specifier: that only means something inside this repo.
 */
export function currentVersions(from = dirname(fileURLToPath(import.meta.url))): ScaffoldVersions {
  const version = (name: string): string => {
    let d = from;
    for (;;) {
      const pj = join(d, 'node_modules', name, 'package.json');
      if (existsSync(pj)) {
        const v = (
          JSON.parse(readBoundedTextSync(pj, { maxBytes: FILE_LIMITS.json, what: 'a package.json' })) as {
            version?: unknown;
          }
        ).version;
        if (typeof v !== 'string' || !/^\d+\.\d+\.\d+/.test(v))
          throw new RuntimeError(`${pj}: expected a semver "version", got ${JSON.stringify(v)}`);
        return `^${v}`;
      }
      const up = dirname(d);
      if (up === d) throw new RuntimeError(`cannot find ${name} from ${from}: is the offramp CLI installed?`);
      d = up;
    }
  };
  return { core: version('@offramp/core'), policies: version('@offramp/policies') };
}

/** The files of the scaffold, by relative path: a plain-JS ES module package, no build step. */
export function scaffoldFiles(name: string, versions: ScaffoldVersions): Record<string, string> {
  const fn = camelCase(name);
  const pkg = `offramp-policy-${name}`;
  const index = `// ${name}: an Offramp exit policy. A sample leaves once its exit's max softmax probability has been at
// least \`threshold\` at \`streak\` consecutive exits (a confidence rule that wants the answer to stay sure).
// Host form (JavaScript) and device form (WGSL) decide alike: the threshold is rounded to f32 once, here,
// and the WGSL gets that f32 as a literal.
import { definePolicy, ValidationError, wgslFloat } from '@offramp/core';

export const NAME = '${name}';

/**
 * @typedef {object} Options
 * @property {number} threshold max probability needed at an exit, in (0, 1]
 * @property {number} streak    consecutive confident exits needed, an integer in [1, 1024]
 */

/** @type {Options} */
const defaults = { threshold: 0.9, streak: 2 };

export const ${fn} = definePolicy({
  name: NAME,
  defaults,
  // what \`offramp eval -p module:...\` sweeps when no options are given: 3 × 3 = 9 settings
  sweep: { threshold: [0.7, 0.8, 0.9], streak: [1, 2, 3] },
  /** @param {Options} o */
  create(o) {
    if (typeof o.threshold !== 'number' || !(o.threshold > 0 && o.threshold <= 1))
      throw new ValidationError(\`policy '\${NAME}': option 'threshold' must be a number in (0, 1], got \${o.threshold}\`);
    if (!Number.isInteger(o.streak) || o.streak < 1 || o.streak > 1024)
      throw new ValidationError(\`policy '\${NAME}': option 'streak' must be an integer in [1, 1024], got \${o.streak}\`);
    const t = Math.fround(o.threshold); // compare in f32, as the WGSL form does
    /** @type {import('@offramp/core').ExitPolicy<Float32Array>} */
    const policy = {
      name: NAME,
      needs: ['maxProb'],
      // per sample (by sampleId): how many consecutive exits were confident so far
      init: ({ batchSize }) => new Float32Array(batchSize),
      decide(_ctx, s, run) {
        const out = new Uint8Array(s.count);
        for (let r = 0; r < s.count; r++) {
          const sid = s.sampleIds[r];
          // NaN compares false: it breaks the streak
          run[sid] = s.maxProb[r] >= t ? run[sid] + 1 : 0;
          out[r] = run[sid] >= o.streak ? 1 : 0;
        }
        return out;
      },
      device: {
        stateSize: 1,
        code: \`fn is_nan_f32(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool {
  let i = sid * STATE_SIZE;
  var run = policy_state[i];
  if (!is_nan_f32(s.max_prob) && s.max_prob >= f32(\${wgslFloat(t)})) { run = run + 1.0; } else { run = 0.0; }
  policy_state[i] = run;
  return run >= f32(\${o.streak});
}\`,
      },
    };
    return policy;
  },
});

export default ${fn};
`;
  const test = `// ${name} against the Offramp policy conformance kit: determinism, batch invariance, state isolation,
// option errors, the forced last exit and host/device agreement on a WebGPU device (a GPU, or Mesa's
// lavapipe without one). Run: npm test
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createGpuDevice } from '@offramp/core';
import { expectPolicyConformance } from '@offramp/policies/testing';
import ${fn} from '../index.js';

/** @type {import('@offramp/core').GpuDevice | undefined} */
let gpu;
before(async () => {
  gpu = await createGpuDevice();
});
after(() => gpu?.destroy());

test('${name} passes the policy conformance kit', async () => {
  const report = await expectPolicyConformance(${fn}, {
    validOptions: [{}, { threshold: 0.6, streak: 1 }, { threshold: 0.95, streak: 3 }],
    invalidOptions: [
      { options: { threshold: 0 }, message: 'threshold' },
      { options: { threshold: 1.5 }, message: 'threshold' },
      { options: { streak: 0 }, message: 'streak' },
      { options: { streak: 1.5 }, message: 'streak' },
      { options: { treshold: 0.5 }, message: "unknown option 'treshold'" },
    ],
    numClasses: 5,
    gpu,
  });
  assert.equal(report.checks.find((c) => c.name === 'host/device agreement')?.ok, true);
});
`;
  const packageJson = {
    name: pkg,
    version: '0.1.0',
    description: `The '${name}' exit policy for Offramp early-exit models.`,
    license: 'MIT',
    type: 'module',
    keywords: ['offramp', 'offramp-policy', 'early-exit'],
    exports: { '.': './index.js' },
    files: ['index.js', 'README.md'],
    engines: { node: '>=20' },
    scripts: { test: 'node --test test/policy.test.js' },
    dependencies: { '@offramp/core': versions.core },
    devDependencies: { '@offramp/policies': versions.policies },
  };
  const readme = `# ${pkg}

The \`${name}\` exit policy for Offramp (\`@offramp/core\`) early-exit models.

**The rule.** After each exit head, a sample's streak counts the consecutive exits (up to this one) whose max
softmax probability was at least \`threshold\`; an exit below it (or a NaN) resets the streak to 0. The sample
leaves as soon as its streak reaches \`streak\`. With \`streak=1\` this is the plain confidence rule; larger
streaks want the answer to stay sure over several exits. Every sample still left leaves at the last exit.

| option | meaning | default |
|---|---|---|
| \`threshold\` | max probability needed at an exit, in (0, 1] | 0.9 |
| \`streak\` | consecutive confident exits needed, an integer in [1, 1024] | 2 |

Sweep grid (what \`offramp eval\` tries when the policy is named without options): \`threshold\` ∈ {0.7, 0.8,
0.9} × \`streak\` ∈ {1, 2, 3}. Unknown option names are refused, with the closest known name suggested.

It has a host form (JavaScript) and a device form (WGSL) that decide alike, so it runs in host and device
mode; the WGSL keeps the streak in \`policy_state\` (one f32 per sample).

## Use

\`\`\`sh
npm install
npm test
offramp eval --model fashion-cnn -p module:.                           # sweep the grid
offramp eval --model fashion-cnn -p module:.:threshold=0.8,streak=2    # one setting
\`\`\`

\`npm test\` needs a WebGPU device: a GPU, or Mesa's lavapipe without one (\`webgpu\`, an optional dependency
of \`@offramp/core\`, is Dawn for Node).

\`\`\`js
import ${fn} from '${pkg}';

const { samples } = await runner.run(input, { policy: ${fn}({ threshold: 0.8, streak: 2 }) });
\`\`\`

## Develop

- \`index.js\`: the policy (\`definePolicy\` from \`@offramp/core\`), exported as default, for
  \`offramp eval -p module:${pkg}\` once installed, or \`-p module:./path/to/this/folder\`.
- \`test/policy.test.js\`: \`expectPolicyConformance\` from \`@offramp/policies/testing\`.
`;
  return {
    'package.json': `${JSON.stringify(packageJson, null, 2)}\n`,
    'index.js': index,
    'test/policy.test.js': test,
    'README.md': readme,
    '.gitignore': 'node_modules/\n',
  };
}

export function newPolicyCommand(name: string, o: NewPolicyOptions, log: Logger) {
  checkPolicyName(name);
  const dir = resolve(o.dir ?? `offramp-policy-${name}`);
  if (existsSync(dir) && readdirSync(dir).length && !o.force) {
    throw new RuntimeError(
      `${dir} exists and is not empty; choose another --dir or pass --force to overwrite the scaffold's files`,
    );
  }
  const files = scaffoldFiles(name, currentVersions());
  for (const [rel, text] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, text);
  }
  const shown = relative(process.cwd(), dir) || '.';
  log.info(`created ${log.c.bold(`offramp-policy-${name}`)} in ${shown}:`);
  for (const rel of Object.keys(files)) log.info(`  ${rel}`);
  log.info();
  log.info(`next: cd ${shown} && npm install && npm test`);
  const out = { command: 'new policy', name, dir, files: Object.keys(files).map((f) => join(dir, f)) };
  log.result(out);
  return out;
}
