// Shared vitest settings: workspace packages resolve to their sources (no build needed), GPU tests run
// one file at a time in forked processes (lavapipe uses every core; Dawn is happiest in its own process).
import { defaultServerConditions } from 'vite';
import type { ViteUserConfig } from 'vitest/config';

const conditions = ['@offramp/source', ...defaultServerConditions];

const shared: ViteUserConfig = {
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@offramp/source'] } },
  test: {
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    passWithNoTests: true,
  },
};
export default shared;
