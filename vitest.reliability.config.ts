import { defineConfig } from 'vitest/config';

/**
 * `npm run test:reliability`: the suites that attack the whole system (chaos, concurrency,
 * isolation, JWT fuzzing, bad input, load), one file at a time, since each loads the machine
 * on its own. RELIABILITY_PROFILE=quick (default, CI) or full; see docs/RELIABILITY.md.
 */
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 300_000,
    // No leftover clean-up here (npm test's global setup does it): suites may run side by side.
    globalSetup: ['test/reliability/report.ts'],
    pool: 'forks',
    fileParallelism: false,
    reporters: ['default'],
    env: {
      CLONEFACTORY_LOG_LEVEL: 'SILENT',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  },
});
