import { PutCommand, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { config } from '../config/index.ts';
import { ConcurrentUpdateError } from '../domain/errors.ts';
import { documentClient } from './dynamo.ts';

/*
 * Single-table design (serverless.yml HistoryTable), one file per entity in this folder:
 *   ORDER#<id> / STATE                    order-record.ts: both sides' recorded state
 *                                         (komfortkasse-lease.ts and klar-record.ts write it)
 *   ORDER#<id> / ATTEMPT#<iso>#<r>        attempts.ts: one upstream call each
 *   ORDER#<id> / ATTENTION#<target>       attention.ts: parked on one side (sparse gsi2)
 *   KLAR#STATE / READING#<iso>            klar-readings.ts: Klar's import state
 *   RECONCILE#RUN / RUN#<iso>             reconcile-runs.ts: one reconciliation run
 *   SHOP#API / CHECK                      shop-api-check.ts: the last check of the shop API after a 404
 *   PROBE#<id> / PROBE                    probes.ts: a check's probe the order worker saw (TTL 1 day)
 * gsi1: CODE#<orderCode> → the order's STATE item (lookups by code)
 * gsi2: NEEDS_ATTENTION → the ATTENTION items
 * Every item carries expiresAt (TTL, HISTORY_RETENTION_DAYS; probes a day).
 */

export type Item = Record<string, unknown>;
export type Key = { pk: string; sk: string };

export function tableName(): string {
  return config().HISTORY_TABLE_NAME;
}

export function expiresAt(now = new Date()): number {
  return Math.floor(now.getTime() / 1000) + config().HISTORY_RETENTION_DAYS * 86_400;
}

export function orderPartition(orderId: number): string {
  return `ORDER#${orderId}`;
}

export function isConditionFailure(error: unknown): boolean {
  return (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}

/** Which items of a cancelled transaction failed their condition (by position). */
export function failedConditions(error: unknown): number[] | undefined {
  if ((error as { name?: string })?.name !== 'TransactionCanceledException') return undefined;
  const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
  return reasons.flatMap((reason, index) => (reason.Code === 'ConditionalCheckFailed' ? [index] : []));
}

/** Every page of a query. */
export async function queryAll(input: QueryCommandInput): Promise<Item[]> {
  const items: Item[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await documentClient().send(new QueryCommand({ ...input, TableName: input.TableName ?? tableName(), ExclusiveStartKey: startKey }));
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

/** Retries what a batch request left unprocessed, with a short backoff, a bounded number of times. */
export async function untilProcessed<T>(first: T[], send: (pending: T[]) => Promise<T[] | undefined>, what: string): Promise<void> {
  let pending: T[] | undefined = first;
  for (let round = 0; pending && pending.length > 0 && round < 8; round++) {
    if (round > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** round));
    pending = await send(pending);
  }
  if (pending?.length) throw new ConcurrentUpdateError(`DynamoDB left ${what} unprocessed after retries`);
}

/*
 * Time series under one partition (Klar readings, reconcile runs): items keyed
 * `<prefix><iso time>`, written once each, read newest first. Two functions, not one
 * object, so a function that only writes does not bundle (and need not be granted) Query.
 */

export async function addToTimeline(partition: string, prefix: string, at: string, item: Item, now = new Date()): Promise<void> {
  await documentClient().send(
    new PutCommand({
      TableName: tableName(),
      Item: { pk: partition, sk: `${prefix}${at}`, ...item, expiresAt: expiresAt(now) },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
}

export async function newestInTimeline(partition: string, prefix: string, limit: number): Promise<Item[]> {
  const result = await documentClient().send(
    new QueryCommand({
      TableName: tableName(),
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': partition, ':prefix': prefix },
      ScanIndexForward: false,
      Limit: limit,
    }),
  );
  return result.Items ?? [];
}
