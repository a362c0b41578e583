import { defineConfig } from 'vitest/config';

/**
 * The unit lane: tests that need neither root, nor a mount namespace, nor a build (dist/, the
 * starter), nor a Debian package: `npm run test:unit` runs them anywhere, in seconds. Checked by
 * running each as an unprivileged user (uid 65534). The pure tests beside the code, and the few
 * in test/ that only read the repository's own files.
 */
const UNIT = ['src/**/*.test.ts', 'test/command-hook.test.ts', 'test/generated.test.ts', 'test/hooks-d.test.ts'];

export default defineConfig({
  test: {
    // Mount tests compare the whole mount table before and after: one file at a time (vitest 3
    // takes this for all projects only; the unit lane's files are quick either way).
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        // First, and alone: nothing of it runs beside a system test.
        test: { name: 'unit', include: UNIT, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: {
          name: 'system',
          include: ['test/**/*.test.ts'],
          exclude: UNIT,
          // Root and a private mount namespace (scripts/test.sh): checked before any test starts.
          globalSetup: ['test/helpers/require-private-namespace.ts'],
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
