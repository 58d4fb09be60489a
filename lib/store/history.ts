import { randomUUID } from 'node:crypto';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import * as z from 'zod';
import { config } from '../config/index.ts';
import { ConcurrentUpdateError } from '../domain/errors.ts';
import { documentClient } from './dynamo.ts';

/*
 * Single-table design (see serverless.yml HistoryTable):
 *   ORDER#<id> / STATE              the recorded upstream state of one order
 *   ORDER#<id> / ATTEMPT#<iso>#<r>  one upstream call (or would-be call in dry-run)
 *   KLAR#STATE / READING#<iso>      one reading of Klar's import state
 * gsi1: CODE#<orderCode> → the order (lookups by code)
 * gsi2: NEEDS_ATTENTION → orders in that state (sparse)
 * Every item carries expiresAt (TTL, HISTORY_RETENTION_DAYS).
 */

export const KOMFORTKASSE_STATES = ['pending', 'submitted', 'removed', 'skipped', 'needs-attention'] as const;
export const KLAR_STATES = ['pending', 'uploaded', 'needs-attention'] as const;
export type KomfortkasseState = (typeof KOMFORTKASSE_STATES)[number];
export type KlarState = (typeof KLAR_STATES)[number];

export const keys = {
  orderState: (orderId: number) => ({ pk: `ORDER#${orderId}`, sk: 'STATE' }),
  attempt: (orderId: number, at: string) => ({ pk: `ORDER#${orderId}`, sk: `ATTEMPT#${at}#${randomUUID().slice(0, 8)}` }),
  codeIndex: (orderCode: string) => `CODE#${orderCode}`,
  needsAttention: 'NEEDS_ATTENTION',
  klarReading: (at: string) => ({ pk: 'KLAR#STATE', sk: `READING#${at}` }),
};

export const orderRecordSchema = z.object({
  orderId: z.number(),
  orderCode: z.string().optional(),
  komfortkasse: z.object({
    state: z.enum(KOMFORTKASSE_STATES),
    payloadHash: z.string().optional(),
    error: z.string().optional(),
    everSubmitted: z.boolean(),
    firstSubmittedAt: z.string().optional(),
    lastChangedAt: z.string().optional(),
    sourceUpdatedAt: z.string().optional(),
    firstAttemptedAt: z.string().optional(),
    leaseToken: z.string().optional(),
    leaseUntil: z.number().optional(),
  }),
  klar: z.object({
    state: z.enum(KLAR_STATES),
    transactionCosts: z.number().optional(),
    currency: z.string().optional(),
    error: z.string().optional(),
    uploadedAt: z.string().optional(),
    /** `updated_at` of the order snapshot behind the recorded cost */
    sourceUpdatedAt: z.string().optional(),
    version: z.number(),
  }),
  updatedAt: z.string().optional(),
  expiresAt: z.number().optional(),
});
export type OrderRecord = z.infer<typeof orderRecordSchema>;

export const attemptSchema = z.object({
  at: z.string(),
  target: z.enum(['komfortkasse', 'klar', 'versacommerce']),
  action: z.string(),
  outcome: z.string(),
  httpStatus: z.number().optional(),
  latencyMs: z.number().optional(),
  error: z.string().optional(),
  correlationId: z.string().optional(),
  /** dry-run: the exact request that would have been sent */
  request: z.object({ method: z.string(), url: z.string(), body: z.unknown().optional() }).optional(),
});
export type Attempt = z.infer<typeof attemptSchema>;

type Item = Record<string, unknown>;

function tableName(): string {
  return config().HISTORY_TABLE_NAME;
}

export function expiresAt(now = new Date()): number {
  return Math.floor(now.getTime() / 1000) + config().HISTORY_RETENTION_DAYS * 86_400;
}

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
      version: item.klarVersion ?? 0,
    },
    updatedAt: item.updatedAt,
    expiresAt: item.expiresAt,
  });
}

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

function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}

export async function getOrderRecord(orderId: number): Promise<OrderRecord | undefined> {
  const result = await documentClient().send(
    new GetCommand({ TableName: tableName(), Key: keys.orderState(orderId), ConsistentRead: true }),
  );
  return result.Item ? fromItem(result.Item) : undefined;
}

export async function findOrderIdByCode(orderCode: string): Promise<number | undefined> {
  const result = await documentClient().send(
    new QueryCommand({
      TableName: tableName(),
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :pk',
      ExpressionAttributeValues: { ':pk': keys.codeIndex(orderCode) },
      Limit: 1,
    }),
  );
  const item = result.Items?.[0];
  return typeof item?.orderId === 'number' ? item.orderId : undefined;
}

/** Sets the identity attributes every update shares (code index, TTL, timestamps). */
function identity(orderId: number, orderCode: string | undefined, now: Date) {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = { ':orderId': orderId, ':now': now.toISOString(), ':exp': expiresAt(now) };
  const sets = ['orderId = :orderId', 'updatedAt = :now', 'expiresAt = :exp'];
  if (orderCode) {
    sets.push('orderCode = :code', 'gsi1pk = :gsi1pk', 'gsi1sk = :gsi1sk');
    values[':code'] = orderCode;
    values[':gsi1pk'] = keys.codeIndex(orderCode);
    values[':gsi1sk'] = `ORDER#${orderId}`;
  }
  return { names, values, sets };
}

export interface KomfortkasseClaim {
  token: string;
  previous: OrderRecord | undefined;
  /** true when no earlier attempt may have created the order upstream */
  firstAttempt: boolean;
}

/**
 * Takes a short lease on the order's Komfortkasse side before calling upstream, so two
 * workers cannot both perform a first submission. `firstAttemptedAt` survives a crash:
 * a redelivery after it knows the order may already exist upstream.
 */
export async function claimKomfortkasse(
  orderId: number,
  orderCode: string | undefined,
  options: { leaseMs: number; markFirstAttempt: boolean; now?: Date },
): Promise<KomfortkasseClaim> {
  const now = options.now ?? new Date();
  const token = randomUUID();
  const base = identity(orderId, orderCode, now);
  const sets = [...base.sets, 'kkLeaseToken = :token', 'kkLeaseUntil = :until'];
  const values: Record<string, unknown> = { ...base.values, ':token': token, ':until': now.getTime() + options.leaseMs, ':nowMs': now.getTime() };
  if (options.markFirstAttempt) sets.push('kkFirstAttemptedAt = if_not_exists(kkFirstAttemptedAt, :now)');
  try {
    const result = await documentClient().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: keys.orderState(orderId),
        UpdateExpression: `SET ${sets.join(', ')}`,
        // `kkLeaseToken = :token`: the SDK may retry this very write after its answer was lost
        // (e.g. DynamoDB restarting); the retry must find our own lease, not another worker's.
        ConditionExpression: 'attribute_not_exists(kkLeaseUntil) OR kkLeaseUntil < :nowMs OR kkLeaseToken = :token',
        ExpressionAttributeValues: values,
        ReturnValues: 'ALL_OLD',
      }),
    );
    const previous = result.Attributes ? fromItem(result.Attributes) : undefined;
    const recorded = previous?.komfortkasse;
    // A first-attempt mark written by that lost first try of this same claim is ours, not a
    // sign that an earlier attempt may have reached Komfortkasse.
    const ownMark = recorded?.leaseToken === token && recorded.firstAttemptedAt === now.toISOString();
    const firstAttempt = !recorded?.everSubmitted && (!recorded?.firstAttemptedAt || ownMark);
    return { token, previous, firstAttempt };
  } catch (error) {
    if (isConditionFailure(error)) {
      throw new ConcurrentUpdateError(`order ${orderId} is being synced by another worker`, { cause: error });
    }
    throw error;
  }
}

export interface KomfortkasseOutcome {
  state: KomfortkasseState;
  payloadHash?: string;
  error?: string;
  submitted?: boolean;
  sourceUpdatedAt?: string;
  /** the call surely did not create the order (an HTTP error answer), so forget the attempt */
  clearFirstAttempt?: boolean;
}

/** Records the outcome and releases the lease — only if we still hold it. */
export async function recordKomfortkasse(
  orderId: number,
  orderCode: string | undefined,
  token: string,
  outcome: KomfortkasseOutcome,
  now = new Date(),
): Promise<void> {
  const base = identity(orderId, orderCode, now);
  const sets = [...base.sets, 'kkState = :state', 'kkLastChangedAt = :now'];
  const removes = ['kkLeaseToken', 'kkLeaseUntil'];
  const values: Record<string, unknown> = { ...base.values, ':state': outcome.state, ':token': token };
  if (outcome.payloadHash) {
    sets.push('kkPayloadHash = :hash');
    values[':hash'] = outcome.payloadHash;
  }
  if (outcome.error) {
    sets.push('kkError = :error');
    values[':error'] = outcome.error.slice(0, 1000);
  } else {
    removes.push('kkError');
  }
  if (outcome.submitted) {
    sets.push('kkEverSubmitted = :true', 'kkFirstSubmittedAt = if_not_exists(kkFirstSubmittedAt, :now)');
    values[':true'] = true;
  }
  if (outcome.sourceUpdatedAt) {
    sets.push('kkSourceUpdatedAt = :src');
    values[':src'] = outcome.sourceUpdatedAt;
  }
  if (outcome.clearFirstAttempt) removes.push('kkFirstAttemptedAt');
  applyAttentionIndex(sets, values, outcome.state === 'needs-attention', orderId, now);
  try {
    await documentClient().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: keys.orderState(orderId),
        UpdateExpression: `SET ${sets.join(', ')} REMOVE ${removes.join(', ')}`,
        ConditionExpression: 'kkLeaseToken = :token',
        ExpressionAttributeValues: values,
      }),
    );
  } catch (error) {
    if (isConditionFailure(error)) {
      throw new ConcurrentUpdateError(`lost the lease on order ${orderId}`, { cause: error });
    }
    throw error;
  }
}

/** Gives the lease back after a transient failure, so the redelivery can claim at once. */
export async function releaseKomfortkasse(orderId: number, token: string, options: { clearFirstAttempt: boolean }): Promise<void> {
  const removes = ['kkLeaseToken', 'kkLeaseUntil'];
  if (options.clearFirstAttempt) removes.push('kkFirstAttemptedAt');
  try {
    await documentClient().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: keys.orderState(orderId),
        UpdateExpression: `REMOVE ${removes.join(', ')}`,
        ConditionExpression: 'kkLeaseToken = :token',
        ExpressionAttributeValues: { ':token': token },
      }),
    );
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
  }
}

/** Needs-attention on either side puts the order into the sparse gsi2. */
function applyAttentionIndex(
  sets: string[],
  values: Record<string, unknown>,
  needsAttention: boolean,
  orderId: number,
  now: Date,
): void {
  if (needsAttention) {
    sets.push('gsi2pk = :attention', 'gsi2sk = :attentionSk');
    values[':attention'] = keys.needsAttention;
    values[':attentionSk'] = `${now.toISOString()}#${orderId}`;
  }
  // Clearing it is done by clearAttentionIfResolved, which sees both sides.
}

/** Drops an order from the needs-attention index once neither side is in that state. */
export async function clearAttentionIfResolved(orderId: number): Promise<void> {
  try {
    await documentClient().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: keys.orderState(orderId),
        UpdateExpression: 'REMOVE gsi2pk, gsi2sk',
        ConditionExpression: 'attribute_exists(gsi2pk) AND kkState <> :na AND (attribute_not_exists(klarState) OR klarState <> :na)',
        ExpressionAttributeValues: { ':na': 'needs-attention' },
      }),
    );
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
  }
}

export async function appendAttempt(orderId: number, attempt: Attempt, now = new Date()): Promise<void> {
  const item = { ...keys.attempt(orderId, attempt.at), ...attemptSchema.parse(attempt), orderId, expiresAt: expiresAt(now) };
  await documentClient().send(
    new PutCommand({ TableName: tableName(), Item: item, ConditionExpression: 'attribute_not_exists(pk)' }),
  );
}

export async function listAttempts(orderId: number): Promise<Attempt[]> {
  const items = await queryAll({
    TableName: tableName(),
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
    ExpressionAttributeValues: { ':pk': keys.orderState(orderId).pk, ':prefix': 'ATTEMPT#' },
  });
  return items.map(attemptFromItem);
}

export async function listNeedsAttention(): Promise<OrderRecord[]> {
  const items = await queryAll({
    TableName: tableName(),
    IndexName: 'gsi2',
    KeyConditionExpression: 'gsi2pk = :pk',
    ExpressionAttributeValues: { ':pk': keys.needsAttention },
  });
  return items.map(fromItem);
}

async function queryAll(input: QueryCommandInput): Promise<Item[]> {
  const items: Item[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await documentClient().send(new QueryCommand({ ...input, ExclusiveStartKey: startKey }));
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

// ---- Klar side ----------------------------------------------------------------------

/** Reads many orders' records at once (100 keys per BatchGetItem, unprocessed keys retried). */
export async function getOrderRecords(orderIds: number[]): Promise<Map<number, OrderRecord>> {
  const found = new Map<number, OrderRecord>();
  const unique = [...new Set(orderIds)];
  for (let i = 0; i < unique.length; i += 100) {
    let pending: Record<string, unknown>[] | undefined = unique.slice(i, i + 100).map((id) => keys.orderState(id));
    for (let round = 0; pending && pending.length > 0 && round < 8; round++) {
      const result = await documentClient().send(
        new BatchGetCommand({ RequestItems: { [tableName()]: { Keys: pending, ConsistentRead: true } } }),
      );
      for (const item of result.Responses?.[tableName()] ?? []) {
        const record = fromItem(item);
        found.set(record.orderId, record);
      }
      pending = result.UnprocessedKeys?.[tableName()]?.Keys as Record<string, unknown>[] | undefined;
      if (pending?.length) await new Promise((r) => setTimeout(r, 50 * 2 ** round));
    }
    if (pending?.length) throw new ConcurrentUpdateError('DynamoDB left keys unprocessed after retries');
  }
  return found;
}

/**
 * Appends many attempts at once (BatchWriteItem, 25 per request, unprocessed items retried):
 * one Klar POST logs an attempt for each of up to 1000 orders. Attempt keys carry a random
 * suffix, so no condition is needed against overwriting.
 */
export async function appendAttempts(entries: { orderId: number; attempt: Attempt }[], now = new Date()): Promise<void> {
  const requests = entries.map(({ orderId, attempt }) => ({
    PutRequest: { Item: { ...keys.attempt(orderId, attempt.at), ...attemptSchema.parse(attempt), orderId, expiresAt: expiresAt(now) } },
  }));
  const chunks: (typeof requests)[] = [];
  for (let i = 0; i < requests.length; i += 25) chunks.push(requests.slice(i, i + 25));
  const writeChunk = async (chunk: typeof requests) => {
    let pending: typeof requests | undefined = chunk;
    for (let round = 0; pending && pending.length > 0 && round < 8; round++) {
      if (round > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** round));
      const result = await documentClient().send(new BatchWriteCommand({ RequestItems: { [tableName()]: pending } }));
      pending = result.UnprocessedItems?.[tableName()] as typeof requests | undefined;
    }
    if (pending?.length) throw new ConcurrentUpdateError('DynamoDB left attempts unprocessed after retries');
  };
  // A few requests in flight: fast, yet gentle on the table's write capacity.
  for (let i = 0; i < chunks.length; i += 4) await Promise.all(chunks.slice(i, i + 4).map(writeChunk));
}

export interface KlarOutcome {
  state: KlarState;
  transactionCosts?: number;
  currency?: string;
  error?: string;
  sourceUpdatedAt?: string;
}

/**
 * Records the Klar side. `expectedVersion` makes it a compare-and-set: an upload that raced
 * with another batch for the same order loses and is retried by SQS.
 */
export async function recordKlar(
  orderId: number,
  orderCode: string | undefined,
  expectedVersion: number,
  outcome: KlarOutcome,
  now = new Date(),
): Promise<void> {
  try {
    await documentClient().send(new UpdateCommand(klarUpdate({ orderId, orderCode, expectedVersion, outcome }, now)));
  } catch (error) {
    if (isConditionFailure(error)) {
      throw new ConcurrentUpdateError(`Klar record of order ${orderId} changed concurrently`, { cause: error });
    }
    throw error;
  }
}

export interface KlarRecordUpdate {
  orderId: number;
  orderCode?: string;
  expectedVersion: number;
  outcome: KlarOutcome;
}

/** The compare-and-set UpdateItem input behind recordKlar. */
function klarUpdate({ orderId, orderCode, expectedVersion, outcome }: KlarRecordUpdate, now: Date) {
  const base = identity(orderId, orderCode, now);
  const sets = [...base.sets, 'klarState = :state', 'klarVersion = :next'];
  const removes: string[] = [];
  const values: Record<string, unknown> = { ...base.values, ':state': outcome.state, ':expected': expectedVersion, ':next': expectedVersion + 1 };
  if (outcome.transactionCosts !== undefined) {
    sets.push('klarCosts = :costs', 'klarUploadedAt = :now');
    values[':costs'] = outcome.transactionCosts;
  }
  if (outcome.currency) {
    sets.push('klarCurrency = :currency');
    values[':currency'] = outcome.currency;
  }
  if (outcome.sourceUpdatedAt) {
    sets.push('klarSourceUpdatedAt = :klarSrc');
    values[':klarSrc'] = outcome.sourceUpdatedAt;
  }
  if (outcome.error) {
    sets.push('klarError = :error');
    values[':error'] = outcome.error.slice(0, 1000);
  } else {
    removes.push('klarError');
  }
  applyAttentionIndex(sets, values, outcome.state === 'needs-attention', orderId, now);
  return {
    TableName: tableName(),
    Key: keys.orderState(orderId),
    UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
    ConditionExpression: expectedVersion === 0 ? 'attribute_not_exists(klarVersion) OR klarVersion = :expected' : 'klarVersion = :expected',
    ExpressionAttributeValues: values,
  };
}

/**
 * recordKlar for many orders (one per order): TransactWriteItems of up to 100 updates, so
 * a 1000-cost upload is recorded in 10 requests. A cancelled transaction (an order changed
 * concurrently, a conflict) falls back to one update per order. Returns the orders that
 * lost a compare-and-set; the caller retries them.
 */
export async function recordKlarMany(updates: KlarRecordUpdate[], now = new Date()): Promise<{ conflicts: number[] }> {
  const conflicts: number[] = [];
  const one = async (update: KlarRecordUpdate) => {
    try {
      await recordKlar(update.orderId, update.orderCode, update.expectedVersion, update.outcome, now);
    } catch (error) {
      if (error instanceof ConcurrentUpdateError) conflicts.push(update.orderId);
      else throw error;
    }
  };
  for (let i = 0; i < updates.length; i += 100) {
    const chunk = updates.slice(i, i + 100);
    try {
      await documentClient().send(new TransactWriteCommand({ TransactItems: chunk.map((update) => ({ Update: klarUpdate(update, now) })) }));
    } catch (error) {
      if ((error as { name?: string })?.name !== 'TransactionCanceledException') throw error;
      // Nothing of the chunk was written: settle each order on its own.
      for (let j = 0; j < chunk.length; j += 25) await Promise.all(chunk.slice(j, j + 25).map(one));
    }
  }
  return { conflicts };
}

export interface KlarReading {
  at: string;
  total?: number;
  lastBatchCount?: number;
  lastSuccess?: string;
  lastFailure?: string;
  failing: boolean;
  endpoint: string;
}

export async function recordKlarReading(reading: KlarReading, now = new Date()): Promise<void> {
  await documentClient().send(
    new PutCommand({
      TableName: tableName(),
      Item: { ...keys.klarReading(reading.at), ...reading, expiresAt: expiresAt(now) },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
}

export async function listKlarReadings(limit = 10): Promise<KlarReading[]> {
  const result = await documentClient().send(
    new QueryCommand({
      TableName: tableName(),
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': 'KLAR#STATE', ':prefix': 'READING#' },
      ScanIndexForward: false,
      Limit: limit,
    }),
  );
  return (result.Items ?? []).map((item) => ({
    at: String(item.at),
    total: item.total as number | undefined,
    lastBatchCount: item.lastBatchCount as number | undefined,
    lastSuccess: item.lastSuccess as string | undefined,
    lastFailure: item.lastFailure as string | undefined,
    failing: Boolean(item.failing),
    endpoint: String(item.endpoint ?? ''),
  }));
}

/** GDPR: drop what may identify a person (would-be request bodies, upstream messages). */
export async function forgetOrderPersonalData(orderId: number): Promise<{ attempts: number }> {
  const items = await queryAll({
    TableName: tableName(),
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': keys.orderState(orderId).pk },
  });
  let attempts = 0;
  for (const item of items) {
    const isState = item.sk === 'STATE';
    await documentClient().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: { pk: item.pk, sk: item.sk },
        // `request` and `error` are DynamoDB reserved words: name them through placeholders.
        UpdateExpression: isState ? 'SET forgottenAt = :now REMOVE kkError, klarError' : 'SET forgottenAt = :now REMOVE #request, #error',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: isState ? undefined : { '#request': 'request', '#error': 'error' },
        ExpressionAttributeValues: { ':now': new Date().toISOString() },
      }),
    );
    if (!isState) attempts++;
  }
  return { attempts };
}

export async function deleteOrderRecord(orderId: number): Promise<void> {
  await documentClient().send(new DeleteCommand({ TableName: tableName(), Key: keys.orderState(orderId) }));
}
