import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Mount tests compare the whole mount table before and after: one file at a time.
    fileParallelism: false,
    globalSetup: ['test/helpers/require-private-namespace.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
