import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The reliability suites run on their own: npm run test:reliability.
    exclude: ['test/reliability/**', '**/node_modules/**'],
    // Integration tests talk to real servers; each file works in its own namespace.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    reporters: ['default'],
    env: {
      // The handlers' Powertools logs: failures are expected in the failure matrix.
      CLONEFACTORY_LOG_LEVEL: 'SILENT',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  },
});
