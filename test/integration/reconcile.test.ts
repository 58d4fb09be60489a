import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SINCE_DAYS, sinceFromEvent } from '../../functions/reconcile.ts';
import { InvalidMessageError } from '../../lib/domain/errors.ts';
import { listAttempts } from '../../lib/store/attempts.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import { reconcile, type ReconcileSummary } from '../../lib/sync/reconcile.ts';
import { seedKomfortkasseOrder } from '../../local/simulators/fixtures.ts';
import type { RunningStack } from '../../local/stack.ts';
import { buildVersaCommerceOrder } from '../factories/orders.ts';
import { bootStack, cliFor, drained, postWebhook, queueDepth, waitFor } from './harness.ts';

const DAY = 86_400_000;
const daysAgo = (days: number) => new Date(Date.now() - days * DAY);

describe('the reconcile event (scheduled Lambda input)', () => {
  const now = new Date('2025-06-15T12:00:00Z');

  it('defaults to the last 14 days, as the daily schedule sends {"sinceDays":14}', () => {
    expect(DEFAULT_SINCE_DAYS).toBe(14);
    expect(sinceFromEvent({ sinceDays: 14 }, now)).toEqual({ since: new Date('2025-06-01T12:00:00Z'), dryRun: false });
    // a bare EventBridge scheduled event carries no input
    expect(sinceFromEvent({ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} }, now).since).toEqual(new Date('2025-06-01T12:00:00Z'));
    expect(sinceFromEvent(undefined, now).since).toEqual(new Date('2025-06-01T12:00:00Z'));
  });

  it('takes an explicit since date and dryRun from a console test event', () => {
    expect(sinceFromEvent({ since: '2026-01-01', dryRun: true }, now)).toEqual({ since: new Date('2026-01-01T00:00:00Z'), dryRun: true });
    expect(sinceFromEvent({ since: '2026-01-01T08:00:00+01:00' }, now).since).toEqual(new Date('2026-01-01T07:00:00Z'));
  });

  it.each([[{ since: 'last monday' }], [{ sinceDays: 0 }], [{ sinceDays: 'many' }], [{ dryRun: 'yes' }]])('fails loudly on %j instead of guessing', (event) => {
    expect(() => sinceFromEvent(event, now)).toThrow(InvalidMessageError);
  });
});

// Reconciliation end to end: the VersaCommerce simulator holds the shop's orders, some of
// which reached Orderbridge by webhook and one of which did not.
describe('reconcile through the local stack', () => {
  let stack: RunningStack;
  let cli: Awaited<ReturnType<typeof cliFor>>['cli'];
  let cleanup = () => {};

  beforeAll(async () => {
    stack = await bootStack();
    ({ cli, cleanup } = await cliFor(stack));
  });
  afterAll(async () => {
    await stack?.stop();
    cleanup();
  });
  const vc = () => stack.simulators.versaCommerce!;
  const kkSubmits = (code: string) => stack.simulators.komfortkasse!.requests.filter((r) => r.method === 'POST' && r.path === `/api/v2/order/${code}`);
  const order = (id: number, createdAt: Date, overrides: Record<string, unknown> = {}) =>
    buildVersaCommerceOrder({ id, code: `RC-${id}`, created_at: createdAt.toISOString(), ...overrides });
  /** Waits until both sides of an order are recorded (and the Klar attempt is logged). */
  const synced = (id: number, kkState = 'submitted') =>
    waitFor(async () => {
      const record = await getOrderRecord(id);
      const klarLogged = (await listAttempts(id)).some((a) => a.target === 'klar');
      return record?.komfortkasse.state === kkState && record.klar.state === 'uploaded' && klarLogged ? record : undefined;
    }, `order ${id} to sync`);

  const recent = daysAgo(2);
  const viaWebhook = order(9001, recent, { payment_type: 'cod' });
  const paypal = order(9002, recent, { payment_type: 'paypal' });
  const lost = order(9003, recent, { payment_type: 'invoice' }); // its webhook never arrived
  const canceledNeverSeen = order(9004, recent, { status: 'canceled' });
  const old = order(9005, daysAgo(30), { payment_type: 'invoice' }); // before --since
  const since = daysAgo(7).toISOString().slice(0, 10);

  it('finds the order whose webhook was lost and enqueues exactly that one', async () => {
    // prepare: the shop has five orders; two came by webhook and are synced
    for (const o of [viaWebhook, paypal, lost, canceledNeverSeen, old]) vc().addOrder(o);
    for (const o of [viaWebhook, paypal]) expect((await postWebhook(stack, { order: o })).status).toBe(202);
    await synced(viaWebhook.id);
    await synced(paypal.id, 'skipped');
    await drained(stack); // a loaded machine may redeliver a message while it is being handled

    // act 1: dry run
    const dry = await cli('reconcile', '--since', since, '--dry-run', '--json');
    // assess 1: the lost order would be enqueued; nothing is
    expect(dry.code).toBe(0);
    const drySummary = JSON.parse(dry.stdout) as ReconcileSummary;
    expect(drySummary).toEqual({
      since: `${since}T00:00:00.000Z`,
      checked: 4,
      shopListed: 4,
      // Komfortkasse dunns the webhook order only, which the listing covered: nothing to re-check
      komfortkasse: { enabled: true, maxAgeDays: 120, open: 1, rechecked: 0, goneFromShop: 0, unknown: 0 },
      inSync: 2, // the webhook order, and the canceled order that never needed sending
      enqueued: 1,
      skippedByPaymentType: 1,
      needsAttention: 0,
      invalid: 0,
      enqueuedOrderIds: [lost.id],
      dryRun: true,
    });
    expect(await queueDepth(stack, stack.queues.orders.url)).toBe(0);
    expect(await queueDepth(stack, stack.queues.klarCosts.url)).toBe(0);
    expect(await getOrderRecord(lost.id)).toBeUndefined();

    // act 2: for real, with the readable summary
    const run = await cli('reconcile', '--since', since);
    // assess 2
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/shop orders listed\s+4\s+created since/);
    expect(run.stdout).toMatch(/Komfortkasse open\s+1\s/);
    expect(run.stdout).toMatch(/re-checked in shop\s+0\s/);
    expect(run.stdout).toMatch(/\n  checked\s+4\n/);
    expect(run.stdout).toMatch(/in sync\s+2\n/);
    expect(run.stdout).toMatch(new RegExp(`enqueued\\s+1\\s+order ids ${lost.id}\\n`));
    expect(run.stdout).toMatch(/skipped \(payment type\)\s+1\n/);
    expect(run.stdout).toMatch(/needs-attention\s+0/);
    expect(run.stderr).toMatch(/reconcile: page 1 — 4 checked, 1 enqueued/);
    expect(run.stderr).toMatch(/reconcile: Komfortkasse — 0 open order\(s\) re-checked in the shop/);
    const record = await synced(lost.id);
    expect(record.orderCode).toBe(lost.code);
    expect(kkSubmits(lost.code)).toHaveLength(1);
    expect(kkSubmits(old.code)).toHaveLength(0);
    expect(kkSubmits(viaWebhook.code)).toHaveLength(1); // not submitted again
    const listCalls = vc().requests.filter((r) => r.path === '/api/orders.json');
    expect(listCalls.at(-1)?.query).toEqual({ limit: '250', created_at_min: `${since}T00:00:00.000Z`, include: 'items,shipments' });

    // act 3: now everything is in sync
    const again = JSON.parse((await cli('reconcile', '--since', since, '--json')).stdout) as ReconcileSummary;
    expect(again).toMatchObject({ checked: 4, inSync: 3, enqueued: 0, skippedByPaymentType: 1 });
  });

  it('re-enqueues an order that changed in the shop, and counts needs-attention without re-enqueueing it', async () => {
    // prepare: the shop changed the webhook order's total; another order is stuck in needs-attention
    const oldHash = (await getOrderRecord(viaWebhook.id))!.komfortkasse.payloadHash;
    const changed = { ...viaWebhook, total: '20.00' };
    vc().addOrder(changed);
    const rejected = order(9006, recent, { payment_type: 'invoice' });
    vc().addOrder(rejected);
    stack.simulators.komfortkasse!.injectFault({ pathPrefix: `/api/v2/order/${rejected.code}`, status: 400, body: { error: 'invalid order' } });
    expect((await postWebhook(stack, { order: rejected })).status).toBe(202);
    await waitFor(async () => (await getOrderRecord(rejected.id))?.komfortkasse.state === 'needs-attention', 'needs-attention');
    await waitFor(async () => (await getOrderRecord(rejected.id))?.klar.state === 'uploaded', 'the Klar side of the rejected order');
    // act
    const summary = JSON.parse((await cli('reconcile', '--since', since, '--json')).stdout) as ReconcileSummary;
    // assess
    expect(summary).toMatchObject({ checked: 5, enqueued: 1, enqueuedOrderIds: [viaWebhook.id], needsAttention: 1, skippedByPaymentType: 1, inSync: 2 });
    expect(summary.inSync + summary.enqueued + summary.needsAttention + summary.skippedByPaymentType).toBe(summary.checked);
    await waitFor(async () => {
      const record = await getOrderRecord(viaWebhook.id);
      return record?.komfortkasse.state === 'submitted' && record.komfortkasse.payloadHash !== oldHash;
    }, 'the changed order to be updated');
    expect(kkSubmits(viaWebhook.code)).toHaveLength(2);
    expect(kkSubmits(viaWebhook.code)[1]!.body).toMatchObject({ amount: 20 });
  });

  it('the scheduled Lambda reconciles the last 14 days', async () => {
    // prepare: two more lost webhooks; PayPal is never sent to Komfortkasse, but Klar needs its cost
    const lostToo = order(9007, daysAgo(1), { payment_type: 'prepayment' });
    const lostPaypal = order(9008, daysAgo(1), { payment_type: 'paypal' });
    vc().addOrder(lostToo);
    vc().addOrder(lostPaypal);
    // act
    const summary = (await stack.fireSchedule('reconcile')) as ReconcileSummary;
    // assess: the 30-day-old order is outside the window; each order is counted once
    expect(summary.enqueuedOrderIds).toEqual([lostToo.id, lostPaypal.id]);
    expect(summary).toMatchObject({ checked: 7, enqueued: 2, skippedByPaymentType: 1, needsAttention: 1, inSync: 3 });
    expect(new Date(summary.since).getTime()).toBeCloseTo(daysAgo(14).getTime(), -5);
    await synced(lostToo.id);
    const paypalRecord = await waitFor(async () => {
      const record = await getOrderRecord(lostPaypal.id);
      return record?.klar.state === 'uploaded' ? record : undefined;
    }, "the PayPal order's Klar cost");
    expect(paypalRecord.klar.transactionCosts).toBe(0.75); // 2.49 % of 15.94 + 0.35
    expect(kkSubmits(lostPaypal.code)).toHaveLength(0);
  });

  it('pages through the shop 250 orders at a time, by id_min', async () => {
    // prepare: 300 old orders the pipeline never saw
    for (let i = 0; i < 300; i++) vc().addOrder(order(20_000 + i, new Date('2024-03-01T10:00:00Z')));
    const before = vc().requests.length;
    // act
    const dry = await cli('reconcile', '--since', '2024-01-01', '--dry-run', '--json');
    // assess
    const summary = JSON.parse(dry.stdout) as ReconcileSummary;
    expect(summary.checked).toBe(vc().orders.size);
    expect(summary.enqueued).toBe(301); // the 300 and the 30-day-old one
    const pages = vc().requests.slice(before).filter((r) => r.path === '/api/orders.json');
    const lastOfFirstPage = [...vc().orders.keys()].sort((a, b) => a - b)[249]!;
    expect(pages.map((r) => [r.query.limit, r.query.id_min, r.query.offset])).toEqual([
      ['250', undefined, undefined],
      ['250', String(lastOfFirstPage + 1), undefined],
    ]);
    expect(dry.stderr).toMatch(/page 1 — 250 checked[\s\S]*page 2 — \d+ checked/);
    expect(await queueDepth(stack, stack.queues.orders.url)).toBe(0);
  });
});

describe('reconcile and a removed order the shop reopened', () => {
  let stack: RunningStack;
  beforeAll(async () => {
    stack = await bootStack();
  });
  afterAll(async () => stack?.stop());

  it('brings it back on the shop\'s word, fetched when the worker runs', async () => {
    // prepare: submitted, then canceled (removed from Komfortkasse), then reopened in the shop
    const open = buildVersaCommerceOrder({ id: 9100, code: 'RC-9100', created_at: daysAgo(1).toISOString(), payment_type: 'invoice' });
    const vc = stack.simulators.versaCommerce!;
    const kk = stack.simulators.komfortkasse!;
    expect((await postWebhook(stack, { order: open })).status).toBe(202);
    await waitFor(async () => (await getOrderRecord(open.id))?.komfortkasse.state === 'submitted', 'the submit');
    expect((await postWebhook(stack, { order: { ...open, status: 'canceled' } })).status).toBe(202);
    await waitFor(async () => (await getOrderRecord(open.id))?.komfortkasse.state === 'removed', 'the remove');
    vc.addOrder(open);
    const fetchesBefore = vc.requests.filter((r) => r.path === `/api/orders/${open.id}.json`).length;
    // act
    const summary = (await stack.fireSchedule('reconcile')) as ReconcileSummary;
    // assess: enqueued without a snapshot, so the worker asked the shop and resubmitted
    expect(summary.enqueuedOrderIds).toContain(open.id);
    await waitFor(async () => (await getOrderRecord(open.id))?.komfortkasse.state === 'submitted', 'the resubmission');
    expect(vc.requests.filter((r) => r.path === `/api/orders/${open.id}.json`).length).toBeGreaterThan(fetchesBefore);
    expect(kk.orders.get(open.code)?.paymentStatus).toBe('UNPAID');
    expect(kk.requests.filter((r) => r.path === `/api/v2/order/${open.code}`)).toHaveLength(2);
  });
});

// What Komfortkasse still dunns, beyond the 14-day listing: old orders whose cancel, delete
// or payment webhook was lost are found through Komfortkasse's open orders.
describe('reconcile and what Komfortkasse still dunns', () => {
  let stack: RunningStack;
  beforeAll(async () => {
    stack = await bootStack();
  });
  afterAll(async () => stack?.stop());
  const vc = () => stack.simulators.versaCommerce!;
  const kk = () => stack.simulators.komfortkasse!;
  const removesOf = (code: string) => kk().requests.filter((r) => r.method === 'POST' && r.path === `/api/v2/order/remove/${code}`);
  const submitsOf = (code: string) => kk().requests.filter((r) => r.method === 'POST' && r.path === `/api/v2/order/${code}`);
  const lookupsOf = (code: string) => vc().requests.filter((r) => r.path === '/api/orders.json' && r.query.code === code);

  /**
   * An order created `days` ago: in the shop, in Komfortkasse since then (as an earlier
   * submission left it), and synced once by webhook, so the history knows it.
   */
  const oldOpenOrder = async (id: number, days: number, overrides: Record<string, unknown> = {}) => {
    const order = buildVersaCommerceOrder({ id, code: `RK-${id}`, created_at: daysAgo(days).toISOString(), payment_type: 'invoice', ...overrides });
    vc().addOrder(order);
    kk().seedOrder({ number: order.code, body: seedKomfortkasseOrder(), createdAt: daysAgo(days) });
    expect((await postWebhook(stack, { order })).status).toBe(202);
    await waitFor(async () => (await getOrderRecord(id))?.komfortkasse.state === 'submitted', `order ${id} to be submitted`);
    return order;
  };

  it('a 30-day-old open order canceled in the shop with its webhook lost is removed from Komfortkasse', async () => {
    // prepare: synced 30 days ago; then canceled in the shop, and that webhook never arrived
    const order = await oldOpenOrder(9200, 30);
    vc().addOrder({ ...order, status: 'canceled' });
    await drained(stack);
    // act: the daily run (the last 14 days)
    const summary = (await stack.fireSchedule('reconcile')) as ReconcileSummary;
    // assess: outside the listing, found through Komfortkasse, looked up once by its code, removed
    expect(summary.komfortkasse).toEqual({ enabled: true, maxAgeDays: 120, open: 1, rechecked: 1, goneFromShop: 0, unknown: 0 });
    expect(summary.shopListed).toBe(0);
    expect(summary.enqueuedOrderIds).toEqual([order.id]);
    expect(lookupsOf(order.code)).toHaveLength(1);
    expect(kk().requests.find((r) => r.method === 'GET' && r.path === '/api/v2/orders')?.query).toEqual({ paymentStatus: 'UNPAID,PAID_PARTIAL', maxAge: '120' });
    await waitFor(async () => (await getOrderRecord(order.id))?.komfortkasse.state === 'removed', 'the remove');
    expect(removesOf(order.code)).toHaveLength(1);
    expect(kk().orders.get(order.code)?.paymentStatus).toBe('DISAPPEARED');
  });

  it('also closes old orders deleted or paid in the shop, leaves old in-sync ones alone and counts what nobody knows', async () => {
    // prepare: four old orders Komfortkasse dunns, and one only Komfortkasse knows
    const deleted = await oldOpenOrder(9201, 40);
    const paid = await oldOpenOrder(9202, 50);
    const inSync = await oldOpenOrder(9203, 60);
    const tooOld = await oldOpenOrder(9204, 200);
    kk().seedOrder({ number: 'LEGACY-1', body: seedKomfortkasseOrder(), createdAt: daysAgo(20) });
    await drained(stack);
    vc().removeOrder(deleted.id);
    vc().addOrder({ ...paid, payment_status: 'paid' });
    const submitsBefore = submitsOf(inSync.code).length;
    // act
    const summary = await reconcile({ since: daysAgo(14), trigger: 'test' });
    // assess
    expect(summary.komfortkasse).toEqual({ enabled: true, maxAgeDays: 120, open: 4, rechecked: 4, goneFromShop: 1, unknown: 1 });
    expect(summary.enqueuedOrderIds.sort()).toEqual([deleted.id, paid.id]);
    expect(summary).toMatchObject({ checked: 3, inSync: 1, enqueued: 2 });
    expect(lookupsOf(tooOld.code)).toHaveLength(0); // beyond maxAge
    await waitFor(async () => (await getOrderRecord(deleted.id))?.komfortkasse.state === 'removed', 'the deleted order to be removed');
    expect(removesOf(deleted.code)).toHaveLength(1);
    await waitFor(() => submitsOf(paid.code).at(-1)?.body && (submitsOf(paid.code).at(-1)!.body as { stopReminder?: boolean }).stopReminder === true, 'stopReminder for the paid order');
    await drained(stack);
    expect(submitsOf(inSync.code)).toHaveLength(submitsBefore);
    expect(kk().orders.get('LEGACY-1')?.paymentStatus).toBe('UNPAID');
  });

  it('pages by id_min, so an order deleted from a page already read does not hide one of the next page', async () => {
    // prepare: 260 recent orders the pipeline never saw (two pages)
    const ids = Array.from({ length: 260 }, (_, i) => 30_000 + i);
    for (const id of ids) vc().addOrder(buildVersaCommerceOrder({ id, code: `RP-${id}`, created_at: daysAgo(1).toISOString(), payment_type: 'paypal' }));
    // act: while page 1 is checked, the shop deletes one of its orders
    const summary = await reconcile({
      since: daysAgo(2),
      dryRun: true,
      trigger: 'test',
      onPage: ({ page }) => {
        if (page === 0) vc().removeOrder(ids[0]!);
      },
    });
    // assess: every order of both pages was checked once (offset paging would skip one)
    expect(summary.shopListed).toBe(260);
    expect(new Set(summary.enqueuedOrderIds.filter((id) => ids.includes(id))).size).toBe(260);
  });
});

describe('reconcile with Komfortkasse switched off', () => {
  let stack: RunningStack;
  beforeAll(async () => {
    stack = await bootStack({ env: { KOMFORTKASSE_ENABLED: 'false' } });
  });
  afterAll(async () => stack?.stop());

  it('reads only the shop and compares only Klar', async () => {
    // prepare: an order whose webhook was lost
    const lost = buildVersaCommerceOrder({ id: 9300, code: 'RO-9300', created_at: daysAgo(1).toISOString(), payment_type: 'paypal' });
    stack.simulators.versaCommerce!.addOrder(lost);
    // act
    const summary = (await stack.fireSchedule('reconcile')) as ReconcileSummary;
    // assess: Komfortkasse's side is not read; Klar still gets the cost
    expect(stack.simulators.komfortkasse).toBeUndefined();
    expect(summary.komfortkasse).toEqual({ enabled: false, maxAgeDays: 120, open: 0, rechecked: 0, goneFromShop: 0, unknown: 0 });
    expect(summary).toMatchObject({ shopListed: 1, checked: 1, enqueued: 1, enqueuedOrderIds: [lost.id] });
    await waitFor(async () => (await getOrderRecord(lost.id))?.klar.state === 'uploaded', 'the Klar cost');
  });
});
