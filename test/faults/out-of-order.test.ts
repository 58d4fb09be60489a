import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningStack } from '../../local/stack.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import {
  allQueuesEmpty,
  bootStack,
  codeOf,
  deliver,
  evidence,
  faultOrder,
  komfortkasse,
  removeRequests,
  submitRequests,
  waitFor,
} from './helpers.ts';

/** Snapshots carry increasing `updated_at` (version 0 = create, 1 = the next change, …). */
describe('out-of-order deliveries', () => {
  let stack: RunningStack;

  beforeAll(async () => {
    stack = await bootStack({ visibilityTimeoutSeconds: 2, retryDelaySeconds: 1, env: { KOMFORTKASSE_INITIAL_DUNNING_LEVEL: '1' } });
  });
  afterAll(async () => stack?.stop());

  const settled = () => waitFor(async () => Object.values(await allQueuesEmpty(stack)).every((d) => d === 0), 'all queues to drain');

  it('an update delivered before its create: Komfortkasse holds the update, submitted once', async () => {
    // prepare
    const id = 71_001;
    const create = faultOrder(id, { total: '15.94' }, 0);
    const update = faultOrder(id, { total: '20.50', status: 'in_progress' }, 1);

    // act
    await deliver(stack, update);
    await deliver(stack, create);
    await waitFor(() => komfortkasse(stack).orders.has(codeOf(id)), 'the order to reach Komfortkasse');
    await settled();

    // assess
    const e = await evidence(stack, id);
    const stored = komfortkasse(stack).orders.get(codeOf(id))!;
    expect(stored.submitCount).toBe(1);
    expect(stored.body).toMatchObject({ amount: 20.5, statusDescription: 'in_progress', initialDunningLevel: 1 });
    expect(submitRequests(stack, codeOf(id))).toHaveLength(1);
    expect(e.successes.map((a) => [a.action, a.outcome])).toEqual([['submit', 'success']]);
    expect(e.record?.komfortkasse).toMatchObject({ state: 'submitted', sourceUpdatedAt: update.updated_at });
  });

  it('a cancel delivered before its create: the order never reaches Komfortkasse', async () => {
    // prepare
    const id = 71_002;
    const create = faultOrder(id, {}, 0);
    const cancel = faultOrder(id, { status: 'canceled' }, 1);

    // act
    await deliver(stack, cancel);
    await waitFor(async () => (await getOrderRecord(id))?.komfortkasse.state === 'removed', 'the cancel to be recorded');
    await deliver(stack, create);
    await settled();

    // assess
    expect(komfortkasse(stack).orders.has(codeOf(id))).toBe(false);
    expect(submitRequests(stack, codeOf(id))).toHaveLength(0);
    expect(removeRequests(stack, codeOf(id))).toHaveLength(0);
    expect((await getOrderRecord(id))?.komfortkasse).toMatchObject({ state: 'removed', everSubmitted: false });
  });

  it('a cancel queued behind the submit of the same order: submitted once, then removed once; a late create stays stale', async () => {
    // prepare: both changes wait in the queue before any worker runs
    const id = 71_003;
    const create = faultOrder(id, {}, 0);
    const cancel = faultOrder(id, { status: 'canceled' }, 1);
    await stack.stopWorkers();
    await deliver(stack, create);
    await deliver(stack, cancel);

    // act
    stack.startWorkers();
    await waitFor(async () => (await getOrderRecord(id))?.komfortkasse.state === 'removed', 'the order to be removed');
    // the shop (or a replay) sends the old create once more, with its own delivery id
    await deliver(stack, create, { headers: { 'x-orderbridge-delivery': randomUUID() } });
    await settled();

    // assess
    const stored = komfortkasse(stack).orders.get(codeOf(id));
    expect(stored).toMatchObject({ submitCount: 1, removeCount: 1, removed: true });
    expect(submitRequests(stack, codeOf(id))).toHaveLength(1);
    expect(removeRequests(stack, codeOf(id))).toHaveLength(1);
    const e = await evidence(stack, id);
    expect(e.attempts.filter((a) => a.outcome === 'success').map((a) => a.action).sort()).toEqual(['remove', 'submit']);
    expect(e.record?.komfortkasse).toMatchObject({ state: 'removed', everSubmitted: true, sourceUpdatedAt: cancel.updated_at });
  });

  it('an update after a cancel with a newer updated_at brings the order back (level-triggered, not first-wins)', async () => {
    // prepare
    const id = 71_004;
    await deliver(stack, faultOrder(id, {}, 0));
    await waitFor(async () => (await getOrderRecord(id))?.komfortkasse.state === 'submitted', 'the submit');
    await deliver(stack, faultOrder(id, { status: 'canceled' }, 1));
    await waitFor(async () => (await getOrderRecord(id))?.komfortkasse.state === 'removed', 'the removal');

    // act: reopened in the shop
    await deliver(stack, faultOrder(id, { status: 'open', total: '31.00' }, 2));
    await waitFor(async () => (await getOrderRecord(id))?.komfortkasse.state === 'submitted', 'the resubmission');
    await settled();

    // assess: the resubmission is an update, so initialDunningLevel is not repeated
    const requests = submitRequests(stack, codeOf(id));
    expect(requests.map((r) => r.status)).toEqual([200, 200]);
    expect(requests[0]!.body).toMatchObject({ initialDunningLevel: 1 });
    expect(requests[1]!.body).not.toHaveProperty('initialDunningLevel');
    expect(komfortkasse(stack).orders.get(codeOf(id))).toMatchObject({ submitCount: 2, removeCount: 1, removed: false, body: { amount: 31 } });
  });
});
