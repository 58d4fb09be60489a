import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { handler as syncHandler } from '../../functions/sync-order.ts';
import type { OrderChangedMessage } from '../../lib/domain/messages.ts';
import { listAttempts } from '../../lib/store/attempts.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import { seedOrder } from '../../local/simulators/fixtures.ts';
import type { RunningStack } from '../../local/stack.ts';
import { buildVersaCommerceOrder } from '../factories/orders.ts';
import { bootStack, drained, peekMessages, postWebhook, waitFor } from './harness.ts';

// The sync-order worker end to end: webhook → ingest → orders.fifo → real handler
// → Komfortkasse simulator, with the recorded state read back from DynamoDB Local.
describe('sync-order through the local stack', () => {
  let stack: RunningStack;
  /** Every order-changed message the worker was handed, redeliveries included. */
  const deliveries: OrderChangedMessage[] = [];

  const recordingHandler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    for (const record of event.Records) deliveries.push(JSON.parse(record.body) as OrderChangedMessage);
    return syncHandler(event, context);
  };

  beforeAll(async () => {
    stack = await bootStack({
      env: { KOMFORTKASSE_INITIAL_DUNNING_LEVEL: '1' },
      handlers: { 'sync-order': recordingHandler },
    });
  });
  afterAll(async () => stack?.stop());
  afterEach(() => stack.simulators.komfortkasse!.clearFaults());

  let nextId = 5000;
  /** A fresh order (own id and code) so tests cannot see each other's calls. */
  const freshOrder = (overrides: Record<string, unknown> = {}) => {
    const id = nextId++;
    return buildVersaCommerceOrder({ id, code: `KK-${id}`, ...overrides });
  };
  const kk = () => stack.simulators.komfortkasse!;
  const submitsOf = (code: string) => kk().requests.filter((r) => r.method === 'POST' && r.path === `/api/v2/order/${code}`);
  const removesOf = (code: string) => kk().requests.filter((r) => r.method === 'POST' && r.path === `/api/v2/order/remove/${code}`);
  const callsOf = (code: string) => [...submitsOf(code), ...removesOf(code)];
  const deliveriesOf = (orderId: number) => deliveries.filter((m) => m.orderId === orderId);
  /** The attempt log is shared with the Klar worker; these tests look at Komfortkasse only. */
  const kkAttempts = async (orderId: number) => (await listAttempts(orderId)).filter((a) => a.target === 'komfortkasse');

  /** Posts the order as the shop would and waits until the pipeline has handled it. */
  const deliver = async (order: Record<string, unknown>, deliveryId?: string) => {
    const headers: Record<string, string> = deliveryId ? { 'x-orderbridge-delivery': deliveryId } : {};
    const response = await postWebhook(stack, { order }, { headers });
    expect(response.status).toBe(202);
    await drained(stack);
  };

  it('submits a new order once, with initialDunningLevel, and records it', async () => {
    // prepare
    const order = freshOrder();

    // act
    await deliver(order);

    // assess
    const submits = submitsOf(order.code);
    expect(submits).toHaveLength(1);
    expect(submits[0]!.status).toBe(200);
    expect(submits[0]!.headers['x-komfortkasse-api-key']).toBe(kk().apiKey);
    expect(submits[0]!.body).toMatchObject({ initialDunningLevel: 1, amount: 15.94, currency: 'EUR', type: 'COD' });
    const record = await getOrderRecord(order.id);
    expect(record?.orderCode).toBe(order.code);
    expect(record?.komfortkasse).toMatchObject({ state: 'submitted', everSubmitted: true, payloadHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(record?.komfortkasse.firstSubmittedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect(record?.komfortkasse.leaseToken).toBeUndefined();
    expect(record?.expiresAt).toBeGreaterThan(Date.now() / 1000);
    const attempts = await kkAttempts(order.id);
    expect(attempts).toEqual([
      expect.objectContaining({ target: 'komfortkasse', action: 'submit', outcome: 'success', httpStatus: 200, latencyMs: expect.any(Number) }),
    ]);
  });

  it('submits the same order once although it arrives three times as separate deliveries', async () => {
    // prepare
    const order = freshOrder();

    // act: three distinct delivery ids, so FIFO deduplication keeps all three messages
    await deliver(order, `dup-${order.id}-1`);
    await deliver(order, `dup-${order.id}-2`);
    await deliver(order, `dup-${order.id}-3`);

    // assess
    expect(deliveriesOf(order.id)).toHaveLength(3);
    expect(submitsOf(order.code)).toHaveLength(1);
    expect(kk().orders.get(order.code)?.submitCount).toBe(1);
    expect(await kkAttempts(order.id)).toHaveLength(1);
  });

  it('sends a changed total as one update without initialDunningLevel', async () => {
    // prepare
    const order = freshOrder();
    await deliver(order);

    // act
    await deliver({ ...order, total: '20.5' });
    await deliver({ ...order, total: '20.5' }, `again-${order.id}`);

    // assess
    const submits = submitsOf(order.code);
    expect(submits).toHaveLength(2);
    expect(submits[0]!.body).toMatchObject({ initialDunningLevel: 1, amount: 15.94 });
    expect(submits[1]!.body).toMatchObject({ amount: 20.5 });
    expect(submits[1]!.body).not.toHaveProperty('initialDunningLevel');
    expect(kk().orders.get(order.code)).toMatchObject({ submitCount: 2, initialDunningLevel: 1 });
    expect((await kkAttempts(order.id)).map((a) => [a.action, a.outcome])).toEqual([
      ['submit', 'success'],
      ['update', 'success'],
    ]);
    expect((await getOrderRecord(order.id))?.komfortkasse.state).toBe('submitted');
  });

  it('removes a canceled order once', async () => {
    // prepare
    const order = freshOrder();
    await deliver(order);

    // act
    await deliver({ ...order, status: 'canceled' });
    await deliver({ ...order, status: 'canceled' }, `cancel-again-${order.id}`);

    // assess
    expect(removesOf(order.code)).toHaveLength(1);
    expect(submitsOf(order.code)).toHaveLength(1);
    expect(kk().orders.get(order.code)).toMatchObject({ removed: true, paymentStatus: 'DISAPPEARED' });
    expect((await getOrderRecord(order.id))?.komfortkasse).toMatchObject({ state: 'removed', everSubmitted: true });
    expect((await kkAttempts(order.id)).map((a) => [a.action, a.outcome, a.httpStatus])).toEqual([
      ['submit', 'success', 200],
      ['remove', 'success', 200],
    ]);
  });

  it('makes no call for an order canceled before it was ever submitted', async () => {
    // prepare
    const order = freshOrder({ status: 'canceled' });

    // act
    await deliver(order);

    // assess
    expect(deliveriesOf(order.id)).toHaveLength(1);
    expect(callsOf(order.code)).toEqual([]);
    expect(await kkAttempts(order.id)).toEqual([]);
    expect((await getOrderRecord(order.id))?.komfortkasse).toMatchObject({ everSubmitted: false });
  });

  it('never sends a PayPal order and records it as skipped', async () => {
    // prepare
    const order = freshOrder({ payment_type: 'paypal' });

    // act
    await deliver(order);

    // assess
    expect(deliveriesOf(order.id)).toHaveLength(1);
    expect(callsOf(order.code)).toEqual([]);
    const record = await getOrderRecord(order.id);
    expect(record?.komfortkasse).toMatchObject({ state: 'skipped', everSubmitted: false });
    expect(record?.komfortkasse.error).toMatch(/paypal/);
  });

  it('rides out 503, 503 and succeeds on the third try within one delivery', async () => {
    // prepare
    const order = freshOrder();
    kk().injectFault({ status: 503, times: 2, pathPrefix: `/api/v2/order/${order.code}` });

    // act
    await deliver(order);

    // assess
    const submits = submitsOf(order.code);
    expect(submits.map((r) => r.status)).toEqual([503, 503, 200]);
    // 503 proves the order was not taken, so every try may still carry initialDunningLevel.
    expect(submits.every((r) => (r.body as { initialDunningLevel?: number }).initialDunningLevel === 1)).toBe(true);
    expect(deliveriesOf(order.id)).toHaveLength(1);
    expect(kk().orders.get(order.code)).toMatchObject({ submitCount: 1, initialDunningLevel: 1 });
    expect(await kkAttempts(order.id)).toEqual([expect.objectContaining({ action: 'submit', outcome: 'success', httpStatus: 200 })]);
    expect((await getOrderRecord(order.id))?.komfortkasse.state).toBe('submitted');
  });

  it('marks a 400 as needs-attention with the upstream message and does not retry it (after the one re-send without initialDunningLevel)', async () => {
    // prepare
    const order = freshOrder();
    const message = 'Invalid request: billing.countryCode unknown';
    kk().injectFault({ status: 400, body: { error: message }, times: Infinity, pathPrefix: `/api/v2/order/${order.code}` });

    // act
    await deliver(order);
    await deliver(order, `after-400-${order.id}`);

    // assess
    const submits = submitsOf(order.code);
    // A creating submission refused with a 4xx may mean Komfortkasse already holds the order
    // (an earlier integration): it is re-sent once without the level, and that answer decides.
    expect(submits.map((r) => r.status)).toEqual([400, 400]);
    expect(submits.map((r) => (r.body as { initialDunningLevel?: number }).initialDunningLevel)).toEqual([1, undefined]);
    expect(deliveriesOf(order.id)).toHaveLength(2); // the batch item succeeded: no SQS redelivery
    const record = await getOrderRecord(order.id);
    expect(record?.komfortkasse).toMatchObject({ state: 'needs-attention', everSubmitted: false });
    expect(record?.komfortkasse.error).toContain(message);
    expect(await kkAttempts(order.id)).toEqual([
      expect.objectContaining({ action: 'submit', outcome: 'refused', httpStatus: 400 }),
      expect.objectContaining({ action: 'update', outcome: 'failed-permanent', httpStatus: 400, error: expect.stringContaining(message) }),
    ]);
    expect(await peekMessages(stack, stack.queues.ordersDlq.url)).toEqual([]);
  });

  it('fetches the order for a notification envelope from VersaCommerce and submits it', async () => {
    // prepare
    const shop = stack.simulators.versaCommerce!;
    shop.addOrder(seedOrder());
    const envelope = { from: 'shop@example.org', to: 'hooks@example.org', subject: 'create order: 100', body: '<order><id>100</id></order>' };

    // act
    const response = await postWebhook(stack, envelope);
    await drained(stack);

    // assess
    expect(response.status).toBe(202);
    const fetches = shop.requests.filter((r) => r.path === '/api/orders/100.json');
    expect(fetches.length).toBeGreaterThanOrEqual(1);
    const expectedAuth = `Basic ${Buffer.from(`${shop.apiKey}:${shop.password}`).toString('base64')}`;
    expect(fetches.every((r) => r.headers.authorization === expectedAuth && r.status === 200)).toBe(true);
    const submits = submitsOf('196-083-565');
    expect(submits).toHaveLength(1);
    expect(submits[0]!.body).toMatchObject({ amount: 15.94, type: 'COD', date: '19-03-2013', items: [{ number: 'SKU-10000', name: 'T-Shirt' }] });
    const record = await getOrderRecord(100);
    expect(record).toMatchObject({ orderCode: '196-083-565', komfortkasse: { state: 'submitted' } });
  });

  it('parks a record that keeps failing with 503 in the orders DLQ, never recorded as submitted', async () => {
    // prepare
    const order = freshOrder();
    kk().injectFault({ status: 503, times: Infinity, pathPrefix: `/api/v2/order/${order.code}` });
    const maxReceiveCount = stack.queues.orders.maxReceiveCount!;

    // act
    const response = await postWebhook(stack, { order });

    // assess
    expect(response.status).toBe(202);
    const parked = await waitFor(
      async () => (await peekMessages(stack, stack.queues.ordersDlq.url)).find((m) => (JSON.parse(m.Body ?? '{}') as OrderChangedMessage).orderId === order.id),
      'the DLQ to hold the order',
      40_000,
    );
    expect(parked).toBeDefined();
    expect(deliveriesOf(order.id)).toHaveLength(maxReceiveCount);
    expect(submitsOf(order.code).every((r) => r.status === 503)).toBe(true);
    expect(submitsOf(order.code).length).toBe(maxReceiveCount * 3); // each delivery: 1 try + 2 retries
    const record = await getOrderRecord(order.id);
    expect(record?.komfortkasse).toMatchObject({ everSubmitted: false });
    expect(record?.komfortkasse.state).not.toBe('submitted');
    expect(record?.komfortkasse.leaseToken).toBeUndefined();
    const attempts = await kkAttempts(order.id);
    expect(attempts).toHaveLength(maxReceiveCount);
    expect(attempts.every((a) => a.outcome === 'failed-transient' && a.httpStatus === 503)).toBe(true);
  });

  it('ignores a snapshot older than the one already applied', async () => {
    // prepare
    const order = freshOrder({ updated_at: '2024-05-02T10:00:00+02:00' });
    await deliver(order);
    const before = await getOrderRecord(order.id);

    // act: a late, older snapshot with another total, then an older cancel
    await deliver({ ...order, total: '99.99', updated_at: '2024-05-01T10:00:00+02:00' });
    await deliver({ ...order, status: 'canceled', updated_at: '2024-05-02T09:59:59+02:00' });

    // assess
    expect(deliveriesOf(order.id)).toHaveLength(3);
    expect(callsOf(order.code)).toHaveLength(1);
    const after = await getOrderRecord(order.id);
    expect(after?.komfortkasse).toMatchObject({
      state: 'submitted',
      payloadHash: before?.komfortkasse.payloadHash,
      sourceUpdatedAt: '2024-05-02T10:00:00+02:00',
    });
    expect(kk().orders.get(order.code)?.body.amount).toBe(15.94);
  });
});
