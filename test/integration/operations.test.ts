import { setTimeout as sleep } from 'node:timers/promises';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrderChangedMessage } from '../../lib/domain/messages.ts';
import { needsAttention } from '../../lib/ops/needs-attention.ts';
import { statusJsonSchema } from '../../lib/ops/status.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import { recordReconcileRun } from '../../lib/store/reconcile-runs.ts';
import type { RunningStack } from '../../local/stack.ts';
import { buildVersaCommerceOrder } from '../factories/orders.ts';
import { bootStack, cliFor, drained, postWebhook, queueDepth, waitFor } from './harness.ts';

const KLAR_UPLOAD_PATH = '/06.2024/transaction-costs/json';

// Production operations through the CLI against one local stack (DynamoDB Local, the SQS
// emulator, the upstream simulators, the real workers): bulk replay of parked orders,
// credential errors that must not park orders, privacy on redrive, and the status screen.
describe('operations against the local stack', () => {
  let stack: RunningStack;
  let cli: Awaited<ReturnType<typeof cliFor>>['cli'];
  let cleanup = () => {};

  beforeAll(async () => {
    // A long visibility timeout: on a loaded machine a batch may outlast the harness's 2 s and
    // be handed out twice, which would retry (and so unpark) an order these tests parked.
    // Failed records still come back at once (retryDelaySeconds 0).
    stack = await bootStack({ visibilityTimeoutSeconds: 30 });
    ({ cli, cleanup } = await cliFor(stack));
  });
  afterAll(async () => {
    await stack?.stop();
    cleanup();
  });

  let nextId = 9100;
  /** An order only this file uses, known to the shop simulator (replay and the worker fetch it). */
  const shopOrder = (overrides: Record<string, unknown> = {}) => {
    const id = nextId++;
    const order = buildVersaCommerceOrder({ id, code: `OPS-${id}`, ...overrides }) as Record<string, unknown> & { id: number; code: string };
    stack.simulators.versaCommerce!.addOrder(order);
    return order;
  };
  const kk = () => stack.simulators.komfortkasse!;
  const kkCalls = (code: string) => kk().requests.filter((r) => r.method === 'POST' && r.path === `/api/v2/order/${code}`).map((r) => r.status);
  const historyJson = async (ref: string) => {
    const result = await cli('history', ref, '--json');
    return result.code === 0 ? JSON.parse(result.stdout) : undefined;
  };
  const parkedIds = async () => (await needsAttention()).map((e) => e.orderId);

  /** Komfortkasse rejects the order once (400): it parks on the Komfortkasse side. */
  async function parkOnKomfortkasse(order: { id: number; code: string }, error = 'amount does not match the invoice') {
    kk().injectFault({ pathPrefix: `/api/v2/order/${order.code}`, status: 400, body: { error }, times: 1 });
    expect((await postWebhook(stack, { order })).status).toBe(202);
    await waitFor(async () => (await getOrderRecord(order.id))?.komfortkasse.state === 'needs-attention', `order ${order.code} parked on Komfortkasse`);
  }

  /** Klar calls the order's upload INVALID once: it parks on the Klar side (alone in its batch). */
  async function parkOnKlar(order: { id: number; code: string }) {
    await drained(stack);
    stack.simulators.klar!.injectFault({
      method: 'POST',
      pathPrefix: KLAR_UPLOAD_PATH,
      status: 400,
      body: { status: 'INVALID', errors: [{ id: 1, key: '0.orderId', message: 'unknown order' }] },
      times: 1,
    });
    expect((await postWebhook(stack, { order })).status).toBe(202);
    await waitFor(async () => (await getOrderRecord(order.id))?.klar.state === 'needs-attention', `order ${order.code} parked on Klar`);
    await drained(stack);
  }

  describe('replay --needs-attention', () => {
    it('brings every parked order back once the upstream recovers; --target klar takes only Klar-parked ones; --dry-run enqueues nothing', async () => {
      // prepare: one order parked on Klar, three on Komfortkasse
      const onKlar = shopOrder();
      await parkOnKlar(onKlar);
      const onKomfortkasse = [shopOrder(), shopOrder(), shopOrder()];
      for (const order of onKomfortkasse) await parkOnKomfortkasse(order);
      await drained(stack);
      const all = [onKlar, ...onKomfortkasse];
      const listed = JSON.parse((await cli('needs-attention', '--json')).stdout).map((e: { orderId: number }) => e.orderId);
      expect(listed).toEqual(expect.arrayContaining(all.map((o) => o.id)));

      // act 1: dry run
      const dry = await cli('replay', '--needs-attention', '--dry-run');
      // assess 1: listed with their messages, nothing enqueued, nothing retried
      expect(dry.code).toBe(0);
      expect(dry.stdout).toMatch(/^dry run: would re-queue 4 order\(s\) in needs-attention \(komfortkasse 3, klar 1\); nothing enqueued\n/);
      for (const order of onKomfortkasse) expect(dry.stdout).toMatch(new RegExp(`${order.code}\\s+${order.id}\\s+komfortkasse\\s+.*amount does not match the invoice`));
      expect(dry.stdout).toMatch(new RegExp(`${onKlar.code}\\s+${onKlar.id}\\s+klar\\s+.*unknown order`));
      expect(await queueDepth(stack, stack.queues.orders.url)).toBe(0);
      await sleep(300);
      expect(await parkedIds()).toEqual(expect.arrayContaining(all.map((o) => o.id)));
      for (const order of onKomfortkasse) expect(kkCalls(order.code)).toEqual([400]);

      // act 2: only what Klar parked
      const klarOnly = await cli('replay', '--needs-attention', '--target', 'klar');
      // assess 2: the Klar-parked order is uploaded; the Komfortkasse-parked ones are untouched
      expect(klarOnly.code).toBe(0);
      expect(klarOnly.stderr).toMatch(/^orderbridge replay: using local stack at http/);
      expect(klarOnly.stderr).toMatch(/^replay: 1\/1 re-queued$/m);
      expect(klarOnly.stdout).toMatch(/^re-queued 1 of 1 order\(s\) parked on klar on orders\.fifo; 0 failed\n {2}klar\s+1 re-queued\n/);
      await waitFor(async () => (await getOrderRecord(onKlar.id))?.klar.state === 'uploaded', 'the Klar-parked order to be uploaded');
      expect(stack.simulators.klar!.costs.get(String(onKlar.id))).toMatchObject({ uploadCount: 1 });
      await drained(stack);
      for (const order of onKomfortkasse) {
        expect((await getOrderRecord(order.id))?.komfortkasse.state).toBe('needs-attention');
        expect(kkCalls(order.code)).toEqual([400]);
      }

      // act 3: everything still parked (Komfortkasse accepts now: the faults were used up)
      const rest = await cli('replay', '--needs-attention');
      // assess 3: submitted, off the list, each tried exactly once more
      expect(rest.code).toBe(0);
      expect(rest.stderr).toMatch(/^replay: 3\/3 re-queued$/m);
      expect(rest.stdout).toMatch(/^re-queued 3 of 3 order\(s\) in needs-attention on orders\.fifo; 0 failed\n {2}komfortkasse\s+3 re-queued\n/);
      for (const order of onKomfortkasse) {
        await waitFor(async () => (await getOrderRecord(order.id))?.komfortkasse.state === 'submitted', `order ${order.code} to be submitted`);
        expect(kkCalls(order.code)).toEqual([400, 200]);
      }
      const after = JSON.parse((await cli('needs-attention', '--json')).stdout).map((e: { orderId: number }) => e.orderId);
      for (const order of all) expect(after).not.toContain(order.id);
      expect((await cli('replay', '--needs-attention')).stdout).toBe('No order in needs-attention; nothing to re-queue.\n');
    });

    it('re-queues an order the shop no longer has without a snapshot: the worker confirms the deletion and takes it off the list', async () => {
      // prepare: two parked orders; one is then deleted in the shop
      const kept = shopOrder();
      const vanished = shopOrder();
      for (const order of [kept, vanished]) await parkOnKomfortkasse(order, 'rejected for the test');
      await drained(stack);
      stack.simulators.versaCommerce!.removeOrder(vanished.id);
      // act
      const result = await cli('replay', '--needs-attention', '--target', 'komfortkasse');
      // assess: both re-queued (exit 0); the vanished one was never submitted, so it is recorded removed with no call
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('re-queued 2 of 2 order(s) parked on komfortkasse on orders.fifo; 0 failed');
      expect(result.stdout).toContain('1 the shop answers 404 for went without a snapshot');
      await waitFor(async () => (await getOrderRecord(kept.id))?.komfortkasse.state === 'submitted', 'the kept order to be submitted');
      await waitFor(async () => (await getOrderRecord(vanished.id))?.komfortkasse.state === 'removed', 'the vanished order to be closed');
      expect(kkCalls(vanished.code)).toEqual([400]);
      expect(await parkedIds()).not.toContain(vanished.id);
      await drained(stack);
    });
  });

  describe('credential errors from Komfortkasse', () => {
    it.each([401, 403])('a %i leaves the order pending (retried), never needs-attention', async (status) => {
      // prepare: Komfortkasse refuses our key once for this order
      const order = shopOrder();
      kk().injectFault({ pathPrefix: `/api/v2/order/${order.code}`, status, body: { error: 'API Key invalid' }, times: 1 });
      // act
      expect((await postWebhook(stack, { order })).status).toBe(202);
      // assess: the refused attempt is in the history; the order is not parked
      const refused = await waitFor(async () => {
        const history = await historyJson(order.code);
        return history?.attempts.some((a: { httpStatus?: number }) => a.httpStatus === status) ? history : undefined;
      }, `the ${status} attempt to be recorded`);
      expect(refused.attempts).toContainEqual(expect.objectContaining({ target: 'komfortkasse', action: 'submit', httpStatus: status }));
      expect(['pending', 'submitted']).toContain(refused.komfortkasse.state);
      expect(await parkedIds()).not.toContain(order.id);
      const listed = await cli('needs-attention');
      expect(listed.stdout).not.toContain(order.code);
      // assess: SQS delivered it again, and the retry went through
      const synced = await waitFor(async () => {
        const history = await historyJson(order.code);
        return history?.komfortkasse.state === 'submitted' ? history : undefined;
      }, 'the retry to submit the order');
      expect(synced.komfortkasse).not.toHaveProperty('error');
      expect(kkCalls(order.code)).toEqual([status, 200]);
      expect(await parkedIds()).not.toContain(order.id);
    });
  });

  describe('redrive orders: privacy follows the data', () => {
    it("drops the order snapshot of an order forgotten since its message was parked, and keeps a not-forgotten one's", async () => {
      // prepare: two synced orders, one of them forgotten
      const forgotten = shopOrder({ customer_email: 'forgotten.person@example.org' });
      const kept = shopOrder({ customer_email: 'kept.person@example.org' });
      for (const order of [forgotten, kept]) {
        expect((await postWebhook(stack, { order })).status).toBe(202);
        await waitFor(async () => {
          const record = await getOrderRecord(order.id);
          return record?.komfortkasse.state === 'submitted' && record.klar.state === 'uploaded';
        }, `order ${order.code} to sync`);
      }
      expect((await cli('forget', forgotten.code)).code).toBe(0);
      await drained(stack);
      // Workers paused, so what comes back to orders.fifo can be inspected before it is consumed.
      await stack.stopWorkers();
      const fetchPath = `/api/orders/${forgotten.id}.json`;
      const shopFetches = () => stack.simulators.versaCommerce!.requests.filter((r) => r.path === fetchPath).length;
      const fetchesBefore = shopFetches();
      try {
        const parked = [forgotten, kept].map((order): OrderChangedMessage => ({
          kind: 'order-changed',
          orderId: order.id,
          orderCode: order.code,
          order,
          source: 'webhook',
          receivedAt: new Date().toISOString(),
          deliveryId: `parked-${order.id}`,
          correlationId: `parked-${order.id}`,
        }));
        for (const message of parked) {
          await stack.sqsClient.send(
            new SendMessageCommand({
              QueueUrl: stack.queues.ordersDlq.url,
              MessageBody: JSON.stringify(message),
              MessageGroupId: String(message.orderId),
              MessageDeduplicationId: `parked-${message.orderId}`,
            }),
          );
        }
        // act
        const result = await cli('redrive', 'orders');
        // assess: both moved; the forgotten order's snapshot is gone, the other's is intact
        expect(result.code).toBe(0);
        expect(result.stdout).toContain('moved 2 message(s) from orderbridge-local-orders-dlq.fifo back to orderbridge-local-orders.fifo');
        expect(await queueDepth(stack, stack.queues.ordersDlq.url)).toBe(0);
        const back = await inspectQueue(stack, stack.queues.orders.name);
        expect(back).toHaveLength(2);
        const byOrder = new Map(back.map((m) => [JSON.parse(m.body).orderId as number, m]));
        const forgottenBack = byOrder.get(forgotten.id)!;
        const keptBack = byOrder.get(kept.id)!;
        expect(JSON.parse(forgottenBack.body)).toEqual({ ...parked[0], order: undefined });
        expect(JSON.parse(forgottenBack.body)).not.toHaveProperty('order');
        expect(forgottenBack.body).not.toContain('example.org');
        expect(JSON.parse(keptBack.body)).toEqual(parked[1]);
        // the existing guarantees: same message group, a fresh deduplication id
        expect(forgottenBack.messageGroupId).toBe(String(forgotten.id));
        expect(keptBack.messageGroupId).toBe(String(kept.id));
        expect(forgottenBack.messageDeduplicationId).not.toBe(`parked-${forgotten.id}`);
      } finally {
        stack.startWorkers();
      }
      // assess: the worker fetched the forgotten order from the shop and found it in sync
      await drained(stack);
      expect(shopFetches()).toBe(fetchesBefore + 1);
      expect(kkCalls(forgotten.code)).toEqual([200]);
      expect(kkCalls(kept.code)).toEqual([200]);
    });
  });

  describe('status', () => {
    it('reports a dead-lettered message with its age, needs-attention by target, Klar failing, and the last reconcile', async () => {
      // prepare: one order parked on each side, a message in the orders DLQ, Klar failing
      const onKomfortkasse = shopOrder();
      await parkOnKomfortkasse(onKomfortkasse);
      const onKlar = shopOrder();
      await parkOnKlar(onKlar);
      await stack.sqsClient.send(
        new SendMessageCommand({
          QueueUrl: stack.queues.ordersDlq.url,
          MessageBody: JSON.stringify({ kind: 'order-changed', orderId: nextId, source: 'notification', receivedAt: new Date().toISOString(), deliveryId: `lost-${nextId}`, correlationId: `lost-${nextId}` }),
          MessageGroupId: String(nextId),
          MessageDeduplicationId: `lost-${nextId}`,
        }),
      );
      stack.simulators.klar!.setState({ lastSuccess: new Date(Date.now() - 3_600_000), lastFailure: new Date() });
      await stack.fireSchedule('poll-klar-state');
      await sleep(1_100); // the oldest message's age is in whole seconds
      const parked = await needsAttention();
      const expected = {
        orders: parked.length,
        komfortkasse: parked.filter((e) => e.komfortkasse.state === 'needs-attention').length,
        klar: parked.filter((e) => e.klar.state === 'needs-attention').length,
      };
      expect(expected.komfortkasse).toBeGreaterThanOrEqual(1);
      expect(expected.klar).toBeGreaterThanOrEqual(1);

      // act
      const json = await cli('status', '--json');
      const screen = await cli('status');
      // assess: the JSON document
      expect(json.code).toBe(0);
      expect(json.stderr).toBe('');
      const status = statusJsonSchema.parse(JSON.parse(json.stdout));
      const queue = (name: string) => status.queues.find((q) => q.queue === name)!;
      expect(queue('ordersDlq')).toMatchObject({ name: 'orderbridge-local-orders-dlq.fifo', deadLetter: true, visible: 1, inFlight: 0, oldestAgeFrom: 'emulator' });
      expect(queue('ordersDlq').oldestAgeSeconds).toBeGreaterThanOrEqual(1);
      expect(queue('orders')).toMatchObject({ name: 'orderbridge-local-orders.fifo', deadLetter: false, visible: 0, inFlight: 0, oldestAgeSeconds: 0 });
      expect(queue('klarCostsDlq')).toMatchObject({ name: 'orderbridge-local-klar-costs-dlq', visible: 0, oldestAgeSeconds: 0 });
      expect(status.queues.every((q) => q.error === undefined)).toBe(true);
      expect(status.needsAttention).toEqual(expected);
      expect(status.klar).toMatchObject({ failing: true, lastReading: { endpoint: '/transaction-costs/state', failing: true } });
      expect(status.reconcile).toEqual({ lastRun: null, lastCompletedAt: null });
      expect(status.dryRun).toEqual({ value: false, source: "the local stack's environment" });
      expect(status.needsALook).toEqual([
        expect.stringMatching(/^orderbridge-local-orders-dlq\.fifo holds 1 message\(s\), the oldest \d+s old: see why with `orderbridge redrive orders --dry-run`/),
        expect.stringMatching(new RegExp(`^${expected.orders} order\\(s\\) need attention \\(komfortkasse ${expected.komfortkasse}, klar ${expected.klar}\\)`)),
        expect.stringMatching(/^Klar's import is failing/),
        expect.stringMatching(/^no reconcile in the last 2 days \(none completed on record\)/),
      ]);
      // assess: the screen
      expect(screen.code).toBe(0);
      expect(screen.stdout).toMatch(/^Orderbridge status — local stack at http/);
      expect(screen.stdout).toMatch(/orderbridge-local-orders-dlq\.fifo\s+1\s+0\s+[1-9]\d*s\n/);
      expect(screen.stdout).toMatch(/orderbridge-local-orders\.fifo\s+0\s+0\s+0s\n/);
      expect(screen.stdout).toContain(`Needs attention:  ${expected.orders} order(s) — komfortkasse ${expected.komfortkasse}, klar ${expected.klar}`);
      expect(screen.stdout).toMatch(/Klar import:      FAILING — read /);
      expect(screen.stdout).toContain('Last reconcile:   none recorded');
      expect(screen.stdout).toContain("DRY_RUN:          false — the local stack's environment");
      expect(screen.stdout).toMatch(/Needs a look \(4\):\n {2}! orderbridge-local-orders-dlq\.fifo holds 1 message/);
      // status only looks: the DLQ message was never received
      const [inspected] = await inspectQueue(stack, stack.queues.ordersDlq.name);
      expect(inspected?.approximateReceiveCount).toBe(0);

      // act: a reconcile ran (as the schedule records it)
      const at = new Date().toISOString();
      await recordReconcileRun({ at, since: '2025-01-01T00:00:00.000Z', checked: 12, enqueued: 2, needsAttention: 1, invalid: 0, dryRun: false, trigger: 'schedule' });
      const afterReconcile = statusJsonSchema.parse(JSON.parse((await cli('status', '--json')).stdout));
      // assess
      expect(afterReconcile.reconcile).toEqual({ lastRun: expect.objectContaining({ at, checked: 12, enqueued: 2, trigger: 'schedule' }), lastCompletedAt: at });
      expect(afterReconcile.needsALook.some((line) => line.includes('reconcile'))).toBe(false);
      expect((await cli('status')).stdout).toMatch(/Last reconcile:   \S+ \(schedule\) — 12 checked, 2 enqueued/);
    });
  });
});

/** Every message of an emulator queue, without receiving any (fauxqs's inspection endpoint). */
async function inspectQueue(
  stack: RunningStack,
  name: string,
): Promise<{ body: string; messageGroupId?: string; messageDeduplicationId?: string; approximateReceiveCount: number }[]> {
  const response = await fetch(`${stack.sqs.endpoint}/_fauxqs/queues/${name}`);
  expect(response.status).toBe(200);
  const { messages } = (await response.json()) as { messages: { ready: any[]; delayed: any[]; inflight: { message: any }[] } };
  return [...messages.ready, ...messages.delayed, ...messages.inflight.map((entry) => entry.message)];
}
