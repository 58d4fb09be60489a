import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningStack } from '../../local/stack.ts';
import {
  allQueuesEmpty,
  bootStack,
  codeOf,
  deliver,
  evidence,
  expectSubmittedOnce,
  faultOrder,
  komfortkasse,
  mapLimit,
  queueDepth,
  redrive,
  submitRequests,
  waitFor,
  waitUntilSubmitted,
} from './helpers.ts';

/*
 * Komfortkasse answers 503 to everything for a while. In AWS the orders queue's visibility
 * timeout is 180 s, so a 60 s outage costs each order at most one failed receive. Here a
 * failed record comes back after 1 s, so the outage below spans several receives of every
 * order — a harsher version of the same 60 s — and, in the second case, more than
 * maxReceiveCount receives, which parks the orders in the DLQ until they are redriven.
 */
describe('Komfortkasse down, then back', () => {
  let stack: RunningStack;

  beforeAll(async () => {
    stack = await bootStack({
      visibilityTimeoutSeconds: 2,
      retryDelaySeconds: 1,
      // one HTTP call per receive, so the request log counts receives
      env: { UPSTREAM_RETRY_LIMIT: '0', KOMFORTKASSE_INITIAL_DUNNING_LEVEL: '1' },
    });
  });
  afterAll(async () => stack?.stop());

  it('submits every order exactly once after an outage shorter than maxReceiveCount receives', { timeout: 90_000 }, async () => {
    // prepare
    const ids = Array.from({ length: 20 }, (_, i) => 51_000 + i);
    const sim = komfortkasse(stack);
    sim.injectFault({ method: 'POST', pathPrefix: '/api/v2/order/', status: 503, body: { error: 'Service Unavailable' }, times: Infinity });

    // act: the shop delivers during the outage; every order fails at least twice
    await mapLimit(ids, 5, (id) => deliver(stack, faultOrder(id)));
    await waitFor(
      () => ids.every((id) => submitRequests(stack, codeOf(id)).filter((r) => r.status === 503).length >= 2),
      'every order to fail twice against the outage',
    );
    sim.clearFaults();
    await waitUntilSubmitted(stack, ids);
    await waitFor(async () => Object.values(await allQueuesEmpty(stack)).every((d) => d === 0), 'all queues to drain');

    // assess
    for (const id of ids) {
      const e = await expectSubmittedOnce(stack, id);
      const failed = e.attempts.filter((a) => a.outcome === 'failed-transient');
      expect.soft(failed.length, `order ${e.code}: failed receives recorded`).toBeGreaterThanOrEqual(2);
      expect.soft(failed.length, `order ${e.code}: stayed below maxReceiveCount`).toBeLessThan(5);
      expect.soft(failed.every((a) => a.httpStatus === 503)).toBe(true);
      // A 503 proves the order was not created, so the first real submission is still the first.
      expect.soft(sim.orders.get(e.code)?.initialDunningLevel, `order ${e.code}: initialDunningLevel`).toBe(1);
    }
    expect(await allQueuesEmpty(stack)).toEqual({ orders: 0, ordersDlq: 0, klarCosts: 0, klarCostsDlq: 0 });
    const klar = stack.simulators.klar!;
    expect(ids.map((id) => klar.costs.get(String(id))?.uploadCount)).toEqual(ids.map(() => 1));
  });

  it('parks orders of a longer outage in the DLQ; one redrive submits each exactly once', { timeout: 90_000 }, async () => {
    // prepare
    const ids = Array.from({ length: 5 }, (_, i) => 52_000 + i);
    const sim = komfortkasse(stack);
    sim.injectFault({ method: 'POST', pathPrefix: '/api/v2/order/', status: 503, times: Infinity });

    // act: the outage outlasts maxReceiveCount, so SQS gives up on every order
    await mapLimit(ids, 5, (id) => deliver(stack, faultOrder(id)));
    await waitFor(async () => (await queueDepth(stack, stack.queues.ordersDlq.url)) === ids.length, 'the orders to reach the DLQ', 40_000);
    expect(await queueDepth(stack, stack.queues.orders.url)).toBe(0);
    expect(ids.map((id) => sim.orders.has(codeOf(id)))).toEqual(ids.map(() => false));
    sim.clearFaults();
    const moved = await redrive(stack, 'ordersDlq');
    await waitUntilSubmitted(stack, ids);

    // assess
    expect(moved).toBe(ids.length);
    for (const id of ids) {
      const e = await expectSubmittedOnce(stack, id);
      expect.soft(e.attempts.filter((a) => a.outcome === 'failed-transient')).toHaveLength(stack.queues.orders.maxReceiveCount!);
      expect.soft((await evidence(stack, id)).accepted[0]?.body).toMatchObject({ initialDunningLevel: 1 });
    }
    await waitFor(async () => Object.values(await allQueuesEmpty(stack)).every((d) => d === 0), 'all queues to drain');
  });
});
