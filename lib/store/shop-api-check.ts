import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import * as z from '../domain/schema.ts';
import { MAX_ERROR_LENGTH } from '../domain/sync-state.ts';
import { documentClient } from './dynamo.ts';
import { expiresAt, isConditionFailure, tableName, type Key } from './table.ts';

/**
 * The order worker's check of the shop API after a 404 for an order (a 404 is a deletion
 * only if the API itself answers): the last failure and the last success, one item, for
 * `orderbridge status`. Written only when an order fetch got 404, so it costs nothing else.
 */
const KEY: Key = { pk: 'SHOP#API', sk: 'CHECK' };

export const shopApiCheckSchema = z.object({
  /** the last time the check failed: VersaCommerce answered 404 for an order and its API did not answer either */
  lastFailureAt: z.optional(z.string()),
  /** what the API answered then (no personal data: a status and the upstream's message) */
  lastError: z.optional(z.string()),
  /** the last time the API answered, confirming a 404 as a deletion */
  lastOkAt: z.optional(z.string()),
});
export type ShopApiCheck = z.infer<typeof shopApiCheckSchema>;

/** Records one check; an older one landing after a newer one changes nothing. */
export async function recordShopApiCheck(result: { ok: true } | { ok: false; error: string }, now = new Date()): Promise<void> {
  const field = result.ok ? 'lastOkAt' : 'lastFailureAt';
  const values: Record<string, unknown> = { ':now': now.toISOString(), ':exp': expiresAt(now) };
  const sets = [`${field} = :now`, 'expiresAt = :exp'];
  if (!result.ok) {
    sets.push('lastError = :error');
    values[':error'] = result.error.slice(0, MAX_ERROR_LENGTH);
  }
  try {
    await documentClient().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: KEY,
        UpdateExpression: `SET ${sets.join(', ')}`,
        ConditionExpression: `attribute_not_exists(${field}) OR ${field} < :now`,
        ExpressionAttributeValues: values,
      }),
    );
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
  }
}

export async function getShopApiCheck(): Promise<ShopApiCheck | undefined> {
  const { Item } = await documentClient().send(new GetCommand({ TableName: tableName(), Key: KEY, ConsistentRead: true }));
  return Item ? shopApiCheckSchema.parse({ lastFailureAt: Item.lastFailureAt, lastError: Item.lastError, lastOkAt: Item.lastOkAt }) : undefined;
}

/** A failure newer than the last success, within `withinMs` of now: orders that got 404 are being held. */
export function shopApiFailing(check: ShopApiCheck | undefined, now: Date, withinMs: number): boolean {
  if (!check?.lastFailureAt) return false;
  if (check.lastOkAt && check.lastOkAt > check.lastFailureAt) return false;
  return now.getTime() - Date.parse(check.lastFailureAt) <= withinMs;
}
