import { randomUUID } from 'node:crypto';
import { listOpenKomfortkasseOrders } from '../clients/komfortkasse.ts';
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
import { findOrderIdByCode, getOrderRecords } from '../store/order-record.ts';
import { recordReconcileRun } from '../store/reconcile-runs.ts';

export const RECONCILE_PAGE_SIZE = 250;

/**
 * How far back Komfortkasse's open orders are read (`maxAge`, in days; Komfortkasse's own
 * default): an order it still dunns after that long is a case for a person, not a sync.
 */
export const DEFAULT_OPEN_MAX_AGE_DAYS = 120;

/** The Komfortkasse side of a run: what it still dunns, and how much of that was re-checked. */
export interface KomfortkasseReconcileSide {
  /** false when KOMFORTKASSE_ENABLED=false: the side was not read */
  enabled: boolean;
  maxAgeDays: number;
  /** open orders (UNPAID, PAID_PARTIAL) Komfortkasse listed */
  open: number;
  /** of those, the ones the shop listing did not cover (older than the window, or gone from the shop): one shop look-up each */
  rechecked: number;
  /** re-checked, but the shop has no such order any more: enqueued for the worker to confirm and remove */
  goneFromShop: number;
  /** re-checked, neither in the shop nor in the history: nothing Orderbridge can decide (left to a person) */
  unknown: number;
}

/**
 * Every checked order lands in exactly one of inSync, enqueued, skippedByPaymentType and
 * needsAttention (so they add up to `checked`); `invalid` counts orders the shop returned
 * that fail the schema, which are not checked. `checked` covers both sides: `shopListed`
 * orders from the shop listing, and the Komfortkasse side's re-checks.
 */
export interface ReconcileSummary {
  since: string;
  checked: number;
  /** orders the shop listing returned for the window (valid ones; those are checked) */
  shopListed: number;
  komfortkasse: KomfortkasseReconcileSide;
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
  /** how far back Komfortkasse's open orders are read (default DEFAULT_OPEN_MAX_AGE_DAYS) */
  openMaxAgeDays?: number;
  /** who started it (schedule, console, cli): recorded with the run for `orderbridge status` */
  trigger?: string;
  onPage?: (progress: { page: number; checked: number; enqueued: number }) => void;
  /** after Komfortkasse's open orders were read, and after their re-check */
  onKomfortkasse?: (side: KomfortkasseReconcileSide & { done: boolean }) => void;
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
 * Pages through the shop's orders since a date, then reads what Komfortkasse still dunns and
 * re-checks every open order the listing did not cover against the shop, and re-enqueues
 * every order whose recorded upstream state is missing or out of date — a lost webhook is
 * caught here, however old its order.
 */
export async function reconcile(options: ReconcileOptions): Promise<ReconcileSummary> {
  const startedAt = new Date().toISOString();
  const since = options.since.toISOString();
  const summary: ReconcileSummary = {
    since,
    checked: 0,
    shopListed: 0,
    komfortkasse: {
      // A side switched off is not read: nothing is sent to it.
      enabled: config().KOMFORTKASSE_ENABLED,
      maxAgeDays: options.openMaxAgeDays ?? DEFAULT_OPEN_MAX_AGE_DAYS,
      open: 0,
      rechecked: 0,
      goneFromShop: 0,
      unknown: 0,
    },
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
      shopListed: summary.shopListed,
      ...(summary.komfortkasse.enabled ? { komfortkasseOpen: summary.komfortkasse.open, komfortkasseRechecked: summary.komfortkasse.rechecked } : {}),
      enqueued: summary.enqueued,
      needsAttention: summary.needsAttention,
      invalid: summary.invalid,
      dryRun: summary.dryRun,
      trigger: options.trigger ?? 'unknown',
      ...(error === undefined ? {} : { error: describeError(error) }),
    });
  try {
    const listed = await pages(options, summary, correlationId);
    if (summary.komfortkasse.enabled) await openAtKomfortkasse(options, summary, correlationId, listed);
  } catch (error) {
    // A failed run is recorded too (status shows it); the error still fails the invocation.
    await run(error).catch(() => undefined);
    throw error;
  }
  await run();
  count('reconcileEnqueued', summary.enqueued);
  return summary;
}

/**
 * The shop listing, paged by `id_min` (ascending ids): an order created during the run
 * lands on a later page instead of shifting an offset over one not yet seen. Returns the
 * codes it checked.
 */
async function pages(options: ReconcileOptions, summary: ReconcileSummary, correlationId: string): Promise<Set<string>> {
  const since = summary.since;
  const listed = new Set<string>();
  let idMin: number | undefined;
  for (let page = 0; ; page++) {
    const result = await listOrders({ limit: RECONCILE_PAGE_SIZE, ...(idMin === undefined ? {} : { idMin }), createdAtMin: since, include: 'items,shipments' });
    summary.invalid += result.invalid.length;
    summary.shopListed += result.orders.length;
    const records = await getOrderRecords(result.orders.map((o) => o.order.id));
    for (const fetched of result.orders) {
      listed.add(fetched.order.code);
      await check(fetched, records.get(fetched.order.id), summary, correlationId);
    }
    options.onPage?.({ page, checked: summary.checked, enqueued: summary.enqueued });
    // A full page whose ids cannot be read cannot be paged past: stop rather than loop.
    if (result.pageSize < RECONCILE_PAGE_SIZE || result.lastId === undefined) break;
    idMin = result.lastId + 1;
  }
  return listed;
}

/**
 * Komfortkasse's side: every order it still dunns that the shop listing did not cover
 * (older than the window, or no longer in the shop) is looked up in the shop by its code,
 * once, and checked like a listed order. One the shop no longer has goes to the worker
 * without a snapshot (by the id the history recorded for its code): the worker fetches it,
 * confirms the deletion and removes it from Komfortkasse.
 */
async function openAtKomfortkasse(options: ReconcileOptions, summary: ReconcileSummary, correlationId: string, listed: Set<string>): Promise<void> {
  const side = summary.komfortkasse;
  const open = await listOpenKomfortkasseOrders({ maxAgeDays: side.maxAgeDays });
  const codes = [...new Set(open.map((order) => order.number))];
  side.open = codes.length;
  const toCheck = codes.filter((code) => !listed.has(code));
  options.onKomfortkasse?.({ ...side, done: false });
  for (const code of toCheck) {
    side.rechecked++;
    const page = await listOrders({ limit: 1, code, include: 'items,shipments' });
    summary.invalid += page.invalid.length;
    const fetched = page.orders.find((o) => o.order.code === code);
    if (fetched) {
      const records = await getOrderRecords([fetched.order.id]);
      await check(fetched, records.get(fetched.order.id), summary, correlationId);
      continue;
    }
    if (page.invalid.length) continue; // the shop has it, but in a shape we cannot check: counted as invalid
    const orderId = await findOrderIdByCode(code);
    if (orderId === undefined) {
      side.unknown++;
      continue;
    }
    side.goneFromShop++;
    summary.checked++;
    await enqueue(summary, { orderId, orderCode: code }, correlationId);
  }
  options.onKomfortkasse?.({ ...side, done: true });
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
  // A removed order comes back only on the shop's word at processing time: without a
  // snapshot the worker fetches it, so this listing (maybe older than a cancel) cannot.
  await enqueue(summary, { orderId: order.id, orderCode: order.code, ...(record?.komfortkasse.state === 'removed' ? {} : { order: raw }) }, correlationId);
}

/** One message either way: the order worker forwards the Klar cost when Klar needs it. */
async function enqueue(summary: ReconcileSummary, target: { orderId: number; orderCode: string; order?: Record<string, unknown> }, correlationId: string): Promise<void> {
  summary.enqueued++;
  summary.enqueuedOrderIds.push(target.orderId);
  if (summary.dryRun) return;
  const receivedAt = new Date().toISOString();
  await enqueueOrderChanged({
    kind: 'order-changed',
    ...target,
    source: 'reconcile',
    receivedAt,
    deliveryId: `reconcile:${target.orderId}:${receivedAt}`,
    correlationId,
  });
}
