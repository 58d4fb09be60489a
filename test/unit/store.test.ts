import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type TransactWriteCommandInput,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { reloadConfig } from '../../lib/config/index.ts';
import { ConcurrentUpdateError, isPermanent } from '../../lib/domain/errors.ts';
import { MAX_ERROR_LENGTH, type OrderRecord } from '../../lib/domain/sync-state.ts';
import { attentionKeys, listAttention } from '../../lib/store/attention.ts';
import { appendAttempt, appendAttempts, attemptKeys, listAttempts, withoutPersonalData } from '../../lib/store/attempts.ts';
import { resetDocumentClient } from '../../lib/store/dynamo.ts';
import { listKlarReadings, recordKlarReading } from '../../lib/store/klar-readings.ts';
import { markKlarUnconfirmed, settleKlar, type KlarSettlement } from '../../lib/store/klar-record.ts';
import {
  claimKomfortkasse,
  markKomfortkasseFirstAttempt,
  releaseKomfortkasse,
  settleKomfortkasse,
  type KomfortkasseClaim,
  type KomfortkasseSettlement,
} from '../../lib/store/komfortkasse-lease.ts';
import { findOrderIdByCode, fromItem, getOrderRecord, getOrderRecords, orderKeys } from '../../lib/store/order-record.ts';
import { forgetOrderPersonalData } from '../../lib/store/privacy.ts';
import { listReconcileRuns, recordReconcileRun } from '../../lib/store/reconcile-runs.ts';
import { getShopApiCheck, recordShopApiCheck, shopApiFailing } from '../../lib/store/shop-api-check.ts';
import { expiresAt, failedConditions, isConditionFailure } from '../../lib/store/table.ts';
import { buildAttempt, buildRecordedKlar, buildRecordedKomfortkasse, buildStateItem } from '../factories/sync-state.ts';

// The store modules, checked on the requests they send to DynamoDB (the integration suites
// run them against DynamoDB Local): keys, item mapping, condition expressions, and how many
// requests each step costs.
const dynamo = mockClient(DynamoDBDocumentClient);
const NOW = new Date('2024-05-01T10:00:00.000Z');
const TABLE = 'orderbridge-local-history';
const RETENTION_DAYS = 400;

const conditionFailed = () => new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
/** A cancelled transaction; `failed` are the positions whose condition failed. */
const transactionCancelled = (size: number, failed: number[]) =>
  new TransactionCanceledException({
    message: 'Transaction cancelled',
    $metadata: {},
    CancellationReasons: Array.from({ length: size }, (_, i) => (failed.includes(i) ? { Code: 'ConditionalCheckFailed' } : { Code: 'None' })),
  });

beforeAll(() => {
  process.env.AWS_REGION ??= 'eu-central-1';
  reloadConfig();
  resetDocumentClient();
});
afterAll(() => {
  dynamo.restore();
  resetDocumentClient();
});
beforeEach(() => dynamo.reset());

/** An update expression split into its SET and REMOVE clauses. */
function clauses(expression: string | undefined): { sets: string[]; removes: string[] } {
  const clause = (name: string) =>
    new RegExp(`${name} (.*?)(?: (?:SET|REMOVE) |$)`).exec(expression ?? '')?.[1]?.split(/,\s*(?![^(]*\))/) ?? []; // commas outside if_not_exists(…)
  return { sets: clause('SET'), removes: clause('REMOVE') };
}

/** The one UpdateCommand sent, with its clauses. */
function sentUpdate(): UpdateCommandInput & { sets: string[]; removes: string[] } {
  const calls = dynamo.commandCalls(UpdateCommand);
  expect(calls).toHaveLength(1);
  const input = calls[0]!.args[0].input;
  return { ...input, ...clauses(input.UpdateExpression) };
}

/** Every TransactWriteCommand sent. */
function sentTransactions(): NonNullable<TransactWriteCommandInput['TransactItems']>[] {
  return dynamo.commandCalls(TransactWriteCommand).map((call) => call.args[0].input.TransactItems ?? []);
}

/**
 * Evaluates the simple condition expressions the store writes (no parentheses; AND binds
 * tighter than OR) against an item: enough to check what a condition admits.
 */
function conditionHolds(expression: string, values: Record<string, unknown>, item: Record<string, unknown> | undefined): boolean {
  const current = item ?? {};
  const atom = (text: string): boolean => {
    const trimmed = text.trim();
    let match = /^attribute_not_exists\((\w+)\)$/.exec(trimmed);
    if (match) return current[match[1]!] === undefined;
    match = /^attribute_exists\((\w+)\)$/.exec(trimmed);
    if (match) return current[match[1]!] !== undefined;
    match = /^(\w+) (<>|<|=) (:\w+)$/.exec(trimmed);
    if (!match) throw new Error(`cannot evaluate ${trimmed}`);
    const [, name, operator, placeholder] = match;
    const left = current[name!];
    const right = values[placeholder!];
    if (left === undefined) return false; // DynamoDB: a comparison with a missing attribute is false
    if (operator === '=') return left === right;
    if (operator === '<>') return left !== right;
    return (left as number) < (right as number);
  };
  return expression.split(' OR ').some((any) => any.split(' AND ').every(atom));
}

const CLAIM_CONDITION = 'attribute_not_exists(kkLeaseUntil) OR kkLeaseUntil < :nowMs OR kkLeaseToken = :token';

// ---------------------------------------------------------------------------------------

describe('keys', () => {
  it('keeps everything of an order under one partition; attempts sort by time and never collide', () => {
    // act
    const state = orderKeys.state(100);
    const early = attemptKeys.attempt(100, '2024-05-01T10:00:00.000Z');
    const late = attemptKeys.attempt(100, '2024-05-01T10:00:01.000Z');
    const twin = attemptKeys.attempt(100, '2024-05-01T10:00:00.000Z');
    const parkedKomfortkasse = attentionKeys.item(100, 'komfortkasse');
    const parkedKlar = attentionKeys.item(100, 'klar');

    // assess
    expect(state).toEqual({ pk: 'ORDER#100', sk: 'STATE' });
    expect(early.pk).toBe('ORDER#100');
    expect(early.sk).toMatch(/^ATTEMPT#2024-05-01T10:00:00\.000Z#[0-9a-f]{8}$/);
    expect([late.sk, early.sk].sort()).toEqual([early.sk, late.sk]);
    expect(twin.sk).not.toBe(early.sk);
    expect(early.sk.startsWith(attemptKeys.prefix)).toBe(true);
    expect(parkedKomfortkasse).toEqual({ pk: 'ORDER#100', sk: 'ATTENTION#komfortkasse' });
    expect(parkedKlar).toEqual({ pk: 'ORDER#100', sk: 'ATTENTION#klar' });
    expect(attentionKeys.index).toBe('NEEDS_ATTENTION');
    expect(orderKeys.codeIndex('196-083-565')).toBe('CODE#196-083-565');
  });

  it('expires items after the retention period (epoch seconds)', () => {
    // act
    const ttl = expiresAt(NOW);

    // assess
    expect(ttl).toBe(Math.floor(NOW.getTime() / 1000) + RETENTION_DAYS * 86_400);
  });

  it('tells condition failures apart, and which items of a transaction failed', () => {
    // act + assess
    expect(isConditionFailure(conditionFailed())).toBe(true);
    expect(isConditionFailure(new Error('throttled'))).toBe(false);
    expect(failedConditions(transactionCancelled(4, [0, 2]))).toEqual([0, 2]);
    expect(failedConditions(transactionCancelled(2, []))).toEqual([]);
    expect(failedConditions(conditionFailed())).toBeUndefined();
  });
});

describe('order record', () => {
  it('reads a bare item as pending on both sides, Klar version 0', () => {
    // act
    const record = fromItem(buildStateItem(7));

    // assess
    expect(record).toEqual({
      orderId: 7,
      komfortkasse: { state: 'pending', everSubmitted: false },
      klar: { state: 'pending', version: 0 },
    });
  });

  it('reads both sides and the forgotten mark from their attributes', () => {
    // act
    const record = fromItem(
      buildStateItem(7, {
        orderCode: 'A-7',
        kkState: 'needs-attention',
        kkPayloadHash: 'abc',
        kkError: 'Komfortkasse 400: Invalid request',
        kkEverSubmitted: true,
        kkFirstSubmittedAt: '2024-05-01T10:00:00.000Z',
        kkLastChangedAt: '2024-05-01T10:00:02.000Z',
        kkSourceUpdatedAt: '2024-05-01T12:00:00+02:00',
        kkFirstAttemptedAt: '2024-05-01T09:59:59.000Z',
        kkRemindersStopped: true,
        kkVanishedAt: '2024-05-01T11:00:00.000Z',
        kkReferenceNumber: 'K100001',
        kkPaymentStatus: 'UNPAID',
        kkLeaseToken: 't',
        kkLeaseUntil: 1714557600000,
        klarState: 'uploaded',
        klarCosts: 0,
        klarCurrency: 'EUR',
        klarUploadedAt: '2024-05-01T10:00:03.000Z',
        klarSourceUpdatedAt: '2024-05-01T12:00:00+02:00',
        klarReceivedAt: '2024-05-01T10:00:00.500Z',
        klarVersion: 4,
        forgottenAt: '2024-06-01T00:00:00.000Z',
        updatedAt: '2024-05-01T10:00:03.000Z',
        expiresAt: 1749117600,
      }),
    );

    // assess
    expect(record).toEqual({
      orderId: 7,
      orderCode: 'A-7',
      komfortkasse: {
        state: 'needs-attention',
        payloadHash: 'abc',
        error: 'Komfortkasse 400: Invalid request',
        everSubmitted: true,
        firstSubmittedAt: '2024-05-01T10:00:00.000Z',
        lastChangedAt: '2024-05-01T10:00:02.000Z',
        sourceUpdatedAt: '2024-05-01T12:00:00+02:00',
        firstAttemptedAt: '2024-05-01T09:59:59.000Z',
        remindersStopped: true,
        vanishedAt: '2024-05-01T11:00:00.000Z',
        referenceNumber: 'K100001',
        paymentStatus: 'UNPAID',
        leaseToken: 't',
        leaseUntil: 1714557600000,
      },
      klar: {
        state: 'uploaded',
        transactionCosts: 0,
        currency: 'EUR',
        uploadedAt: '2024-05-01T10:00:03.000Z',
        sourceUpdatedAt: '2024-05-01T12:00:00+02:00',
        receivedAt: '2024-05-01T10:00:00.500Z',
        version: 4,
      },
      forgottenAt: '2024-06-01T00:00:00.000Z',
      updatedAt: '2024-05-01T10:00:03.000Z',
      expiresAt: 1749117600,
    });
  });

  it.each([
    ['an unknown Komfortkasse state', { kkState: 'sent' }],
    ['an unknown Klar state', { klarState: 'done' }],
    ['a version that is not a number', { klarVersion: '3' }],
  ])('refuses an item with %s', (_, attributes) => {
    // act + assess
    expect(() => fromItem(buildStateItem(7, attributes))).toThrow();
  });

  it('reads the state consistently, and answers undefined for an unknown order', async () => {
    // prepare
    dynamo.on(GetCommand, { Key: orderKeys.state(7) }).resolves({ Item: buildStateItem(7, { kkState: 'submitted', kkEverSubmitted: true }) });
    dynamo.on(GetCommand, { Key: orderKeys.state(8) }).resolves({});

    // act
    const known = await getOrderRecord(7);
    const unknown = await getOrderRecord(8);

    // assess
    expect(known?.komfortkasse.state).toBe('submitted');
    expect(unknown).toBeUndefined();
    expect(dynamo).toHaveReceivedCommandWith(GetCommand, { TableName: TABLE, Key: { pk: 'ORDER#7', sk: 'STATE' }, ConsistentRead: true });
  });

  it('reads many records 100 keys at a time, each id once, retrying unprocessed keys', async () => {
    // prepare: the first request leaves order 5 unprocessed once
    const ids = [...Array.from({ length: 150 }, (_, i) => i + 1), 1, 2];
    let leftOver = true;
    dynamo.on(BatchGetCommand).callsFake((input: { RequestItems: Record<string, { Keys: { pk: string }[] }> }) => {
      const keys = input.RequestItems[TABLE]!.Keys;
      const unprocessed = leftOver ? keys.filter((key) => key.pk === 'ORDER#5') : [];
      leftOver = false;
      const served = keys.filter((key) => !unprocessed.includes(key)).map((key) => buildStateItem(Number(key.pk.slice(6))));
      return { Responses: { [TABLE]: served }, UnprocessedKeys: unprocessed.length ? { [TABLE]: { Keys: unprocessed } } : {} };
    });

    // act
    const records = await getOrderRecords(ids);

    // assess
    expect(records.size).toBe(150);
    expect(records.get(5)?.orderId).toBe(5);
    const sizes = dynamo.commandCalls(BatchGetCommand).map((call) => call.args[0].input.RequestItems![TABLE]!.Keys!.length);
    expect(sizes).toEqual([100, 1, 50]);
    expect(dynamo.commandCalls(BatchGetCommand)[0]!.args[0].input.RequestItems![TABLE]!.ConsistentRead).toBe(true);
  });

  it('finds an order id by its code through gsi1', async () => {
    // prepare
    dynamo.on(QueryCommand).resolves({ Items: [buildStateItem(7, { orderCode: 'A-7' })] });

    // act
    const id = await findOrderIdByCode('A-7');

    // assess
    expect(id).toBe(7);
    expect(dynamo).toHaveReceivedCommandWith(QueryCommand, { IndexName: 'gsi1', ExpressionAttributeValues: { ':pk': 'CODE#A-7' } });
  });
});

// ---------------------------------------------------------------------------------------

describe('claimKomfortkasse', () => {
  it('sets the lease, the identity and (once) the first-attempt mark, returning the old item', async () => {
    // prepare
    dynamo.on(UpdateCommand).resolves({});

    // act
    const claim = await claimKomfortkasse(7, 'A-7', { leaseMs: 60_000, markFirstAttempt: true, now: NOW });

    // assess
    const update = sentUpdate();
    expect(update.Key).toEqual({ pk: 'ORDER#7', sk: 'STATE' });
    expect(update.ConditionExpression).toBe(CLAIM_CONDITION);
    expect(update.ExpressionAttributeValues).toMatchObject({
      ':nowMs': NOW.getTime(),
      ':until': NOW.getTime() + 60_000,
      ':token': claim.token,
      ':now': NOW.toISOString(),
      ':exp': expiresAt(NOW),
      ':code': 'A-7',
      ':gsi1pk': 'CODE#A-7',
      ':gsi1sk': 'ORDER#7',
    });
    expect(update.sets).toEqual(
      expect.arrayContaining(['kkLeaseToken = :token', 'kkLeaseUntil = :until', 'kkFirstAttemptedAt = if_not_exists(kkFirstAttemptedAt, :now)', 'expiresAt = :exp', 'gsi1pk = :gsi1pk']),
    );
    expect(update.ReturnValues).toBe('ALL_OLD');
    expect(claim).toMatchObject({ previous: undefined, firstAttempt: true, marked: true });
  });

  it('leaves out the first-attempt mark and the code when there is none', async () => {
    // prepare
    dynamo.on(UpdateCommand).resolves({});

    // act
    await claimKomfortkasse(7, undefined, { leaseMs: 1000, markFirstAttempt: false, now: NOW });

    // assess
    const update = sentUpdate();
    expect(update.sets.some((set) => set.startsWith('kkFirstAttemptedAt'))).toBe(false);
    expect(update.sets.some((set) => set.startsWith('orderCode') || set.startsWith('gsi1'))).toBe(false);
  });

  describe('what the lease condition admits', () => {
    const other = { kkLeaseToken: 'someone-else', kkEverSubmitted: true, kkState: 'submitted' };
    it.each<[string, Record<string, unknown> | undefined, 'claimed' | 'refused', boolean?]>([
      ['no item yet (free)', undefined, 'claimed', true],
      ['an item without a lease (free)', buildStateItem(7, { kkState: 'submitted', kkEverSubmitted: true }), 'claimed', false],
      ['an expired lease', buildStateItem(7, { ...other, kkLeaseUntil: NOW.getTime() - 1 }), 'claimed', false],
      ['a lease running out this very millisecond', buildStateItem(7, { ...other, kkLeaseUntil: NOW.getTime() }), 'refused'],
      ['a lease held by another worker', buildStateItem(7, { ...other, kkLeaseUntil: NOW.getTime() + 30_000 }), 'refused'],
      ['its own lease (an SDK retry after the answer was lost)', 'own' as never, 'claimed', true],
    ])('%s → %s', async (_, stored, expected, firstAttempt) => {
      // prepare: DynamoDB evaluates the condition on the stored item
      dynamo.on(UpdateCommand).callsFake((input: UpdateCommandInput) => {
        const values = input.ExpressionAttributeValues ?? {};
        // 'own': the lost first try of this very request already wrote the lease and the mark
        const item = (stored as unknown) === 'own' ? buildStateItem(7, { kkLeaseToken: values[':token'], kkLeaseUntil: values[':until'], kkFirstAttemptedAt: values[':now'] }) : stored;
        if (!conditionHolds(input.ConditionExpression!, values, item)) throw conditionFailed();
        return { Attributes: item };
      });

      // act
      const result = await claimKomfortkasse(7, 'A-7', { leaseMs: 60_000, markFirstAttempt: true, now: NOW }).catch((error: unknown) => error);

      // assess
      if (expected === 'refused') {
        expect(result).toBeInstanceOf(ConcurrentUpdateError);
        expect(isPermanent(result)).toBe(false);
      } else {
        expect(result).toMatchObject({ token: expect.any(String), firstAttempt });
      }
    });
  });

  it.each([
    ['an earlier attempt whose fate is unknown', { kkFirstAttemptedAt: '2024-05-01T09:00:00.000Z' }],
    ['an order Komfortkasse already accepted', { kkEverSubmitted: true, kkState: 'submitted' }],
  ])('is not a first attempt after %s', async (_, attributes) => {
    // prepare
    dynamo.on(UpdateCommand).resolves({ Attributes: buildStateItem(7, attributes) });

    // act
    const claim = await claimKomfortkasse(7, 'A-7', { leaseMs: 1000, markFirstAttempt: true, now: NOW });

    // assess
    expect(claim.firstAttempt).toBe(false);
    expect(claim.previous?.orderId).toBe(7);
  });

  it('passes other DynamoDB errors through', async () => {
    // prepare
    dynamo.on(UpdateCommand).rejects(new Error('throttled'));

    // act + assess
    await expect(claimKomfortkasse(7, 'A-7', { leaseMs: 1000, markFirstAttempt: true })).rejects.toThrow('throttled');
  });
});

// ---------------------------------------------------------------------------------------

describe('markKomfortkasseFirstAttempt', () => {
  const unmarked = (): KomfortkasseClaim => ({ token: 'token-1', firstAttempt: true, marked: false, previous: undefined });

  it('sets the first-attempt mark (never moving an older one), only while the lease is ours', async () => {
    // prepare
    dynamo.on(UpdateCommand).resolves({});
    const claim = unmarked();

    // act
    await markKomfortkasseFirstAttempt(7, claim, NOW);

    // assess
    const update = sentUpdate();
    expect(update.Key).toEqual({ pk: 'ORDER#7', sk: 'STATE' });
    expect(update.sets).toEqual(['kkFirstAttemptedAt = if_not_exists(kkFirstAttemptedAt, :now)']);
    expect(update.ConditionExpression).toBe('kkLeaseToken = :token');
    expect(update.ExpressionAttributeValues).toEqual({ ':now': NOW.toISOString(), ':token': 'token-1' });
    expect(claim.marked).toBe(true);
  });

  it('reports a lost lease as a concurrent update and leaves the claim unmarked', async () => {
    // prepare
    dynamo.on(UpdateCommand).rejects(conditionFailed());
    const claim = unmarked();

    // act
    const error = await markKomfortkasseFirstAttempt(7, claim, NOW).catch((e: unknown) => e);

    // assess
    expect(error).toBeInstanceOf(ConcurrentUpdateError);
    expect(claim.marked).toBe(false);
  });
});

describe('settleKomfortkasse', () => {
  const claimOf = (previous: Partial<OrderRecord> | undefined = undefined): KomfortkasseClaim => ({
    token: 'token-1',
    firstAttempt: false,
    marked: true,
    previous: previous && { orderId: 7, komfortkasse: buildRecordedKomfortkasse(), klar: buildRecordedKlar(), ...previous },
  });
  const parkedBefore = () => claimOf({ komfortkasse: buildRecordedKomfortkasse({ state: 'needs-attention', error: 'old' }) });
  const settle = (overrides: Partial<KomfortkasseSettlement>) =>
    settleKomfortkasse({ orderId: 7, orderCode: 'A-7', claim: claimOf(), outcome: { state: 'submitted' }, attempts: [], now: NOW, ...overrides });

  it('is one UpdateCommand when only the state changes (no attempt, no needs-attention change)', async () => {
    // prepare
    dynamo.on(UpdateCommand).resolves({});

    // act
    await settle({ outcome: { state: 'removed', sourceUpdatedAt: '2024-05-01T12:00:00+02:00', clearFirstAttempt: true } });

    // assess
    expect(dynamo.calls()).toHaveLength(1);
    const update = sentUpdate();
    expect(update.ConditionExpression).toBe('kkLeaseToken = :token');
    expect(update.ExpressionAttributeValues).toMatchObject({ ':token': 'token-1', ':state': 'removed', ':src': '2024-05-01T12:00:00+02:00', ':exp': expiresAt(NOW) });
    expect(update.sets).toEqual(expect.arrayContaining(['kkState = :state', 'kkLastChangedAt = :now', 'kkSourceUpdatedAt = :src', 'orderCode = :code']));
    expect(update.removes).toEqual(expect.arrayContaining(['kkLeaseToken', 'kkLeaseUntil', 'kkError', 'kkFirstAttemptedAt']));
  });

  it('marks the order deleted once (the first 404 stays the time), clears the mark on a fetched order, and leaves it alone otherwise', async () => {
    // prepare
    dynamo.on(UpdateCommand).resolves({});

    // act
    await settle({ outcome: { state: 'removed', vanished: true } });
    await settle({ outcome: { state: 'submitted', vanished: false } });
    await settle({ outcome: { state: 'submitted' } });

    // assess
    const [deleted, fetched, neither] = dynamo.commandCalls(UpdateCommand).map((call) => clauses(call.args[0].input.UpdateExpression));
    expect(deleted!.sets).toContain('kkVanishedAt = if_not_exists(kkVanishedAt, :now)');
    expect(fetched!.removes).toContain('kkVanishedAt');
    expect(fetched!.sets.join()).not.toContain('kkVanishedAt');
    expect([...neither!.sets, ...neither!.removes].join()).not.toContain('kkVanishedAt');
  });

  it("keeps Komfortkasse's reference number and payment status from its answer; leaves them when there is none", async () => {
    // prepare
    dynamo.on(UpdateCommand).resolves({});

    // act
    await settle({ outcome: { state: 'submitted', referenceNumber: 'K100001', paymentStatus: 'UNPAID' } });
    await settle({ outcome: { state: 'removed' } });

    // assess
    const [answered, silent] = dynamo.commandCalls(UpdateCommand).map((call) => call.args[0].input);
    expect(clauses(answered!.UpdateExpression).sets).toEqual(expect.arrayContaining(['kkReferenceNumber = :ref', 'kkPaymentStatus = :kkPaymentStatus']));
    expect(answered!.ExpressionAttributeValues).toMatchObject({ ':ref': 'K100001', ':kkPaymentStatus': 'UNPAID' });
    expect(silent!.UpdateExpression).not.toMatch(/kkReferenceNumber|kkPaymentStatus/);
  });

  it('is one TransactWriteCommand: the state under the lease, then the attempt (never overwriting one)', async () => {
    // prepare
    dynamo.on(TransactWriteCommand).resolves({});
    const attempt = buildAttempt();

    // act
    await settle({ outcome: { state: 'submitted', payloadHash: 'h1', submitted: true, remindersStopped: true, sourceUpdatedAt: '2024-05-01T12:00:00+02:00' }, attempts: [attempt] });

    // assess
    expect(dynamo.calls()).toHaveLength(1);
    const [items] = sentTransactions();
    expect(items).toHaveLength(2);
    const update = items![0]!.Update!;
    expect(update).toMatchObject({ TableName: TABLE, Key: { pk: 'ORDER#7', sk: 'STATE' }, ConditionExpression: 'kkLeaseToken = :token' });
    const { sets, removes } = clauses(update.UpdateExpression);
    expect(sets).toEqual(
      expect.arrayContaining(['kkState = :state', 'kkPayloadHash = :hash', 'kkEverSubmitted = :true', 'kkFirstSubmittedAt = if_not_exists(kkFirstSubmittedAt, :now)', 'kkRemindersStopped = :stopped']),
    );
    expect(removes).toEqual(expect.arrayContaining(['kkLeaseToken', 'kkLeaseUntil', 'kkError']));
    expect(removes).not.toContain('kkFirstAttemptedAt');
    expect(update.ExpressionAttributeValues).toMatchObject({ ':hash': 'h1', ':stopped': true, ':true': true });
    expect(items![1]!.Put).toMatchObject({
      TableName: TABLE,
      ConditionExpression: 'attribute_not_exists(pk)',
      Item: { pk: 'ORDER#7', sk: expect.stringMatching(/^ATTEMPT#2024-05-01T10:00:00\.000Z#/), orderId: 7, action: 'submit', outcome: 'success', httpStatus: 200, expiresAt: expiresAt(NOW) },
    });
  });

  it.each<[string, KomfortkasseClaim, KomfortkasseSettlement['outcome'], number, string[]]>([
    ['parked now, with an attempt → Put ATTENTION#komfortkasse', claimOf(), { state: 'needs-attention', error: 'Komfortkasse 400: Invalid request' }, 1, ['Update', 'Put', 'Put']],
    ['parked again → the attention item is written again', parkedBefore(), { state: 'needs-attention', error: 'Komfortkasse 400: other' }, 1, ['Update', 'Put', 'Put']],
    ['leaving needs-attention → Delete ATTENTION#komfortkasse', parkedBefore(), { state: 'submitted', payloadHash: 'h2', submitted: true }, 1, ['Update', 'Put', 'Delete']],
    ['parked now, no attempt → still one transaction', claimOf(), { state: 'needs-attention', error: 'mapping problem' }, 0, ['Update', 'Put']],
    ['leaving needs-attention, no attempt', parkedBefore(), { state: 'removed' }, 0, ['Update', 'Delete']],
  ])('%s', async (_, claim, outcome, attemptCount, kinds) => {
    // prepare
    dynamo.on(TransactWriteCommand).resolves({});

    // act
    await settle({ claim, outcome, attempts: Array.from({ length: attemptCount }, () => buildAttempt({ outcome: 'failed-permanent', error: 'x' })) });

    // assess
    expect(dynamo.calls()).toHaveLength(1);
    const [items] = sentTransactions();
    expect(items!.map((item) => Object.keys(item)[0])).toEqual(kinds);
    const last = items!.at(-1)!;
    if (kinds.at(-1) === 'Delete') {
      expect(last.Delete).toEqual({ TableName: TABLE, Key: { pk: 'ORDER#7', sk: 'ATTENTION#komfortkasse' } });
    } else {
      expect(last.Put!.Item).toEqual({
        pk: 'ORDER#7',
        sk: 'ATTENTION#komfortkasse',
        gsi2pk: 'NEEDS_ATTENTION',
        gsi2sk: `${NOW.toISOString()}#7#komfortkasse`,
        orderId: 7,
        orderCode: 'A-7',
        target: 'komfortkasse',
        error: outcome.error,
        since: NOW.toISOString(),
        expiresAt: expiresAt(NOW),
      });
    }
  });

  it('writes personal data (an upstream message) only while the order is not forgotten', async () => {
    // prepare
    dynamo.on(TransactWriteCommand).resolves({});

    // act
    await settle({ outcome: { state: 'needs-attention', error: 'Komfortkasse 400: customerEmail max@example.org invalid' }, attempts: [buildAttempt({ error: 'max@example.org' })] });

    // assess
    const [items] = sentTransactions();
    expect(items![0]!.Update!.ConditionExpression).toBe('kkLeaseToken = :token AND attribute_not_exists(forgottenAt)');
  });

  it('truncates a long upstream message to MAX_ERROR_LENGTH', async () => {
    // prepare
    dynamo.on(TransactWriteCommand).resolves({});

    // act
    await settle({ outcome: { state: 'needs-attention', error: 'e'.repeat(MAX_ERROR_LENGTH + 500) } });

    // assess
    const [items] = sentTransactions();
    expect(String(items![0]!.Update!.ExpressionAttributeValues![':error'])).toHaveLength(MAX_ERROR_LENGTH);
    expect(String(items![1]!.Put!.Item!.error)).toHaveLength(MAX_ERROR_LENGTH);
  });

  it('writes no error text, attempt error or request body for a forgotten order', async () => {
    // prepare
    dynamo.on(TransactWriteCommand).resolves({});
    const forgotten = claimOf({ forgottenAt: '2024-04-30T00:00:00.000Z' });
    const dryRun = buildAttempt({ outcome: 'failed-permanent', error: 'Invalid email max@example.org', request: { method: 'POST', url: 'https://kk.example/api/v2/order/A-7', body: { customerEmail: 'max@example.org' } } });

    // act
    await settle({ claim: forgotten, outcome: { state: 'needs-attention', error: 'Komfortkasse 400: Invalid email max@example.org' }, attempts: [dryRun] });

    // assess
    expect(dynamo.calls()).toHaveLength(1);
    const [items] = sentTransactions();
    const update = items![0]!.Update!;
    expect(update.ConditionExpression).toBe('kkLeaseToken = :token');
    expect(update.ExpressionAttributeValues).not.toHaveProperty(':error');
    expect(clauses(update.UpdateExpression).removes).toContain('kkError');
    const attempt = items![1]!.Put!.Item!;
    expect(attempt).not.toHaveProperty('error');
    expect(attempt).not.toHaveProperty('request');
    expect(items![2]!.Put!.Item).not.toHaveProperty('error');
    expect(JSON.stringify(items)).not.toContain('max@example.org');
  });

  it.each([
    ['a plain update', 'update'],
    ['a transaction', 'transaction'],
  ])('turns a lost lease into a transient ConcurrentUpdateError (%s)', async (_, kind) => {
    // prepare: another worker holds the lease now
    dynamo.on(UpdateCommand).rejects(conditionFailed());
    dynamo.on(TransactWriteCommand).rejects(transactionCancelled(2, [0]));
    dynamo.on(GetCommand).resolves({ Item: buildStateItem(7, { kkLeaseToken: 'token-2' }) });

    // act
    const error = await settle({ attempts: kind === 'update' ? [] : [buildAttempt()] }).catch((thrown: unknown) => thrown);

    // assess
    expect(error).toBeInstanceOf(ConcurrentUpdateError);
    expect(isPermanent(error)).toBe(false);
    expect(kind === 'update' ? dynamo.commandCalls(UpdateCommand) : dynamo.commandCalls(TransactWriteCommand)).toHaveLength(1);
  });

  it('settles without personal data when the order was forgotten during the call (our lease, forgottenAt set)', async () => {
    // prepare
    dynamo.on(TransactWriteCommand).rejectsOnce(transactionCancelled(3, [0])).resolves({});
    dynamo.on(GetCommand).resolves({ Item: buildStateItem(7, { kkLeaseToken: 'token-1', forgottenAt: '2024-05-01T10:00:00.500Z' }) });

    // act
    await settle({ outcome: { state: 'needs-attention', error: 'Komfortkasse 400: max@example.org' }, attempts: [buildAttempt({ error: 'max@example.org' })] });

    // assess
    const [first, second] = sentTransactions();
    expect(JSON.stringify(first)).toContain('max@example.org');
    expect(JSON.stringify(second)).not.toContain('max@example.org');
    expect(second![0]!.Update!.ConditionExpression).toBe('kkLeaseToken = :token');
  });

  it('parks an order without a payload (it could not be mapped) with no payload hash, so a fixed order is sent again', async () => {
    // prepare
    dynamo.on(TransactWriteCommand).resolves({});

    // act
    await settle({ outcome: { state: 'needs-attention', error: 'order 7: billing address has no country' }, attempts: [buildAttempt({ outcome: 'failed-permanent', error: 'x' })] });

    // assess
    const [items] = sentTransactions();
    expect(clauses(items![0]!.Update!.UpdateExpression).removes).toContain('kkPayloadHash');
  });

  it('tries again when the transaction met another one (TransactionConflict), keeping the lease', async () => {
    // prepare: cancelled without any failed condition, then through
    dynamo.on(TransactWriteCommand).rejectsOnce(transactionCancelled(2, [])).resolves({});

    // act
    await settle({ attempts: [buildAttempt()] });

    // assess
    expect(dynamo.commandCalls(TransactWriteCommand)).toHaveLength(2);
    expect(dynamo.commandCalls(GetCommand)).toHaveLength(0);
  });

  it('passes other DynamoDB errors through', async () => {
    // prepare
    dynamo.on(UpdateCommand).rejects(new Error('ProvisionedThroughputExceeded'));

    // act + assess
    await expect(settle({})).rejects.toThrow('ProvisionedThroughputExceeded');
    expect(dynamo.commandCalls(GetCommand)).toHaveLength(0);
  });
});

describe('releaseKomfortkasse', () => {
  const claim: KomfortkasseClaim = { token: 'token-1', firstAttempt: true, marked: true, previous: undefined };

  it('drops the lease (and on request the first-attempt mark) only for its holder', async () => {
    // prepare
    dynamo.on(UpdateCommand).resolves({});

    // act
    await releaseKomfortkasse(7, claim, { clearFirstAttempt: true });

    // assess
    const update = sentUpdate();
    expect(update.UpdateExpression).toBe('REMOVE kkLeaseToken, kkLeaseUntil, kkFirstAttemptedAt');
    expect(update.ConditionExpression).toBe('kkLeaseToken = :token');
    expect(update.ExpressionAttributeValues).toEqual({ ':token': 'token-1' });
  });

  it('logs the failed attempt in the same request', async () => {
    // prepare
    dynamo.on(TransactWriteCommand).resolves({});

    // act
    await releaseKomfortkasse(7, claim, { clearFirstAttempt: false, attempt: buildAttempt({ outcome: 'failed-transient', httpStatus: 503 }), now: NOW });

    // assess
    expect(dynamo.calls()).toHaveLength(1);
    const [items] = sentTransactions();
    expect(items![0]!.Update).toMatchObject({ UpdateExpression: 'REMOVE kkLeaseToken, kkLeaseUntil', ConditionExpression: 'kkLeaseToken = :token' });
    expect(items![1]!.Put).toMatchObject({ ConditionExpression: 'attribute_not_exists(pk)', Item: { outcome: 'failed-transient', httpStatus: 503 } });
  });

  it('leaves a lease that is no longer ours alone but still logs the attempt; other errors pass', async () => {
    // prepare
    dynamo.on(TransactWriteCommand).rejectsOnce(transactionCancelled(2, [0])).rejects(new Error('throttled'));
    dynamo.on(UpdateCommand).rejects(conditionFailed());
    dynamo.on(PutCommand).resolves({});

    // act
    const lost = releaseKomfortkasse(7, claim, { clearFirstAttempt: false, attempt: buildAttempt({ outcome: 'failed-transient' }) });
    const plain = releaseKomfortkasse(7, claim, { clearFirstAttempt: false });
    const failing = releaseKomfortkasse(7, claim, { clearFirstAttempt: false, attempt: buildAttempt() });

    // assess
    await expect(lost).resolves.toBeUndefined();
    await expect(plain).resolves.toBeUndefined();
    await expect(failing).rejects.toThrow('throttled');
    expect(dynamo).toHaveReceivedCommandTimes(PutCommand, 1);
  });

  it('writes an attempt\'s texts only while the order is not forgotten; forgotten during the call, it releases without them', async () => {
    // prepare: a forget lands while the call runs: the guarded release fails, the lease is still ours
    dynamo.on(TransactWriteCommand).rejectsOnce(transactionCancelled(2, [0])).resolves({});
    dynamo.on(GetCommand).resolves({ Item: buildStateItem(7, { kkLeaseToken: 'token-1', forgottenAt: '2024-05-01T09:59:59.000Z' }) });

    // act
    await releaseKomfortkasse(7, claim, { clearFirstAttempt: false, attempt: buildAttempt({ outcome: 'failed-transient', error: 'Komfortkasse 503: max@example.org' }), now: NOW });

    // assess
    const [guarded, plain] = sentTransactions();
    expect(guarded![0]!.Update!.ConditionExpression).toBe('kkLeaseToken = :token AND attribute_not_exists(forgottenAt)');
    expect(guarded![1]!.Put!.Item).toMatchObject({ error: 'Komfortkasse 503: max@example.org' });
    expect(plain![0]!.Update!.ConditionExpression).toBe('kkLeaseToken = :token');
    expect(plain![1]!.Put!.Item).not.toHaveProperty('error');
  });

  it('logs the attempt of a lease lost meanwhile without its texts', async () => {
    // prepare: another worker holds the lease now
    dynamo.on(TransactWriteCommand).rejects(transactionCancelled(2, [0]));
    dynamo.on(GetCommand).resolves({ Item: buildStateItem(7, { kkLeaseToken: 'token-2' }) });
    dynamo.on(PutCommand).resolves({});

    // act
    await releaseKomfortkasse(7, claim, { clearFirstAttempt: false, attempt: buildAttempt({ outcome: 'failed-transient', error: 'Komfortkasse 503: max@example.org' }) });

    // assess
    const [put] = dynamo.commandCalls(PutCommand);
    expect(put!.args[0].input.Item).toMatchObject({ outcome: 'failed-transient' });
    expect(put!.args[0].input.Item).not.toHaveProperty('error');
  });

  it('logs a forgotten order\'s attempt without its texts', async () => {
    // prepare
    dynamo.on(TransactWriteCommand).resolves({});
    const forgotten: KomfortkasseClaim = { ...claim, previous: { orderId: 7, forgottenAt: '2024-04-30T00:00:00.000Z', komfortkasse: buildRecordedKomfortkasse(), klar: buildRecordedKlar() } };

    // act
    await releaseKomfortkasse(7, forgotten, { clearFirstAttempt: false, attempt: buildAttempt({ error: 'Komfortkasse 500: max@example.org' }) });

    // assess
    expect(sentTransactions()[0]![1]!.Put!.Item).not.toHaveProperty('error');
  });
});

// ---------------------------------------------------------------------------------------

describe('attempts', () => {
  it('appends one attempt, never overwriting one, with a TTL', async () => {
    // prepare
    dynamo.on(PutCommand).resolves({});

    // act
    await appendAttempt(7, buildAttempt({ at: NOW.toISOString(), latencyMs: 12 }), NOW);

    // assess
    expect(dynamo).toHaveReceivedCommandWith(PutCommand, {
      TableName: TABLE,
      ConditionExpression: 'attribute_not_exists(pk)',
      Item: expect.objectContaining({ pk: 'ORDER#7', orderId: 7, action: 'submit', outcome: 'success', httpStatus: 200, latencyMs: 12, expiresAt: expiresAt(NOW) }),
    });
  });

  it('appends many in BatchWriteItem requests of 25, retrying unprocessed items', async () => {
    // prepare: the first request leaves one item unprocessed
    let first = true;
    dynamo.on(BatchWriteCommand).callsFake((input: { RequestItems: Record<string, unknown[]> }) => {
      const requests = input.RequestItems[TABLE]!;
      const unprocessed = first ? requests.slice(0, 1) : [];
      first = false;
      return { UnprocessedItems: unprocessed.length ? { [TABLE]: unprocessed } : {} };
    });

    // act
    await appendAttempts(Array.from({ length: 60 }, (_, i) => ({ orderId: i, attempt: buildAttempt({ target: 'klar', action: 'upload' }) })), NOW);

    // assess
    const sizes = dynamo.commandCalls(BatchWriteCommand).map((call) => call.args[0].input.RequestItems![TABLE]!.length);
    expect([...sizes].sort((a, b) => b - a)).toEqual([25, 25, 10, 1]);
  });

  it('lists an order\'s attempts across pages', async () => {
    // prepare
    dynamo.on(QueryCommand)
      .resolvesOnce({ Items: [{ ...attemptKeys.attempt(7, 'a'), ...buildAttempt({ at: 'a' }) }], LastEvaluatedKey: { pk: 'ORDER#7', sk: 'x' } })
      .resolvesOnce({ Items: [{ ...attemptKeys.attempt(7, 'b'), ...buildAttempt({ at: 'b', outcome: 'failed-transient' }) }] });

    // act
    const attempts = await listAttempts(7);

    // assess
    expect(attempts.map((a) => [a.at, a.outcome])).toEqual([['a', 'success'], ['b', 'failed-transient']]);
    expect(dynamo).toHaveReceivedCommandWith(QueryCommand, { ExpressionAttributeValues: { ':pk': 'ORDER#7', ':prefix': 'ATTEMPT#' } });
  });

  it('keeps no texts and no request of a forgotten order\'s attempt (as forget leaves them)', () => {
    // act
    const stripped = withoutPersonalData(buildAttempt({ error: 'x', request: { method: 'POST', url: 'u', body: { a: 1 } } }));

    // assess
    expect(stripped).not.toHaveProperty('error');
    expect(stripped).not.toHaveProperty('request');
    expect(stripped).toMatchObject({ outcome: expect.any(String), target: expect.any(String) });
  });
});

describe('listAttention', () => {
  it('reads every parked side from the sparse gsi2, across pages', async () => {
    // prepare
    const item = (orderId: number, target: string, since: string, error?: string) => ({
      pk: `ORDER#${orderId}`,
      sk: `ATTENTION#${target}`,
      gsi2pk: 'NEEDS_ATTENTION',
      gsi2sk: `${since}#${orderId}#${target}`,
      orderId,
      target,
      since,
      ...(error ? { error } : {}),
    });
    dynamo.on(QueryCommand)
      .resolvesOnce({ Items: [item(7, 'komfortkasse', '2024-05-01T10:00:00.000Z', 'Komfortkasse 400')], LastEvaluatedKey: { gsi2pk: 'NEEDS_ATTENTION' } })
      .resolvesOnce({ Items: [item(7, 'klar', '2024-05-01T11:00:00.000Z'), item(8, 'klar', '2024-05-02T11:00:00.000Z', 'no fee rule')] });

    // act
    const parked = await listAttention();

    // assess
    expect(parked).toEqual([
      { orderId: 7, target: 'komfortkasse', since: '2024-05-01T10:00:00.000Z', error: 'Komfortkasse 400' },
      { orderId: 7, target: 'klar', since: '2024-05-01T11:00:00.000Z' },
      { orderId: 8, target: 'klar', since: '2024-05-02T11:00:00.000Z', error: 'no fee rule' },
    ]);
    const queries = dynamo.commandCalls(QueryCommand).map((call) => call.args[0].input);
    expect(queries[0]).toMatchObject({ TableName: TABLE, IndexName: 'gsi2', KeyConditionExpression: 'gsi2pk = :pk', ExpressionAttributeValues: { ':pk': 'NEEDS_ATTENTION' } });
    expect(queries[1]?.ExclusiveStartKey).toEqual({ gsi2pk: 'NEEDS_ATTENTION' });
  });
});

// ---------------------------------------------------------------------------------------

describe('settleKlar', () => {
  const settlement = (orderId: number, overrides: Partial<KlarSettlement> = {}): KlarSettlement => ({
    orderId,
    orderCode: `C-${orderId}`,
    expectedVersion: 2,
    outcome: { kind: 'uploaded', transactionCosts: 1.5, currency: 'EUR', stamp: { sourceUpdatedAt: '2024-05-01T12:00:00+02:00', receivedAt: '2024-05-01T10:00:00.000Z' } },
    attempt: buildAttempt({ target: 'klar', action: 'upload' }),
    wasParked: false,
    forgotten: false,
    ...overrides,
  });
  const pkOf = (item: NonNullable<TransactWriteCommandInput['TransactItems']>[number]) => String(item.Update?.Key?.pk ?? item.Put?.Item?.pk ?? item.Delete?.Key?.pk);

  it.each([
    ['60 orders × 2 items', 60, {}, [100, 20]],
    ['34 parked orders × 3 items', 34, { outcome: { kind: 'needs-attention', error: 'x' }, attempt: buildAttempt({ target: 'klar', error: 'x' }) } as Partial<KlarSettlement>, [99, 3]],
    ['50 orders × 1 item (no attempt)', 50, { attempt: undefined, outcome: { kind: 'touched', stamp: {} } } as Partial<KlarSettlement>, [50]],
  ])('packs %s into transactions of at most 100 items, an order never split', async (_, orders, overrides, sizes) => {
    // prepare
    dynamo.on(TransactWriteCommand).resolves({});

    // act
    const result = await settleKlar(Array.from({ length: orders }, (__, i) => settlement(i + 1, overrides)), NOW);

    // assess
    expect(result).toEqual({ conflicts: [] });
    const transactions = sentTransactions();
    expect(transactions.map((items) => items.length)).toEqual(sizes);
    const seen = new Map<string, number>();
    transactions.forEach((items, t) => {
      for (const item of items) {
        const pk = pkOf(item);
        expect(seen.get(pk) ?? t, `${pk} split over transactions`).toBe(t);
        seen.set(pk, t);
      }
    });
    expect(seen.size).toBe(orders);
  });

  it('writes the state with a compare-and-set on klarVersion, the attempt, and no attention change', async () => {
    // prepare
    dynamo.on(TransactWriteCommand).resolves({});

    // act
    await settleKlar([settlement(7)], NOW);

    // assess
    const [items] = sentTransactions();
    expect(items!.map((item) => Object.keys(item)[0])).toEqual(['Update', 'Put']);
    const update = items![0]!.Update!;
    expect(update.ConditionExpression).toBe('klarVersion = :expected');
    expect(update.ExpressionAttributeValues).toMatchObject({
      ':expected': 2,
      ':next': 3,
      ':state': 'uploaded',
      ':costs': 1.5,
      ':currency': 'EUR',
      ':klarSourceUpdatedAt': '2024-05-01T12:00:00+02:00',
      ':klarReceivedAt': '2024-05-01T10:00:00.000Z',
    });
    const { sets, removes } = clauses(update.UpdateExpression);
    expect(sets).toEqual(expect.arrayContaining(['klarState = :state', 'klarVersion = :next', 'klarCosts = :costs', 'klarCurrency = :currency', 'klarUploadedAt = :now']));
    expect(removes).toContain('klarError');
    expect(items![1]!.Put).toMatchObject({ ConditionExpression: 'attribute_not_exists(pk)', Item: { pk: 'ORDER#7', target: 'klar' } });
  });

  it('accepts a missing version as 0 for the first write', async () => {
    // prepare
    dynamo.on(TransactWriteCommand).resolves({});

    // act
    await settleKlar([settlement(7, { expectedVersion: 0 })], NOW);

    // assess
    const update = sentTransactions()[0]![0]!.Update!;
    expect(update.ConditionExpression).toBe('attribute_not_exists(klarVersion) OR klarVersion = :expected');
    expect(conditionHolds(update.ConditionExpression!, update.ExpressionAttributeValues!, buildStateItem(7))).toBe(true);
    expect(conditionHolds(update.ConditionExpression!, update.ExpressionAttributeValues!, buildStateItem(7, { klarVersion: 1 }))).toBe(false);
  });

  it.each<[string, Partial<KlarSettlement>, string[], Record<string, unknown> | undefined]>([
    ['parked → Put ATTENTION#klar with the error', { outcome: { kind: 'needs-attention', error: 'no fee rule', stamp: {} } }, ['Update', 'Put', 'Put'], { sk: 'ATTENTION#klar', gsi2pk: 'NEEDS_ATTENTION', target: 'klar', error: 'no fee rule' }],
    ['uploaded after being parked → Delete ATTENTION#klar', { wasParked: true }, ['Update', 'Put', 'Delete'], undefined],
    ['touched (newer copy, same cost) → state only', { outcome: { kind: 'touched', stamp: { sourceUpdatedAt: 'x' } }, attempt: undefined }, ['Update'], undefined],
  ])('%s', async (_, overrides, kinds, attention) => {
    // prepare
    dynamo.on(TransactWriteCommand).resolves({});

    // act
    await settleKlar([settlement(7, overrides)], NOW);

    // assess
    const [items] = sentTransactions();
    expect(items!.map((item) => Object.keys(item)[0])).toEqual(kinds);
    if (attention) expect(items!.at(-1)!.Put!.Item).toMatchObject(attention);
    if (kinds.at(-1) === 'Delete') expect(items!.at(-1)!.Delete!.Key).toEqual({ pk: 'ORDER#7', sk: 'ATTENTION#klar' });
  });

  it('writes no error text for a forgotten order', async () => {
    // prepare
    dynamo.on(TransactWriteCommand).resolves({});

    // act
    await settleKlar([settlement(7, { forgotten: true, outcome: { kind: 'needs-attention', error: 'Klar INVALID: max@example.org' }, attempt: buildAttempt({ target: 'klar', error: 'max@example.org' }) })], NOW);

    // assess
    const [items] = sentTransactions();
    expect(JSON.stringify(items)).not.toContain('max@example.org');
    expect(clauses(items![0]!.Update!.UpdateExpression).removes).toContain('klarError');
  });

  it('writes Klar\'s message only while the order is not forgotten; forgotten during the upload, it settles without it', async () => {
    // prepare: a forget lands during the upload (the version is still ours)
    dynamo.on(TransactWriteCommand).rejectsOnce(transactionCancelled(3, [0])).resolves({});
    dynamo.on(GetCommand).resolves({ Item: buildStateItem(7, { klarVersion: 2, forgottenAt: '2024-05-01T09:59:59.000Z' }) });
    const parked: KlarSettlement = {
      orderId: 7,
      orderCode: 'C-7',
      expectedVersion: 2,
      outcome: { kind: 'needs-attention', error: 'Klar INVALID: unknown order for max@example.org' },
      attempt: buildAttempt({ target: 'klar', action: 'upload', outcome: 'failed-permanent', error: 'Klar INVALID: unknown order for max@example.org' }),
      wasParked: false,
      forgotten: false,
    };

    // act
    const result = await settleKlar([parked], NOW);

    // assess: no conflict; the second write carries no text anywhere
    expect(result.conflicts).toEqual([]);
    const [guarded, plain] = sentTransactions();
    expect(guarded![0]!.Update!.ConditionExpression).toBe('(klarVersion = :expected) AND attribute_not_exists(forgottenAt)');
    expect(JSON.stringify(plain)).not.toContain('max@example.org');
    expect(plain![0]!.Update!.ConditionExpression).toBe('klarVersion = :expected');
  });

  it('falls back to one transaction per order when a packed one is cancelled, and returns the conflicts', async () => {
    // prepare: order 2 changed meanwhile (its update is item 2 of the packed transaction)
    dynamo.on(TransactWriteCommand).callsFake((input: TransactWriteCommandInput) => {
      const items = input.TransactItems ?? [];
      const conflicting = items.findIndex((item) => item.Update?.Key?.pk === 'ORDER#2');
      if (conflicting >= 0) throw transactionCancelled(items.length, [conflicting]);
      return {};
    });

    // act
    const result = await settleKlar([settlement(1), settlement(2), settlement(3)], NOW);

    // assess
    expect(result).toEqual({ conflicts: [2] });
    const transactions = sentTransactions();
    expect(transactions.map((items) => items.length)).toEqual([6, 2, 2, 2]);
    expect(transactions.slice(1).map((items) => pkOf(items[0]!)).sort()).toEqual(['ORDER#1', 'ORDER#2', 'ORDER#3']);
  });

  it('sends a single order as its own transaction and reports its conflict', async () => {
    // prepare
    dynamo.on(TransactWriteCommand).rejects(transactionCancelled(2, [0]));

    // act
    const result = await settleKlar([settlement(9)], NOW);

    // assess
    expect(result).toEqual({ conflicts: [9] });
    expect(dynamo).toHaveReceivedCommandTimes(TransactWriteCommand, 1);
  });

  it('passes other errors through, and sends nothing for nothing', async () => {
    // prepare
    dynamo.on(TransactWriteCommand).rejects(new Error('throttled'));

    // act + assess
    await expect(settleKlar([settlement(1), settlement(2)], NOW)).rejects.toThrow('throttled');
    dynamo.resetHistory();
    await expect(settleKlar([], NOW)).resolves.toEqual({ conflicts: [] });
    expect(dynamo.calls()).toHaveLength(0);
  });

  it('markKlarUnconfirmed sets pending and bumps the version, leaving a parked order alone', async () => {
    // prepare
    dynamo.on(UpdateCommand).rejectsOnce(conditionFailed()).resolves({});

    // act
    await expect(markKlarUnconfirmed(7)).resolves.toBeUndefined(); // parked: condition fails, ignored
    await markKlarUnconfirmed(7);

    // assess
    const input = dynamo.commandCalls(UpdateCommand)[1]!.args[0].input;
    expect(input).toMatchObject({
      Key: { pk: 'ORDER#7', sk: 'STATE' },
      UpdateExpression: 'SET klarState = :pending, klarVersion = if_not_exists(klarVersion, :zero) + :one',
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(klarState) OR attribute_exists(pk) AND klarState <> :parked',
    });
    expect(conditionHolds(input.ConditionExpression!, input.ExpressionAttributeValues!, buildStateItem(7, { klarState: 'needs-attention' }))).toBe(false);
    expect(conditionHolds(input.ConditionExpression!, input.ExpressionAttributeValues!, buildStateItem(7, { klarState: 'uploaded' }))).toBe(true);
    expect(conditionHolds(input.ConditionExpression!, input.ExpressionAttributeValues!, buildStateItem(7, {}))).toBe(true);
    // never creates a record out of nothing (an item without orderId could not be read back)
    expect(conditionHolds(input.ConditionExpression!, input.ExpressionAttributeValues!, undefined)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------

describe('forgetOrderPersonalData', () => {
  it('marks the STATE item forgotten first, then strips texts from every other item of the order', async () => {
    // prepare
    dynamo.on(QueryCommand).resolves({
      Items: [
        { pk: 'ORDER#7', sk: 'ATTEMPT#2024-05-01T10:00:00.000Z#aaaa', error: 'Komfortkasse 400: x@example.org' },
        { pk: 'ORDER#7', sk: 'ATTENTION#komfortkasse', error: 'y' },
        buildStateItem(7, { kkError: 'x' }),
        { pk: 'ORDER#7', sk: 'ATTEMPT#2024-05-01T10:00:01.000Z#bbbb', request: { method: 'POST', url: 'https://kk/order/7', body: { billing: {} } } },
      ],
    });
    dynamo.on(UpdateCommand).resolves({});

    // act
    const result = await forgetOrderPersonalData(7, NOW);

    // assess
    expect(result).toEqual({ attempts: 2 });
    const updates = dynamo.commandCalls(UpdateCommand).map((call) => call.args[0].input);
    expect(updates.map((u) => u.Key?.sk)).toEqual(['STATE', 'ATTEMPT#2024-05-01T10:00:00.000Z#aaaa', 'ATTENTION#komfortkasse', 'ATTEMPT#2024-05-01T10:00:01.000Z#bbbb']);
    expect(updates[0]).toMatchObject({ UpdateExpression: 'SET forgottenAt = :now REMOVE kkError, klarError', ExpressionAttributeValues: { ':now': NOW.toISOString() } });
    for (const other of updates.slice(1)) {
      expect(other).toMatchObject({ UpdateExpression: 'SET forgottenAt = :now REMOVE #request, #error', ExpressionAttributeNames: { '#request': 'request', '#error': 'error' }, ConditionExpression: 'attribute_exists(pk)' });
    }
    expect(dynamo).toHaveReceivedCommandWith(QueryCommand, { KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': 'ORDER#7' } });
  });

  it('marks the order before it reads what to clean: an attempt written meanwhile is read and cleaned too', async () => {
    // prepare: the query sees an attempt a worker wrote just before the mark
    dynamo.on(UpdateCommand).resolves({});
    dynamo.on(QueryCommand).resolves({ Items: [buildStateItem(7, {}), { pk: 'ORDER#7', sk: 'ATTEMPT#2024-05-01T10:00:00.000Z#late', error: 'Komfortkasse 503: x@example.org' }] });
    // act
    await forgetOrderPersonalData(7, NOW);
    // assess: the STATE mark is the very first request, before the query
    const sent = dynamo.calls().map((call) => call.args[0]);
    expect(sent[0]).toBeInstanceOf(UpdateCommand);
    expect((sent[0] as UpdateCommand).input.Key).toEqual({ pk: 'ORDER#7', sk: 'STATE' });
    expect(sent[1]).toBeInstanceOf(QueryCommand);
    expect(dynamo.commandCalls(UpdateCommand).map((call) => call.args[0].input.Key?.sk)).toEqual(['STATE', 'ATTEMPT#2024-05-01T10:00:00.000Z#late']);
  });

  it('goes on when an item vanished between the query and its update', async () => {
    // prepare: the attention item was cleared meanwhile
    dynamo.on(QueryCommand).resolves({ Items: [buildStateItem(7, {}), { pk: 'ORDER#7', sk: 'ATTENTION#klar' }, { pk: 'ORDER#7', sk: 'ATTEMPT#2024-05-01T10:00:00.000Z#aaaa' }] });
    dynamo.on(UpdateCommand).resolves({});
    dynamo.on(UpdateCommand, { Key: { pk: 'ORDER#7', sk: 'ATTENTION#klar' } }).rejects(conditionFailed());
    // act
    const result = await forgetOrderPersonalData(7, NOW);
    // assess
    expect(result).toEqual({ attempts: 1 });
    expect(dynamo.commandCalls(UpdateCommand)).toHaveLength(3);
  });
});

describe('Klar readings and reconcile runs', () => {
  it('records a reading once per instant and lists the newest first', async () => {
    // prepare
    dynamo.on(PutCommand).resolves({});
    dynamo.on(QueryCommand).resolves({ Items: [{ at: 'b', failing: 1, endpoint: '/transaction-costs/state', total: 9 }, { at: 'a' }] });

    // act
    await recordKlarReading({ at: '2024-05-01T10:00:00.000Z', failing: false, endpoint: '/transaction-costs/state', total: 9 }, NOW);
    const readings = await listKlarReadings(2);

    // assess
    expect(dynamo).toHaveReceivedCommandWith(PutCommand, { ConditionExpression: 'attribute_not_exists(pk)', Item: expect.objectContaining({ pk: 'KLAR#STATE', sk: 'READING#2024-05-01T10:00:00.000Z', total: 9, expiresAt: expiresAt(NOW) }) });
    expect(dynamo).toHaveReceivedCommandWith(QueryCommand, { ScanIndexForward: false, Limit: 2 });
    expect(readings).toEqual([
      { at: 'b', failing: true, endpoint: '/transaction-costs/state', total: 9 },
      { at: 'a', failing: false, endpoint: '' },
    ]);
  });

  it('records a reconcile run once per instant and lists the newest first', async () => {
    // prepare
    const run = { at: '2024-05-01T10:00:00.000Z', since: '2024-04-30', checked: 10, enqueued: 2, needsAttention: 1, invalid: 0, dryRun: false, trigger: 'schedule' };
    dynamo.on(PutCommand).resolves({});
    dynamo.on(QueryCommand).resolves({ Items: [{ pk: 'RECONCILE#RUN', sk: `RUN#${run.at}`, ...run, expiresAt: 1 }] });

    // act
    await recordReconcileRun(run, NOW);
    const runs = await listReconcileRuns(3);

    // assess
    expect(dynamo).toHaveReceivedCommandWith(PutCommand, { ConditionExpression: 'attribute_not_exists(pk)', Item: expect.objectContaining({ pk: 'RECONCILE#RUN', sk: `RUN#${run.at}`, ...run, expiresAt: expiresAt(NOW) }) });
    expect(dynamo).toHaveReceivedCommandWith(QueryCommand, { KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)', ExpressionAttributeValues: { ':pk': 'RECONCILE#RUN', ':prefix': 'RUN#' }, ScanIndexForward: false, Limit: 3 });
    expect(runs).toEqual([run]);
  });
});

describe('shop API check', () => {
  it('records a failure with its error and a success in one item, never moving either back in time', async () => {
    // prepare
    dynamo.on(UpdateCommand).resolvesOnce({}).resolvesOnce({}).rejectsOnce(conditionFailed());
    dynamo.on(GetCommand).resolves({ Item: { pk: 'SHOP#API', sk: 'CHECK', lastFailureAt: '2024-05-01T10:00:00.000Z', lastError: 'VersaCommerce 404: Not found', expiresAt: 1 } });

    // act
    await recordShopApiCheck({ ok: false, error: 'VersaCommerce 404: Not found' }, NOW);
    await recordShopApiCheck({ ok: true }, NOW);
    await recordShopApiCheck({ ok: true }, new Date(NOW.getTime() - 60_000)); // an older one landing late: dropped quietly
    const check = await getShopApiCheck();

    // assess
    const [failure, success] = dynamo.commandCalls(UpdateCommand).map((call) => call.args[0].input);
    expect(failure).toMatchObject({
      Key: { pk: 'SHOP#API', sk: 'CHECK' },
      ConditionExpression: 'attribute_not_exists(lastFailureAt) OR lastFailureAt < :now',
      ExpressionAttributeValues: { ':now': NOW.toISOString(), ':error': 'VersaCommerce 404: Not found', ':exp': expiresAt(NOW) },
    });
    expect(clauses(failure!.UpdateExpression).sets).toEqual(['lastFailureAt = :now', 'expiresAt = :exp', 'lastError = :error']);
    expect(success).toMatchObject({ ConditionExpression: 'attribute_not_exists(lastOkAt) OR lastOkAt < :now' });
    expect(clauses(success!.UpdateExpression).sets).toEqual(['lastOkAt = :now', 'expiresAt = :exp']);
    expect(check).toEqual({ lastFailureAt: '2024-05-01T10:00:00.000Z', lastError: 'VersaCommerce 404: Not found' });
  });

  it.each<[string, Record<string, string>, boolean]>([
    ['a failure an hour ago', { lastFailureAt: '2024-05-01T09:00:00.000Z' }, true],
    ['a failure an hour ago, confirmed since', { lastFailureAt: '2024-05-01T09:00:00.000Z', lastOkAt: '2024-05-01T09:30:00.000Z' }, false],
    ['a failure after the last success', { lastFailureAt: '2024-05-01T09:00:00.000Z', lastOkAt: '2024-05-01T08:00:00.000Z' }, true],
    ['a failure two days ago', { lastFailureAt: '2024-04-29T10:00:00.000Z' }, false],
    ['only successes', { lastOkAt: '2024-05-01T09:00:00.000Z' }, false],
  ])('is failing after %s', (_, check, expected) => {
    // act + assess
    expect(shopApiFailing(check, NOW, 86_400_000)).toBe(expected);
  });
});
