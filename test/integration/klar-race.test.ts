import { randomUUID } from 'node:crypto';
import type { SQSBatchResponse } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { klarCostMessageSchema, type KlarCostMessage } from '../../lib/domain/messages.ts';
import { listAttempts } from '../../lib/store/attempts.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import { lambdaContext, sqsEvent } from '../../local/events.ts';
import type { RunningStack } from '../../local/stack.ts';
import { bootStack } from './harness.ts';

const UPLOAD_PATH = '/06.2024/transaction-costs/json';

// Two Klar batches carrying the same order, run at the same time, with Klar answering one of
// them late: whichever POST lands last, Klar must end with the newest cost (by the order's
// updated_at) and the history must say the same.
describe('concurrent Klar batches for the same order', () => {
  let stack: RunningStack;
  const klar = () => stack.simulators.klar!;

  beforeAll(async () => {
    stack = await bootStack({ workers: false });
  });
  afterAll(async () => stack?.stop());
  beforeEach(() => klar().reset());

  const message = (orderId: number, total: number, updatedAt: string): KlarCostMessage =>
    klarCostMessageSchema.parse({
      kind: 'klar-cost',
      orderId,
      orderCode: `KR-${orderId}`,
      total,
      currency: '€',
      paymentType: 'paypal',
      status: 'open',
      createdAt: '2026-03-01T09:00:00+01:00',
      updatedAt,
      receivedAt: new Date().toISOString(),
      correlationId: `race-${orderId}-${total}`,
    });
  const invoke = async (cost: KlarCostMessage): Promise<SQSBatchResponse> => {
    const { handler } = await import('../../functions/upload-klar-costs.ts');
    const event = sqsEvent([{ MessageId: randomUUID(), ReceiptHandle: randomUUID(), Body: JSON.stringify(cost) }], stack.queues.klarCosts.arn);
    return (await handler(event, lambdaContext('upload-klar-costs', 60) as never)) as SQSBatchResponse;
  };
  const postsOf = (orderId: number) =>
    klar()
      .requests.filter((r) => r.method === 'POST' && r.path === UPLOAD_PATH)
      .map((r) => (r.body as { items: { orderId: string; transactionCosts: number }[] }).items.find((i) => i.orderId === String(orderId))?.transactionCosts)
      .filter((cost) => cost !== undefined);

  // PayPal: 0.35 + 2.49 % of the total
  const OLDER = { total: 10, cost: 0.6, updatedAt: '2026-03-01T10:00:00+01:00' };
  const NEWER = { total: 100, cost: 2.84, updatedAt: '2026-03-01T11:00:00+01:00' };

  it('ends with the newest cost when the older batch posts first but Klar takes it last', async () => {
    // prepare: the first POST to arrive (the older batch's) is held back before Klar applies it
    const orderId = 31_001;
    klar().injectFault({ method: 'POST', pathPrefix: UPLOAD_PATH, delayMs: 600, times: 1 });
    // act
    const older = invoke(message(orderId, OLDER.total, OLDER.updatedAt));
    await new Promise((r) => setTimeout(r, 150)); // its POST is in flight and held
    const newer = invoke(message(orderId, NEWER.total, NEWER.updatedAt));
    const results = await Promise.all([older, newer]);
    // assess: the race happened (Klar took the older cost last) and was repaired
    expect(results.map((r) => r.batchItemFailures)).toEqual([[], []]);
    const posts = postsOf(orderId);
    expect(posts.slice(0, 2).sort()).toEqual([OLDER.cost, NEWER.cost].sort());
    expect(posts.at(-1)).toBe(NEWER.cost);
    expect(klar().costs.get(String(orderId))?.transactionCosts).toBe(NEWER.cost);
    const record = await getOrderRecord(orderId);
    expect(record?.klar).toMatchObject({ state: 'uploaded', transactionCosts: NEWER.cost, sourceUpdatedAt: NEWER.updatedAt });
    const uploads = (await listAttempts(orderId)).filter((a) => a.target === 'klar' && a.outcome === 'success');
    expect(uploads.length).toBeGreaterThanOrEqual(2);
  });

  it('ends with the newest cost when the newer batch posts first but Klar takes it last', async () => {
    // prepare: this time the newer batch's POST is held back
    const orderId = 31_002;
    klar().injectFault({ method: 'POST', pathPrefix: UPLOAD_PATH, delayMs: 600, times: 1 });
    // act
    const newer = invoke(message(orderId, NEWER.total, NEWER.updatedAt));
    await new Promise((r) => setTimeout(r, 150));
    const older = invoke(message(orderId, OLDER.total, OLDER.updatedAt));
    const results = await Promise.all([newer, older]);
    // assess
    expect(results.map((r) => r.batchItemFailures)).toEqual([[], []]);
    expect(postsOf(orderId).at(-1)).toBe(NEWER.cost);
    expect(klar().costs.get(String(orderId))?.transactionCosts).toBe(NEWER.cost);
    expect((await getOrderRecord(orderId))?.klar).toMatchObject({ state: 'uploaded', transactionCosts: NEWER.cost, sourceUpdatedAt: NEWER.updatedAt });
  });

  it('converges when many batches with different copies race, with SQS redelivering what failed', async () => {
    // prepare: five copies of one order, the newest in the middle, every POST slowed a little
    const orderId = 31_003;
    const copies = [1, 2, 3, 4, 5].map((hour) => ({ total: hour * 10, updatedAt: `2026-03-01T1${hour}:00:00+01:00` }));
    for (let i = 0; i < 5; i++) klar().injectFault({ method: 'POST', pathPrefix: UPLOAD_PATH, delayMs: 50 * ((i * 3) % 5), times: 1 });
    // act: all at once; a batch that gave up (reported its record as failed) is redelivered, as SQS would
    let pending = [2, 4, 0, 3, 1].map((i) => message(orderId, copies[i]!.total, copies[i]!.updatedAt));
    for (let delivery = 0; delivery < 5 && pending.length > 0; delivery++) {
      const results = await Promise.all(pending.map(async (cost) => ({ cost, response: await invoke(cost) })));
      pending = results.filter((r) => r.response.batchItemFailures.length > 0).map((r) => r.cost);
    }
    // assess: Klar and the history agree on the newest copy (total 50: 0.35 + 2.49 % = 1.595 → 1.60)
    expect(pending).toEqual([]);
    expect(klar().costs.get(String(orderId))?.transactionCosts).toBe(1.6);
    expect((await getOrderRecord(orderId))?.klar).toMatchObject({ state: 'uploaded', transactionCosts: 1.6, sourceUpdatedAt: copies[4]!.updatedAt });
  });
});
