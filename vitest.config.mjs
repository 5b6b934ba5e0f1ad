import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Property tests print their seed on failure; FC_SEED / FC_RUNS override them (see test/util/fc.ts).
  },
});
