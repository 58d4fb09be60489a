import { randomUUID } from 'node:crypto';
import { listOrders, type FetchedOrder } from '../clients/versacommerce.ts';
import { feeSchedule, paymentTypeMap } from '../config/mapping.ts';
import { isPermanent } from '../domain/errors.ts';
import { orderCost } from '../domain/fees.ts';
import { klarCostMessageFor } from '../domain/messages.ts';
import { desiredKomfortkasseState, payloadHash } from '../domain/komfortkasse-mapping.ts';
import type { VersaCommerceOrder } from '../domain/versacommerce.ts';
import { count } from '../observability/metrics.ts';
import { enqueueKlarCost, enqueueOrderChanged } from '../queue/orders.ts';
import { getOrderRecords, type OrderRecord } from '../store/history.ts';

export const RECONCILE_PAGE_SIZE = 250;

/**
 * Every checked order lands in exactly one of inSync, enqueued, skippedByPaymentType and
 * needsAttention (so they add up to `checked`); `invalid` counts orders the shop returned
 * that fail the schema, which are not checked.
 */
export interface ReconcileSummary {
  since: string;
  checked: number;
  inSync: number;
  enqueued: number;
  skippedByPaymentType: number;
  needsAttention: number;
  invalid: number;
  enqueuedOrderIds: number[];
  dryRun: boolean;
}

export interface ReconcileOptions {
  since: Date;
  dryRun?: boolean;
  onPage?: (progress: { page: number; checked: number; enqueued: number }) => void;
}

type Verdict = 'in-sync' | 'out-of-date' | 'skipped' | 'needs-attention';

/** Komfortkasse side: does the recorded state match what the order asks for? */
export function komfortkasseVerdict(order: VersaCommerceOrder, record: OrderRecord | undefined): Verdict {
  const recorded = record?.komfortkasse;
  let desired;
  try {
    desired = desiredKomfortkasseState(order, { paymentTypes: paymentTypeMap(), firstSubmission: false });
  } catch (error) {
    if (isPermanent(error)) return recorded?.state === 'needs-attention' ? 'needs-attention' : 'out-of-date';
    throw error;
  }
  if (desired.action === 'skip') {
    return recorded?.everSubmitted && recorded.state !== 'removed' ? 'out-of-date' : 'skipped';
  }
  if (desired.action === 'remove') {
    return !recorded || recorded.state === 'removed' || (!recorded.everSubmitted && !recorded.firstAttemptedAt) ? 'in-sync' : 'out-of-date';
  }
  const hash = payloadHash(desired.payload);
  if (recorded?.state === 'needs-attention' && recorded.payloadHash === hash) return 'needs-attention';
  return recorded?.state === 'submitted' && recorded.payloadHash === hash ? 'in-sync' : 'out-of-date';
}

/** Klar side: is the recorded cost the one the fee schedule gives now? */
export function klarInSync(order: VersaCommerceOrder, record: OrderRecord | undefined): boolean {
  if (/^cancell?ed$/i.test(order.status)) return true;
  if (record?.klar.state === 'needs-attention') return true; // listed as needs-attention instead
  try {
    const { transactionCosts, currency } = orderCost(
      { paymentType: order.payment_type ?? '', total: order.total, currency: order.currency, createdAt: order.created_at },
      feeSchedule(),
    );
    return record?.klar.state === 'uploaded' && record.klar.transactionCosts === transactionCosts && record.klar.currency === currency;
  } catch (error) {
    // No cost can be computed (e.g. no fee rule): the worker records needs-attention, so an
    // order not yet in that state (handled above) is out of date.
    if (isPermanent(error)) return false;
    throw error;
  }
}

/**
 * Pages through the shop's orders since a date and re-enqueues every order whose recorded
 * upstream state is missing or out of date — a lost webhook is caught here.
 */
export async function reconcile(options: ReconcileOptions): Promise<ReconcileSummary> {
  const since = options.since.toISOString();
  const summary: ReconcileSummary = {
    since,
    checked: 0,
    inSync: 0,
    enqueued: 0,
    skippedByPaymentType: 0,
    needsAttention: 0,
    invalid: 0,
    enqueuedOrderIds: [],
    dryRun: options.dryRun ?? false,
  };
  const correlationId = `reconcile-${randomUUID()}`;
  for (let page = 0, offset = 0; ; page++, offset += RECONCILE_PAGE_SIZE) {
    const result = await listOrders({ limit: RECONCILE_PAGE_SIZE, offset, createdAtMin: since, include: 'items,shipments' });
    summary.invalid += result.invalid.length;
    const records = await getOrderRecords(result.orders.map((o) => o.order.id));
    for (const fetched of result.orders) await check(fetched, records.get(fetched.order.id), summary, correlationId);
    options.onPage?.({ page, checked: summary.checked, enqueued: summary.enqueued });
    if (result.pageSize < RECONCILE_PAGE_SIZE) break;
  }
  count('reconcileEnqueued', summary.enqueued);
  return summary;
}

async function check(fetched: FetchedOrder, record: OrderRecord | undefined, summary: ReconcileSummary, correlationId: string): Promise<void> {
  const { order, raw } = fetched;
  summary.checked++;
  const verdict = komfortkasseVerdict(order, record);
  const klarOk = klarInSync(order, record);
  if (verdict !== 'out-of-date' && klarOk) {
    if (verdict === 'needs-attention' || record?.klar.state === 'needs-attention') summary.needsAttention++;
    else if (verdict === 'skipped') summary.skippedByPaymentType++;
    else summary.inSync++;
    return;
  }
  summary.enqueued++;
  summary.enqueuedOrderIds.push(order.id);
  if (summary.dryRun) return;
  const receivedAt = new Date().toISOString();
  if (verdict === 'out-of-date') {
    await enqueueOrderChanged({
      kind: 'order-changed',
      orderId: order.id,
      orderCode: order.code,
      // A removed order comes back only on the shop's word at processing time: without a
      // snapshot the worker fetches it, so this listing (maybe older than a cancel) cannot.
      order: record?.komfortkasse.state === 'removed' ? undefined : raw,
      source: 'reconcile',
      receivedAt,
      deliveryId: `reconcile:${order.id}:${receivedAt}`,
      correlationId,
    });
  }
  if (!klarOk) {
    await enqueueKlarCost(klarCostMessageFor(order, { receivedAt, correlationId }));
  }
}
