// The policy scaffold: registry ranges of the current @offramp versions (never workspace:), a plain-JS
// package with no build step, and a README that states the rule the generated code implements.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { currentVersions, scaffoldFiles } from './new-policy.js';

const root = join(import.meta.dirname, '../../../..');
const version = (p: string) => JSON.parse(readFileSync(join(root, 'packages', p, 'package.json'), 'utf8')).version;

describe('offramp new policy: the scaffold', () => {
  it('depends on ^ the current versions of @offramp/core and @offramp/policies', () => {
    const v = currentVersions();
    expect(v).toEqual({ core: `^${version('core')}`, policies: `^${version('policies')}` });
    const files = scaffoldFiles('steady-confidence', v);
    const pkg = JSON.parse(files['package.json']);
    expect(pkg.dependencies).toEqual({ '@offramp/core': v.core });
    expect(pkg.devDependencies).toEqual({ '@offramp/policies': v.policies });
    expect(pkg.scripts.test).toBe('node --test test/policy.test.js');
    expect(pkg.exports).toEqual({ '.': './index.js' });
    expect(Object.values(files).join('\n')).not.toContain('workspace:');
    expect(Object.keys(files).sort()).toEqual([
      '.gitignore',
      'README.md',
      'index.js',
      'package.json',
      'test/policy.test.js',
    ]);
  });

  it('writes a README that states the rule, the options with the code defaults and the sweep grid', () => {
    const files = scaffoldFiles('steady-confidence', { core: '^0.1.0', policies: '^0.1.0' });
    const readme = files['README.md'];
    const code = files['index.js'];
    expect(readme).toContain('**The rule.**');
    expect(readme).toContain('leaves as soon as its streak reaches `streak`');
    expect(code).toContain('const defaults = { threshold: 0.9, streak: 2 };');
    expect(readme).toContain('| `threshold` | max probability needed at an exit, in (0, 1] | 0.9 |');
    expect(readme).toContain('| `streak` | consecutive confident exits needed, an integer in [1, 1024] | 2 |');
    expect(code).toContain('sweep: { threshold: [0.7, 0.8, 0.9], streak: [1, 2, 3] }');
    expect(readme).toContain('`threshold` ∈ {0.7, 0.8,\n0.9} × `streak` ∈ {1, 2, 3}');
    expect(readme).toContain('offramp eval --model fashion-cnn -p module:.');
  });
});
