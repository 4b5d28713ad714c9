// The dataset cache outside a checkout and the library fetch: where the cache is ($OFFRAMP_DATA_DIR, the
// checkout's .data/, the per-user cache), fetchDatasets into an empty folder (progress, manifest, second run
// cached), unknown names, and gzip cache files that would expand past their expected size (a gzip bomb).

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { FormatError } from '@offramp/core';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DATASET_NAMES, ensureDatasets, FetchError, type FetchEvent, fetchDatasets, isDatasetCached } from './fetch.js';
import { gunzip, parseIdx } from './idx.js';
import { loadFashionMnist, mnistIdxBytes } from './mnist.js';
import { checkoutRoot, DATA_DIR_ENV, resolveDataDir, userCacheDir } from './paths.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'offramp-fetch-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('resolveDataDir', () => {
  const saved = { data: process.env[DATA_DIR_ENV], xdg: process.env.XDG_CACHE_HOME };
  beforeEach(() => {
    delete process.env[DATA_DIR_ENV];
  });
  afterEach(() => {
    for (const [k, v] of [
      [DATA_DIR_ENV, saved.data],
      ['XDG_CACHE_HOME', saved.xdg],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('an explicit folder, then $OFFRAMP_DATA_DIR, then the checkout .data/', () => {
    expect(resolveDataDir(path.join(tmp, 'x'))).toBe(path.join(tmp, 'x'));
    process.env[DATA_DIR_ENV] = path.join(tmp, 'env');
    expect(resolveDataDir()).toBe(path.join(tmp, 'env'));
    delete process.env[DATA_DIR_ENV];
    const root = checkoutRoot();
    expect(root).not.toBeNull();
    expect(resolveDataDir()).toBe(path.join(root!, '.data'));
  });

  it('the per-user cache is $XDG_CACHE_HOME/offramp, else ~/.cache/offramp', () => {
    process.env.XDG_CACHE_HOME = path.join(tmp, 'xdg');
    expect(userCacheDir()).toBe(path.join(tmp, 'xdg', 'offramp'));
    process.env.XDG_CACHE_HOME = 'relative/ignored';
    expect(userCacheDir()).toBe(path.join(os.homedir(), '.cache', 'offramp'));
    delete process.env.XDG_CACHE_HOME;
    expect(userCacheDir()).toBe(path.join(os.homedir(), '.cache', 'offramp'));
  });
});

describe('fetchDatasets', () => {
  it('fetches into an empty folder with progress, then finds it cached', async () => {
    const dataDir = path.join(tmp, 'cache');
    const events: FetchEvent[] = [];
    const r = await fetchDatasets({ dataDir, names: ['sentiment'], onProgress: (e) => events.push(e) });
    expect(r.failed).toEqual([]);
    expect(r.fetched).toEqual(['sentiment']);
    expect(r.summaries.sentiment).toMatch(/^3,000 sentences/);
    expect(events.map((e) => e.type)).toEqual(['start', 'step', 'step-done', 'fetched']);
    expect(isDatasetCached('sentiment', { dataDir })).toBe(true);
    expect(isDatasetCached('imdb', { dataDir })).toBe(false);
    const again = await fetchDatasets({ dataDir, names: ['sentiment'] });
    expect(again.cached).toEqual(['sentiment']);
    expect(again.fetched).toEqual([]);
  });

  it('ensureDatasets fetches only what is missing and says so; unknown names are refused', async () => {
    const dataDir = path.join(tmp, 'ensure');
    const lines: string[] = [];
    await ensureDatasets(['sentiment'], { dataDir, log: (l) => lines.push(l) });
    expect(isDatasetCached('sentiment', { dataDir })).toBe(true);
    expect(lines).toEqual(['fetching sentiment into the data cache (not there yet)']);
    await ensureDatasets(['sentiment'], { dataDir, log: (l) => lines.push(l) });
    expect(lines).toHaveLength(1); // cached: nothing fetched, nothing said
    await expect(ensureDatasets(['cifar'], { dataDir })).rejects.toThrow(/unknown dataset cifar/);
  });

  it('unknown names are refused before anything runs, naming the known ones', async () => {
    const dataDir = path.join(tmp, 'never');
    await expect(fetchDatasets({ dataDir, names: ['sentiment', 'cifar'] })).rejects.toThrow(FetchError);
    await expect(fetchDatasets({ dataDir, names: ['cifar'] })).rejects.toThrow(
      `unknown dataset cifar; known: ${DATASET_NAMES.join(', ')}`,
    );
  });
});

describe('gzip expansion is capped at the expected size', () => {
  // 64 MiB of zeros compress to about 64 KB: the shape of a gzip bomb, small enough to build in a test
  const bomb = gzipSync(Buffer.alloc(64 << 20), { level: 9 });

  it('gunzip stops at maxBytes with a clear error', () => {
    expect(bomb.length).toBeLessThan(1 << 20);
    expect(() => gunzip(bomb, 1 << 20)).toThrow(FormatError);
    expect(() => gunzip(bomb, 1 << 20)).toThrow(/expands past 1048576 bytes, the most this file may hold/);
    expect(Array.from(gunzip(gzipSync(Buffer.from([1, 2, 3])), 3))).toEqual([1, 2, 3]);
    expect(() => parseIdx(bomb, { maxBytes: 1000 })).toThrow(/expands past 1000 bytes/);
  });

  it('a Fashion-MNIST cache file that expands past its size names the file', () => {
    const dataDir = path.join(tmp, 'bomb');
    mkdirSync(path.join(dataDir, 'fashion-mnist'), { recursive: true });
    writeFileSync(path.join(dataDir, 'fashion-mnist', 't10k-images-idx3-ubyte.gz'), bomb);
    const expected = mnistIdxBytes('images', 10_000);
    expect(expected).toBe(7_840_016);
    expect(() => loadFashionMnist('test', { dataDir })).toThrow(
      new RegExp(`t10k-images-idx3-ubyte\\.gz: gzip stream expands past ${expected} bytes`),
    );
  });
});
