// `offramp data fetch [names...]`: fetches datasets into the cache (@offramp/train's fetchDatasets) with
// progress on stderr, and `offramp data where`: prints the cache folder. The same fetch runs on first use
// when a command needs a dataset that is not cached (`offramp demo`, or `--fetch`).
import type { FetchEvent } from '@offramp/train';
import { RuntimeError, UsageError } from '../errors.js';
import type { Logger } from '../util/log.js';

/**
 * Progress lines on stderr: one per dataset and per slow step (download, unpacking, verification), and the
 * summary of each fetched dataset unless the caller prints it (`summaries: false`).
 */
export function fetchProgress(summaries = true): (e: FetchEvent) => void {
  return (e) => {
    if (e.type === 'start') process.stderr.write(`  ${e.dataset}: fetching into ${e.dir}\n`);
    else if (e.type === 'step') process.stderr.write(`  ${e.dataset}: ${e.what} ...\n`);
    else if (e.type === 'step-done')
      process.stderr.write(`  ${e.dataset}: ${e.what}: done in ${e.seconds.toFixed(1)} s\n`);
    else if (e.type === 'fetched' && summaries)
      process.stderr.write(`  ${e.dataset}: fetched in ${e.seconds.toFixed(1)} s: ${e.summary}\n`);
  };
}

export interface DataFetchOptions {
  force?: boolean;
}

export async function dataFetchCommand(names: string[], o: DataFetchOptions, log: Logger): Promise<void> {
  const train = await import('@offramp/train');
  try {
    train.checkDatasetNames(names);
  } catch (e) {
    throw new UsageError((e as Error).message, { cause: e });
  }
  const r = await train.fetchDatasets({
    names: names.length > 0 ? names : undefined,
    force: o.force,
    onProgress: fetchProgress(false),
  });
  for (const [name, summary] of Object.entries(r.summaries)) {
    const how = r.cached.includes(name as never) ? 'cached' : 'fetched';
    log.info(`${log.c.green('✓')} ${name.padEnd(13)} ${summary} ${log.c.dim(`(${how})`)}`);
  }
  for (const f of r.failed) log.info(`${log.c.red('✗')} ${f.dataset.padEnd(13)} ${f.message}`);
  log.result(r);
  if (r.failed.length > 0) {
    throw new RuntimeError(
      `${r.failed.length} dataset(s) failed (${r.failed.map((f) => f.dataset).join(', ')}); fix the cause above and run \`offramp data fetch\` again`,
    );
  }
  log.info(
    log.c.dim(
      `data: ${r.fetched.length} fetched, ${r.cached.length} cached, in ${r.dataDir} (${r.seconds.toFixed(1)} s)`,
    ),
  );
}

export async function dataWhereCommand(log: Logger): Promise<void> {
  const { resolveDataDir } = await import('@offramp/train');
  const dir = resolveDataDir();
  log.result({ dataDir: dir });
  if (!log.json) process.stdout.write(`${dir}\n`);
}
