import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { worstCaseRecordMs } from '../../lib/config/budget.ts';
import { listAttempts } from '../../lib/store/attempts.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import { FunctionTimeoutError, type Handler, type InvocationLog } from '../../local/runtime.ts';
import type { RunningStack } from '../../local/stack.ts';
import { buildVersaCommerceOrder } from '../factories/orders.ts';
import { bootStack, drained, postWebhook, queueDepth, waitFor } from './harness.ts';

/*
 * Lambda ends an invocation at the function's timeout; its SQS batch is neither deleted nor
 * handed back, so the messages reappear once their visibility timeout has passed. The local
 * stack does the same, in source mode and with `--bundled` (ORDERBRIDGE_BUNDLED=1).
 *
 * The real handlers stop their own work a second before the deadline (middy's early timeout
 * aborts the calls in flight), so a slow upstream alone makes a failed batch, not a timeout.
 * What outlives the timeout is code that does not yield or ignores its deadline: the first
 * invocation here is such a handler; every later one is the real function.
 */

/** sync-order's shortened timeout fits one record's worst case with these upstream deadlines (its budget check) */
const UPSTREAM_TOTAL_TIMEOUT_MS = 1_500;
const TIMEOUT_SECONDS = Math.ceil(worstCaseRecordMs(UPSTREAM_TOTAL_TIMEOUT_MS) / 1000) + 2;
const VISIBILITY_SECONDS = TIMEOUT_SECONDS + 4;
const INGEST_TIMEOUT_SECONDS = 5;
const RECONCILE_TIMEOUT_SECONDS = 5;

describe('invocations that outlive their function timeout', () => {
  let stack: RunningStack;
  const invocations: InvocationLog[] = [];
  const batches: { at: number; event: SQSEvent }[] = [];
  const stderr: string[] = [];
  let stuckInvocations = 1;

  /** The first invocation never returns (stuck past any deadline); the rest run the real function. */
  const stuckOnce = (real: Handler): Handler => async (event: SQSEvent, context) => {
    batches.push({ at: Date.now(), event });
    if (stuckInvocations-- > 0) return new Promise(() => undefined);
    return real(event, context);
  };

  /** A webhook marked `x-stuck` never gets an answer from ingest; the others do. */
  const stuckWhenMarked = (real: Handler): Handler => async (event: { headers?: Record<string, string> }, context) =>
    event.headers?.['x-stuck'] === 'yes' ? new Promise(() => undefined) : real(event, context);
  const stuckAlways = (): Handler => () => new Promise(() => undefined);

  beforeAll(async () => {
    const write = process.stderr.write.bind(process.stderr);
    vi.spyOn(process.stderr, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: never[]) => {
      stderr.push(String(chunk));
      return write(chunk, ...rest);
    }) as typeof process.stderr.write);
    stack = await bootStack({
      // as deployed: the visibility timeout outlasts the function's timeout
      visibilityTimeoutSeconds: VISIBILITY_SECONDS,
      functionTimeouts: { 'sync-order': TIMEOUT_SECONDS, ingest: INGEST_TIMEOUT_SECONDS, reconcile: RECONCILE_TIMEOUT_SECONDS },
      env: { UPSTREAM_TOTAL_TIMEOUT_MS: String(UPSTREAM_TOTAL_TIMEOUT_MS) },
      wrapHandlers: { 'sync-order': stuckOnce, ingest: stuckWhenMarked, reconcile: stuckAlways },
      onInvocation: (log) => invocations.push(log),
    });
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await stack?.stop();
  });

  it('is abandoned at the timeout; its message is not handed back early, reappears after the visibility timeout and is then synced once', async () => {
    // prepare
    const order = buildVersaCommerceOrder({ id: 31_000, code: 'TO-31000', payment_type: 'cod' });
    const posted = Date.now();

    // act
    expect((await postWebhook(stack, { order })).status).toBe(202);
    const timedOut = await waitFor(() => invocations.find((log) => log.functionName === 'sync-order' && log.timedOut), 'the timed-out invocation', 30_000);
    const depthAfterTimeout = await queueDepth(stack, stack.queues.orders.url);
    await waitFor(async () => (await getOrderRecord(order.id))?.komfortkasse.state === 'submitted', 'the order to be submitted', 40_000);
    await drained(stack);

    // assess: abandoned at the timeout, the log says so
    expect(timedOut).toMatchObject({ records: 1, failures: 1, timedOut: true, error: `sync-order timed out after ${TIMEOUT_SECONDS} s` });
    expect(timedOut.ms).toBeGreaterThanOrEqual(TIMEOUT_SECONDS * 1000 - 50);
    expect(stderr.join('')).toContain(`sync-order timed out after ${TIMEOUT_SECONDS} s — invocation abandoned; its 1 message(s) stay in flight and reappear after the visibility timeout (${VISIBILITY_SECONDS} s)`);
    expect(depthAfterTimeout).toBe(1); // neither deleted nor lost
    // the same message came back, not before its visibility timeout ended (retryDelaySeconds: 0 did not apply)
    const [first, second] = batches;
    expect(batches).toHaveLength(2);
    expect(second!.event.Records[0]!.messageId).toBe(first!.event.Records[0]!.messageId);
    expect(second!.event.Records[0]!.attributes.ApproximateReceiveCount).toBe('2');
    expect(second!.at - posted).toBeGreaterThanOrEqual(VISIBILITY_SECONDS * 1000 - 100);
    // then synced once, as any redelivery
    const submits = stack.simulators.komfortkasse!.requests.filter((r) => r.method === 'POST' && r.path === `/api/v2/order/${order.code}`);
    expect(submits).toHaveLength(1);
    expect((await listAttempts(order.id)).filter((a) => a.target === 'komfortkasse').map((a) => [a.action, a.outcome])).toEqual([['submit', 'success']]);
    expect(await queueDepth(stack, stack.queues.ordersDlq.url)).toBe(0);
    expect(invocations.filter((log) => log.functionName === 'sync-order' && log.timedOut)).toHaveLength(1);
    // with ORDERBRIDGE_BUNDLED=1 the real function is the bundle, in its sandbox
    expect(stack.bundles.get('sync-order')?.invocations ?? 0).toBe(stack.bundled ? 1 : 0);
  }, 90_000);

  it('answers 500 as API Gateway does when ingest outlives its timeout, and says so', async () => {
    // prepare
    const started = Date.now();

    // act
    const reply = await postWebhook(stack, { order: buildVersaCommerceOrder({ id: 31_001, code: 'TO-31001' }) }, { headers: { 'x-stuck': 'yes' } });

    // assess
    expect(reply).toEqual({ status: 500, body: { message: 'Internal Server Error' } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(INGEST_TIMEOUT_SECONDS * 1000 - 50);
    expect(stderr.join('')).toContain(`ingest timed out after ${INGEST_TIMEOUT_SECONDS} s — invocation abandoned; answered 500 as API Gateway does`);
    expect(await queueDepth(stack, stack.queues.orders.url)).toBe(0);
  }, 30_000);

  it('fails a scheduled run that outlives its timeout, and says so', async () => {
    // act
    const failure = await stack.fireSchedule('reconcile').catch((error: unknown) => error);

    // assess
    expect(failure).toBeInstanceOf(FunctionTimeoutError);
    expect(invocations.filter((log) => log.functionName === 'reconcile')).toEqual([
      expect.objectContaining({ timedOut: true, error: `FunctionTimeoutError: reconcile timed out after ${RECONCILE_TIMEOUT_SECONDS} s` }),
    ]);
    expect(stderr.join('')).toContain(`reconcile timed out after ${RECONCILE_TIMEOUT_SECONDS} s — invocation abandoned`);
  }, 30_000);
});
