import { readFileSync } from 'node:fs';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { klarCostMessageSchema, type KlarCostMessage } from '../../lib/domain/messages.ts';
import { needsAttention as listNeedsAttention } from '../../lib/ops/needs-attention.ts';
import { listAttempts } from '../../lib/store/attempts.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import { reloadConfig } from '../../lib/config/index.ts';
import { lambdaContext, sqsEvent } from '../../local/events.ts';
import type { Handler, InvocationLog } from '../../local/runtime.ts';
import type { RecordedRequest } from '../../local/simulators/index.ts';
import type { RunningStack } from '../../local/stack.ts';
import { buildVersaCommerceOrder } from '../factories/orders.ts';
import { bootStack, drained, postWebhook, waitFor } from './harness.ts';

const UPLOAD_PATH = '/06.2024/transaction-costs/json';

/** A klar-costs queue message carrying its order snapshot (as ingest builds it from a full order). */
function costMessage(orderId: number, overrides: Partial<KlarCostMessage> = {}): KlarCostMessage {
  return klarCostMessageSchema.parse({
    kind: 'klar-cost',
    orderId,
    orderCode: `K-${orderId}`,
    total: 100,
    currency: '€',
    paymentType: 'paypal',
    status: 'open',
    createdAt: '2024-05-02T10:00:00+02:00',
    receivedAt: new Date().toISOString(),
    correlationId: `corr-${orderId}`,
    ...overrides,
  });
}

/** Uploads as Klar received them: one entry per POST, with the items it carried. */
function uploadsOf(requests: RecordedRequest[]): { status: number; items: { orderId: string; transactionCosts: number }[] }[] {
  return requests
    .filter((r) => r.method === 'POST' && r.path === UPLOAD_PATH)
    .map((r) => ({ status: r.status, items: (r.body as { items: { orderId: string; transactionCosts: number }[] }).items }));
}

describe('upload-klar-costs against the Klar simulator', () => {
  let stack: RunningStack;
  const invocations: InvocationLog[] = [];
  const processedBy = (functionName: string) =>
    invocations.filter((i) => i.functionName === functionName).reduce((sum, i) => sum + (i.records ?? 0) - (i.failures ?? 0), 0);
  const klar = () => stack.simulators.klar!;

  async function enqueueDirect(messages: KlarCostMessage[]): Promise<void> {
    const chunks: KlarCostMessage[][] = [];
    for (let i = 0; i < messages.length; i += 10) chunks.push(messages.slice(i, i + 10));
    // 10 SendMessageBatch calls in flight keep 2,500 messages well under a few seconds.
    for (let i = 0; i < chunks.length; i += 10) {
      await Promise.all(
        chunks.slice(i, i + 10).map(async (chunk) => {
          const result = await stack.sqsClient.send(
            new SendMessageBatchCommand({
              QueueUrl: stack.queues.klarCosts.url,
              Entries: chunk.map((message, index) => ({ Id: String(index), MessageBody: JSON.stringify(message) })),
            }),
          );
          expect(result.Failed ?? []).toEqual([]);
        }),
      );
    }
  }

  /** Stops the pollers, enqueues everything, starts them again: batches fill deterministically. */
  async function enqueueAsOneBurst(messages: KlarCostMessage[]): Promise<void> {
    await stack.stopWorkers();
    await enqueueDirect(messages);
    stack.startWorkers();
  }

  /** Serialized size of every SQS event the worker got: Lambda refuses more than 6 MB. */
  const eventBytes: number[] = [];
  const measured: Handler = async (event, context) => {
    eventBytes.push(Buffer.byteLength(JSON.stringify(event)));
    const { handler } = await import('../../functions/upload-klar-costs.ts');
    return handler(event, context);
  };

  beforeAll(async () => {
    stack = await bootStack({
      handlers: { 'upload-klar-costs': measured },
      // long enough that a 1000-record batch is never handed out twice while it is processed
      visibilityTimeoutSeconds: 30,
      // the window opens with the first message; collecting 1000 takes well under a second
      env: { KLAR_BATCH_WINDOW_SECONDS: '2' },
      onInvocation: (log) => { invocations.push(log); if (process.env.DEBUG_INVOKE && log.functionName === 'upload-klar-costs') console.log('INVOKE', JSON.stringify(log)); },
    });
  });
  afterAll(async () => stack?.stop());
  beforeEach(async () => {
    await drained(stack);
    klar().reset();
  });

  it('uploads a webhook order once, with the Bearer token, the version path and no optional fields', async () => {
    // prepare
    const order = buildVersaCommerceOrder({ id: 7001, code: 'K-7001', payment_type: 'cod', total: '15.94' });
    // act
    const reply = await postWebhook(stack, { order });
    // assess
    expect(reply.status).toBe(202);
    const stored = await waitFor(() => klar().costs.get('7001'), 'the cost to reach Klar');
    expect(stored).toMatchObject({ orderId: '7001', transactionCosts: 2, uploadCount: 1 });
    const [post] = klar().requests.filter((r) => r.path === UPLOAD_PATH);
    expect(post?.headers.authorization).toBe(`Bearer ${klar().token}`);
    expect(post?.body).toEqual({ items: [{ orderId: '7001', transactionCosts: 2 }] });
    await drained(stack); // the handler has returned, so the history is complete
    const record = await getOrderRecord(7001);
    expect(record?.klar).toMatchObject({ state: 'uploaded', transactionCosts: 2, currency: 'EUR' });
    const attempts = (await listAttempts(7001)).filter((a) => a.target === 'klar');
    expect(attempts).toMatchObject([{ action: 'upload', outcome: 'success', httpStatus: 201 }]);
  });

  it('uploads the cost of an order announced only by a notification: the order worker fetches it once and forwards it', async () => {
    // prepare
    stack.simulators.versaCommerce!.addOrder(buildVersaCommerceOrder({ id: 7002, code: 'K-7002', payment_type: 'paypal', total: '200.00' }));
    // act
    const reply = await postWebhook(stack, { subject: 'update order: 7002', body: '<order>not trusted</order>' });
    // assess
    expect(reply.status).toBe(202);
    const stored = await waitFor(() => klar().costs.get('7002'), 'the fetched order’s cost to reach Klar');
    expect(stored.transactionCosts).toBe(5.33); // 0.35 + 2.49 % of 200.00
    await drained(stack);
    // One fetch per notification: the Klar worker never asks the shop.
    expect(stack.simulators.versaCommerce!.requests.filter((r) => r.path === '/api/orders/7002.json')).toHaveLength(1);
  });

  it('runs the console sample event (events/upload-klar-costs-sqs.json) through the handler', async () => {
    // prepare: every record carries the facts the order worker forwards
    const event = JSON.parse(readFileSync(new URL('../../events/upload-klar-costs-sqs.json', import.meta.url), 'utf8')) as SQSEvent;
    const { handler } = await import('../../functions/upload-klar-costs.ts');
    // act
    const response = (await handler(event, lambdaContext('upload-klar-costs', 60) as never)) as SQSBatchResponse;
    // assess
    expect(response.batchItemFailures).toEqual([]);
    const uploads = uploadsOf(klar().requests);
    expect(uploads).toHaveLength(1);
    // 0 is a cost like any other: prepayment is free, and transactionCosts is required.
    expect(uploads[0]!.items).toEqual([
      { orderId: '100', transactionCosts: 2 },
      { orderId: '101', transactionCosts: 3.35 },
      { orderId: '37578', transactionCosts: 0 },
    ]);
  });

  it('in DRY_RUN logs the request it would send and calls nothing', async () => {
    // prepare
    process.env.DRY_RUN = 'true';
    reloadConfig();
    const { handler } = await import('../../functions/upload-klar-costs.ts');
    const event = sqsEvent([{ MessageId: 'dry-1', ReceiptHandle: 'rh-dry-1', Body: JSON.stringify(costMessage(7401)) }], stack.queues.klarCosts.arn);
    try {
      // act
      const response = (await handler(event, lambdaContext('upload-klar-costs', 60) as never)) as SQSBatchResponse;
      // assess
      expect(response.batchItemFailures).toEqual([]);
    } finally {
      process.env.DRY_RUN = 'false';
      reloadConfig();
    }
    expect(klar().requests).toHaveLength(0);
    const [attempt] = await listAttempts(7401);
    expect(attempt).toMatchObject({
      target: 'klar',
      outcome: 'dry-run',
      request: { method: 'POST', url: `${klar().url}${UPLOAD_PATH}`, body: { items: [{ orderId: '7401', transactionCosts: 2.84 }] } },
    });
    expect((await getOrderRecord(7401))?.klar.state ?? 'pending').toBe('pending');
  });

  it('uploads 2,500 costs in exactly 3 POSTs, each order once', async () => {
    // prepare
    const ids = Array.from({ length: 2500 }, (_, i) => 100_000 + i);
    // act
    await enqueueAsOneBurst(ids.map((id) => costMessage(id, { total: 10 + (id % 97) })));
    // assess
    await waitFor(() => klar().costs.size === ids.length, 'all 2,500 costs to reach Klar', 45_000);
    await drained(stack);
    const uploads = uploadsOf(klar().requests);
    expect(uploads.map((u) => u.status)).toEqual([201, 201, 201]);
    expect(uploads.map((u) => u.items.length).sort((a, b) => b - a)).toEqual([1000, 1000, 500]);
    const sent = uploads.flatMap((u) => u.items.map((i) => i.orderId));
    expect(new Set(sent).size).toBe(2500);
    expect([...klar().costs.values()].every((c) => c.uploadCount === 1)).toBe(true);
    expect(klar().costs.get('100000')?.transactionCosts).toBe(2.84); // total 10 + 100000 % 97 = 100: 0.35 + 2.49 %
    // A full batch of small messages stays far below Lambda's 6 MB event limit.
    expect(Math.max(...eventBytes)).toBeLessThan(1.5 * 1024 * 1024);
  }, 60_000);

  it('skips an unchanged order and re-uploads once when its total changes', async () => {
    // prepare
    const order = (total: string) => ({ order: buildVersaCommerceOrder({ id: 7003, code: 'K-7003', payment_type: 'paypal', total }) });
    await postWebhook(stack, order('100.00'));
    await waitFor(() => klar().costs.get('7003'), 'the first upload');
    await drained(stack);
    const before = { orders: processedBy('sync-order'), costs: processedBy('upload-klar-costs') };
    // act: the same order again, as a separate delivery (orders.fifo would drop a bare repeat)
    await postWebhook(stack, order('100.00'), { headers: { 'x-orderbridge-delivery': 'klar-repeat-7003' } });
    await waitFor(() => processedBy('sync-order') > before.orders, 'the order worker to process the repeat');
    await drained(stack);
    // assess: the order worker saw Klar holds this cost and forwarded nothing
    expect(processedBy('upload-klar-costs')).toBe(before.costs);
    expect(uploadsOf(klar().requests)).toHaveLength(1);
    // act: a changed total
    await postWebhook(stack, order('300.00'));
    await waitFor(() => klar().costs.get('7003')?.uploadCount === 2, 'the re-upload');
    await drained(stack);
    // assess
    const uploads = uploadsOf(klar().requests);
    expect(uploads).toHaveLength(2);
    expect(uploads[1]!.items).toEqual([{ orderId: '7003', transactionCosts: 7.82 }]); // 0.35 + 2.49 % of 300
    expect((await getOrderRecord(7003))?.klar).toMatchObject({ state: 'uploaded', transactionCosts: 7.82 });
  });

  it('never lets an older copy of an order (by updated_at) overwrite a newer cost', async () => {
    // prepare: the newer snapshot (total 100) is uploaded first
    const order = (total: string, updatedAt: string) => ({
      order: buildVersaCommerceOrder({ id: 7004, code: 'K-7004', payment_type: 'paypal', total, updated_at: updatedAt }),
    });
    await postWebhook(stack, order('100.00', '2026-03-02T10:00:00+01:00'));
    await waitFor(() => klar().costs.get('7004'), 'the first upload');
    await drained(stack);
    const before = processedBy('sync-order');
    // act: a late, older copy with another total
    await postWebhook(stack, order('10.00', '2026-03-01T10:00:00+01:00'));
    await waitFor(() => processedBy('sync-order') > before, 'the older copy to be processed');
    await drained(stack);
    // assess: Klar keeps the newer cost
    expect(klar().costs.get('7004')).toMatchObject({ transactionCosts: 2.84, uploadCount: 1 }); // 0.35 + 2.49 % of 100
    expect((await getOrderRecord(7004))?.klar).toMatchObject({ transactionCosts: 2.84, sourceUpdatedAt: '2026-03-02T10:00:00+01:00' });
    // act: the older copy straight on klar-costs (as if forwarded before the newer one was recorded)
    const costsBefore = processedBy('upload-klar-costs');
    await enqueueDirect([costMessage(7004, { orderCode: 'K-7004', total: 10, updatedAt: '2026-03-01T10:00:00+01:00' })]);
    await waitFor(() => processedBy('upload-klar-costs') > costsBefore, 'the Klar worker to process the older copy');
    await drained(stack);
    // assess: the Klar worker, too, leaves the newer cost alone
    expect(klar().costs.get('7004')).toMatchObject({ transactionCosts: 2.84, uploadCount: 1 });
  });

  it('marks only the order Klar calls INVALID as needs-attention and uploads the rest in a second POST', async () => {
    // prepare
    klar().injectFault({
      method: 'POST',
      pathPrefix: UPLOAD_PATH,
      status: 400,
      body: { status: 'INVALID', errors: [{ id: 1, key: '1.orderId', message: 'unknown order' }] },
    });
    const ids = [7101, 7102, 7103];
    // act
    await enqueueAsOneBurst(ids.map((id) => costMessage(id)));
    // assess
    await waitFor(() => uploadsOf(klar().requests).length === 2, 'the rejected and the second POST');
    await drained(stack);
    const [rejected, accepted] = uploadsOf(klar().requests);
    expect(rejected!.status).toBe(400);
    expect(rejected!.items).toHaveLength(3);
    const badId = rejected!.items[1]!.orderId;
    expect(accepted!.status).toBe(201);
    expect(accepted!.items.map((i) => i.orderId).sort()).toEqual(ids.map(String).filter((id) => id !== badId).sort());
    const attention = (await listNeedsAttention()).filter((r) => ids.includes(r.orderId));
    expect(attention.map((r) => r.orderId)).toEqual([Number(badId)]);
    expect(attention[0]!.klar).toMatchObject({ state: 'needs-attention' });
    expect(attention[0]!.klar.error).toContain('unknown order');
    expect(klar().costs.has(badId)).toBe(false);
    for (const id of ids.filter((id) => String(id) !== badId)) {
      expect(klar().costs.get(String(id))?.uploadCount).toBe(1);
      expect((await getOrderRecord(id))?.klar.state).toBe('uploaded');
    }
    // act: the next event for the rejected order, once Klar knows it
    await enqueueDirect([costMessage(Number(badId))]);
    // assess: tried again, uploaded, and off the needs-attention list
    await waitFor(() => klar().costs.get(badId), 'the rejected order to be uploaded on its next event');
    await drained(stack); // the handler has returned
    expect((await getOrderRecord(Number(badId)))?.klar).toMatchObject({ state: 'uploaded', transactionCosts: 2.84 });
    expect((await listNeedsAttention()).some((r) => r.orderId === Number(badId))).toBe(false);
  });

  it('takes a 207 naming rejected entries as partial: those need attention, the others count as uploaded', async () => {
    // prepare
    klar().injectFault({
      method: 'POST',
      pathPrefix: UPLOAD_PATH,
      status: 207,
      body: { status: 'PARTIAL', errors: [{ id: 9, key: '0.orderId', message: 'order not found in shop' }] },
    });
    const ids = [7151, 7152];
    // act
    await enqueueAsOneBurst(ids.map((id) => costMessage(id)));
    // assess
    const [sent] = await waitFor(() => {
      const uploads = uploadsOf(klar().requests);
      return uploads.length === 1 ? uploads : undefined;
    }, 'the partial POST');
    const [bad, good] = sent!.items.map((i) => Number(i.orderId));
    await waitFor(async () => (await getOrderRecord(good!))?.klar.state === 'uploaded', 'the accepted order to be recorded');
    await drained(stack);
    expect(uploadsOf(klar().requests)).toHaveLength(1); // nothing was sent again
    expect((await getOrderRecord(bad!))?.klar).toMatchObject({ state: 'needs-attention', error: expect.stringContaining('order not found in shop') });
    expect((await listNeedsAttention()).filter((r) => ids.includes(r.orderId)).map((r) => r.orderId)).toEqual([bad]);
  });

  it('retries a 503 without uploading anything twice', async () => {
    // prepare
    klar().injectFault({ method: 'POST', pathPrefix: UPLOAD_PATH, status: 503, body: { message: 'busy' } });
    const ids = [7201, 7202, 7203, 7204];
    // act
    await enqueueAsOneBurst(ids.map((id) => costMessage(id)));
    // assess
    await waitFor(() => ids.every((id) => klar().costs.has(String(id))), 'the costs after the retry');
    await drained(stack);
    expect(uploadsOf(klar().requests).map((u) => u.status)).toEqual([503, 201]);
    for (const id of ids) expect(klar().costs.get(String(id))?.uploadCount).toBe(1);
  });

  it('takes a 401 as our credentials, not the orders: retried by SQS, never needs-attention', async () => {
    // prepare: Klar refuses the token once (e.g. rotated), then accepts it again
    klar().injectFault({ method: 'POST', pathPrefix: UPLOAD_PATH, status: 401, body: { message: 'invalid token' }, times: 1 });
    const ids = [7351, 7352];
    // act
    await enqueueAsOneBurst(ids.map((id) => costMessage(id)));
    // assess: the redelivery uploads both; nothing was parked on the way
    await waitFor(() => ids.every((id) => klar().costs.has(String(id))), 'the costs after SQS redelivered them');
    await drained(stack);
    expect(uploadsOf(klar().requests).map((u) => u.status)).toEqual([401, 201]);
    for (const id of ids) {
      expect((await getOrderRecord(id))?.klar.state).toBe('uploaded');
      expect((await listAttempts(id)).filter((a) => a.outcome === 'failed-permanent')).toEqual([]);
    }
    expect((await listNeedsAttention()).some((r) => ids.includes(r.orderId))).toBe(false);
  });

  it('fails the batch items when Klar stays unavailable, so SQS redelivers them and each uploads once', async () => {
    // prepare: more 503s than the client retries inside one invocation
    klar().injectFault({ method: 'POST', pathPrefix: UPLOAD_PATH, status: 503, times: 3 });
    const ids = [7301, 7302];
    const failuresBefore = invocations.reduce((sum, i) => sum + (i.functionName === 'upload-klar-costs' ? (i.failures ?? 0) : 0), 0);
    // act
    await enqueueAsOneBurst(ids.map((id) => costMessage(id)));
    // assess
    await waitFor(() => ids.every((id) => klar().costs.has(String(id))), 'the costs after SQS redelivered them');
    await drained(stack);
    const failures = invocations.reduce((sum, i) => sum + (i.functionName === 'upload-klar-costs' ? (i.failures ?? 0) : 0), 0);
    expect(failures - failuresBefore).toBe(2);
    expect(uploadsOf(klar().requests).map((u) => u.status)).toEqual([503, 503, 503, 201]);
    for (const id of ids) {
      expect(klar().costs.get(String(id))?.uploadCount).toBe(1);
      expect((await getOrderRecord(id))?.klar.state).toBe('uploaded');
    }
    expect((await listNeedsAttention()).some((r) => ids.includes(r.orderId))).toBe(false);
  });
});

