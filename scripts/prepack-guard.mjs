// prepack of every published package: refuses `npm pack` / `npm publish` of a package that still has
// `workspace:` ranges (npm copies them into the tarball, which then cannot be installed); `pnpm pack` and
// `pnpm publish` rewrite them to real versions and pass.
import { readFileSync } from 'node:fs';

// biome-ignore lint/suspicious/noUndeclaredEnvVars: set by the package manager running prepack, not by a turbo task
const agent = process.env.npm_config_user_agent ?? '';
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const ranges = Object.entries({ ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies })
  .filter(([, v]) => String(v).startsWith('workspace:'))
  .map(([k, v]) => `${k}@${v}`);
if (ranges.length > 0 && !agent.startsWith('pnpm/')) {
  console.error(
    `${pkg.name}: pack and publish it with pnpm (\`pnpm pack\`, \`pnpm publish -r\`), which rewrites ${ranges.join(', ')} to real versions; ${agent.split(' ')[0] || 'this tool'} would put the workspace: ranges into the tarball (see docs/publishing.md)`,
  );
  process.exit(1);
}
