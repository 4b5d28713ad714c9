// `offramp new policy NAME`: scaffolds a policy plugin package: package.json, tsconfig.json, src/index.ts
// (a definePolicy factory with host and WGSL forms), src/index.test.ts (the conformance kit) and a README.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
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

/** The files of the scaffold, by relative path. */
export function scaffoldFiles(name: string, versions: { offramp: string }): Record<string, string> {
  const fn = camelCase(name);
  const pkg = `offramp-policy-${name}`;
  const index = `// ${name}: an Offramp exit policy. Leave once the exit's max softmax probability has been at least
// \`threshold\` at \`streak\` consecutive exits (a confidence rule that wants the answer to stay sure).
import { definePolicy, type ExitPolicy, ValidationError, wgslFloat } from '@offramp/core';

export const NAME = '${name}';

export interface ${fn[0].toUpperCase()}${fn.slice(1)}Options {
  /** Max probability needed at an exit, in (0, 1] (default 0.9). */
  threshold?: number;
  /** Consecutive confident exits needed, an integer ≥ 1 (default 2). */
  streak?: number;
}

/** Per sample: how many consecutive exits were confident so far (indexed by sampleId). */
type State = Float32Array;

export const ${fn} = definePolicy((options: ${fn[0].toUpperCase()}${fn.slice(1)}Options = {}): ExitPolicy<State> => {
  const threshold = options.threshold ?? 0.9;
  const streak = options.streak ?? 2;
  for (const key of Object.keys(options)) {
    if (key !== 'threshold' && key !== 'streak') {
      throw new ValidationError(\`policy '\${NAME}': unknown option '\${key}'; options are threshold, streak\`);
    }
  }
  if (typeof threshold !== 'number' || !(threshold > 0 && threshold <= 1)) {
    throw new ValidationError(\`policy '\${NAME}': option 'threshold' must be in (0, 1], got \${threshold}\`);
  }
  if (!Number.isInteger(streak) || streak < 1 || streak > 1024) {
    throw new ValidationError(\`policy '\${NAME}': option 'streak' must be an integer in [1, 1024], got \${streak}\`);
  }
  const t = Math.fround(threshold); // compare in f32, as the WGSL form does
  return {
    name: NAME,
    needs: ['maxProb'],
    options: { threshold, streak },
    init: ({ batchSize }) => new Float32Array(batchSize),
    decide(_ctx, s, run) {
      const out = new Uint8Array(s.count);
      for (let r = 0; r < s.count; r++) {
        const sid = s.sampleIds[r];
        // NaN compares false: it breaks the streak
        run[sid] = s.maxProb[r] >= t ? run[sid] + 1 : 0;
        out[r] = run[sid] >= streak ? 1 : 0;
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
  return run >= f32(\${streak});
}\`,
    },
  };
});

export default ${fn};
`;
  const test = `// ${name} against the Offramp policy conformance kit (host/device agreement runs when a GPU is there).
import { createDevice, GpuDevice } from '@offramp/core';
import { expectPolicyConformance } from '@offramp/policies/testing';
import { it } from 'vitest';
import { ${fn} } from './index.js';

it('${name} passes the policy conformance kit', async () => {
  const device = await createDevice({ backend: 'auto' });
  try {
    await expectPolicyConformance(${fn}, {
      validOptions: [{}, { threshold: 0.6, streak: 1 }, { threshold: 0.95, streak: 3 }],
      invalidOptions: [
        { options: { threshold: 0 }, message: 'threshold' },
        { options: { threshold: 1.5 }, message: 'threshold' },
        { options: { streak: 0 }, message: 'streak' },
        { options: { streak: 1.5 }, message: 'streak' },
      ],
      numClasses: 5,
      gpu: device instanceof GpuDevice ? device : undefined,
    });
  } finally {
    device.destroy();
  }
});
`;
  const packageJson = {
    name: pkg,
    version: '0.1.0',
    description: `The '${name}' exit policy for Offramp early-exit models.`,
    license: 'MIT',
    type: 'module',
    keywords: ['offramp', 'offramp-policy', 'early-exit'],
    exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' } },
    types: './dist/index.d.ts',
    files: ['dist', 'README.md'],
    engines: { node: '>=20' },
    scripts: { build: 'tsc -p tsconfig.json', test: 'vitest run' },
    peerDependencies: { '@offramp/core': versions.offramp },
    devDependencies: {
      '@offramp/core': versions.offramp,
      '@offramp/policies': versions.offramp,
      '@types/node': '^20.19.0',
      '@webgpu/types': '^0.1.74',
      typescript: '^5.9.0',
      vitest: '^4.1.0',
      webgpu: '^0.6.2',
    },
  };
  const tsconfig = {
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      lib: ['ES2023', 'DOM'],
      types: ['node', '@webgpu/types'],
      strict: true,
      declaration: true,
      outDir: 'dist',
      rootDir: 'src',
      skipLibCheck: true,
    },
    include: ['src'],
    exclude: ['src/**/*.test.ts'],
  };
  const readme = `# ${pkg}

The \`${name}\` exit policy for [Offramp](https://www.npmjs.com/package/@offramp/core) early-exit models: a
sample leaves once its exit's max softmax probability has been at least \`threshold\` at \`streak\`
consecutive exits. It has a host form (TypeScript) and a device form (WGSL), so it runs in host and device
mode, and passes the Offramp policy conformance kit.

| option | meaning | default |
|---|---|---|
| \`threshold\` | max probability needed at an exit, in (0, 1] | 0.9 |
| \`streak\` | consecutive confident exits needed, integer ≥ 1 | 2 |

## Use

\`\`\`sh
npm run build && npm test
offramp eval --model checkpoints/fashion-cnn --data fashion-mnist --policies module:${pkg}:threshold=0.8,streak=2
\`\`\`

\`\`\`ts
import { Runner } from '@offramp/core';
import ${fn} from '${pkg}';

const { samples } = await runner.run(input, { policy: ${fn}({ threshold: 0.8, streak: 2 }) });
\`\`\`

## Develop

- \`src/index.ts\`: the factory (\`definePolicy\`), exported as default for \`offramp --policies module:${pkg}\`.
- \`src/index.test.ts\`: \`expectPolicyConformance\` from \`@offramp/policies/testing\`: determinism, batch
  invariance, state isolation, option errors, the forced last exit and, on a GPU, host/device agreement.
`;
  return {
    'package.json': `${JSON.stringify(packageJson, null, 2)}\n`,
    'tsconfig.json': `${JSON.stringify(tsconfig, null, 2)}\n`,
    'src/index.ts': index,
    'src/index.test.ts': test,
    'README.md': readme,
    '.gitignore': 'node_modules/\ndist/\n',
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
  const files = scaffoldFiles(name, { offramp: '^0.1.0' });
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
