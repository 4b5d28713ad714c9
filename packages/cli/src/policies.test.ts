// Plugin policies named on the command line: a plugin's folder resolves to its package entry and its own
// dependencies resolve from that folder; tables get the options the plugin resolved; a plugin named
// without options is swept over the grid it declares.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from './errors.js';
import { parsePolicyList, resolveModule } from './policies.js';

const root = mkdtempSync(join(tmpdir(), 'offramp-plugin-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A plugin package outside any workspace, with a dependency only its own node_modules holds. */
function writePlugin(dir: string): void {
  const dep = join(dir, 'node_modules', 'plugin-only-dep');
  mkdirSync(dep, { recursive: true });
  writeFileSync(
    join(dep, 'package.json'),
    JSON.stringify({ name: 'plugin-only-dep', type: 'module', exports: './main.js' }),
  );
  writeFileSync(join(dep, 'main.js'), 'export const DEFAULT_T0 = 0.75;\n');
  mkdirSync(join(dir, 'lib'), { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'offramp-policy-rising', type: 'module', exports: { '.': { import: './lib/index.js' } } }),
  );
  writeFileSync(
    join(dir, 'lib', 'index.js'),
    `import { DEFAULT_T0 } from 'plugin-only-dep';
const names = ['t0', 'step'];
function rising(given = {}) {
  for (const k of Object.keys(given)) {
    if (!names.includes(k)) {
      const e = new Error(\`policy 'rising': unknown option '\${k}'; allowed options: \${names.join(', ')}\`);
      e.name = 'ValidationError';
      throw e;
    }
  }
  const options = { t0: DEFAULT_T0, step: 0.05, ...given };
  return { name: 'rising', options, init: () => null, decide: (_c, s) => new Uint8Array(s.count) };
}
rising.sweep = { t0: [0.6, 0.8], step: { from: 0, to: 0.1, steps: 2 } };
export default rising;
`,
  );
}

describe('plugin policies (module:)', () => {
  const dir = join(root, 'my-policy');
  writePlugin(dir);

  it("resolves a plugin's folder to its package entry, its own dependencies from its folder", async () => {
    expect(resolveModule('./my-policy', root)).toBe(`file://${join(dir, 'lib', 'index.js')}`);
    // a relative path without './' when no package has that name; a package of that name would win
    expect(resolveModule('my-policy', root)).toBe(`file://${join(dir, 'lib', 'index.js')}`);
    expect(resolveModule('plugin-only-dep', dir)).toBe(
      `file://${join(dir, 'node_modules', 'plugin-only-dep', 'main.js')}`,
    );
    expect(resolveModule('no-such-thing', root)).toBeNull();
    // from anywhere: an absolute or a relative path from the current directory
    const rel = relative(process.cwd(), dir);
    const [req] = await parsePolicyList([`module:${rel.startsWith('.') ? rel : `./${rel}`}:t0=0.9`]);
    expect(req).toMatchObject({ kind: 'module', name: 'rising', options: { t0: 0.9 } });
  });

  it('shows the options the plugin resolved, defaults (from its own dependency) filled in', async () => {
    const [req] = await parsePolicyList([`module:${dir}:step=0.1`]);
    expect(req.kind === 'module' && req.resolved).toEqual({ t0: 0.75, step: 0.1 });
    expect(req.kind === 'module' && req.grid).toBeUndefined();
  });

  it('sweeps a plugin named without options over its declared grid', async () => {
    const [req] = await parsePolicyList([`module:${dir}`]);
    expect(req.kind === 'module' && req.grid).toEqual([
      { t0: 0.6, step: 0 },
      { t0: 0.6, step: 0.1 },
      { t0: 0.8, step: 0 },
      { t0: 0.8, step: 0.1 },
    ]);
  });

  it('refuses a mistyped option as a usage error, and a folder without its entry with a hint', async () => {
    await expect(parsePolicyList([`module:${dir}:tO=0.5`])).rejects.toThrow(
      "policy 'rising': unknown option 'tO'; allowed options: t0, step",
    );
    await expect(parsePolicyList([`module:${dir}:tO=0.5`])).rejects.toThrow(UsageError);
    const unbuilt = join(root, 'unbuilt');
    mkdirSync(unbuilt, { recursive: true });
    writeFileSync(join(unbuilt, 'package.json'), JSON.stringify({ name: 'x', exports: './dist/index.js' }));
    writeFileSync(join(unbuilt, 'tsconfig.json'), '{}');
    const uninstalled = join(root, 'uninstalled');
    mkdirSync(uninstalled, { recursive: true });
    writeFileSync(join(uninstalled, 'package.json'), JSON.stringify({ name: 'y', type: 'module', exports: './i.js' }));
    writeFileSync(join(uninstalled, 'i.js'), "export { x as default } from 'not-installed-anywhere';\n");
    await expect(parsePolicyList([`module:${uninstalled}`])).rejects.toThrow(
      `(run npm install in the plugin's folder, ${uninstalled})`,
    );
    await expect(parsePolicyList([`module:${unbuilt}`])).rejects.toThrow(
      /its entry .*dist\/index\.js does not exist \(build the plugin first, e\.g\. npm run build\)/,
    );
  });
});
