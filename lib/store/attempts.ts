import { randomUUID } from 'node:crypto';
import { BatchWriteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { attemptSchema, type Attempt } from '../domain/sync-state.ts';
import { documentClient } from './dynamo.ts';
import { expiresAt, orderPartition, queryAll, tableName, untilProcessed, type Item, type Key } from './table.ts';

/** The attempt log: one item per upstream call, beside the order's STATE, sortable by time. */
export const attemptKeys = {
  // A random suffix: two attempts in the same millisecond never collide.
  attempt: (orderId: number, at: string): Key => ({ pk: orderPartition(orderId), sk: `ATTEMPT#${at}#${randomUUID().slice(0, 8)}` }),
  prefix: 'ATTEMPT#',
};

export function attemptFromItem(item: Item): Attempt {
  return attemptSchema.parse({
    at: item.at,
    target: item.target,
    action: item.action,
    outcome: item.outcome,
    httpStatus: item.httpStatus,
    latencyMs: item.latencyMs,
    error: item.error,
    correlationId: item.correlationId,
    request: item.request,
  });
}

/** What an attempt keeps once its order was forgotten: outcome and numbers, no texts, no request (as `forget` leaves it). */
export function withoutPersonalData(attempt: Attempt): Attempt {
  const { error: _error, request: _request, ...rest } = attempt;
  return rest;
}

/** The item of one attempt (for a Put, alone or inside a transaction). */
export function attemptItem(orderId: number, attempt: Attempt, now = new Date()): Item {
  return { ...attemptKeys.attempt(orderId, attempt.at), ...attemptSchema.parse(attempt), orderId, expiresAt: expiresAt(now) };
}

/** A transaction element that adds an attempt (never overwriting one). */
export function putAttempt(orderId: number, attempt: Attempt, now = new Date()) {
  return { Put: { TableName: tableName(), Item: attemptItem(orderId, attempt, now), ConditionExpression: 'attribute_not_exists(pk)' } };
}

export async function appendAttempt(orderId: number, attempt: Attempt, now = new Date()): Promise<void> {
  await documentClient().send(new PutCommand(putAttempt(orderId, attempt, now).Put));
}

/**
 * Appends many attempts at once (BatchWriteItem, 25 per request, unprocessed items retried).
 * Attempt keys carry a random suffix, so no condition is needed against overwriting.
 */
export async function appendAttempts(entries: { orderId: number; attempt: Attempt }[], now = new Date()): Promise<void> {
  const requests = entries.map(({ orderId, attempt }) => ({ PutRequest: { Item: attemptItem(orderId, attempt, now) } }));
  const chunks: (typeof requests)[] = [];
  for (let i = 0; i < requests.length; i += 25) chunks.push(requests.slice(i, i + 25));
  const writeChunk = (chunk: typeof requests) =>
    untilProcessed(
      chunk,
      async (pending) => {
        const result = await documentClient().send(new BatchWriteCommand({ RequestItems: { [tableName()]: pending } }));
        return result.UnprocessedItems?.[tableName()] as typeof requests | undefined;
      },
      'attempts',
    );
  // A few requests in flight: fast, yet gentle on the table's write capacity.
  for (let i = 0; i < chunks.length; i += 4) await Promise.all(chunks.slice(i, i + 4).map(writeChunk));
}

export async function listAttempts(orderId: number): Promise<Attempt[]> {
  const items = await queryAll({
    TableName: tableName(),
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
    ExpressionAttributeValues: { ':pk': orderPartition(orderId), ':prefix': attemptKeys.prefix },
  });
  return items.map(attemptFromItem);
}
