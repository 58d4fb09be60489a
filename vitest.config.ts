import { defineConfig } from 'vitest/config';

/**
 * The end-to-end files (webhook → queues → workers → upstream simulators), which CI runs a
 * second time against the bundles `osls package` zips: `vitest run --mode bundled` sets
 * ORDERBRIDGE_BUNDLED=1, as `npm start -- --bundled` does. They may not rely on in-process
 * handlers (handler overrides, spies on a handler's logger, a changed process.env).
 */
const BUNDLED_END_TO_END = [
  'test/integration/order-lifecycle.test.ts',
  'test/integration/review-findings.test.ts',
  'test/integration/sides.test.ts',
  'test/integration/reconcile.test.ts',
  'test/integration/operations.test.ts',
  'test/integration/check.test.ts',
  'test/integration/function-timeout.test.ts',
];

export default defineConfig(({ mode }) => ({
  test: {
    // The fault suite restarts emulators and kills workers (minutes, not seconds): it runs
    // on its own with `npm run test:faults` (= `vitest run --mode faults`), not in `npm test`.
    include:
      mode === 'faults' ? ['test/faults/**/*.test.ts'] : mode === 'bundled' ? BUNDLED_END_TO_END : ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
    // Bundled, every invocation crosses into a sandbox and the stack starts one sandbox per
    // function before its port opens: more room on a loaded 2-core machine.
    testTimeout: mode === 'bundled' ? 60_000 : 30_000,
    hookTimeout: mode === 'bundled' ? 120_000 : 60_000,
    globalSetup: mode === 'bundled' ? ['test/bundled-setup.ts'] : [],
    // Integration suites start real emulators; run files one by one on a 2-core machine.
    fileParallelism: false,
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      // The fault suite fails records on purpose; its warnings would drown the report.
      POWERTOOLS_LOG_LEVEL: mode === 'faults' ? 'ERROR' : 'WARN',
      POWERTOOLS_DEV: 'false',
      // Powertools' own switch: no EMF blobs in the test output (a test that checks them turns it on).
      POWERTOOLS_METRICS_DISABLED: 'true',
      ...(mode === 'bundled' ? { ORDERBRIDGE_BUNDLED: '1' } : {}),
    },
  },
}));
