import { defineConfig } from 'vitest/config';
import shared from '../../vitest.shared.ts';

// the benchmark helpers and result scripts have tests of their own beside them
export default defineConfig({
  ...shared,
  test: { ...shared.test, include: [...(shared.test?.include ?? []), 'bench/**/*.test.ts', 'scripts/**/*.test.ts'] },
});
