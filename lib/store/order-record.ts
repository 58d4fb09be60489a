import { BatchGetCommand, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { orderRecordSchema, type OrderRecord } from '../domain/sync-state.ts';
import { documentClient } from './dynamo.ts';
import { expiresAt, orderPartition, tableName, untilProcessed, type Item, type Key } from './table.ts';

/** The order's STATE item: both sides' recorded state, found by id or (gsi1) by code. */
export const orderKeys = {
  state: (orderId: number): Key => ({ pk: orderPartition(orderId), sk: 'STATE' }),
  codeIndex: (orderCode: string) => `CODE#${orderCode}`,
};

export function fromItem(item: Item): OrderRecord {
  return orderRecordSchema.parse({
    orderId: item.orderId,
    orderCode: item.orderCode,
    komfortkasse: {
      state: item.kkState ?? 'pending',
      payloadHash: item.kkPayloadHash,
      error: item.kkError,
      everSubmitted: item.kkEverSubmitted ?? false,
      firstSubmittedAt: item.kkFirstSubmittedAt,
      lastChangedAt: item.kkLastChangedAt,
      sourceUpdatedAt: item.kkSourceUpdatedAt,
      firstAttemptedAt: item.kkFirstAttemptedAt,
      remindersStopped: item.kkRemindersStopped,
      vanishedAt: item.kkVanishedAt,
      referenceNumber: item.kkReferenceNumber,
      paymentStatus: item.kkPaymentStatus,
      leaseToken: item.kkLeaseToken,
      leaseUntil: item.kkLeaseUntil,
    },
    klar: {
      state: item.klarState ?? 'pending',
      transactionCosts: item.klarCosts,
      currency: item.klarCurrency,
      error: item.klarError,
      uploadedAt: item.klarUploadedAt,
      sourceUpdatedAt: item.klarSourceUpdatedAt,
      receivedAt: item.klarReceivedAt,
      version: item.klarVersion ?? 0,
    },
    forgottenAt: item.forgottenAt,
    updatedAt: item.updatedAt,
    expiresAt: item.expiresAt,
  });
}

/**
 * The attributes every write of the STATE item sets: who it is (id, code and the code
 * index), when it last changed, and its TTL. Returned as expression parts to merge.
 */
export function identityParts(orderId: number, orderCode: string | undefined, now: Date): { sets: string[]; values: Record<string, unknown> } {
  const values: Record<string, unknown> = { ':orderId': orderId, ':now': now.toISOString(), ':exp': expiresAt(now) };
  const sets = ['orderId = :orderId', 'updatedAt = :now', 'expiresAt = :exp'];
  if (orderCode) {
    sets.push('orderCode = :code', 'gsi1pk = :gsi1pk', 'gsi1sk = :gsi1sk');
    values[':code'] = orderCode;
    values[':gsi1pk'] = orderKeys.codeIndex(orderCode);
    values[':gsi1sk'] = orderPartition(orderId);
  }
  return { sets, values };
}

export async function getOrderRecord(orderId: number): Promise<OrderRecord | undefined> {
  const result = await documentClient().send(new GetCommand({ TableName: tableName(), Key: orderKeys.state(orderId), ConsistentRead: true }));
  return result.Item ? fromItem(result.Item) : undefined;
}

/** Reads many orders' records at once (100 keys per BatchGetItem, unprocessed keys retried). */
export async function getOrderRecords(orderIds: number[]): Promise<Map<number, OrderRecord>> {
  const found = new Map<number, OrderRecord>();
  const unique = [...new Set(orderIds)];
  for (let i = 0; i < unique.length; i += 100) {
    await untilProcessed(
      unique.slice(i, i + 100).map((id) => orderKeys.state(id)),
      async (keys) => {
        const result = await documentClient().send(new BatchGetCommand({ RequestItems: { [tableName()]: { Keys: keys, ConsistentRead: true } } }));
        for (const item of result.Responses?.[tableName()] ?? []) {
          const record = fromItem(item);
          found.set(record.orderId, record);
        }
        return result.UnprocessedKeys?.[tableName()]?.Keys as Key[] | undefined;
      },
      'keys',
    );
  }
  return found;
}

export async function findOrderIdByCode(orderCode: string): Promise<number | undefined> {
  const result = await documentClient().send(
    new QueryCommand({
      TableName: tableName(),
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :pk',
      ExpressionAttributeValues: { ':pk': orderKeys.codeIndex(orderCode) },
      Limit: 1,
    }),
  );
  const item = result.Items?.[0];
  return typeof item?.orderId === 'number' ? item.orderId : undefined;
}
