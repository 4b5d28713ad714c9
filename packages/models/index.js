// Where the shipped checkpoints are: `checkpoints/` inside this package once packed (prepack copies the
// repository's checkpoints/ folder, the one source of truth), else the checkouts's own checkpoints/ folder.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The folder holding one subfolder per shipped checkpoint (config.json, model.safetensors, model card). */
export function checkpointsDir() {
  const packed = join(here, 'checkpoints');
  if (existsSync(packed)) return packed;
  const checkout = join(here, '..', '..', 'checkpoints');
  if (existsSync(join(here, '..', '..', 'pnpm-workspace.yaml')) && existsSync(checkout)) return checkout;
  return packed;
}

/** Names of the checkpoints this package holds, sorted. */
export function listModels() {
  const dir = checkpointsDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, 'config.json')))
    .map((e) => e.name)
    .sort();
}

/** The folder of checkpoint `name`; throws naming the checkpoints there when it is not one of them. */
export function modelDir(name) {
  const have = listModels();
  if (!have.includes(name)) {
    throw new Error(
      `@offramp/models: no checkpoint named '${name}' in ${checkpointsDir()}; the shipped checkpoints are ${have.join(', ') || '(none found)'}`,
    );
  }
  return join(checkpointsDir(), name);
}
