import { createHash } from 'node:crypto';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { config } from '../config/index.ts';
import { ConfigError } from '../domain/errors.ts';
import {
  klarCostMessageSchema,
  orderChangedMessageSchema,
  type KlarCostMessage,
  type OrderChangedMessage,
} from '../domain/messages.ts';
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

/** One order's messages stay in order (group = order id); duplicates within 5 min vanish. */
export async function enqueueOrderChanged(message: OrderChangedMessage): Promise<string | undefined> {
  const body = orderChangedMessageSchema.parse(message);
  const result = await sqsClient().send(
    new SendMessageCommand({
      QueueUrl: queueUrl('ORDERS_QUEUE_URL'),
      MessageBody: JSON.stringify(body),
      MessageGroupId: String(body.orderId),
      MessageDeduplicationId: deduplicationId('order', body.deliveryId),
      MessageAttributes: attributes(body.correlationId, body.orderCode, body.source),
    }),
  );
  return result.MessageId;
}

export async function enqueueKlarCost(message: KlarCostMessage): Promise<string | undefined> {
  const body = klarCostMessageSchema.parse(message);
  const result = await sqsClient().send(
    new SendMessageCommand({
      QueueUrl: queueUrl('KLAR_COSTS_QUEUE_URL'),
      MessageBody: JSON.stringify(body),
      MessageAttributes: attributes(body.correlationId, body.orderCode),
    }),
  );
  return result.MessageId;
}

function attributes(correlationId: string, orderCode?: string, source?: string) {
  const attrs: Record<string, { DataType: 'String'; StringValue: string }> = {
    correlationId: { DataType: 'String', StringValue: correlationId },
  };
  if (orderCode) attrs.orderCode = { DataType: 'String', StringValue: orderCode };
  if (source) attrs.source = { DataType: 'String', StringValue: source };
  return attrs;
}
