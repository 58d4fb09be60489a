import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { config } from '../lib/config/index.ts';
import { InvalidMessageError, describeError, retryAfterOf } from '../lib/domain/errors.ts';
import { orderChangedMessageSchema } from '../lib/domain/messages.ts';
import { lambdaHandler, type Invocation } from '../lib/observability/handler.ts';
import { logger, orderLogger } from '../lib/observability/logger.ts';
import { count } from '../lib/observability/metrics.ts';
import { decodeQueueMessage } from '../lib/queue/encode.ts';
import { processFifoBatch } from '../lib/queue/fifo-batch.ts';
import { handBackOrders } from '../lib/queue/orders.ts';
import { asProbe, syncProbe } from '../lib/sync/probe.ts';
import { recordBudgetMs, syncOrder } from '../lib/sync/sync-order.ts';

config(); // validate the environment at cold start, naming any bad variable

/** Orders (message groups) of one batch synced at once; each order's messages in turn. */
const GROUP_CONCURRENCY = 5;

async function handleRecord(record: SQSRecord, signal: AbortSignal): Promise<unknown> {
  const body = decodeQueueMessage(record.body);
  // `orderbridge check`'s probe: recorded, never sent upstream (lib/sync/probe.ts).
  const probe = asProbe(body);
  if (probe) return syncProbe(probe);
  const parsed = orderChangedMessageSchema.safeParse(body);
  if (!parsed.success) {
    // Unreadable: fail it so it ends in the DLQ instead of vanishing.
    count('errors');
    logger.error('unreadable order-changed message; it will end in the DLQ', {
      messageId: record.messageId,
      fields: parsed.error.issues.map((issue) => issue.path.join('.') || '(body)'),
    });
    throw new InvalidMessageError(`message ${record.messageId} is not an order-changed message`);
  }
  const message = parsed.data;
  const log = orderLogger({ orderId: message.orderId, orderCode: message.orderCode, correlationId: message.correlationId });
  log.appendKeys({ receiveCount: Number(record.attributes.ApproximateReceiveCount) });
  // Failures are logged and counted by the worker; throwing fails this record and the rest of its group.
  return syncOrder(message, { log, signal });
}

async function syncBatch(event: SQSEvent, context: Context, { signal }: Invocation): Promise<SQSBatchResponse> {
  return processFifoBatch(event.Records, (record) => handleRecord(record, signal), {
    concurrency: GROUP_CONCURRENCY,
    remainingMs: () => context.getRemainingTimeInMillis(),
    recordBudgetMs: recordBudgetMs(),
    onSkipped: (record, why) => {
      if (why === 'no-time') logger.warn('not started: too little time left before the deadline; SQS redelivers it', { messageId: record.messageId });
    },
    // "Slow down" is not the order's fault: it comes back after about the Retry-After.
    retryAfterMs: retryAfterOf,
    handBack,
  });
}

async function handBack(records: SQSRecord[], retryAfterMs: number): Promise<void> {
  const messageIds = records.map((r) => r.messageId);
  try {
    const refused = await handBackOrders(records.map((r) => r.receiptHandle), retryAfterMs);
    logger.info('an upstream asked to slow down: handed back to SQS until its Retry-After', { messageIds, retryAfterMs, refused: refused.length });
  } catch (error) {
    // They still come back, after the queue's visibility timeout.
    logger.warn('could not hand records back early; they return after the visibility timeout', { messageIds, error: describeError(error) });
  }
}

export const handler = lambdaHandler(syncBatch);
