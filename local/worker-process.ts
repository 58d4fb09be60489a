/**
 * One SQS worker as its own process: polls a queue of the local stack and feeds the real
 * handler, exactly like the in-process event sources of local/stack.ts. A separate process
 * can be killed (SIGKILL) mid-batch, which is how the fault suite simulates a crashed Lambda.
 *
 * Configuration is the stack's environment (`RunningStack.env`: endpoints, queue URLs,
 * table, upstream base URLs) plus:
 *   WORKER_FUNCTION             function of serverless.yml to run (default sync-order)
 *   WORKER_RETRY_DELAY_SECONDS  hand failed records back after this many seconds
 *
 * Prints one JSON line `{"ready":true,…}` once polling, then one line per invocation.
 * SIGTERM/SIGINT stop polling and exit.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from './emulators/index.ts';
import { readStackDefinition } from './infra.ts';
import { SqsEventSource, type Handler } from './runtime.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

const functionName = process.env.WORKER_FUNCTION ?? 'sync-order';
const endpoint = process.env.AWS_ENDPOINT_URL_SQS;
if (!endpoint) throw new Error('AWS_ENDPOINT_URL_SQS is not set: pass the local stack environment');

const definition = readStackDefinition({ stage: 'local', env: process.env });
const fn = definition.functions.find((candidate) => candidate.name === functionName);
const event = fn?.events.find((candidate) => candidate.type === 'sqs');
if (!fn || event?.type !== 'sqs') throw new Error(`serverless.yml has no SQS-triggered function ${functionName}`);
const queueDefinition = definition.queues.find((queue) => queue.logicalId === event.queueLogicalId)!;

const sqs = new SQSClient({ endpoint, region: process.env.AWS_REGION ?? LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: queueDefinition.name }));
const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn', 'VisibilityTimeout'] }));

const module = (await import(pathToFileURL(join(REPO_ROOT, fn.module)).href)) as Record<string, unknown>;
const handler = module[fn.exportName] as Handler;
if (typeof handler !== 'function') throw new Error(`${fn.module} does not export ${fn.exportName}`);

const retryDelay = process.env.WORKER_RETRY_DELAY_SECONDS;
const batchWindowSeconds =
  functionName === 'upload-klar-costs' ? Number(process.env.KLAR_BATCH_WINDOW_SECONDS ?? event.maximumBatchingWindow) : event.maximumBatchingWindow;
const source = new SqsEventSource(
  sqs,
  {
    logicalId: queueDefinition.logicalId,
    name: queueDefinition.name,
    url: QueueUrl!,
    arn: Attributes!.QueueArn!,
    fifo: queueDefinition.fifo,
    visibilityTimeout: Number(Attributes!.VisibilityTimeout ?? 30),
  },
  functionName,
  () => handler,
  {
    batchSize: event.batchSize,
    batchWindowMs: batchWindowSeconds * 1000,
    timeoutSeconds: fn.timeoutSeconds,
    reportBatchItemFailures: event.reportBatchItemFailures,
    retryDelaySeconds: retryDelay === undefined || retryDelay === '' ? undefined : Number(retryDelay),
    onInvocation: (log) => process.stdout.write(`${JSON.stringify({ invocation: log })}\n`),
  },
);
source.start();
process.stdout.write(`${JSON.stringify({ ready: true, functionName, pid: process.pid })}\n`);

const stop = () => {
  void source.stop().finally(() => {
    sqs.destroy();
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
