// prepack / postpack of @offramp/models: `copy` puts the repository's checkpoints/ folder (the one source of
// truth) into the package so the tarball carries it; `clean` removes the copy again.
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(pkg, '..', '..', 'checkpoints');
const target = join(pkg, 'checkpoints');
const action = process.argv[2];

if (action === 'copy') {
  if (!existsSync(source)) {
    console.error(`@offramp/models: ${source} does not exist; pack this package from an Offramp checkout`);
    process.exit(1);
  }
  rmSync(target, { recursive: true, force: true });
  cpSync(source, target, { recursive: true });
  const names = readdirSync(target).filter((n) => existsSync(join(target, n, 'config.json')));
  console.error(`@offramp/models: copied ${names.length} checkpoints (${names.join(', ')}) into ${target}`);
} else if (action === 'clean') {
  rmSync(target, { recursive: true, force: true });
} else {
  console.error('usage: node scripts/checkpoints.mjs copy|clean');
  process.exit(2);
}
