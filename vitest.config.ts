import { defineConfig } from 'vitest/config';

export default defineConfig(({ mode }) => ({
  test: {
    // The fault suite restarts emulators and kills workers (minutes, not seconds): it runs
    // on its own with `npm run test:faults` (= `vitest run --mode faults`), not in `npm test`.
    include: mode === 'faults' ? ['test/faults/**/*.test.ts'] : ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites start real emulators; run files one by one on a 2-core machine.
    fileParallelism: false,
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      // The fault suite fails records on purpose; its warnings would drown the report.
      POWERTOOLS_LOG_LEVEL: mode === 'faults' ? 'ERROR' : 'WARN',
      POWERTOOLS_DEV: 'false',
      // Powertools' own switch: no EMF blobs in the test output (a test that checks them turns it on).
      POWERTOOLS_METRICS_DISABLED: 'true',
    },
  },
}));
