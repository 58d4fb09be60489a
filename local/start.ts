import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseEnv, sideOn } from '../lib/config/env.ts';
import { LOCAL_DEFAULTS, REPO_ROOT, startStack, type RunningStack } from './stack.ts';

const HELP = `npm start [-- options]

Runs the whole Orderbridge pipeline on this machine: DynamoDB Local and an SQS emulator as
child processes, the real Lambda handlers fed real events, and simulators for every upstream
whose *_BASE_URL is not set. The HTTP port opens only once everything is ready.

Options:
  --port N        HTTP port (default: PORT or 3000; 0 picks a free one)
  --persist       keep DynamoDB data in .orderbridge/dynamodb between runs
  --bundled       run the esbuild bundles that \`osls package\` zips (built into
                  .orderbridge/bundles when missing or older than the sources) instead of
                  the sources, each invocation in a sandbox killed at the function's timeout
                  (also: ORDERBRIDGE_BUNDLED=1)
  -h, --help      show this help

Environment: see README.md ("Configuration"). Ctrl-C stops every child process.`;

// The SDK warns about Node 20 on every client; the stack notes are in STACK/README.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const secretFromEnv = Boolean(process.env.WEBHOOK_SECRETS);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      persist: { type: 'boolean', default: false },
      bundled: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  parseEnv(process.env); // fail fast, naming the bad variable
  const started = Date.now();
  console.log('orderbridge: starting DynamoDB Local and the SQS emulator …');
  let persistDir: string | undefined;
  if (values.persist) {
    persistDir = join(REPO_ROOT, '.orderbridge', 'dynamodb');
    mkdirSync(persistDir, { recursive: true });
  }
  const stack = await startStack({
    port: values.port !== undefined ? Number(values.port) : undefined,
    persistDir,
    bundled: values.bundled || undefined, // else ORDERBRIDGE_BUNDLED decides
    writeStateFile: true,
    onProgress: (message) => console.log(`orderbridge: ${message}`),
    onInvocation: (log) => {
      if (log.timedOut) return; // the runtime has said so already
      if (log.error || log.failures) {
        console.error(`orderbridge: ${log.functionName} ${log.records ?? ''} record(s), ${log.failures ?? 0} failed${log.error ? `: ${log.error}` : ''}`);
      }
    },
  });
  printSummary(stack, Date.now() - started);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\norderbridge: ${signal} — stopping workers, emulators and simulators …`);
    await stack.stop();
    console.log('orderbridge: stopped.');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

function printSummary(stack: RunningStack, ms: number): void {
  const sim = stack.simulators;
  const line = (label: string, value: string) => console.log(`  ${label.padEnd(22)} ${value}`);
  console.log(`orderbridge: ready in ${(ms / 1000).toFixed(1)} s`);
  line('webhook', `POST ${stack.url}/webhooks/versacommerce`);
  line('health', `GET  ${stack.url}/health`);
  line('functions', stack.bundled ? `esbuild bundles (.orderbridge/bundles), sandboxed, on Node ${process.versions.node}` : `TypeScript sources, in process, on Node ${process.versions.node}`);
  line('webhook secret', secretFromEnv ? '(from WEBHOOK_SECRETS)' : `${LOCAL_DEFAULTS.webhookSecret} (set WEBHOOK_SECRETS to change)`);
  line('DynamoDB Local', `${stack.dynamoDb.endpoint} (table ${stack.tableName})`);
  line('SQS emulator', stack.sqs.endpoint);
  for (const [alias, queue] of Object.entries(stack.queues)) line(`  queue ${alias}`, queue.name);
  const off = (variable: string) => `off (${variable}=${stack.env[variable]}): nothing is sent, no credentials needed`;
  const isOff = (variable: string) => !sideOn(stack.env[variable]);
  line('Komfortkasse', isOff('KOMFORTKASSE_ENABLED') ? off('KOMFORTKASSE_ENABLED') : sim.komfortkasse ? `${sim.komfortkasse.url} (simulator)` : String(stack.env.KOMFORTKASSE_BASE_URL ?? process.env.KOMFORTKASSE_BASE_URL));
  line('Klar', isOff('KLAR_ENABLED') ? off('KLAR_ENABLED') : sim.klar ? `${sim.klar.url} (simulator)` : String(process.env.KLAR_BASE_URL));
  line('VersaCommerce', sim.versaCommerce ? `${sim.versaCommerce.url} (simulator)` : String(process.env.VERSACOMMERCE_BASE_URL));
  line('DRY_RUN', process.env.DRY_RUN === 'true' ? 'on — nothing is sent upstream' : 'off');
  console.log('  Try: npm run orderbridge -- --help   ·   Ctrl-C stops everything.');
}

main().catch((error: unknown) => {
  console.error(`orderbridge: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
