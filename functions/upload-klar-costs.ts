import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { config } from '../lib/config/index.ts';
import { describeError } from '../lib/domain/errors.ts';
import { klarCostMessageSchema } from '../lib/domain/messages.ts';
import { lambdaHandler, type Invocation } from '../lib/observability/handler.ts';
import { batchLogger, logger } from '../lib/observability/logger.ts';
import { count } from '../lib/observability/metrics.ts';
import { decodeQueueMessage } from '../lib/queue/encode.ts';
import { uploadKlarCosts, type KlarBatchEntry } from '../lib/sync/klar.ts';

config(); // validate the environment at cold start, naming any bad variable

async function uploadBatch(event: SQSEvent, context: Context, { signal }: Invocation): Promise<SQSBatchResponse> {
  count('klarRecords', event.Records.length);
  const entries: KlarBatchEntry[] = [];
  const unreadable: string[] = [];
  for (const record of event.Records) {
    const parsed = klarCostMessageSchema.safeParse(decodeQueueMessage(record.body));
    if (parsed.success) entries.push({ recordId: record.messageId, message: parsed.data });
    else unreadable.push(record.messageId); // fails → DLQ, never silently dropped
  }
  if (unreadable.length) {
    count('errors', unreadable.length);
    logger.error('unreadable klar-cost messages', { messageIds: unreadable });
  }
  // Every line of the batch carries its orders' correlation ids (from the webhook, via SQS).
  const log = batchLogger(entries.map((e) => e.message.correlationId));
  try {
    const result = await uploadKlarCosts(entries, { log, signal, remainingMs: () => context.getRemainingTimeInMillis() });
    log.info('klar batch', { records: event.Records.length, ...result, failed: result.failed.length });
    return { batchItemFailures: [...unreadable, ...result.failed].map((itemIdentifier) => ({ itemIdentifier })) };
  } catch (error) {
    // Unexpected (e.g. DynamoDB unreachable): every record is retried.
    log.error('klar batch failed', { error: describeError(error) });
    count('failedTransient', event.Records.length);
    return { batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) };
  }
}

export const handler = lambdaHandler(uploadBatch);
