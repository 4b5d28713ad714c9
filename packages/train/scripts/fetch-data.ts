// Fetches every dataset into the cache (`.data/` at the repository root, or $OFFRAMP_DATA_DIR), checks counts and
// sizes with the package's own loaders, and prints one summary line per dataset. Idempotent: a dataset whose
// manifest and files are in place is not fetched again, so a run on a full cache takes well under a second.
// The work is `fetchDatasets` (src/data/fetch.ts), which `offramp data fetch` also uses.
//
// Usage: pnpm data [--quiet] [--force] [--only=name,name]
//   --quiet  print nothing for cached datasets, one line at the end
//   --force  fetch again even when cached
//   --only   fetch only these datasets (fashion-mnist, mnist, imdb, sentiment, austen, kjv, code-search, images)

import { DATASET_NAMES, type FetchEvent, fetchDatasets } from '../src/data/fetch.js';
import { FETCH_COMMAND } from '../src/data/paths.js';

const args = process.argv.slice(2);
const quiet = args.includes('--quiet');
const force = args.includes('--force');
const onlyArg = args.find((a) => a.startsWith('--only='));
const unknown = args.filter((a) => a !== '--quiet' && a !== '--force' && !a.startsWith('--only='));
if (unknown.length > 0) {
  console.error(
    `fetch-data: unknown argument ${unknown.join(' ')}; usage: ${FETCH_COMMAND} [--quiet] [--force] [--only=name,name]`,
  );
  process.exit(2);
}

function progress(e: FetchEvent): void {
  const name = e.dataset.padEnd(13);
  if (e.type === 'cached') {
    if (!quiet) console.log(`✓ ${name} ${e.summary} (cached)`);
  } else if (e.type === 'start') process.stderr.write(`  ${e.dataset}: fetching into ${e.dir}\n`);
  else if (e.type === 'step') process.stderr.write(`  ${e.dataset}: ${e.what} ...`);
  else if (e.type === 'step-done') process.stderr.write(` ${e.seconds.toFixed(1)} s\n`);
  else if (e.type === 'fetched') console.log(`✓ ${name} ${e.summary} (fetched in ${e.seconds.toFixed(1)} s)`);
  else if (e.type === 'failed') console.error(` failed\n✗ ${name} ${e.message}`);
}

async function main(): Promise<number> {
  const only = onlyArg ? onlyArg.slice('--only='.length).split(',').filter(Boolean) : undefined;
  const bad = only?.filter((n) => !(DATASET_NAMES as readonly string[]).includes(n)) ?? [];
  if (bad.length > 0) {
    console.error(`fetch-data: unknown dataset ${bad.join(', ')}; known: ${DATASET_NAMES.join(', ')}`);
    return 2;
  }
  const r = await fetchDatasets({ names: only, force, onProgress: progress });
  const secs = r.seconds.toFixed(1);
  if (r.failed.length > 0) {
    const names = r.failed.map((f) => f.dataset);
    console.error(
      `fetch-data: ${names.length} dataset(s) failed (${names.join(', ')}); fix the cause above and run \`${FETCH_COMMAND}\` again`,
    );
    return 1;
  }
  if (!quiet || r.fetched.length > 0) {
    console.log(`data: ${r.fetched.length} fetched, ${r.cached.length} cached, in ${r.dataDir} (${secs} s)`);
  } else console.log(`data: ${r.cached.length} datasets cached in ${r.dataDir} (${secs} s)`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`fetch-data: ${(e as Error).stack ?? e}`);
    process.exit(1);
  },
);
