/**
 * One DynamoDB Local for a whole model run, the history table created from serverless.yml,
 * and the environment the workers read: fake upstream URLs (answered in-process), short
 * deterministic failures (no in-call retries: each fault is one answer), silent logs.
 * The library modules are loaded only after the environment is set (the logger reads its
 * level at import).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startDynamoDbLocal, type Emulator } from '../../local/emulators/index.ts';
import { readStackDefinition } from '../../local/infra.ts';
import { createTable } from '../../local/provision.ts';
import { BASE_URLS } from './world.ts';

/** A fee with a percentage for every payment type the model uses, so each amount has its own cost. */
const MODEL_FEE_SCHEDULE = JSON.stringify({
  rules: [
    { paymentType: 'cod', fixed: 0.5, percent: 2 },
    { paymentType: 'invoice', fixed: 0.1, percent: 1 },
  ],
});

export interface ModelEnvironment {
  runSchedule: typeof import('./run-schedule.ts').runSchedule;
  stop(): Promise<void>;
}

/**
 * Each upstream client is built on its first call, loading ky through the module loader:
 * I/O the schedule cannot see. Build them now (their calls fail: no schedule is running),
 * so every schedule, the first one included, runs the same way.
 */
async function warmUpClients(): Promise<void> {
  const { removeOrder } = await import('../../lib/clients/komfortkasse.ts');
  const { uploadTransactionCosts } = await import('../../lib/clients/klar.ts');
  const { fetchOrder } = await import('../../lib/clients/versacommerce.ts');
  await Promise.allSettled([removeOrder('warm-up'), uploadTransactionCosts([{ orderId: 'warm-up', transactionCosts: 0 }]), fetchOrder(1)]);
}

export async function startModelEnvironment(): Promise<ModelEnvironment> {
  const dynamoDb: Emulator = await startDynamoDbLocal();
  try {
    const env: Record<string, string> = {
      STAGE: 'local',
      AWS_REGION: LOCAL_REGION,
      AWS_DEFAULT_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_DYNAMODB: dynamoDb.endpoint,
      // Never reached: the model's SQS middleware takes every SendMessage.
      AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ORDERS_QUEUE_URL: 'http://127.0.0.1:9/000000000000/orderbridge-model-orders.fifo',
      KLAR_COSTS_QUEUE_URL: 'http://127.0.0.1:9/000000000000/orderbridge-model-klar-costs',
      KOMFORTKASSE_BASE_URL: BASE_URLS.komfortkasse,
      KOMFORTKASSE_API_KEY: 'model-komfortkasse-key',
      KOMFORTKASSE_INITIAL_DUNNING_LEVEL: '1',
      KLAR_BASE_URL: BASE_URLS.klar,
      KLAR_API_TOKEN: 'model-klar-token',
      VERSACOMMERCE_BASE_URL: BASE_URLS.versacommerce,
      VERSACOMMERCE_API_KEY: 'model-vc-key',
      VERSACOMMERCE_API_PASSWORD: 'model-vc-password',
      FEE_SCHEDULE: MODEL_FEE_SCHEDULE,
      // One answer per call: a fault lasts as many calls as the schedule says.
      UPSTREAM_RETRY_LIMIT: '0',
      UPSTREAM_RETRY_BASE_MS: '0',
      DRY_RUN: 'false',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_DEV: 'false',
    };
    for (const name of ['DEFAULT_COUNTRY_CODE', 'PAYMENT_TYPE_MAP', 'KOMFORTKASSE_LEASE_SECONDS', 'KLAR_ORDER_ID_FIELD', 'KLAR_BODY_WRAPPER']) delete process.env[name];
    Object.assign(process.env, env);

    const definition = readStackDefinition({ stage: 'local', env: process.env });
    const admin = new DynamoDBClient({ endpoint: dynamoDb.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    try {
      process.env.HISTORY_TABLE_NAME = await createTable(admin, definition);
    } finally {
      admin.destroy();
    }

    const { reloadConfig } = await import('../../lib/config/index.ts');
    const { resetClients } = await import('../../lib/clients/registry.ts');
    const { documentClient, resetDocumentClient } = await import('../../lib/store/dynamo.ts');
    const { sqsClient, resetSqsClient } = await import('../../lib/queue/sqs.ts');
    const engine = await import('./engine.ts');
    const { runSchedule } = await import('./run-schedule.ts');
    reloadConfig();
    resetClients();
    resetDocumentClient();
    resetSqsClient();
    engine.installHooks({ dynamo: documentClient(), sqs: sqsClient() });
    await warmUpClients();
    return {
      runSchedule,
      async stop() {
        engine.uninstallHooks();
        resetDocumentClient();
        resetSqsClient();
        await dynamoDb.stop();
      },
    };
  } catch (error) {
    await dynamoDb.stop();
    throw error;
  }
}
