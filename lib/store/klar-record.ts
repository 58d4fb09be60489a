import { GetCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { MAX_ERROR_LENGTH, type Attempt } from '../domain/sync-state.ts';
import { deleteAttention, putAttention } from './attention.ts';
import { putAttempt, withoutPersonalData } from './attempts.ts';
import { documentClient } from './dynamo.ts';
import { identityParts, orderKeys } from './order-record.ts';
import { failedConditions, isConditionFailure, tableName } from './table.ts';

/*
 * The Klar side of the STATE item. Every change is a compare-and-set on `klarVersion`,
 * so a batch that read an older record cannot overwrite what another batch recorded
 * meanwhile: it learns it lost and decides again (lib/sync/klar.ts).
 */

/** Which copy of the order a cost belongs to: newer `updated_at` wins, then later arrival. */
export interface KlarVersionStamp {
  sourceUpdatedAt?: string;
  receivedAt?: string;
}

export type KlarOutcome =
  /** Klar accepted this cost for this copy of the order */
  | { kind: 'uploaded'; transactionCosts: number; currency: string; stamp: KlarVersionStamp }
  /** a newer copy of the order with the cost Klar already holds */
  | { kind: 'touched'; stamp: KlarVersionStamp }
  /** was parked, needs no cost any more (canceled): back to pending, off the list */
  | { kind: 'unparked'; stamp: KlarVersionStamp }
  | { kind: 'needs-attention'; error: string; stamp?: KlarVersionStamp };

export interface KlarSettlement {
  orderId: number;
  orderCode?: string;
  /** the klarVersion this decision was made on */
  expectedVersion: number;
  outcome: KlarOutcome;
  attempt?: Attempt;
  /** the order is parked on the Klar side now (its attention item exists) */
  wasParked: boolean;
  /** `orderbridge forget` ran: write no upstream messages */
  forgotten: boolean;
}

function settleItems(settlement: KlarSettlement, now: Date) {
  const { orderId, orderCode, expectedVersion, outcome, forgotten } = settlement;
  const base = identityParts(orderId, orderCode, now);
  const sets = [...base.sets, 'klarState = :state', 'klarVersion = :next'];
  const removes: string[] = [];
  const values: Record<string, unknown> = { ...base.values, ':expected': expectedVersion, ':next': expectedVersion + 1 };
  const stamp = outcome.stamp;
  if (stamp) {
    for (const [attribute, value] of [
      ['klarSourceUpdatedAt', stamp.sourceUpdatedAt],
      ['klarReceivedAt', stamp.receivedAt],
    ] as const) {
      if (value === undefined) removes.push(attribute);
      else {
        sets.push(`${attribute} = :${attribute}`);
        values[`:${attribute}`] = value;
      }
    }
  }
  let error: string | undefined;
  switch (outcome.kind) {
    case 'uploaded':
      values[':state'] = 'uploaded';
      sets.push('klarCosts = :costs', 'klarCurrency = :currency', 'klarUploadedAt = :now');
      values[':costs'] = outcome.transactionCosts;
      values[':currency'] = outcome.currency;
      removes.push('klarError');
      break;
    case 'touched':
      values[':state'] = 'uploaded';
      break;
    case 'unparked':
      values[':state'] = 'pending';
      removes.push('klarError');
      break;
    case 'needs-attention':
      values[':state'] = 'needs-attention';
      error = forgotten ? undefined : outcome.error.slice(0, MAX_ERROR_LENGTH);
      if (error) {
        sets.push('klarError = :error');
        values[':error'] = error;
      } else removes.push('klarError');
      break;
  }
  // Writing personal data (an upstream message, a request body) only while not forgotten:
  // a forget landing during the upload turns this write into one without texts (settleKlar).
  const personal = !forgotten && (error !== undefined || (settlement.attempt !== undefined && (settlement.attempt.error !== undefined || settlement.attempt.request !== undefined)));
  const version = expectedVersion === 0 ? 'attribute_not_exists(klarVersion) OR klarVersion = :expected' : 'klarVersion = :expected';
  const update = {
    TableName: tableName(),
    Key: orderKeys.state(orderId),
    UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
    ConditionExpression: personal ? `(${version}) AND attribute_not_exists(forgottenAt)` : version,
    ExpressionAttributeValues: values,
  };
  const parked = outcome.kind === 'needs-attention';
  return [
    { Update: update },
    ...(settlement.attempt ? [putAttempt(orderId, forgotten ? withoutPersonalData(settlement.attempt) : settlement.attempt, now)] : []),
    ...(parked
      ? [putAttention({ orderId, orderCode, target: 'klar', error, since: now.toISOString() }, now)]
      : settlement.wasParked
        ? [deleteAttention(orderId, 'klar')]
        : []),
  ];
}

/** DynamoDB's limit of items per TransactWriteItems. */
const MAX_TRANSACTION_ITEMS = 100;

/**
 * Records the Klar side of many orders: each order's state, attempt and attention item go
 * together into transactions of up to 100 items, so a 1000-cost upload is recorded in a
 * few dozen requests. A cancelled transaction (one order changed concurrently) falls back
 * to one transaction per order. Returns the orders that lost their compare-and-set.
 */
export async function settleKlar(settlements: KlarSettlement[], now = new Date()): Promise<{ conflicts: number[] }> {
  const conflicts: number[] = [];
  const perOrder = settlements.map((settlement) => ({ settlement, items: settleItems(settlement, now) }));
  const chunks: (typeof perOrder)[] = [];
  let current: typeof perOrder = [];
  let size = 0;
  for (const entry of perOrder) {
    if (size + entry.items.length > MAX_TRANSACTION_ITEMS) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(entry);
    size += entry.items.length;
  }
  if (current.length) chunks.push(current);

  const one = async ({ settlement, items }: (typeof perOrder)[number]) => {
    try {
      await documentClient().send(new TransactWriteCommand({ TransactItems: items }));
    } catch (error) {
      if (!failedConditions(error)?.includes(0)) throw error;
      // Forgotten during the upload (the version still ours): the same write without texts.
      if (!settlement.forgotten && (await forgottenAtVersion(settlement.orderId, settlement.expectedVersion))) {
        await one({ settlement: { ...settlement, forgotten: true }, items: settleItems({ ...settlement, forgotten: true }, now) });
        return;
      }
      conflicts.push(settlement.orderId);
    }
  };
  for (const chunk of chunks) {
    if (chunk.length === 1) {
      await one(chunk[0]!);
      continue;
    }
    try {
      await documentClient().send(new TransactWriteCommand({ TransactItems: chunk.flatMap((entry) => entry.items) }));
    } catch (error) {
      if (failedConditions(error) === undefined) throw error;
      // Nothing of the chunk was written: settle each order on its own.
      for (let j = 0; j < chunk.length; j += 25) await Promise.all(chunk.slice(j, j + 25).map(one));
    }
  }
  return { conflicts };
}

/** The order was forgotten and its Klar version is still the one a settlement was planned on. */
async function forgottenAtVersion(orderId: number, expectedVersion: number): Promise<boolean> {
  const read = await documentClient().send(new GetCommand({ TableName: tableName(), Key: orderKeys.state(orderId), ConsistentRead: true }));
  const item = read?.Item;
  return item?.forgottenAt !== undefined && (item.klarVersion ?? 0) === expectedVersion;
}

/**
 * After an upload lost a race and could not set things right, Klar may hold an older cost
 * than the record: mark the record pending (so the next event re-uploads the recorded
 * cost) and bump the version (so a batch still in flight cannot record `uploaded`).
 * A parked order is left as it is.
 */
export async function markKlarUnconfirmed(orderId: number): Promise<void> {
  try {
    await documentClient().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: orderKeys.state(orderId),
        UpdateExpression: 'SET klarState = :pending, klarVersion = if_not_exists(klarVersion, :zero) + :one',
        // Only an existing order record (a lost race implies one); a parked order stays as it is.
        ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(klarState) OR attribute_exists(pk) AND klarState <> :parked',
        ExpressionAttributeValues: { ':pending': 'pending', ':parked': 'needs-attention', ':zero': 0, ':one': 1 },
      }),
    );
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
  }
}
