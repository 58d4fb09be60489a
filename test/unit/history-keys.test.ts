import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { reloadConfig } from '../../lib/config/index.ts';
import { ConcurrentUpdateError, isPermanent } from '../../lib/domain/errors.ts';
import { resetDocumentClient } from '../../lib/store/dynamo.ts';
import {
  appendAttempt,
  claimKomfortkasse,
  expiresAt,
  fromItem,
  getOrderRecord,
  keys,
  recordKomfortkasse,
  releaseKomfortkasse,
} from '../../lib/store/history.ts';

// Keys, item mapping and the condition expressions of the Komfortkasse state transitions,
// checked on the requests sent to DynamoDB (the integration suites run them for real).
const dynamo = mockClient(DynamoDBDocumentClient);
const conditionFailed = () => new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
const NOW = new Date('2024-05-01T10:00:00.000Z');
const RETENTION_DAYS = 400;

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

/** The one UpdateCommand sent, with its expression split into its clauses. */
function sentUpdate(): UpdateCommandInput & { sets: string[]; removes: string[] } {
  const calls = dynamo.commandCalls(UpdateCommand);
  expect(calls).toHaveLength(1);
  const input = calls[0]!.args[0].input;
  const expression = input.UpdateExpression ?? '';
  const clause = (name: string) => new RegExp(`${name} (.*?)(?: (?:SET|REMOVE) |$)`).exec(expression)?.[1]?.split(/,\s*(?![^(]*\))/) ?? []; // commas outside if_not_exists(…)
  return { ...input, sets: clause('SET'), removes: clause('REMOVE') };
}

describe('history keys', () => {
  it('keeps an order state and its attempts under one partition, attempts sortable by time', () => {
    // act
    const state = keys.orderState(100);
    const early = keys.attempt(100, '2024-05-01T10:00:00.000Z');
    const late = keys.attempt(100, '2024-05-01T10:00:01.000Z');
    const twin = keys.attempt(100, '2024-05-01T10:00:00.000Z');

    // assess
    expect(state).toEqual({ pk: 'ORDER#100', sk: 'STATE' });
    expect(early.pk).toBe(state.pk);
    expect(early.sk).toMatch(/^ATTEMPT#2024-05-01T10:00:00\.000Z#[0-9a-f]{8}$/);
    expect([late.sk, early.sk].sort()).toEqual([early.sk, late.sk]);
    expect(twin.sk).not.toBe(early.sk); // two attempts in the same millisecond do not collide
    expect(keys.codeIndex('196-083-565')).toBe('CODE#196-083-565');
  });

  it('expires items after the retention period (epoch seconds)', () => {
    // act
    const ttl = expiresAt(NOW);

    // assess
    expect(ttl).toBe(Math.floor(NOW.getTime() / 1000) + RETENTION_DAYS * 86_400);
  });

  it('reads a bare item as pending on both sides', () => {
    // act
    const record = fromItem({ pk: 'ORDER#7', sk: 'STATE', orderId: 7 });

    // assess
    expect(record.komfortkasse).toEqual({ state: 'pending', everSubmitted: false });
    expect(record.klar).toMatchObject({ state: 'pending', version: 0 });
  });

  it('reads the recorded Komfortkasse state from its attributes', () => {
    // act
    const record = fromItem({
      orderId: 7,
      orderCode: 'A-7',
      kkState: 'needs-attention',
      kkPayloadHash: 'abc',
      kkError: 'Komfortkasse 400: Invalid request',
      kkEverSubmitted: true,
      kkFirstSubmittedAt: '2024-05-01T10:00:00.000Z',
      kkSourceUpdatedAt: '2024-05-01T12:00:00+02:00',
      kkFirstAttemptedAt: '2024-05-01T09:59:59.000Z',
      kkLeaseToken: 't',
      kkLeaseUntil: 1714557600000,
      expiresAt: 1749117600,
    });

    // assess
    expect(record).toMatchObject({
      orderId: 7,
      orderCode: 'A-7',
      expiresAt: 1749117600,
      komfortkasse: {
        state: 'needs-attention',
        payloadHash: 'abc',
        error: 'Komfortkasse 400: Invalid request',
        everSubmitted: true,
        firstSubmittedAt: '2024-05-01T10:00:00.000Z',
        sourceUpdatedAt: '2024-05-01T12:00:00+02:00',
        firstAttemptedAt: '2024-05-01T09:59:59.000Z',
        leaseToken: 't',
        leaseUntil: 1714557600000,
      },
    });
  });

  it('refuses an item with an unknown state', () => {
    expect(() => fromItem({ orderId: 7, kkState: 'sent' })).toThrow();
  });

  it('reads the state consistently', async () => {
    // prepare
    dynamo.on(GetCommand).resolves({ Item: { orderId: 7, kkState: 'submitted', kkEverSubmitted: true } });

    // act
    const record = await getOrderRecord(7);

    // assess
    expect(record?.komfortkasse.state).toBe('submitted');
    expect(dynamo.commandCalls(GetCommand)[0]!.args[0].input).toMatchObject({ Key: { pk: 'ORDER#7', sk: 'STATE' }, ConsistentRead: true });
  });
});

describe('claimKomfortkasse', () => {
  it('takes the lease only when none is held, it has run out, or it is this claim\'s own (an SDK retry), and marks the first attempt once', async () => {
    // prepare
    dynamo.on(UpdateCommand).resolves({});

    // act
    const claim = await claimKomfortkasse(7, 'A-7', { leaseMs: 60_000, markFirstAttempt: true, now: NOW });

    // assess
    const update = sentUpdate();
    expect(update.Key).toEqual({ pk: 'ORDER#7', sk: 'STATE' });
    expect(update.ConditionExpression).toBe('attribute_not_exists(kkLeaseUntil) OR kkLeaseUntil < :nowMs OR kkLeaseToken = :token');
    expect(update.ExpressionAttributeValues).toMatchObject({
      ':nowMs': NOW.getTime(),
      ':until': NOW.getTime() + 60_000,
      ':token': claim.token,
      ':exp': expiresAt(NOW),
      ':code': 'A-7',
      ':gsi1pk': 'CODE#A-7',
    });
    expect(update.sets).toEqual(expect.arrayContaining(['kkLeaseToken = :token', 'kkLeaseUntil = :until', 'kkFirstAttemptedAt = if_not_exists(kkFirstAttemptedAt, :now)', 'expiresAt = :exp']));
    expect(update.ReturnValues).toBe('ALL_OLD');
    expect(claim).toMatchObject({ previous: undefined, firstAttempt: true });
  });

  it('does not mark an attempt when asked not to', async () => {
    // prepare
    dynamo.on(UpdateCommand).resolves({});

    // act
    await claimKomfortkasse(7, undefined, { leaseMs: 1000, markFirstAttempt: false, now: NOW });

    // assess
    const update = sentUpdate();
    expect(update.sets.some((set) => set.startsWith('kkFirstAttemptedAt'))).toBe(false);
    expect(update.sets.some((set) => set.startsWith('orderCode'))).toBe(false);
  });

  it.each([
    ['an earlier attempt whose fate is unknown', { kkFirstAttemptedAt: '2024-05-01T09:00:00.000Z' }],
    ['an order Komfortkasse already accepted', { kkEverSubmitted: true, kkState: 'submitted' }],
  ])('is not a first attempt after %s', async (_, attributes) => {
    // prepare
    dynamo.on(UpdateCommand).resolves({ Attributes: { pk: 'ORDER#7', sk: 'STATE', orderId: 7, ...attributes } });

    // act
    const claim = await claimKomfortkasse(7, 'A-7', { leaseMs: 1000, markFirstAttempt: true, now: NOW });

    // assess
    expect(claim.firstAttempt).toBe(false);
    expect(claim.previous?.orderId).toBe(7);
  });

  it('turns a held lease into a transient ConcurrentUpdateError', async () => {
    // prepare
    dynamo.on(UpdateCommand).rejects(conditionFailed());

    // act
    const error = await claimKomfortkasse(7, 'A-7', { leaseMs: 1000, markFirstAttempt: true }).catch((thrown: unknown) => thrown);

    // assess
    expect(error).toBeInstanceOf(ConcurrentUpdateError);
    expect(isPermanent(error)).toBe(false);
  });

  it('passes other DynamoDB errors through', async () => {
    // prepare
    dynamo.on(UpdateCommand).rejects(new Error('throttled'));

    // act + assess
    await expect(claimKomfortkasse(7, 'A-7', { leaseMs: 1000, markFirstAttempt: true })).rejects.toThrow('throttled');
  });
});

describe('recordKomfortkasse', () => {
  it('records a submission only while holding the lease, and releases it', async () => {
    // prepare
    dynamo.on(UpdateCommand).resolves({});

    // act
    await recordKomfortkasse(7, 'A-7', 'token-1', { state: 'submitted', payloadHash: 'h1', submitted: true, sourceUpdatedAt: '2024-05-01T12:00:00+02:00' }, NOW);

    // assess
    const update = sentUpdate();
    expect(update.ConditionExpression).toBe('kkLeaseToken = :token');
    expect(update.ExpressionAttributeValues).toMatchObject({ ':token': 'token-1', ':state': 'submitted', ':hash': 'h1', ':src': '2024-05-01T12:00:00+02:00', ':exp': expiresAt(NOW) });
    expect(update.sets).toEqual(
      expect.arrayContaining(['kkState = :state', 'kkPayloadHash = :hash', 'kkEverSubmitted = :true', 'kkFirstSubmittedAt = if_not_exists(kkFirstSubmittedAt, :now)', 'kkSourceUpdatedAt = :src']),
    );
    expect(update.removes).toEqual(expect.arrayContaining(['kkLeaseToken', 'kkLeaseUntil', 'kkError']));
    expect(update.removes).not.toContain('kkFirstAttemptedAt');
  });

  it('puts a needs-attention order into the sparse index with its error', async () => {
    // prepare
    dynamo.on(UpdateCommand).resolves({});

    // act
    await recordKomfortkasse(7, 'A-7', 'token-1', { state: 'needs-attention', error: 'Komfortkasse 400: Invalid request', clearFirstAttempt: true }, NOW);

    // assess
    const update = sentUpdate();
    expect(update.ExpressionAttributeValues).toMatchObject({ ':error': 'Komfortkasse 400: Invalid request', ':attention': 'NEEDS_ATTENTION', ':attentionSk': `${NOW.toISOString()}#7` });
    expect(update.sets).toEqual(expect.arrayContaining(['kkError = :error', 'gsi2pk = :attention', 'gsi2sk = :attentionSk']));
    expect(update.sets.some((set) => set.startsWith('kkEverSubmitted'))).toBe(false);
    expect(update.removes).toContain('kkFirstAttemptedAt');
  });

  it('fails with ConcurrentUpdateError when the lease was lost', async () => {
    // prepare
    dynamo.on(UpdateCommand).rejects(conditionFailed());

    // act + assess
    await expect(recordKomfortkasse(7, 'A-7', 'stale-token', { state: 'submitted' })).rejects.toBeInstanceOf(ConcurrentUpdateError);
  });
});

describe('releaseKomfortkasse', () => {
  it('drops the lease (and on request the first-attempt mark) only for its holder', async () => {
    // prepare
    dynamo.on(UpdateCommand).resolves({});

    // act
    await releaseKomfortkasse(7, 'token-1', { clearFirstAttempt: true });

    // assess
    const update = sentUpdate();
    expect(update.UpdateExpression).toBe('REMOVE kkLeaseToken, kkLeaseUntil, kkFirstAttemptedAt');
    expect(update.ConditionExpression).toBe('kkLeaseToken = :token');
    expect(update.ExpressionAttributeValues).toEqual({ ':token': 'token-1' });
  });

  it('ignores a lease that is no longer ours, but not other errors', async () => {
    // prepare
    dynamo.on(UpdateCommand).rejectsOnce(conditionFailed()).rejectsOnce(new Error('throttled'));

    // act + assess
    await expect(releaseKomfortkasse(7, 'old', { clearFirstAttempt: false })).resolves.toBeUndefined();
    await expect(releaseKomfortkasse(7, 'old', { clearFirstAttempt: false })).rejects.toThrow('throttled');
  });
});

describe('appendAttempt', () => {
  it('writes each attempt once, beside the order state, with a TTL', async () => {
    // prepare
    dynamo.on(PutCommand).resolves({});

    // act
    await appendAttempt(7, { at: NOW.toISOString(), target: 'komfortkasse', action: 'submit', outcome: 'success', httpStatus: 200, latencyMs: 12 }, NOW);

    // assess
    const put = dynamo.commandCalls(PutCommand)[0]!.args[0].input;
    expect(put.ConditionExpression).toBe('attribute_not_exists(pk)');
    expect(put.Item).toMatchObject({ pk: 'ORDER#7', orderId: 7, action: 'submit', outcome: 'success', httpStatus: 200, latencyMs: 12, expiresAt: expiresAt(NOW) });
    expect(String(put.Item?.sk)).toMatch(/^ATTEMPT#2024-05-01T10:00:00\.000Z#/);
  });
});
