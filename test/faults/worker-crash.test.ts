import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningStack } from '../../local/stack.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import {
  allQueuesEmpty,
  bootStack,
  codeOf,
  deliver,
  evidence,
  expectSubmittedWithoutLoss,
  faultOrder,
  komfortkasse,
  startWorkerProcess,
  submitRequests,
  waitFor,
  waitUntilSubmitted,
  type WorkerProcess,
} from './helpers.ts';

/*
 * A Lambda can die after Komfortkasse accepted a submission but before the worker wrote the
 * history and deleted the message. The worker runs as its own process here and is killed
 * with SIGKILL while the simulator holds the (already applied) response back.
 */
describe('worker killed mid-batch, after the upstream call', () => {
  let stack: RunningStack;
  let worker: WorkerProcess | undefined;
  const [done, crashed, waiting] = [81_001, 81_002, 81_003];

  beforeAll(async () => {
    stack = await bootStack({
      workers: false,
      visibilityTimeoutSeconds: 3,
      retryDelaySeconds: 1,
      env: { KOMFORTKASSE_LEASE_SECONDS: '2', KOMFORTKASSE_INITIAL_DUNNING_LEVEL: '2' },
    });
  });
  afterAll(async () => {
    await worker?.kill('SIGKILL');
    await stack?.stop();
  });

  it('redelivers the batch: one identical re-send recorded as success-resend, nothing lost', { timeout: 60_000 }, async () => {
    // prepare: three orders wait in the queue, so one worker receives them as one batch
    for (const id of [done, crashed, waiting]) await deliver(stack, faultOrder(id));
    const sim = komfortkasse(stack);
    sim.injectFault({ method: 'POST', pathPrefix: `/api/v2/order/${codeOf(crashed)}`, delayAfterMs: 30_000, times: 1 });

    // act: the worker submits the orders, the second is accepted upstream and the worker dies
    worker = await startWorkerProcess(stack);
    await waitFor(() => sim.orders.has(codeOf(crashed)), 'Komfortkasse to accept the second order', 20_000);
    const killedBy = await worker.kill('SIGKILL');
    const leftBehind = await getOrderRecord(crashed);
    // the rest of the fleet picks the batch up once visibility and lease run out
    stack.startWorkers();
    await waitUntilSubmitted(stack, [done, crashed, waiting]);
    await waitFor(async () => Object.values(await allQueuesEmpty(stack)).every((d) => d === 0), 'all queues to drain');

    // assess: the crash really was mid-batch, after the upstream call, before the history write
    expect(killedBy).toBe('SIGKILL');
    expect(worker.lines.some((line) => line.includes('"invocation"')), 'the killed worker finished no batch').toBe(false);
    expect(leftBehind?.komfortkasse).toMatchObject({ everSubmitted: false, firstAttemptedAt: expect.any(String), leaseToken: expect.any(String) });

    // the batch's other orders ran beside it (the worker syncs message groups concurrently):
    // each reached Komfortkasse, at most with one identical re-send if the kill caught it
    await expectSubmittedWithoutLoss(stack, done);
    await expectSubmittedWithoutLoss(stack, waiting);

    // the crashed order: exactly one re-send, identical but for the first-submission-only field
    const e = await evidence(stack, crashed);
    const [first, resend, ...more] = submitRequests(stack, codeOf(crashed));
    expect(more).toHaveLength(0);
    expect(first!.body).toMatchObject({ initialDunningLevel: 2 });
    expect(resend!.body).not.toHaveProperty('initialDunningLevel');
    const { initialDunningLevel: _dropped, ...firstWithout } = first!.body as Record<string, unknown>;
    expect(resend!.body).toEqual(firstWithout);
    expect(resend!.status).toBe(200);
    expect(e.submitCount).toBe(2);
    expect(sim.orders.get(codeOf(crashed))?.initialDunningLevel).toBe(2);
    expect(e.successes.map((a) => [a.action, a.outcome])).toEqual([['submit', 'success-resend']]);
    expect(e.record?.komfortkasse).toMatchObject({ state: 'submitted', everSubmitted: true });
    expect(e.record?.komfortkasse.leaseToken).toBeUndefined();
  });

  it('a later change of the crashed order is an ordinary update without initialDunningLevel', async () => {
    // act
    await deliver(stack, faultOrder(crashed, { total: '42.00', status: 'in_progress' }, 1));
    await waitFor(() => sim().orders.get(codeOf(crashed))?.submitCount === 3, 'the update');
    await waitFor(async () => Object.values(await allQueuesEmpty(stack)).every((d) => d === 0), 'all queues to drain');

    // assess
    const last = submitRequests(stack, codeOf(crashed)).at(-1)!;
    expect(last.status).toBe(200);
    expect(last.body).not.toHaveProperty('initialDunningLevel');
    expect(last.body).toMatchObject({ amount: 42, statusDescription: 'in_progress' });
    const e = await evidence(stack, crashed);
    expect(e.successes.map((a) => [a.action, a.outcome])).toEqual([
      ['submit', 'success-resend'],
      ['update', 'success'],
    ]);
  });

  const sim = () => komfortkasse(stack);
});
