import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningStack } from '../../local/stack.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import type { ReconcileSummary } from '../../lib/sync/reconcile.ts';
import {
  allQueuesEmpty,
  bootStack,
  deliver,
  evidence,
  expectSubmittedOnce,
  expectSubmittedWithoutLoss,
  faultOrder,
  mapLimit,
  submitRequests,
  waitFor,
  waitUntilSubmitted,
} from './helpers.ts';

/*
 * The emulators are restarted while the shop keeps sending orders. The SQS emulator keeps
 * its queues in memory, so a restart loses whatever was queued — which AWS never does, but
 * which the daily reconcile run exists for: it compares the shop with the history table and
 * re-enqueues what is missing. DynamoDB Local runs with a data directory, so its restart
 * keeps the table, as the real service does.
 */
describe('emulator restarted mid-run', () => {
  let stack: RunningStack;
  let dataDir: string;
  let failedRecords = 0;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'orderbridge-faults-'));
    stack = await bootStack({
      persistDir: dataDir,
      // A failed record returns after 3 s: five receives outlast the few seconds a
      // restart takes (in AWS the visibility timeout is 180 s), so nothing reaches the DLQ.
      visibilityTimeoutSeconds: 3,
      retryDelaySeconds: 3,
      env: { KOMFORTKASSE_LEASE_SECONDS: '2', KOMFORTKASSE_INITIAL_DUNNING_LEVEL: '1' },
      onInvocation: (log) => {
        if (log.functionName === 'sync-order') failedRecords += log.failures ?? 0;
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** True once nothing accepts connections at the endpoint any more. */
  async function isDown(endpoint: string): Promise<boolean> {
    try {
      await fetch(endpoint, { signal: AbortSignal.timeout(500) });
      return false;
    } catch {
      return true;
    }
  }

  /**
   * The shop: the orders exist in VersaCommerce and their webhooks arrive steadily. The
   * first `before` are delivered with everything up; the rest are sent while the emulator
   * is down (each retried until 202), so the outage is certain to be felt.
   */
  async function shop(
    ids: number[],
    { before, emulator, restart, beforeRestart }: { before: number; emulator: () => { endpoint: string }; restart: () => Promise<void>; beforeRestart?: () => Promise<void> },
  ) {
    const vc = stack.simulators.versaCommerce!;
    for (const id of ids) vc.addOrder({ order: faultOrder(id) });
    const send = (id: number) => deliver(stack, faultOrder(id), { timeoutMs: 40_000 });
    const results = await mapLimit(ids.slice(0, before), 3, send);
    await beforeRestart?.();
    const restarting = restart();
    const { endpoint } = emulator();
    await waitFor(() => isDown(endpoint), 'the emulator to go down');
    results.push(...(await mapLimit(ids.slice(before), 3, async (id) => {
      await sleep(20);
      return send(id);
    })));
    await restarting;
    return results;
  }
  const drainedAll = () => waitFor(async () => Object.values(await allQueuesEmpty(stack)).every((d) => d === 0), 'all queues to drain', 40_000);

  it('SQS emulator restart: rejected webhooks are retried, lost messages come back via reconcile, each order submitted once', { timeout: 90_000 }, async () => {
    // prepare
    const ids = Array.from({ length: 40 }, (_, i) => 91_000 + i);
    const urlsBefore = Object.values(stack.queues).map((q) => q.url);

    // act
    const results = await shop(ids, { before: 15, emulator: () => stack.sqs, restart: () => stack.restartSqs({ downMs: 2_000 }) });
    await drainedAll();
    const lost = [];
    for (const id of ids) if ((await getOrderRecord(id))?.komfortkasse.state !== 'submitted') lost.push(id);
    const summary = (await stack.fireSchedule('reconcile')) as ReconcileSummary;
    console.info(`SQS restart: ${lost.length} order(s) lost with the emulator's memory, reconcile re-enqueued ${summary.enqueued}`);
    await waitUntilSubmitted(stack, ids);
    await drainedAll();

    // assess
    expect(Object.values(stack.queues).map((q) => q.url)).toEqual(urlsBefore);
    const statuses = results.flatMap((r) => r.statuses);
    expect(statuses.filter((s) => s !== 202).length, 'the shop saw the outage').toBeGreaterThan(0);
    expect(statuses.every((s) => s === 202 || s === 503 || s === 0)).toBe(true);
    expect(summary.enqueuedOrderIds.filter((id) => ids.includes(id)).sort()).toEqual(expect.arrayContaining(lost));
    for (const id of ids) await expectSubmittedOnce(stack, id);
    const klar = stack.simulators.klar!;
    expect(ids.filter((id) => !klar.costs.has(String(id))), 'orders without a Klar cost').toEqual([]);
  });

  it('DynamoDB Local restart: workers retry, nothing lost, at most one recorded re-send per order', { timeout: 90_000 }, async () => {
    // prepare
    const ids = Array.from({ length: 40 }, (_, i) => 92_000 + i);
    const failedBefore = failedRecords;
    let doneBeforeRestart: number[] = [];

    // act
    const recordedNow = async () => {
      const records = await Promise.all(ids.map((id) => getOrderRecord(id)));
      return ids.filter((_, i) => records[i]?.komfortkasse.state === 'submitted');
    };
    await shop(ids, {
      before: 15,
      emulator: () => stack.dynamoDb,
      restart: () => stack.restartDynamoDb({ downMs: 2_000 }),
      beforeRestart: async () => {
        doneBeforeRestart = await waitFor(async () => ((await recordedNow()).length > 0 ? recordedNow() : undefined), 'a first order to be recorded');
      },
    });
    await waitUntilSubmitted(stack, ids, 60_000);
    await drainedAll();

    // assess: the workers felt the outage, and the table survived it
    expect(failedRecords - failedBefore, 'records failed while DynamoDB was down').toBeGreaterThan(0);
    expect(doneBeforeRestart.length).toBeGreaterThan(0);
    for (const id of doneBeforeRestart) expect((await getOrderRecord(id))?.komfortkasse.state, `order ${id} recorded before the restart`).toBe('submitted');
    let resends = 0;
    for (const id of ids) {
      const e = await evidence(stack, id);
      if (e.submitCount === 1) {
        // One call reached Komfortkasse. Its history says `success`, or `success-resend` when
        // an earlier claim's write may have landed while DynamoDB went down (its fate unknown,
        // the worker must assume the order may already exist upstream).
        await expectSubmittedWithoutLoss(stack, id);
        continue;
      }
      // Komfortkasse accepted the call, but the history write after it failed: the redelivery
      // may repeat it once, identically, and must record it as a re-send.
      resends++;
      expect(e.submitCount, `order ${e.code}`).toBe(2);
      expect(e.successes.at(-1)?.outcome, `order ${e.code}`).toBe('success-resend');
      expect(e.successes.filter((a) => a.outcome === 'success-resend'), `order ${e.code}`).toHaveLength(1);
      const [first, second] = submitRequests(stack, e.code).filter((r) => r.status === 200);
      const { initialDunningLevel: _first, ...firstBody } = first!.body as Record<string, unknown>;
      expect(second!.body, `order ${e.code}: the re-send`).toEqual(firstBody);
      expect(e.record?.komfortkasse.state).toBe('submitted');
    }
    expect(resends, 're-sends (at most one batch was in flight)').toBeLessThanOrEqual(10);
    const klar = stack.simulators.klar!;
    expect(ids.filter((id) => !klar.costs.has(String(id))), 'orders without a Klar cost').toEqual([]);
  });
});
