import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { needsAttention } from '../../lib/ops/needs-attention.ts';
import { statusJsonSchema } from '../../lib/ops/status.ts';
import { metrics } from '../../lib/observability/metrics.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import { getShopApiCheck } from '../../lib/store/shop-api-check.ts';
import { seedKomfortkasseOrder } from '../../local/simulators/fixtures.ts';
import type { RunningStack } from '../../local/stack.ts';
import { buildVersaCommerceOrder } from '../factories/orders.ts';
import { buildNotificationEnvelope } from '../factories/webhooks.ts';
import { bootStack, cliFor, drained, postWebhook, queueDepth, waitFor } from './harness.ts';

// Two corners of an order's life through the whole local stack, with
// KOMFORTKASSE_INITIAL_DUNNING_LEVEL set as a shop would set it: an order Komfortkasse
// already holds from an earlier integration, and a shop API that answers 404 to everything.
describe('corners of the order lifecycle through the local stack', () => {
  let stack: RunningStack;
  let cli: Awaited<ReturnType<typeof cliFor>>['cli'];
  let cleanup = () => {};

  beforeAll(async () => {
    stack = await bootStack({ env: { KOMFORTKASSE_INITIAL_DUNNING_LEVEL: '2' } });
    ({ cli, cleanup } = await cliFor(stack));
  });
  afterAll(async () => {
    await stack?.stop();
    cleanup();
  });
  afterEach(() => {
    kk().clearFaults();
    shop().clearFaults();
    vi.restoreAllMocks();
  });

  let nextId = 31_000;
  const freshOrder = (overrides: Record<string, unknown> = {}) => {
    const id = nextId++;
    return buildVersaCommerceOrder({ id, code: `CO-${id}`, ...overrides });
  };
  const kk = () => stack.simulators.komfortkasse!;
  const shop = () => stack.simulators.versaCommerce!;
  const submitsOf = (code: string) => kk().requests.filter((r) => r.method === 'POST' && r.path === `/api/v2/order/${code}`);
  const removesOf = (code: string) => kk().requests.filter((r) => r.method === 'POST' && r.path === `/api/v2/order/remove/${code}`);
  const historyJson = async (ref: string) => {
    const result = await cli('history', ref, '--json');
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout);
  };
  const deliver = async (order: Record<string, unknown>) => {
    expect((await postWebhook(stack, { order })).status).toBe(202);
    await drained(stack);
  };
  const notify = async (subject: string) => {
    expect((await postWebhook(stack, buildNotificationEnvelope({ subject }))).status).toBe(202);
  };

  describe('already in Komfortkasse (an earlier integration)', () => {
    it('re-sends a refused first submission once without initialDunningLevel: one refused and one accepted call, recorded submitted', async () => {
      // prepare: Komfortkasse holds the order from the shop's earlier plugin
      const order = freshOrder();
      const held = kk().seedOrder({ number: order.code, body: seedKomfortkasseOrder({ initialDunningLevel: 1 }), createdAt: '2026-11-01T09:00:00Z' });
      // act
      await deliver(order);
      // assess: the refusal, then the update without the level
      const calls = submitsOf(order.code);
      expect(calls.map((r) => r.status)).toEqual([400, 200]);
      expect(calls[0]!.body).toMatchObject({ initialDunningLevel: 2 });
      expect(calls[1]!.body).not.toHaveProperty('initialDunningLevel');
      expect(kk().orders.get(order.code)).toMatchObject({ submitCount: 1, initialDunningLevel: 1, body: { amount: 15.94 } });
      const history = await historyJson(order.code);
      expect(history.komfortkasse).toMatchObject({ state: 'submitted', referenceNumber: held.referenceNumber, paymentStatus: 'UNPAID' });
      expect(history.komfortkasse).not.toHaveProperty('error');
      expect(history.attempts.filter((a: { target: string }) => a.target === 'komfortkasse')).toEqual([
        expect.objectContaining({ action: 'submit', outcome: 'refused', httpStatus: 400, error: expect.stringContaining('initialDunningLevel') }),
        expect.objectContaining({ action: 'update', outcome: 'success', httpStatus: 200 }),
      ]);
      expect((await needsAttention()).some((e) => e.orderId === order.id)).toBe(false);
      // act: a later change is an ordinary update, one call
      await deliver({ ...order, total: '20.00' });
      // assess
      expect(submitsOf(order.code).map((r) => r.status)).toEqual([400, 200, 200]);
      expect(submitsOf(order.code)[2]!.body).not.toHaveProperty('initialDunningLevel');
    });

    it("keeps what Komfortkasse says of a migrated order: its reference and its payment status (PAID there)", async () => {
      // prepare: the customer paid while the earlier plugin ran; the shop has not caught up
      const order = freshOrder({ payment_status: 'not_paid' });
      const held = kk().seedOrder({ number: order.code, body: seedKomfortkasseOrder(), paymentStatus: 'PAID', referenceNumber: 'LEGACY-4711' });
      // act
      await deliver(order);
      // assess
      expect(held.referenceNumber).toBe('LEGACY-4711');
      expect((await historyJson(order.code)).komfortkasse).toMatchObject({ state: 'submitted', referenceNumber: 'LEGACY-4711', paymentStatus: 'PAID' });
      expect((await cli('history', order.code)).stdout).toMatch(/Komfortkasse\s+submitted\s+reference LEGACY-4711 · payment PAID/);
    });

    it('creates a new order with the level in one call', async () => {
      // prepare
      const order = freshOrder();
      // act
      await deliver(order);
      // assess
      expect(submitsOf(order.code).map((r) => r.status)).toEqual([200]);
      expect(kk().orders.get(order.code)?.initialDunningLevel).toBe(2);
    });

    it('treats a 401 on the first submission as our credentials: no re-send without the level, the retry creates it with it', async () => {
      // prepare
      const order = freshOrder();
      kk().injectFault({ pathPrefix: `/api/v2/order/${order.code}`, status: 401, body: { error: 'Invalid API Key' } });
      // act
      await deliver(order);
      // assess
      const calls = submitsOf(order.code);
      expect(calls.map((r) => r.status)).toEqual([401, 200]);
      for (const call of calls) expect(call.body).toMatchObject({ initialDunningLevel: 2 });
      expect((await getOrderRecord(order.id))?.komfortkasse.state).toBe('submitted');
    });

    it('parks an order Komfortkasse refuses again without the level: a real problem of the order', async () => {
      // prepare: Komfortkasse refuses whatever is sent for this order
      const order = freshOrder();
      kk().injectFault({ pathPrefix: `/api/v2/order/${order.code}`, status: 400, body: { error: 'Invalid request: amount does not match' }, times: Infinity });
      // act
      await deliver(order);
      // assess
      const calls = submitsOf(order.code);
      expect(calls).toHaveLength(2);
      expect(calls[1]!.body).not.toHaveProperty('initialDunningLevel');
      expect((await getOrderRecord(order.id))?.komfortkasse).toMatchObject({ state: 'needs-attention', error: expect.stringContaining('amount does not match') });
    });
  });

  describe('a shop API that answers 404 to everything (a wrong URL or proxy)', () => {
    it('removes nothing: the order is left untouched, the configuration error counted, recorded and shown by status', async () => {
      // prepare: a submitted order
      const order = freshOrder();
      shop().addOrder(order);
      await notify(`create order: ${order.id}`);
      await drained(stack);
      expect(submitsOf(order.code)).toHaveLength(1);
      const before = await getOrderRecord(order.id);
      const counted = vi.spyOn(metrics, 'addMetric');
      shop().injectFault({ pathPrefix: '/api/', status: 404, body: { error: 'Not found' }, times: Infinity });
      // act: the shop announces a change; every answer of its API is 404
      await notify(`update order: ${order.id}`);
      // assess: retried until the DLQ, nothing removed
      await waitFor(async () => (await queueDepth(stack, stack.queues.ordersDlq.url)) === 1, 'the message to reach the orders DLQ', 60_000);
      expect(removesOf(order.code)).toEqual([]);
      expect(kk().orders.get(order.code)).toMatchObject({ removed: false, paymentStatus: 'UNPAID' });
      const after = await getOrderRecord(order.id);
      expect(after?.komfortkasse).toEqual(before?.komfortkasse);
      const checks = shop().requests.filter((r) => r.path === '/api/orders/count.json');
      expect(checks.length).toBeGreaterThanOrEqual(1);
      expect(checks.every((r) => r.headers.authorization === shop().requests.find((f) => f.path === `/api/orders/${order.id}.json`)!.headers.authorization)).toBe(true);
      const failures = counted.mock.calls.filter(([name]) => name === 'shopApiCheckFailed');
      expect(failures.length).toBe(checks.length);
      expect(await getShopApiCheck()).toMatchObject({ lastFailureAt: expect.any(String), lastError: expect.stringContaining('404') });
      const status = statusJsonSchema.parse(JSON.parse((await cli('status', '--json')).stdout));
      expect(status.shopApi.failing).toBe(true);
      expect(status.needsALook).toEqual(expect.arrayContaining([expect.stringMatching(/^the shop answered 404 for an order and its API did not answer either/)]));
    });

    it('still removes an order the shop really deleted once its API answers (and status says so)', async () => {
      // prepare
      const order = freshOrder();
      shop().addOrder(order);
      await notify(`create order: ${order.id}`);
      await drained(stack);
      // act: deleted in the shop; the API answers the count
      shop().removeOrder(order.id);
      await notify(`delete order: ${order.id}`);
      await drained(stack);
      // assess
      expect(removesOf(order.code)).toHaveLength(1);
      expect(shop().requests.filter((r) => r.path === '/api/orders/count.json' && r.status === 200).length).toBeGreaterThanOrEqual(1);
      const status = statusJsonSchema.parse(JSON.parse((await cli('status', '--json')).stdout));
      expect(status.shopApi).toMatchObject({ failing: false, lastCheck: { lastOkAt: expect.any(String) } });
    });
  });
});
