/**
 * `npm run bench:init`: only the cold-start part of the benchmark (bundles and init ratios),
 * without starting the local stack — quick to repeat while working on import costs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readStackDefinition } from '../local/infra.ts';
import { REPO_ROOT } from '../local/stack.ts';
import { buildBundles, measureInit } from './bundles.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const definition = readStackDefinition({ stage: 'local' });
const workDir = mkdtempSync(join(REPO_ROOT, '.orderbridge', 'bench-init-'));
// What a handler finds in its environment at cold start (values only need to be well-formed).
const env: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  AWS_REGION: 'eu-central-1',
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  HISTORY_TABLE_NAME: 'orderbridge-bench-history',
  ORDERS_QUEUE_URL: 'http://127.0.0.1:1/000000000000/orderbridge-bench-orders.fifo',
  KLAR_COSTS_QUEUE_URL: 'http://127.0.0.1:1/000000000000/orderbridge-bench-klar-costs',
  POWERTOOLS_SERVICE_NAME: 'orderbridge',
  POWERTOOLS_METRICS_NAMESPACE: 'Orderbridge',
  POWERTOOLS_LOG_LEVEL: 'INFO',
  NODE_OPTIONS: '',
};
try {
  const files = await buildBundles(definition.functions, workDir);
  const figures = await measureInit(definition.functions, files, env, Number(process.env.RUNS ?? 9));
  for (const [name, f] of figures) {
    process.stdout.write(`${name.padEnd(18)} ${(f.bundleBytes / 1024).toFixed(0).padStart(4)} KB  init ${f.initMs.toFixed(0).padStart(4)} ms  SDK ${f.sdkInitMs.toFixed(0).padStart(4)} ms  ×${f.initRatio.toFixed(2)}\n`);
    for (const t of f.initBreakdown.slice(0, 6)) process.stdout.write(`    ${t.ms.toFixed(1).padStart(6)} ms  ${t.what}\n`);
  }
} finally {
  rmSync(workDir, { recursive: true, force: true });
}
