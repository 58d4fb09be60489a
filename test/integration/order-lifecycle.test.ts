import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { needsAttention } from '../../lib/ops/needs-attention.ts';
import { listAttempts } from '../../lib/store/attempts.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import type { InvocationLog } from '../../local/runtime.ts';
import type { RunningStack } from '../../local/stack.ts';
import { buildVersaCommerceOrder } from '../factories/orders.ts';
import { buildNotificationEnvelope } from '../factories/webhooks.ts';
import { bootStack, cliFor, drained, postWebhook, queueDepth, waitFor } from './harness.ts';

// Every state an order can take in the shop, through the whole local stack: webhook →
// ingest → orders.fifo → sync-order → Komfortkasse (and klar-costs → Klar), with the
// VersaCommerce simulator as the shop the worker asks.
describe('the order lifecycle through the local stack', () => {
  let stack: RunningStack;
  const invocations: InvocationLog[] = [];
  let cli: Awaited<ReturnType<typeof cliFor>>['cli'];
  let cleanup = () => {};

  beforeAll(async () => {
    stack = await bootStack({ onInvocation: (log) => invocations.push(log) });
    ({ cli, cleanup } = await cliFor(stack));
  });
  afterAll(async () => {
    await stack?.stop();
    cleanup();
  });
  const historyJson = async (ref: string) => {
    const result = await cli('history', ref, '--json');
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout);
  };
  afterEach(() => {
    stack.simulators.komfortkasse!.clearFaults();
    stack.simulators.klar!.clearFaults();
  });

  let nextId = 12_000;
  const freshOrder = (overrides: Record<string, unknown> = {}) => {
    const id = nextId++;
    return buildVersaCommerceOrder({ id, code: `LC-${id}`, ...overrides });
  };
  const kk = () => stack.simulators.komfortkasse!;
  const shop = () => stack.simulators.versaCommerce!;
  const submitsOf = (code: string) => kk().requests.filter((r) => r.method === 'POST' && r.path === `/api/v2/order/${code}`);
  const removesOf = (code: string) => kk().requests.filter((r) => r.method === 'POST' && r.path === `/api/v2/order/remove/${code}`);
  const fetchesOf = (id: number) => shop().requests.filter((r) => r.method === 'GET' && r.path === `/api/orders/${id}.json`);
  const klarPostsOf = (id: number) =>
    stack.simulators.klar!.requests.filter((r) => r.method === 'POST' && JSON.stringify(r.body).includes(`"orderId":"${id}"`));

  /** The shop announces a change of the order (it keeps the order itself in its API). */
  const notify = async (subject: string, deliveryId?: string) => {
    const reply = await postWebhook(stack, buildNotificationEnvelope({ subject }), deliveryId ? { headers: { 'x-orderbridge-delivery': deliveryId } } : {});
    expect(reply.status).toBe(202);
    await drained(stack);
  };
  const deliver = async (order: Record<string, unknown>) => {
    expect((await postWebhook(stack, { order })).status).toBe(202);
    await drained(stack);
  };

  describe('vanished orders', () => {
    it('removes an order deleted in the shop exactly once, found through the history', async () => {
      // prepare: the shop has the order, and Komfortkasse got it
      const order = freshOrder();
      shop().addOrder(order);
      await notify(`create order: ${order.id}`);
      expect(submitsOf(order.code)).toHaveLength(1);
      // act: deleted in the shop; the notification names only the id
      shop().removeOrder(order.id);
      await notify(`delete order: ${order.id}`);
      await notify(`delete order: ${order.id}`, 'a-second-delivery'); // a repeat changes nothing
      // assess
      expect(removesOf(order.code)).toHaveLength(1);
      expect(kk().orders.get(order.code)).toMatchObject({ removed: true, paymentStatus: 'DISAPPEARED' });
      const record = await getOrderRecord(order.id);
      expect(record?.komfortkasse).toMatchObject({ state: 'removed', everSubmitted: true });
      expect(record?.orderCode).toBe(order.code);
      const attempts = (await listAttempts(order.id)).filter((a) => a.target === 'komfortkasse');
      expect(attempts.map((a) => [a.action, a.outcome])).toEqual([
        ['submit', 'success'],
        ['remove', 'success'],
      ]);
      expect(record?.komfortkasse.error).toContain('vanished'); // why it was removed
      expect((await needsAttention()).some((e) => e.orderId === order.id)).toBe(false);
    });

    it('records an order that vanished before it ever reached Komfortkasse, and calls nothing', async () => {
      // prepare: the shop never had (or already deleted) the order
      const id = nextId++;
      // act
      await notify(`delete order: ${id}`);
      // assess
      expect(kk().requests.filter((r) => r.path.endsWith(`/${id}`) || r.path.includes(`LC-${id}`))).toEqual([]);
      expect(fetchesOf(id)).toHaveLength(1);
      const record = await getOrderRecord(id);
      expect(record?.komfortkasse.state).toBe('removed');
      expect(record?.komfortkasse.everSubmitted).toBe(false);
      expect(await listAttempts(id)).toEqual([expect.objectContaining({ target: 'versacommerce', action: 'fetch', outcome: 'not-found', httpStatus: 404 })]);
      expect((await needsAttention()).some((e) => e.orderId === id)).toBe(false);
    });
  });

  describe('returned orders', () => {
    it('removes a returned order like a canceled one, once, and never submits it again until the shop reopens it', async () => {
      // prepare
      const order = freshOrder();
      shop().addOrder(order);
      await notify(`create order: ${order.id}`);
      // act: returned to the seller
      shop().addOrder({ ...order, status: 'returned' });
      await notify(`update order: ${order.id}`);
      await deliver({ ...order, status: 'returned' });
      // assess
      expect(removesOf(order.code)).toHaveLength(1);
      expect(submitsOf(order.code)).toHaveLength(1);
      expect((await getOrderRecord(order.id))?.komfortkasse.state).toBe('removed');
      // act: a late snapshot of the open order (no newer updated_at) must not bring it back
      await deliver({ ...order, note: 'late copy' });
      expect(submitsOf(order.code)).toHaveLength(1);
      // act: the shop reopens it (the worker asks the shop itself)
      shop().addOrder({ ...order, status: 'open' });
      await notify(`update order: ${order.id}`);
      // assess
      expect(submitsOf(order.code)).toHaveLength(2);
      expect((await getOrderRecord(order.id))?.komfortkasse.state).toBe('submitted');
    });
  });

  describe('paid in the shop', () => {
    it('stops reminders with stopReminder on an update, never a remove; back to unpaid says so once', async () => {
      // prepare
      const order = freshOrder({ payment_type: 'invoice', payment_status: 'not_paid' });
      await deliver(order);
      expect(submitsOf(order.code)).toHaveLength(1);
      expect(submitsOf(order.code)[0]!.body).not.toHaveProperty('stopReminder');
      // act: paid
      await deliver({ ...order, payment_status: 'paid' });
      await deliver({ ...order, payment_status: 'paid', note: 'same payload for Komfortkasse' });
      // assess
      let submits = submitsOf(order.code);
      expect(submits).toHaveLength(2);
      expect(submits[1]!.body).toMatchObject({ stopReminder: true });
      expect(removesOf(order.code)).toHaveLength(0);
      expect(kk().orders.get(order.code)?.remindersStopped).toBe(true);
      // act: the payment bounced
      await deliver({ ...order, payment_status: 'partial_payment' });
      await deliver({ ...order, payment_status: 'partial_payment', total: '20.00' });
      // assess: false once, then omitted again
      submits = submitsOf(order.code);
      expect(submits).toHaveLength(4);
      expect(submits[2]!.body).toMatchObject({ stopReminder: false });
      expect(submits[3]!.body).not.toHaveProperty('stopReminder');
      expect(kk().orders.get(order.code)?.remindersStopped).toBe(false);
      expect((await getOrderRecord(order.id))?.komfortkasse.remindersStopped).toBe(false);
    });

    it.each(['captured', 'overpaid'])('treats payment_status %s as paid', async (paymentStatus) => {
      // prepare
      const order = freshOrder({ payment_status: 'not_paid' });
      await deliver(order);
      // act
      await deliver({ ...order, payment_status: paymentStatus });
      // assess
      expect(submitsOf(order.code)[1]!.body).toMatchObject({ stopReminder: true });
    });

    it('treats a submitted order that the shop closes ("sent and paid") as paid', async () => {
      // prepare
      const order = freshOrder({ payment_status: 'not_paid' });
      await deliver(order);
      // act
      await deliver({ ...order, status: 'closed' });
      // assess
      const submits = submitsOf(order.code);
      expect(submits).toHaveLength(2);
      expect(submits[1]!.body).toMatchObject({ stopReminder: true, statusDescription: 'closed' });
      expect(removesOf(order.code)).toHaveLength(0);
      expect(kk().orders.get(order.code)?.remindersStopped).toBe(true);
    });
  });

  describe('settled before first sight', () => {
    it.each([
      ['paid', { payment_status: 'paid' }, 'payment_status paid'],
      ['closed ("sent and paid")', { status: 'closed' }, 'status closed'],
    ])('never submits an order first seen %s: recorded skipped with the reason, no Komfortkasse call', async (_, overrides, why) => {
      // prepare: the shop has it (a notification) and a snapshot of it arrives too
      const order = freshOrder(overrides);
      shop().addOrder(order);
      // act
      await notify(`create order: ${order.id}`);
      await deliver({ ...order, note: 'the same order as a snapshot' });
      // assess
      expect(kk().requests.filter((r) => r.path.includes(order.code))).toEqual([]);
      const history = await historyJson(order.code);
      expect(history.komfortkasse).toEqual({ state: 'skipped', error: expect.stringContaining(`settled in the shop (${why})`) });
      expect((await needsAttention()).some((e) => e.orderId === order.id)).toBe(false);
      // …and Klar still gets its cost
      await waitFor(() => stack.simulators.klar!.costs.get(String(order.id)), 'the cost to reach Klar');
    });

    it('submits a settled-first order once it is unpaid again (a bounced payment), as a first submission', async () => {
      // prepare
      const order = freshOrder({ payment_status: 'paid' });
      await deliver(order);
      // act
      await deliver({ ...order, payment_status: 'not_paid' });
      // assess
      expect(submitsOf(order.code)).toHaveLength(1);
      expect(submitsOf(order.code)[0]!.body).not.toHaveProperty('stopReminder');
      expect((await historyJson(order.code)).komfortkasse.state).toBe('submitted');
    });
  });

  describe('deleted stays deleted', () => {
    it('lets no late snapshot bring back a removed deleted order, whatever its updated_at; a fetch from the shop can', async () => {
      // prepare: submitted, then deleted in the shop and removed from Komfortkasse
      const order = freshOrder({ updated_at: '2024-05-01T10:00:00+02:00' });
      shop().addOrder(order);
      await notify(`create order: ${order.id}`);
      shop().removeOrder(order.id);
      await notify(`delete order: ${order.id}`);
      expect(removesOf(order.code)).toHaveLength(1);
      // act: a late retry of an older webhook whose updated_at is newer than the first one
      await deliver({ ...order, updated_at: '2024-05-01T11:00:00+02:00', note: 'a late retry' });
      await deliver({ ...order, updated_at: '2030-01-01T00:00:00+01:00', payment_status: 'paid' });
      // assess: nothing reached Komfortkasse again, the order stays removed there
      expect(submitsOf(order.code)).toHaveLength(1);
      expect(removesOf(order.code)).toHaveLength(1);
      expect(kk().orders.get(order.code)).toMatchObject({ removed: true, paymentStatus: 'DISAPPEARED' });
      expect((await getOrderRecord(order.id))?.komfortkasse).toMatchObject({ state: 'removed', vanishedAt: expect.any(String) });
      // act: the shop gives the order again (a fetch succeeds)
      shop().addOrder({ ...order, updated_at: '2024-05-01T12:00:00+02:00' });
      await notify(`update order: ${order.id}`);
      // assess
      expect(submitsOf(order.code)).toHaveLength(2);
      const record = await getOrderRecord(order.id);
      expect(record?.komfortkasse.state).toBe('submitted');
      expect(record?.komfortkasse.vanishedAt).toBeUndefined();
    });

    it('brings a deleted order back on orderbridge replay, which fetches it from the shop', async () => {
      // prepare: submitted, deleted in the shop, removed
      const order = freshOrder({ updated_at: '2024-05-01T10:00:00+02:00' });
      shop().addOrder(order);
      await notify(`create order: ${order.id}`);
      shop().removeOrder(order.id);
      await notify(`delete order: ${order.id}`);
      expect(removesOf(order.code)).toHaveLength(1);
      // act: the shop has it again (the 404 was wrong); an operator replays it
      shop().addOrder(order);
      const replay = await cli('replay', order.code);
      await drained(stack);
      // assess
      expect(replay.code).toBe(0);
      expect(submitsOf(order.code)).toHaveLength(2);
      expect((await getOrderRecord(order.id))?.komfortkasse).toMatchObject({ state: 'submitted', vanishedAt: undefined });
    });

    it('lets no snapshot submit an order that vanished before it ever reached Komfortkasse', async () => {
      // prepare: the shop answers 404 for an order Orderbridge never saw
      const order = freshOrder({ updated_at: '2024-05-01T10:00:00+02:00' });
      await notify(`delete order: ${order.id}`);
      // act: a snapshot sent before the deletion arrives late
      await deliver(order);
      // assess
      expect(kk().requests.filter((r) => r.path.includes(order.code))).toEqual([]);
      expect((await getOrderRecord(order.id))?.komfortkasse).toMatchObject({ state: 'removed', everSubmitted: false, vanishedAt: expect.any(String) });
    });
  });

  describe("Komfortkasse's answer", () => {
    it('keeps the reference number and payment status of each 200; history shows them', async () => {
      // prepare
      const order = freshOrder();
      // act
      await deliver(order);
      // assess: as Komfortkasse answered
      const held = kk().orders.get(order.code)!;
      expect(held.referenceNumber).toMatch(/^K\d+$/);
      expect((await historyJson(order.code)).komfortkasse).toMatchObject({ state: 'submitted', referenceNumber: held.referenceNumber, paymentStatus: 'UNPAID' });
      const text = await cli('history', order.code);
      expect(text.stdout).toContain(`reference ${held.referenceNumber}`);
      expect(text.stdout).toContain('payment UNPAID');
      // act: canceled; the remove's answer says DISAPPEARED
      await deliver({ ...order, status: 'canceled' });
      // assess
      expect((await historyJson(order.code)).komfortkasse).toMatchObject({ state: 'removed', referenceNumber: held.referenceNumber, paymentStatus: 'DISAPPEARED' });
    });
  });

  describe('repeated notifications', () => {
    it('processes two byte-identical notifications when the order changed in between', async () => {
      // prepare
      const order = freshOrder({ total: '15.94' });
      shop().addOrder(order);
      const body = buildNotificationEnvelope({ subject: `update order: ${order.id}` });
      // act: the same body twice, the shop's order changing in between
      expect((await postWebhook(stack, body)).status).toBe(202);
      await drained(stack);
      shop().addOrder({ ...order, total: '99.00' });
      expect((await postWebhook(stack, body)).status).toBe(202);
      await drained(stack);
      // assess: both reached the worker; one fetch each
      expect(fetchesOf(order.id)).toHaveLength(2);
      const submits = submitsOf(order.code);
      expect(submits.map((r) => (r.body as { amount: number }).amount)).toEqual([15.94, 99]);
    });

    it('still drops a repeated delivery of the same order body (deduplicated by content)', async () => {
      const order = freshOrder();
      const before = invocations.filter((i) => i.functionName === 'sync-order').reduce((n, i) => n + (i.records ?? 0), 0);
      await deliver(order);
      await deliver(order);
      const after = invocations.filter((i) => i.functionName === 'sync-order').reduce((n, i) => n + (i.records ?? 0), 0);
      expect(after - before).toBe(1);
      expect(submitsOf(order.code)).toHaveLength(1);
    });
  });

  describe('one write per webhook, Klar before Komfortkasse', () => {
    it('stores one message per webhook; the order worker forwards the Klar cost', async () => {
      // prepare: hold the workers so the queues can be counted
      await stack.stopWorkers();
      const order = freshOrder({ payment_type: 'paypal', total: '100.00' });
      try {
        // act
        expect((await postWebhook(stack, { order })).status).toBe(202);
        // assess
        expect(await queueDepth(stack, stack.queues.orders.url)).toBe(1);
        expect(await queueDepth(stack, stack.queues.klarCosts.url)).toBe(0);
      } finally {
        stack.startWorkers();
      }
      await waitFor(() => stack.simulators.klar!.costs.get(String(order.id)), 'the forwarded cost to reach Klar');
      await drained(stack);
      expect(stack.simulators.klar!.costs.get(String(order.id))).toMatchObject({ transactionCosts: 2.84 });
    });

    it('uploads the Klar cost while Komfortkasse is down', async () => {
      // prepare
      const order = freshOrder({ payment_type: 'cod', total: '30.00' });
      kk().injectFault({ pathPrefix: `/api/v2/order/${order.code}`, status: 503, times: 100 });
      // act
      expect((await postWebhook(stack, { order })).status).toBe(202);
      // assess: Klar has it, Komfortkasse has not
      await waitFor(() => stack.simulators.klar!.costs.get(String(order.id)), 'the cost to reach Klar during the outage');
      expect(kk().orders.has(order.code)).toBe(false);
      expect(klarPostsOf(order.id)).toHaveLength(1);
      kk().clearFaults();
      await drained(stack, 60_000);
    });
  });

  describe('an unknown payment type', () => {
    it('is needs-attention on both sides, naming PAYMENT_TYPE_MAP', async () => {
      // prepare
      const order = freshOrder({ payment_type: 'barzahlung' });
      // act
      await deliver(order);
      // assess
      const record = await getOrderRecord(order.id);
      expect(record?.komfortkasse).toMatchObject({ state: 'needs-attention', error: expect.stringContaining('PAYMENT_TYPE_MAP') });
      await waitFor(async () => (await getOrderRecord(order.id))?.klar.state === 'needs-attention', 'the Klar side to be parked');
      expect((await getOrderRecord(order.id))?.klar.error).toContain('PAYMENT_TYPE_MAP');
      expect(submitsOf(order.code)).toHaveLength(0);
      expect(klarPostsOf(order.id)).toHaveLength(0);
      const [entry] = (await needsAttention()).filter((e) => e.orderId === order.id);
      expect(entry).toMatchObject({ komfortkasse: { state: 'needs-attention' }, klar: { state: 'needs-attention' } });
    });
  });
});
