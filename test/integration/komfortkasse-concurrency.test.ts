import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { handler as syncHandler } from '../../functions/sync-order.ts';
import { submitOrder } from '../../lib/clients/komfortkasse.ts';
import { DEFAULT_PAYMENT_TYPE_MAP } from '../../lib/domain/payment-types.ts';
import { ConcurrentUpdateError, isPermanent } from '../../lib/domain/errors.ts';
import { toKomfortkasseOrder } from '../../lib/domain/komfortkasse-mapping.ts';
import type { OrderChangedMessage } from '../../lib/domain/messages.ts';
import { versaCommerceOrderSchema } from '../../lib/domain/versacommerce.ts';
import { orderLogger } from '../../lib/observability/logger.ts';
import { documentClient } from '../../lib/store/dynamo.ts';
import { listAttempts } from '../../lib/store/attempts.ts';
import { claimKomfortkasse } from '../../lib/store/komfortkasse-lease.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import { syncOrder, type KomfortkasseResult as SyncOutcome } from '../../lib/sync/sync-order.ts';

/** The default lease (KOMFORTKASSE_LEASE_SECONDS). */
const LEASE_MS = 60_000;
import { lambdaContext } from '../../local/events.ts';
import type { RunningStack } from '../../local/stack.ts';
import { buildVersaCommerceOrder, type RawVersaCommerceOrder } from '../factories/orders.ts';
import { bootStack } from './harness.ts';

// Two workers on one order, and a worker that died mid-call: the history table's
// condition expressions must still let exactly one first submission through.
describe('sync-order under concurrency and crashes', () => {
  let stack: RunningStack;

  beforeAll(async () => {
    // No pollers: the tests play the part of Lambda themselves.
    stack = await bootStack({ workers: false, env: { KOMFORTKASSE_INITIAL_DUNNING_LEVEL: '1', KOMFORTKASSE_TIMEOUT_MS: '1000' } });
  });
  afterAll(async () => stack?.stop());
  afterEach(() => stack.simulators.komfortkasse!.clearFaults());

  let nextId = 7000;
  const freshOrder = (overrides: Record<string, unknown> = {}): RawVersaCommerceOrder => {
    const id = nextId++;
    return buildVersaCommerceOrder({ id, code: `KC-${id}`, ...overrides });
  };
  const messageFor = (order: RawVersaCommerceOrder, overrides: Partial<OrderChangedMessage> = {}): OrderChangedMessage => ({
    kind: 'order-changed',
    orderId: order.id,
    orderCode: order.code,
    order,
    source: 'webhook',
    receivedAt: new Date().toISOString(),
    deliveryId: `delivery:${randomUUID()}`,
    correlationId: randomUUID(),
    ...overrides,
  });
  const sync = (order: RawVersaCommerceOrder, overrides: Partial<OrderChangedMessage> = {}): Promise<SyncOutcome> => {
    const message = messageFor(order, overrides);
    const log = orderLogger({ orderId: message.orderId, orderCode: message.orderCode, correlationId: message.correlationId });
    return syncOrder(message, { log }).then((result) => result.komfortkasse);
  };
  const sqsEventFor = (...messages: OrderChangedMessage[]): SQSEvent => ({
    Records: messages.map((message) => ({
      messageId: randomUUID(),
      receiptHandle: randomUUID(),
      body: JSON.stringify(message),
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: String(Date.now()),
        SenderId: '000000000000',
        ApproximateFirstReceiveTimestamp: String(Date.now()),
        MessageGroupId: String(message.orderId),
        MessageDeduplicationId: randomUUID(),
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: stack.queues.orders.arn,
      awsRegion: 'us-east-1',
    })),
  });
  // The deployed timeout: the worker starts no record it cannot finish before it.
  const invoke = (event: SQSEvent) =>
    syncHandler(event, lambdaContext('sync-order', stack.definition.functions.find((fn) => fn.name === 'sync-order')!.timeoutSeconds) as never);

  const kk = () => stack.simulators.komfortkasse!;
  const submitsOf = (code: string) => kk().requests.filter((r) => r.method === 'POST' && r.path === `/api/v2/order/${code}`);
  const removesOf = (code: string) => kk().requests.filter((r) => r.method === 'POST' && r.path === `/api/v2/order/remove/${code}`);
  const kkAttempts = async (orderId: number) => (await listAttempts(orderId)).filter((a) => a.target === 'komfortkasse');
  const dunningLevelOf = (body: unknown) => (body as { initialDunningLevel?: number }).initialDunningLevel;
  /** Komfortkasse takes the call at once but answers late, so the winner holds the lease meanwhile. */
  const slowAnswers = (code: string, times: number, delayAfterMs = 400) =>
    kk().injectFault({ delayAfterMs, times, pathPrefix: `/api/v2/order/${code}` });

  /** A loser may only fail transiently (SQS retries it) or find nothing left to do. */
  const expectOneWinner = (results: PromiseSettledResult<SyncOutcome>[], winning: SyncOutcome) => {
    const won = results.filter((r) => r.status === 'fulfilled' && r.value === winning);
    expect(won).toHaveLength(1);
    for (const result of results) {
      if (result.status === 'rejected') {
        expect(result.reason).toBeInstanceOf(ConcurrentUpdateError);
        expect(isPermanent(result.reason)).toBe(false);
      } else if (result.value !== winning) {
        expect(result.value).toBe('unchanged');
      }
    }
  };

  it('lets exactly one of two parallel workers make the first submission', async () => {
    // prepare
    const order = freshOrder();
    slowAnswers(order.code, 2);

    // act
    const results = await Promise.allSettled([sync(order), sync(order)]);

    // assess
    expectOneWinner(results, 'submitted');
    expect(results.some((r) => r.status === 'rejected')).toBe(true); // the race really happened
    const submits = submitsOf(order.code);
    expect(submits).toHaveLength(1);
    expect(dunningLevelOf(submits[0]!.body)).toBe(1);
    expect(kk().orders.get(order.code)).toMatchObject({ submitCount: 1, initialDunningLevel: 1 });
    expect(await kkAttempts(order.id)).toEqual([expect.objectContaining({ action: 'submit', outcome: 'success' })]);
    const record = await getOrderRecord(order.id);
    expect(record?.komfortkasse).toMatchObject({ state: 'submitted', everSubmitted: true });
    expect(record?.komfortkasse.leaseToken).toBeUndefined();
  });

  it('keeps one first submission per order when many workers race without any delay', async () => {
    // prepare
    const orders = Array.from({ length: 5 }, () => freshOrder());

    // act: four workers per order, all at once
    const results = await Promise.all(orders.map((order) => Promise.allSettled([sync(order), sync(order), sync(order), sync(order)])));

    // assess
    orders.forEach((order, index) => {
      expectOneWinner(results[index]!, 'submitted');
      const submits = submitsOf(order.code);
      expect(submits).toHaveLength(1);
      expect(dunningLevelOf(submits[0]!.body)).toBe(1);
    });
  });

  it('reports the losing record of two concurrent handler invocations as a batch item failure; its redelivery makes no call', async () => {
    // prepare
    const order = freshOrder();
    slowAnswers(order.code, 2);
    const first = sqsEventFor(messageFor(order));
    const second = sqsEventFor(messageFor(order));

    // act
    const [a, b] = await Promise.all([invoke(first), invoke(second)]);
    const failures = [...a.batchItemFailures, ...b.batchItemFailures].map((f) => f.itemIdentifier);
    const loser = [first, second].find((event) => failures.includes(event.Records[0]!.messageId))!;
    const redelivery = await invoke(loser);

    // assess
    expect(failures).toHaveLength(1);
    expect(redelivery.batchItemFailures).toEqual([]);
    const submits = submitsOf(order.code);
    expect(submits).toHaveLength(1);
    expect(dunningLevelOf(submits[0]!.body)).toBe(1);
    expect((await getOrderRecord(order.id))?.komfortkasse.state).toBe('submitted');
  });

  it('lets only one of two parallel workers bring a removed order back', async () => {
    // prepare: submitted, then canceled in the shop
    const order = freshOrder({ updated_at: '2024-06-01T10:00:00+02:00' });
    expect(await sync(order)).toBe('submitted');
    expect(await sync({ ...order, status: 'canceled', updated_at: '2024-06-02T10:00:00+02:00' })).toBe('removed');
    const reopened = { ...order, status: 'open', updated_at: '2024-06-03T10:00:00+02:00' };
    slowAnswers(order.code, 2);

    // act
    const results = await Promise.allSettled([sync(reopened), sync(reopened)]);

    // assess
    expectOneWinner(results, 'updated');
    const submits = submitsOf(order.code);
    expect(submits).toHaveLength(2);
    expect(dunningLevelOf(submits[1]!.body)).toBeUndefined(); // Komfortkasse knows the order already
    expect(removesOf(order.code)).toHaveLength(1);
    expect(kk().orders.get(order.code)).toMatchObject({ removed: false, submitCount: 2 });
    expect((await getOrderRecord(order.id))?.komfortkasse).toMatchObject({ state: 'submitted', sourceUpdatedAt: '2024-06-03T10:00:00+02:00' });
  });

  it('does not bring a removed order back with a snapshot older than the cancellation', async () => {
    // prepare
    const order = freshOrder({ updated_at: '2024-06-01T10:00:00+02:00' });
    await sync(order);
    await sync({ ...order, status: 'canceled', updated_at: '2024-06-02T10:00:00+02:00' });

    // act: a late "open" snapshot from between the two
    const outcome = await sync({ ...order, total: '17.00', updated_at: '2024-06-01T18:00:00+02:00' });

    // assess
    expect(outcome).toBe('stale');
    expect(submitsOf(order.code)).toHaveLength(1);
    expect(kk().orders.get(order.code)?.removed).toBe(true);
    expect((await getOrderRecord(order.id))?.komfortkasse.state).toBe('removed');
  });

  it('re-sends without initialDunningLevel after a worker claimed the order, called Komfortkasse and died', async () => {
    // prepare: the dead worker's lease (already expired) and the call it got through
    const order = freshOrder();
    const dead = await claimKomfortkasse(order.id, order.code, {
      leaseMs: LEASE_MS,
      markFirstAttempt: true,
      now: new Date(Date.now() - 2 * LEASE_MS),
    });
    expect(dead.firstAttempt).toBe(true);
    const payload = toKomfortkasseOrder(versaCommerceOrderSchema.parse(order), {
      paymentTypes: DEFAULT_PAYMENT_TYPE_MAP,
      initialDunningLevel: 1,
      firstSubmission: true,
    });
    await submitOrder(order.code, payload);

    // act: SQS redelivers the message
    const outcome = await sync(order);

    // assess
    expect(outcome).toBe('submitted');
    const submits = submitsOf(order.code);
    expect(submits.map((r) => r.status)).toEqual([200, 200]);
    expect(dunningLevelOf(submits[0]!.body)).toBe(1);
    expect(submits[1]!.body).not.toHaveProperty('initialDunningLevel');
    expect(kk().orders.get(order.code)).toMatchObject({ submitCount: 2, initialDunningLevel: 1 });
    expect(await kkAttempts(order.id)).toEqual([expect.objectContaining({ action: 'submit', outcome: 'success-resend', httpStatus: 200 })]);
    const record = await getOrderRecord(order.id);
    expect(record?.komfortkasse).toMatchObject({ state: 'submitted', everSubmitted: true });
    expect(record?.komfortkasse.leaseToken).toBeUndefined();
  });

  it('treats a claim the SDK retried after its answer was lost as a first submission, and makes one call', async () => {
    // prepare: the first UpdateItem of the claim reaches DynamoDB but its answer is lost,
    // so the SDK sends the very same request again (as when DynamoDB restarts mid-call)
    const order = freshOrder();
    const client = documentClient();
    const send = client.send.bind(client) as (command: unknown) => Promise<unknown>;
    let replayed = 0;
    const spy = vi.spyOn(client, 'send').mockImplementation((async (command: unknown) => {
      const input = (command as { input?: { UpdateExpression?: string } }).input;
      if (replayed === 0 && input?.UpdateExpression?.includes('kkLeaseToken = :token')) {
        replayed++;
        await send(command); // applied, answer dropped
      }
      return send(command);
    }) as never);

    // act
    let outcome: SyncOutcome;
    try {
      outcome = await sync(order);
    } finally {
      spy.mockRestore();
    }

    // assess: our own lease did not block us, and it still counts as the first submission
    expect(replayed).toBe(1);
    expect(outcome).toBe('submitted');
    const submits = submitsOf(order.code);
    expect(submits).toHaveLength(1);
    expect(dunningLevelOf(submits[0]!.body)).toBe(1);
    expect(await kkAttempts(order.id)).toEqual([expect.objectContaining({ action: 'submit', outcome: 'success' })]);
  });

  it('leaves an order alone while a live worker still holds its lease', async () => {
    // prepare
    const order = freshOrder();
    await claimKomfortkasse(order.id, order.code, { leaseMs: LEASE_MS, markFirstAttempt: true });

    // act
    const attempt = sync(order);

    // assess
    await expect(attempt).rejects.toBeInstanceOf(ConcurrentUpdateError);
    expect(submitsOf(order.code)).toEqual([]);
  });

  it('does not repeat initialDunningLevel when the first submission timed out after Komfortkasse took it', async () => {
    // prepare: Komfortkasse stores the order but answers after the client's 1 s timeout
    const order = freshOrder();
    kk().injectFault({ delayAfterMs: 1500, times: 1, pathPrefix: `/api/v2/order/${order.code}` });

    // act: the delivery fails transiently; SQS redelivers it
    const first = await sync(order).then(
      () => undefined,
      (error: unknown) => error,
    );
    const second = await sync(order);

    // assess
    expect(first).toBeDefined();
    expect(isPermanent(first)).toBe(false);
    expect(second).toBe('submitted');
    const submits = submitsOf(order.code);
    expect(submits).toHaveLength(2); // no in-call retry of the ambiguous first try
    expect(dunningLevelOf(submits[0]!.body)).toBe(1);
    expect(submits[1]!.body).not.toHaveProperty('initialDunningLevel');
    expect(submits[1]!.status).toBe(200);
    expect(kk().orders.get(order.code)).toMatchObject({ submitCount: 2, initialDunningLevel: 1 });
    expect((await kkAttempts(order.id)).map((a) => a.outcome)).toEqual(['failed-transient', 'success-resend']);
    expect((await getOrderRecord(order.id))?.komfortkasse.state).toBe('submitted');
  });

  it('accepts the console sample event events/sync-order-sqs.json', async () => {
    // prepare
    const event = JSON.parse(readFileSync(new URL('../../events/sync-order-sqs.json', import.meta.url), 'utf8')) as SQSEvent;
    const message = JSON.parse(event.Records[0]!.body) as OrderChangedMessage;

    // act
    const response = await invoke(event);

    // assess
    expect(event.Records).toHaveLength(1);
    expect(response.batchItemFailures).toEqual([]);
    expect(submitsOf(message.orderCode!)).toHaveLength(1);
    expect((await getOrderRecord(message.orderId))?.komfortkasse.state).toBe('submitted');
  });
});
