import { randomUUID } from 'node:crypto';
import { GetCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConcurrentUpdateError } from '../domain/errors.ts';
import { MAX_ERROR_LENGTH, type Attempt, type KomfortkasseState, type OrderRecord } from '../domain/sync-state.ts';
import { deleteAttention, putAttention } from './attention.ts';
import { appendAttempt, putAttempt, withoutPersonalData } from './attempts.ts';
import { documentClient } from './dynamo.ts';
import { fromItem, identityParts, orderKeys } from './order-record.ts';
import { failedConditions, isConditionFailure, tableName } from './table.ts';

/*
 * The Komfortkasse side of an order moves in three DynamoDB requests at most:
 * read (order-record.ts) → claim (a lease, taken with a condition) → settle (outcome,
 * attempt and needs-attention index in one TransactWriteItems, only while holding the
 * lease). A no-op costs the read alone.
 */

export interface KomfortkasseClaim {
  token: string;
  previous: OrderRecord | undefined;
  /** true when no earlier attempt may have created the order upstream */
  firstAttempt: boolean;
  /** the first-attempt mark is on the record (this claim set it, or markKomfortkasseFirstAttempt did) */
  marked: boolean;
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
  const base = identityParts(orderId, orderCode, now);
  const sets = [...base.sets, 'kkLeaseToken = :token', 'kkLeaseUntil = :until'];
  const values: Record<string, unknown> = { ...base.values, ':token': token, ':until': now.getTime() + options.leaseMs, ':nowMs': now.getTime() };
  if (options.markFirstAttempt) sets.push('kkFirstAttemptedAt = if_not_exists(kkFirstAttemptedAt, :now)');
  try {
    const result = await documentClient().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: orderKeys.state(orderId),
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
    return { token, previous, firstAttempt, marked: options.markFirstAttempt };
  } catch (error) {
    if (isConditionFailure(error)) {
      throw new ConcurrentUpdateError(`order ${orderId} is being synced by another worker`, { cause: error });
    }
    throw error;
  }
}

/**
 * Sets the first-attempt mark under the lease, before a call that may create the order
 * upstream, when the claim did not set it (it was taken for another plan, and the plan
 * under the lease turned out to be a submit). One request, only while the lease is ours.
 */
export async function markKomfortkasseFirstAttempt(orderId: number, claim: KomfortkasseClaim, now = new Date()): Promise<void> {
  try {
    await documentClient().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: orderKeys.state(orderId),
        UpdateExpression: 'SET kkFirstAttemptedAt = if_not_exists(kkFirstAttemptedAt, :now)',
        ConditionExpression: 'kkLeaseToken = :token',
        ExpressionAttributeValues: { ':now': now.toISOString(), ':token': claim.token },
      }),
    );
  } catch (error) {
    if (isConditionFailure(error)) throw new ConcurrentUpdateError(`lost the lease on order ${orderId}`, { cause: error });
    throw error;
  }
  claim.marked = true;
}

export interface KomfortkasseOutcome {
  state: KomfortkasseState;
  payloadHash?: string;
  error?: string;
  /** Komfortkasse accepted the order (submit or update) */
  submitted?: boolean;
  sourceUpdatedAt?: string;
  /** what Komfortkasse now knows about reminders; absent = unchanged */
  remindersStopped?: boolean;
  /** the call surely did not create the order (or none was made), so forget the attempt mark */
  clearFirstAttempt?: boolean;
  /** true: the shop answered 404 (mark it deleted); false: the shop just gave the order (clear the mark); absent: unchanged */
  vanished?: boolean;
  /** from Komfortkasse's 200 answer; absent = unchanged */
  referenceNumber?: string;
  paymentStatus?: string;
}

export interface KomfortkasseSettlement {
  orderId: number;
  orderCode?: string;
  claim: KomfortkasseClaim;
  outcome: KomfortkasseOutcome;
  /** the calls made under this lease (or the reason none was) */
  attempts: Attempt[];
  now?: Date;
}

/**
 * Records the outcome, its attempts and the needs-attention index and releases the lease,
 * in one request, only while the lease is still ours. An order that was forgotten
 * (`orderbridge forget`) gets no personal data written back: upstream messages and
 * would-be request bodies are left out.
 */
export async function settleKomfortkasse(settlement: KomfortkasseSettlement): Promise<void> {
  const forgotten = Boolean(settlement.claim.previous?.forgottenAt);
  try {
    await sendWithConflictRetry(() => sendSettle(settleRequest(settlement, forgotten)));
  } catch (error) {
    if (!isConditionFailure(error) && !failedConditions(error)?.includes(0)) throw error;
    // The lease was lost — or the order was forgotten while we called upstream.
    if (!forgotten && (await stillOursButForgotten(settlement))) {
      await sendSettle(settleRequest(settlement, true));
      return;
    }
    throw new ConcurrentUpdateError(`lost the lease on order ${settlement.orderId}`, { cause: error });
  }
}

/**
 * A transaction cancelled without a failed condition met another transaction on one of its
 * items (TransactionConflict): nothing was written and the lease is still ours, so try again.
 */
async function sendWithConflictRetry(send: () => Promise<void>, attempts = 3): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (error) {
      const failed = failedConditions(error);
      if (failed === undefined || failed.length > 0 || attempt >= attempts) throw error;
      await new Promise((r) => setTimeout(r, 20 * attempt));
    }
  }
}

async function stillOursButForgotten({ orderId, claim }: Pick<KomfortkasseSettlement, 'orderId' | 'claim'>): Promise<boolean> {
  const read = await documentClient().send(new GetCommand({ TableName: tableName(), Key: orderKeys.state(orderId), ConsistentRead: true }));
  const item = read?.Item;
  return item?.kkLeaseToken === claim.token && item.forgottenAt !== undefined;
}

function settleRequest({ orderId, orderCode, claim, outcome, attempts, now = new Date() }: KomfortkasseSettlement, forgotten: boolean) {
  const base = identityParts(orderId, orderCode, now);
  const sets = [...base.sets, 'kkState = :state', 'kkLastChangedAt = :now'];
  const removes = ['kkLeaseToken', 'kkLeaseUntil'];
  const values: Record<string, unknown> = { ...base.values, ':state': outcome.state, ':token': claim.token };
  const error = forgotten ? undefined : outcome.error?.slice(0, MAX_ERROR_LENGTH);
  if (outcome.payloadHash) {
    sets.push('kkPayloadHash = :hash');
    values[':hash'] = outcome.payloadHash;
  } else if (outcome.state === 'needs-attention') {
    // Parked without a payload (it could not be built): no content may count as rejected.
    removes.push('kkPayloadHash');
  }
  if (error) {
    sets.push('kkError = :error');
    values[':error'] = error;
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
  if (outcome.remindersStopped !== undefined) {
    sets.push('kkRemindersStopped = :stopped');
    values[':stopped'] = outcome.remindersStopped;
  }
  if (outcome.clearFirstAttempt) removes.push('kkFirstAttemptedAt');
  if (outcome.vanished === true) sets.push('kkVanishedAt = if_not_exists(kkVanishedAt, :now)');
  if (outcome.vanished === false) removes.push('kkVanishedAt');
  if (outcome.referenceNumber !== undefined) {
    sets.push('kkReferenceNumber = :ref');
    values[':ref'] = outcome.referenceNumber;
  }
  if (outcome.paymentStatus !== undefined) {
    sets.push('kkPaymentStatus = :kkPaymentStatus');
    values[':kkPaymentStatus'] = outcome.paymentStatus;
  }
  let condition = 'kkLeaseToken = :token';
  // Writing personal data (an upstream message, a request body) only while not forgotten.
  const personal = Boolean(error) || attempts.some((a) => a.error !== undefined || a.request !== undefined);
  if (personal && !forgotten) condition += ' AND attribute_not_exists(forgottenAt)';
  const update = {
    TableName: tableName(),
    Key: orderKeys.state(orderId),
    UpdateExpression: `SET ${sets.join(', ')} REMOVE ${removes.join(', ')}`,
    ConditionExpression: condition,
    ExpressionAttributeValues: values,
  };

  const wasParked = claim.previous?.komfortkasse.state === 'needs-attention';
  const parked = outcome.state === 'needs-attention';
  const extra = [
    ...attempts.map((attempt) => putAttempt(orderId, forgotten ? withoutPersonalData(attempt) : attempt, now)),
    ...(parked
      ? [putAttention({ orderId, orderCode, target: 'komfortkasse', error, since: now.toISOString() }, now)]
      : wasParked
        ? [deleteAttention(orderId, 'komfortkasse')]
        : []),
  ];
  return { update, extra };
}

/** One item: a plain update. More: one transaction, all or nothing. Either way one request. */
async function sendSettle({ update, extra }: ReturnType<typeof settleRequest>): Promise<void> {
  if (extra.length === 0) await documentClient().send(new UpdateCommand(update));
  else await documentClient().send(new TransactWriteCommand({ TransactItems: [{ Update: update }, ...extra] }));
}

/**
 * Gives the lease back after a transient failure, so the redelivery can claim at once,
 * logging the failed attempt in the same request. A lease that is no longer ours is left
 * alone (its holder settles); the attempt is still logged.
 */
export async function releaseKomfortkasse(
  orderId: number,
  claim: KomfortkasseClaim,
  options: { clearFirstAttempt: boolean; attempt?: Attempt; now?: Date },
): Promise<void> {
  const now = options.now ?? new Date();
  const removes = ['kkLeaseToken', 'kkLeaseUntil'];
  if (options.clearFirstAttempt) removes.push('kkFirstAttemptedAt');
  const send = async (forgotten: boolean) => {
    const attempt = options.attempt && (forgotten ? withoutPersonalData(options.attempt) : options.attempt);
    // An upstream message or request body only while the order is not forgotten, as settle does.
    const personal = attempt !== undefined && (attempt.error !== undefined || attempt.request !== undefined);
    const release = {
      TableName: tableName(),
      Key: orderKeys.state(orderId),
      UpdateExpression: `REMOVE ${removes.join(', ')}`,
      ConditionExpression: personal ? 'kkLeaseToken = :token AND attribute_not_exists(forgottenAt)' : 'kkLeaseToken = :token',
      ExpressionAttributeValues: { ':token': claim.token },
    };
    await sendWithConflictRetry(async () => {
      if (attempt) await documentClient().send(new TransactWriteCommand({ TransactItems: [{ Update: release }, putAttempt(orderId, attempt, now)] }));
      else await documentClient().send(new UpdateCommand(release));
    });
  };
  const forgotten = Boolean(claim.previous?.forgottenAt);
  try {
    await send(forgotten);
  } catch (error) {
    if (!isConditionFailure(error) && !failedConditions(error)?.includes(0)) throw error;
    // Forgotten during the call, the lease still ours: release it, writing no texts.
    if (!forgotten && (await stillOursButForgotten({ orderId, claim }))) {
      await send(true);
      return;
    }
    // The lease is no longer ours (its holder settles): still log the attempt, without its
    // texts, since nothing here can tell whether a forget lands meanwhile.
    if (options.attempt) await appendAttempt(orderId, withoutPersonalData(options.attempt), now);
  }
}

/**
 * Moves the recorded `updated_at` of the order's Komfortkasse side on to a newer copy that
 * needed no call. A compare-and-set on the value read: if anything recorded another copy
 * meanwhile (or the order has no record), that write decides and this one is dropped.
 */
export async function advanceKomfortkasseSource(orderId: number, change: { from: string | undefined; to: string }, now = new Date()): Promise<boolean> {
  const from = change.from === undefined ? 'attribute_not_exists(kkSourceUpdatedAt)' : 'kkSourceUpdatedAt = :from';
  try {
    await documentClient().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: orderKeys.state(orderId),
        UpdateExpression: 'SET kkSourceUpdatedAt = :to, updatedAt = :now',
        ConditionExpression: `attribute_exists(pk) AND ${from}`,
        ExpressionAttributeValues: { ':to': change.to, ':now': now.toISOString(), ...(change.from === undefined ? {} : { ':from': change.from }) },
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}
