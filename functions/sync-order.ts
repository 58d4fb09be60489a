import middy from '@middy/core';
import { SqsFifoPartialProcessorAsync, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { config } from '../lib/config/index.ts';
import { InvalidMessageError, describeError } from '../lib/domain/errors.ts';
import { orderChangedMessageSchema } from '../lib/domain/messages.ts';
import { logger, orderLogger } from '../lib/observability/logger.ts';
import { count, flushMetrics } from '../lib/observability/metrics.ts';
import { syncKomfortkasse } from '../lib/sync/komfortkasse.ts';

config(); // validate the environment at cold start, naming any bad variable

async function handleRecord(record: SQSRecord): Promise<string> {
  const parsed = orderChangedMessageSchema.safeParse(safeJson(record.body));
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
  // Failures are logged and counted by the worker; throwing fails only this record.
  return syncKomfortkasse(message, log);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function syncBatch(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  // FIFO: after a failure, the rest of that order's messages wait, keeping their order.
  const processor = new SqsFifoPartialProcessorAsync();
  try {
    return await processPartialResponse(event, handleRecord, processor, {
      context,
      skipGroupOnError: true,
      throwOnFullBatchFailure: false,
    });
  } finally {
    flushMetrics();
  }
}

export const handler = middy(syncBatch);
