import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetClients } from '../../lib/clients/registry.ts';
import { listAttempts } from '../../lib/store/attempts.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import type { RunningStack } from '../../local/stack.ts';
import { buildOrderWebhookBody } from '../factories/webhooks.ts';
import { bootStack, postWebhook, queueDepth, waitFor } from './harness.ts';

// 429 slows the worker, not the order (DESIGN "Errors and retries"): against a Komfortkasse
// that takes 10 requests a second, a burst drains at that rate — each order submitted once,
// at most about one 429 per order, none parked, none in a DLQ — and an order that still gives
// up comes back after the Retry-After, not after orders.fifo's 360 s visibility timeout.

const RATE_LIMIT = 10;
const ORDERS = 300;
/** the fastest Komfortkasse lets 300 orders through */
const FLOOR_MS = (ORDERS / RATE_LIMIT) * 1000;

describe('backpressure: a rate-limited Komfortkasse', () => {
  let stack: RunningStack;

  beforeAll(async () => {
    // As deployed: the queue's own visibility timeout (360 s), and a failed record is not
    // handed back early by the local event source — only the handler can do that.
    stack = await bootStack({ visibilityTimeoutSeconds: undefined, retryDelaySeconds: undefined });
  });
  afterAll(async () => stack?.stop());

  const kk = () => stack.simulators.komfortkasse!;
  const submitPath = (code: string) => `/api/v2/order/${code}`;

  /**
   * Posts `orders` with the workers stopped (all of them are in orders.fifo before a worker
   * runs: the burst hits Komfortkasse at once, and the time the webhooks take is not counted),
   * then starts the workers and waits until Komfortkasse holds every order. Returns when the
   * workers started.
   */
  async function burst(orders: { id: number; code: string }[]): Promise<number> {
    await stack.stopWorkers();
    const answers = await Promise.all(orders.map((o) => postWebhook(stack, buildOrderWebhookBody({ id: o.id, code: o.code }))));
    expect(answers.filter((a) => a.status !== 202)).toEqual([]);
    const started = Date.now();
    stack.startWorkers();
    await waitFor(() => orders.every((o) => kk().orders.has(o.code)), `${orders.length} orders in Komfortkasse`, 10 * FLOOR_MS);
    await waitFor(async () => (await queueDepth(stack, stack.queues.orders.url)) === 0, 'orders.fifo to drain', 30_000);
    return started;
  }
  const batchOf = (first: number) => Array.from({ length: ORDERS }, (_, i) => ({ id: first + i, code: `BP-${first + i}` }));
  const lastAcceptedAt = (orders: { code: string }[]) => {
    const paths = new Set(orders.map((o) => submitPath(o.code)));
    return Math.max(...kk().requests.filter((r) => r.status === 200 && paths.has(r.path)).map((r) => Date.parse(r.at)));
  };

  it(`drains ${ORDERS} orders sent at once at Komfortkasse's ${RATE_LIMIT} requests/s: each submitted once, at most one 429 per order, none parked, none in a DLQ`, async () => {
    // prepare: the pipeline's own time for as many orders without a limit (it also warms
    // DynamoDB Local's JVM, whose first requests are slow)
    resetClients();
    kk().reset();
    const unlimited = batchOf(150_000);
    const unlimitedStarted = await burst(unlimited);
    const pipelineMs = lastAcceptedAt(unlimited) - unlimitedStarted;
    resetClients(); // a fresh pacer, as in a new container
    kk().reset();
    kk().rateLimit.requestsPerSecond = RATE_LIMIT;
    const orders = batchOf(160_000);
    const paths = new Set(orders.map((o) => submitPath(o.code)));

    // act
    const started = await burst(orders);

    // assess
    const ours = kk().requests.filter((r) => r.method === 'POST' && paths.has(r.path));
    const accepted = ours.filter((r) => r.status === 200);
    const throttled = ours.filter((r) => r.status === 429);
    // each exactly once
    expect(accepted).toHaveLength(ORDERS);
    for (const o of orders) expect(kk().orders.get(o.code)?.submitCount, o.code).toBe(1);
    // at most one 429 per order
    expect(throttled.length).toBeLessThanOrEqual(ORDERS);
    expect(kk().rateLimit.throttled).toBe(throttled.length);
    // within 1.2 × the floor plus the pipeline's own time for these orders
    const drainMs = lastAcceptedAt(orders) - started;
    const perOrder = new Map<string, number>();
    for (const r of throttled) perOrder.set(r.path, (perOrder.get(r.path) ?? 0) + 1);
    console.info(
      `backpressure: ${ORDERS} orders in ${(drainMs / 1000).toFixed(1)} s at ${RATE_LIMIT}/s (floor ${FLOOR_MS / 1000} s, ×${(drainMs / FLOOR_MS).toFixed(2)}), ` +
        `${(pipelineMs / 1000).toFixed(1)} s without a limit; 429s ${throttled.length} (${(throttled.length / ORDERS).toFixed(2)} per order, at most ${Math.max(0, ...perOrder.values())} for one order)`,
    );
    expect(drainMs).toBeLessThanOrEqual(1.2 * FLOOR_MS + pipelineMs);
    // none parked, none in a DLQ
    const records = await Promise.all(orders.map((o) => getOrderRecord(o.id)));
    expect(records.filter((r) => r?.komfortkasse.state !== 'submitted').map((r) => r?.orderCode)).toEqual([]);
    expect(await queueDepth(stack, stack.queues.ordersDlq.url)).toBe(0);
    expect(await queueDepth(stack, stack.queues.klarCostsDlq.url)).toBe(0);
  }, 20 * FLOOR_MS);

  it('hands an order that still gives up back to orders.fifo for about the Retry-After, not the 360 s visibility timeout', async () => {
    // prepare: Komfortkasse refuses this order's submit with 429 three times (every in-call try)
    resetClients();
    kk().reset();
    const order = { id: 170_001, code: 'BP-170001' };
    kk().injectFault({ pathPrefix: submitPath(order.code), status: 429, headers: { 'retry-after': '1' }, body: { error: 'Too many requests' }, times: 3 });

    // act
    const answer = await postWebhook(stack, buildOrderWebhookBody(order));
    await waitFor(() => kk().orders.has(order.code), 'the order in Komfortkasse after its redelivery', 60_000);

    // assess: three refused tries in the first delivery, then the redelivery about a second later
    expect(answer.status).toBe(202);
    const tries = kk().requests.filter((r) => r.path === submitPath(order.code));
    expect(tries.map((r) => r.status)).toEqual([429, 429, 429, 200]);
    const handedBackFor = Date.parse(tries[3]!.at) - Date.parse(tries[2]!.at);
    expect(handedBackFor).toBeGreaterThanOrEqual(900);
    expect(handedBackFor).toBeLessThan(30_000);
    const attempts = (await listAttempts(order.id)).filter((a) => a.target === 'komfortkasse');
    expect(attempts.map((a) => [a.outcome, a.httpStatus])).toEqual([
      ['failed-transient', 429],
      ['success', 200],
    ]);
    expect((await getOrderRecord(order.id))?.komfortkasse.state).toBe('submitted');
    expect(await queueDepth(stack, stack.queues.ordersDlq.url)).toBe(0);
  }, 90_000);
});
