import { randomUUID } from 'node:crypto';
import { listOrders, type FetchedOrder } from '../clients/versacommerce.ts';
import { config } from '../config/index.ts';
import { klarPlanSettings, komfortkasseMappingSettings } from '../config/mapping.ts';
import { describeError } from '../domain/errors.ts';
import { planKlarCost } from '../domain/klar-plan.ts';
import { planKomfortkasse } from '../domain/komfortkasse-plan.ts';
import { klarCostMessageFor } from '../domain/messages.ts';
import type { OrderRecord } from '../domain/sync-state.ts';
import type { VersaCommerceOrder } from '../domain/versacommerce.ts';
import { count } from '../observability/metrics.ts';
import { enqueueOrderChanged } from '../queue/orders.ts';
import { getOrderRecords } from '../store/order-record.ts';
import { recordReconcileRun } from '../store/reconcile-runs.ts';

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
  /** who started it (schedule, console, cli): recorded with the run for `orderbridge status` */
  trigger?: string;
  onPage?: (progress: { page: number; checked: number; enqueued: number }) => void;
}

type Verdict = 'in-sync' | 'out-of-date' | 'skipped' | 'needs-attention';

/**
 * Komfortkasse side, by the worker's own planner: would a delivery of this order call
 * Komfortkasse (or record something)? A cancellation that never reached Komfortkasse needs
 * nothing upstream, so it counts as in sync.
 */
export function komfortkasseVerdict(order: VersaCommerceOrder, record: OrderRecord | undefined): Verdict {
  const recorded = record?.komfortkasse;
  const plan = planKomfortkasse({ shop: { kind: 'order', order }, recorded, mapping: komfortkasseMappingSettings(), authoritative: true, operator: false });
  switch (plan.kind) {
    case 'none':
      return recorded?.state === 'needs-attention' ? 'needs-attention' : recorded?.state === 'skipped' ? 'skipped' : 'in-sync';
    case 'forget':
      return 'in-sync';
    default:
      return 'out-of-date';
  }
}

/** Klar side, by the Klar planner: does Klar hold the cost the fee schedule gives now? */
export function klarInSync(order: VersaCommerceOrder, record: OrderRecord | undefined, now = new Date()): boolean {
  const facts = klarCostMessageFor(order, { receivedAt: now.toISOString(), correlationId: 'reconcile' });
  const plan = planKlarCost(facts, record?.klar, klarPlanSettings());
  // A newer copy with the same cost (`touch`) changes nothing in Klar.
  return plan.kind !== 'upload' && plan.kind !== 'needs-attention' && plan.kind !== 'unpark';
}

/**
 * Pages through the shop's orders since a date and re-enqueues every order whose recorded
 * upstream state is missing or out of date — a lost webhook is caught here.
 */
export async function reconcile(options: ReconcileOptions): Promise<ReconcileSummary> {
  const startedAt = new Date().toISOString();
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
  const run = (error?: unknown) =>
    recordReconcileRun({
      at: startedAt,
      since,
      checked: summary.checked,
      enqueued: summary.enqueued,
      needsAttention: summary.needsAttention,
      invalid: summary.invalid,
      dryRun: summary.dryRun,
      trigger: options.trigger ?? 'unknown',
      ...(error === undefined ? {} : { error: describeError(error) }),
    });
  try {
    await pages(options, summary, correlationId);
  } catch (error) {
    // A failed run is recorded too (status shows it); the error still fails the invocation.
    await run(error).catch(() => undefined);
    throw error;
  }
  await run();
  count('reconcileEnqueued', summary.enqueued);
  return summary;
}

async function pages(options: ReconcileOptions, summary: ReconcileSummary, correlationId: string): Promise<void> {
  const since = summary.since;
  for (let page = 0, offset = 0; ; page++, offset += RECONCILE_PAGE_SIZE) {
    const result = await listOrders({ limit: RECONCILE_PAGE_SIZE, offset, createdAtMin: since, include: 'items,shipments' });
    summary.invalid += result.invalid.length;
    const records = await getOrderRecords(result.orders.map((o) => o.order.id));
    for (const fetched of result.orders) await check(fetched, records.get(fetched.order.id), summary, correlationId);
    options.onPage?.({ page, checked: summary.checked, enqueued: summary.enqueued });
    if (result.pageSize < RECONCILE_PAGE_SIZE) break;
  }
}

async function check(fetched: FetchedOrder, record: OrderRecord | undefined, summary: ReconcileSummary, correlationId: string): Promise<void> {
  const { order, raw } = fetched;
  summary.checked++;
  // A side switched off is never out of date: nothing is sent to it.
  const { KOMFORTKASSE_ENABLED, KLAR_ENABLED } = config();
  const verdict = KOMFORTKASSE_ENABLED ? komfortkasseVerdict(order, record) : 'in-sync';
  const klarOk = !KLAR_ENABLED || klarInSync(order, record);
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
  // One message either way: the order worker forwards the Klar cost when Klar needs it.
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
