import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listAttention } from '../../lib/store/attention.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import type { RunningStack } from '../../local/stack.ts';
import { buildVersaCommerceOrder } from '../factories/orders.ts';
import { buildNotificationEnvelope } from '../factories/webhooks.ts';
import { bootStack, drained, postWebhook, waitFor } from './harness.ts';

// Findings of the order-path review, each through the local stack: webhook → ingest →
// orders.fifo → the real workers → the simulators, the recorded state read back from
// DynamoDB Local.
describe('review findings through the local stack', () => {
  let stack: RunningStack;

  beforeAll(async () => {
    stack = await bootStack();
  });
  afterAll(async () => stack?.stop());
  afterEach(() => stack.simulators.komfortkasse!.clearFaults());

  let nextId = 8100;
  const freshOrder = (overrides: Record<string, unknown> = {}) => {
    const id = nextId++;
    return buildVersaCommerceOrder({ id, code: `RF-${id}`, payment_type: 'invoice', ...overrides });
  };
  const kk = () => stack.simulators.komfortkasse!;
  const submitsOf = (code: string) => kk().requests.filter((r) => r.method === 'POST' && r.path === `/api/v2/order/${code}`);
  let delivery = 0;
  /** Posts the snapshot as its own delivery (as a redrive or a late retry would) and waits for the pipeline. */
  const deliver = async (order: Record<string, unknown>) => {
    const response = await postWebhook(stack, { order }, { headers: { 'x-orderbridge-delivery': `rf-${++delivery}` } });
    expect(response.status).toBe(202);
    await drained(stack);
  };

  describe('finding 3: every settle from a snapshot records its updated_at', () => {
    it('an older snapshot redriven after a newer one was parked does not overwrite the parked content', async () => {
      // prepare: the newer copy (total 20) is rejected by Komfortkasse and parked
      const newer = freshOrder({ total: '20.00', updated_at: '2026-03-02T10:00:00+01:00' });
      kk().injectFault({ pathPrefix: `/api/v2/order/${newer.code}`, status: 400, body: { error: 'invalid order' } });
      await deliver(newer);
      const parked = await waitFor(async () => {
        const record = await getOrderRecord(newer.id);
        return record?.komfortkasse.state === 'needs-attention' ? record : undefined;
      }, 'the newer copy to be parked');
      expect(parked.komfortkasse.sourceUpdatedAt).toBe('2026-03-02T10:00:00+01:00');
      // act: the older copy (total 10) arrives late
      await deliver({ ...newer, total: '10.00', updated_at: '2026-03-01T10:00:00+01:00' });
      // assess: no call for the older content; still parked with the newer one
      expect(submitsOf(newer.code)).toHaveLength(1);
      expect((await getOrderRecord(newer.id))?.komfortkasse).toMatchObject({ state: 'needs-attention', payloadHash: parked.komfortkasse.payloadHash });
    });

    it('a newer copy that changes nothing moves updated_at on, so an older copy with other content stays out', async () => {
      // prepare: submitted at t1, then the same content again at t3 (no call)
      const first = freshOrder({ total: '30.00', updated_at: '2026-03-01T10:00:00+01:00' });
      await deliver(first);
      await waitFor(async () => (await getOrderRecord(first.id))?.komfortkasse.state === 'submitted', 'the first submit');
      await deliver({ ...first, updated_at: '2026-03-03T10:00:00+01:00' });
      expect(submitsOf(first.code)).toHaveLength(1);
      expect((await getOrderRecord(first.id))?.komfortkasse.sourceUpdatedAt).toBe('2026-03-03T10:00:00+01:00');
      // act: a copy from t2 with another total arrives late
      await deliver({ ...first, total: '99.00', updated_at: '2026-03-02T10:00:00+01:00' });
      // assess: stale, Komfortkasse keeps the t3 content
      expect(submitsOf(first.code)).toHaveLength(1);
      expect(kk().orders.get(first.code)?.body).toMatchObject({ amount: 30 });
    });
  });

  describe('finding 5: a vanished order unparks its Klar side', () => {
    it('a parked order deleted in the shop leaves the needs-attention list on both sides', async () => {
      // prepare: a payment type no table knows parks both sides
      const order = freshOrder({ payment_type: 'barzahlung' });
      stack.simulators.versaCommerce!.addOrder(order);
      await deliver(order);
      await waitFor(async () => {
        const record = await getOrderRecord(order.id);
        return record?.komfortkasse.state === 'needs-attention' && record.klar.state === 'needs-attention';
      }, 'both sides to be parked');
      // act: deleted in the shop; the shop's notification arrives
      stack.simulators.versaCommerce!.removeOrder(order.id);
      expect((await postWebhook(stack, buildNotificationEnvelope({ subject: `delete order: ${order.id}` }))).status).toBe(202);
      await drained(stack);
      // assess: nothing parked any more; Klar keeps what it has (no delete), the record says pending
      const record = await waitFor(async () => {
        const r = await getOrderRecord(order.id);
        return r?.komfortkasse.state === 'removed' ? r : undefined;
      }, 'the deletion to be recorded');
      expect(record.klar.state).toBe('pending');
      expect(record.klar.error).toBeUndefined();
      expect((await listAttention()).filter((entry) => entry.orderId === order.id)).toEqual([]);
    });
  });
});
