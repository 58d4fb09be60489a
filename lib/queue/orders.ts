import { createHash } from 'node:crypto';
import { ChangeMessageVisibilityBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { config } from '../config/index.ts';
import { ConfigError } from '../domain/errors.ts';
import type { KlarCostMessage, OrderChangedMessage } from '../domain/messages.ts';
import type { ProbeMessage } from '../domain/probe.ts';
import { encodeQueueMessage } from './encode.ts';
import { sqsClient } from './sqs.ts';

function queueUrl(name: 'ORDERS_QUEUE_URL' | 'KLAR_COSTS_QUEUE_URL'): string {
  const url = config()[name];
  if (!url) throw new ConfigError(`${name} is not set`, [name]);
  return url;
}

/** FIFO dedup ids allow 128 chars of [A-Za-z0-9!-~]; a hash always fits. */
export function deduplicationId(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex');
}

/**
 * One order's messages stay in order (group = order id); duplicates within 5 min vanish.
 * A duplicate is the same delivery of the same order: a sender that reuses its delivery
 * ids across orders must not lose the second order's message.
 * The message is trusted as typed (parsed at the edge); `body` saves encoding it twice.
 */
export async function enqueueOrderChanged(message: OrderChangedMessage, body = encodeQueueMessage(message)): Promise<string | undefined> {
  const result = await sqsClient().send(
    new SendMessageCommand({
      QueueUrl: queueUrl('ORDERS_QUEUE_URL'),
      MessageBody: body,
      MessageGroupId: String(message.orderId),
      MessageDeduplicationId: deduplicationId('order', String(message.orderId), message.deliveryId),
      MessageAttributes: attributes(message.correlationId, message.orderCode, message.source),
    }),
  );
  return result.MessageId;
}

/** A check's probe travels orders.fifo like an order, in a group of its own. */
export async function enqueueProbe(message: ProbeMessage, body = encodeQueueMessage(message)): Promise<string | undefined> {
  const result = await sqsClient().send(
    new SendMessageCommand({
      QueueUrl: queueUrl('ORDERS_QUEUE_URL'),
      MessageBody: body,
      MessageGroupId: `probe-${message.probeId}`,
      MessageDeduplicationId: deduplicationId('probe', message.probeId),
      MessageAttributes: attributes(message.correlationId, undefined, 'probe'),
    }),
  );
  return result.MessageId;
}

export async function enqueueKlarCost(message: KlarCostMessage): Promise<string | undefined> {
  const result = await sqsClient().send(
    new SendMessageCommand({
      QueueUrl: queueUrl('KLAR_COSTS_QUEUE_URL'),
      MessageBody: encodeQueueMessage(message),
      MessageAttributes: attributes(message.correlationId, message.orderCode),
    }),
  );
  return result.MessageId;
}

/** SQS's longest visibility timeout (12 hours). */
const MAX_VISIBILITY_SECONDS = 43_200;

/**
 * Hands received orders.fifo messages back to come again after about `afterMs` (at least a
 * second), not after the queue's whole visibility timeout: what an upstream's "slow down"
 * asks for. Returns the receipt handles SQS did not take (those come back after the
 * visibility timeout, as any failed record does).
 */
export async function handBackOrders(receiptHandles: readonly string[], afterMs: number): Promise<string[]> {
  const seconds = Math.min(MAX_VISIBILITY_SECONDS, Math.max(1, Math.ceil(afterMs / 1000)));
  const refused: string[] = [];
  for (let i = 0; i < receiptHandles.length; i += 10) {
    const chunk = receiptHandles.slice(i, i + 10);
    const result = await sqsClient().send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl('ORDERS_QUEUE_URL'),
        Entries: chunk.map((receiptHandle, index) => ({ Id: String(index), ReceiptHandle: receiptHandle, VisibilityTimeout: seconds })),
      }),
    );
    for (const failure of result.Failed ?? []) refused.push(chunk[Number(failure.Id)]!);
  }
  return refused;
}

/** Attribute values SQS accepts as they are (no control characters, no surrogates), kept short. */
const PLAIN_ATTRIBUTE = /^[\x20-\x7E\u00A0-\uD7FF\uE000-\uFFFD]{1,256}$/;

/** Attributes are for filtering and tracing only: a value SQS might refuse is left out, never a 503. */
function attributes(correlationId: string, orderCode?: string, source?: string) {
  const attrs: Record<string, { DataType: 'String'; StringValue: string }> = {};
  const add = (name: string, value: string | undefined) => {
    if (value !== undefined && PLAIN_ATTRIBUTE.test(value)) attrs[name] = { DataType: 'String', StringValue: value };
  };
  add('correlationId', correlationId);
  add('orderCode', orderCode);
  add('source', source);
  return attrs;
}
