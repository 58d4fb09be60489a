import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningStack } from '../../local/stack.ts';
import type { PostOptions } from '../integration/harness.ts';
import {
  allQueuesEmpty,
  bootStack,
  deliver,
  expectSubmittedOnce,
  faultOrder,
  mapLimit,
  shuffle,
  waitFor,
  waitUntilSubmitted,
} from './helpers.ts';

describe('duplicate storm: every webhook delivered 5 times, shuffled', () => {
  let stack: RunningStack;
  let recordsSeen = 0;

  beforeAll(async () => {
    stack = await bootStack({
      visibilityTimeoutSeconds: 2,
      retryDelaySeconds: 1,
      env: { KOMFORTKASSE_INITIAL_DUNNING_LEVEL: '2' },
      onInvocation: (log) => {
        if (log.functionName === 'sync-order') recordsSeen += log.records ?? 0;
      },
    });
  });
  afterAll(async () => stack?.stop());

  it('submits each order once and uploads each cost once', { timeout: 60_000 }, async () => {
    // prepare: two byte-identical redeliveries (the queue's deduplication may absorb them)
    // and three carrying their own delivery id, which get past it to the worker
    const ids = Array.from({ length: 30 }, (_, i) => 61_000 + i);
    const deliveries: { id: number; options: PostOptions }[] = ids.flatMap((id) => [
      { id, options: { auth: 'signature' } },
      { id, options: { auth: 'token' } },
      ...[1, 2, 3].map(() => ({ id, options: { headers: { 'x-orderbridge-delivery': randomUUID() } } satisfies PostOptions })),
    ]);

    // act
    await mapLimit(shuffle(deliveries, 7), 10, ({ id, options }) => deliver(stack, faultOrder(id), options));
    await waitUntilSubmitted(stack, ids);
    await waitFor(async () => Object.values(await allQueuesEmpty(stack)).every((d) => d === 0), 'all queues to drain');

    // assess
    expect(recordsSeen, 'duplicates reached the worker').toBeGreaterThanOrEqual(ids.length * 4);
    for (const id of ids) {
      const e = await expectSubmittedOnce(stack, id);
      expect.soft(e.accepted[0]?.body).toMatchObject({ initialDunningLevel: 2 });
    }
    const klar = stack.simulators.klar!;
    expect(ids.map((id) => klar.costs.get(String(id))?.uploadCount)).toEqual(ids.map(() => 1));
    expect(await allQueuesEmpty(stack)).toEqual({ orders: 0, ordersDlq: 0, klarCosts: 0, klarCostsDlq: 0 });
  });
});
