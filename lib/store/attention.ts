import { attentionSchema, MAX_ERROR_LENGTH, type Attention, type SyncTarget } from '../domain/sync-state.ts';
import { expiresAt, orderPartition, queryAll, tableName, type Item, type Key } from './table.ts';

/**
 * The needs-attention index: one item per order and side, in the sparse gsi2. Each side
 * writes and clears only its own item, in the same transaction as its state, so the
 * Komfortkasse and Klar workers never have to read each other's state to keep it right.
 */
export const attentionKeys = {
  item: (orderId: number, target: SyncTarget): Key => ({ pk: orderPartition(orderId), sk: `ATTENTION#${target}` }),
  index: 'NEEDS_ATTENTION',
};

export function attentionFromItem(item: Item): Attention {
  return attentionSchema.parse({ orderId: item.orderId, orderCode: item.orderCode, target: item.target, error: item.error, since: item.since });
}

/** Transaction element: the order is parked on this side (oldest first in the index). */
export function putAttention(entry: Attention, now = new Date()) {
  const item: Item = {
    ...attentionKeys.item(entry.orderId, entry.target),
    gsi2pk: attentionKeys.index,
    gsi2sk: `${entry.since}#${entry.orderId}#${entry.target}`,
    orderId: entry.orderId,
    target: entry.target,
    since: entry.since,
    expiresAt: expiresAt(now),
  };
  if (entry.orderCode) item.orderCode = entry.orderCode;
  if (entry.error) item.error = entry.error.slice(0, MAX_ERROR_LENGTH);
  return { Put: { TableName: tableName(), Item: item } };
}

/** Transaction element: the side is no longer parked. Deleting a missing item is fine. */
export function deleteAttention(orderId: number, target: SyncTarget) {
  return { Delete: { TableName: tableName(), Key: attentionKeys.item(orderId, target) } };
}

/** Every parked side of every order, oldest first. */
export async function listAttention(): Promise<Attention[]> {
  const items = await queryAll({
    TableName: tableName(),
    IndexName: 'gsi2',
    KeyConditionExpression: 'gsi2pk = :pk',
    ExpressionAttributeValues: { ':pk': attentionKeys.index },
  });
  return items.map(attentionFromItem);
}
