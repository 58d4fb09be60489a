import { randomUUID } from 'node:crypto';
import { fetchOrder, type FetchedOrder } from '../clients/versacommerce.ts';
import { OrderbridgeError, UpstreamError, describeError } from '../domain/errors.ts';
import { SYNC_TARGETS, type SyncTarget } from '../domain/sync-state.ts';
import { mapWithConcurrency } from '../sync/concurrency.ts';
import { enqueueOrderChanged } from '../queue/orders.ts';
import { getOrderRecord } from '../store/order-record.ts';
import { resolveOrderId } from './history-view.ts';
import { EXIT, println, renderTable, type CliIo } from './io.ts';
import { needsAttention, type NeedsAttentionEntry } from './needs-attention.ts';

export interface ReplayResult {
  orderId: number;
  orderCode?: string;
  /** the order as the shop has it now went along; otherwise the worker fetches it */
  snapshot: boolean;
  /** why no snapshot could be fetched */
  fetchError?: string;
  /** the shop answered 404: enqueued without a snapshot, the worker confirms the deletion */
  vanished?: boolean;
  correlationId: string;
}

/** The order cannot be replayed: retrying will not help (exit 1). */
export class OrderNotFoundError extends OrderbridgeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'permanent', options);
  }
}

/**
 * Enqueues an order again on orders.fifo. Sync is level-triggered, so this is always safe:
 * the order worker compares with the recorded state, forwards the Klar cost only if Klar
 * needs it, and calls Komfortkasse only if something differs.
 * A replay also retries an order in needs-attention with an unchanged payload.
 */
export async function replayOrder(reference: string): Promise<ReplayResult> {
  const known = await resolveOrderId(reference);
  const orderId = known ?? (/^\d{1,15}$/.test(reference.trim()) ? Number(reference.trim()) : undefined);
  if (orderId === undefined) {
    throw new OrderNotFoundError(
      `order "${reference}" is not in the history; pass the shop's numeric order id to replay an order Orderbridge never saw (or run reconcile)`,
    );
  }
  const record = known !== undefined ? await getOrderRecord(orderId) : undefined;
  return enqueueReplay(orderId, record?.orderCode, known !== undefined);
}

/**
 * The replay itself, for an order whose id is known: the shop's current data (or none, and
 * the worker fetches it) on orders.fifo with source "replay". `knownCode` names the order
 * when the shop cannot be asked. An order in the history that the shop answers 404 for goes
 * without a snapshot too: the worker confirms the deletion and closes both sides (removed
 * from Komfortkasse if it was ever submitted, its Klar side off the needs-attention list).
 */
async function enqueueReplay(orderId: number, knownCode: string | undefined, inHistory: boolean): Promise<ReplayResult> {
  let fetched: FetchedOrder | undefined;
  let fetchError: string | undefined;
  let vanished = false;
  try {
    fetched = await fetchOrder(orderId);
  } catch (error) {
    if (error instanceof UpstreamError && error.status === 404) {
      // Neither the history nor the shop knows it: a typo, not an order to record.
      if (!inHistory) throw new OrderNotFoundError(`order ${orderId} does not exist in the shop (VersaCommerce answered 404); nothing enqueued`, { cause: error });
      vanished = true;
    } else {
      // Unreachable or not configured here (e.g. no VERSACOMMERCE_BASE_URL on this machine):
      // the worker fetches the order itself.
      fetchError = describeError(error);
    }
  }

  const receivedAt = new Date().toISOString();
  const correlationId = `replay-${randomUUID()}`;
  const orderCode = fetched?.order.code ?? knownCode;
  await enqueueOrderChanged({
    kind: 'order-changed',
    orderId,
    orderCode,
    order: fetched?.raw,
    source: 'replay',
    receivedAt,
    // fresh, so the FIFO queue's 5-minute deduplication never swallows a replay
    deliveryId: `replay:${orderId}:${receivedAt}:${correlationId}`,
    correlationId,
  });
  return { orderId, orderCode, snapshot: fetched !== undefined, fetchError, ...(vanished ? { vanished } : {}), correlationId };
}

/** How many parked orders `replay --needs-attention` re-queues at once (shop fetch + SQS send each). */
export const REPLAY_CONCURRENCY = 5;

export interface ParkedReplay {
  entry: NeedsAttentionEntry;
  /** the sides (within --target) on which the order is parked */
  parkedOn: SyncTarget[];
  result?: ReplayResult;
  /** why it was not re-queued */
  error?: string;
}

export interface ReplayParkedResult {
  target?: SyncTarget;
  dryRun: boolean;
  /** every parked order found, in needs-attention order (oldest first) */
  orders: ParkedReplay[];
  /** interrupted: the orders not started stay parked */
  aborted: boolean;
}

/**
 * Re-queues every order parked in needs-attention (on `target` only, if given) through the
 * single replay's path, a bounded number at a time. One message per order, even when both
 * sides are parked: the worker retries both sides level-triggered. A dry run only lists.
 */
export async function replayParkedOrders(options: {
  target?: SyncTarget;
  dryRun?: boolean;
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (progress: { done: number; total: number; failed: number }) => void;
}): Promise<ReplayParkedResult> {
  const entries = await needsAttention(options.target);
  const sides = options.target ? [options.target] : SYNC_TARGETS;
  const orders: ParkedReplay[] = entries.map((entry) => ({ entry, parkedOn: sides.filter((side) => entry[side].state === 'needs-attention') }));
  const result: ReplayParkedResult = { target: options.target, dryRun: options.dryRun ?? false, orders, aborted: false };
  if (result.dryRun) return result;

  let done = 0;
  let failed = 0;
  await mapWithConcurrency(orders, options.concurrency ?? REPLAY_CONCURRENCY, async (order) => {
    // Interrupted: what has not started stays parked.
    if (options.signal?.aborted) {
      result.aborted = true;
      return;
    }
    try {
      order.result = await enqueueReplay(order.entry.orderId, order.entry.orderCode, true);
    } catch (error) {
      // One order's failure (the shop lost it, a refused send) does not stop the others.
      order.error = error instanceof OrderNotFoundError ? error.message : describeError(error);
      failed++;
    }
    options.onProgress?.({ done: ++done, total: orders.length, failed });
  });
  return result;
}

export async function runReplay(reference: string, io: CliIo): Promise<number> {
  let result: ReplayResult;
  try {
    result = await replayOrder(reference);
  } catch (error) {
    if (error instanceof OrderNotFoundError) {
      println(io.stderr, `orderbridge replay: ${error.message}`);
      return EXIT.failed;
    }
    throw error;
  }
  const name = `${result.orderCode ?? '(code unknown)'} (id ${result.orderId})`;
  if (result.snapshot) {
    println(io.stdout, `enqueued order ${name} with the shop's current data (correlation id ${result.correlationId})`);
  } else if (result.vanished) {
    println(
      io.stdout,
      `enqueued order ${name} without a snapshot: the shop answers 404 for it; the order worker confirms the deletion and closes it (correlation id ${result.correlationId})`,
    );
  } else {
    println(io.stdout, `enqueued order ${name} without a snapshot; the order worker fetches it from the shop (correlation id ${result.correlationId})`);
    println(io.stderr, `orderbridge replay: could not fetch the order here: ${result.fetchError}`);
  }
  println(io.stdout, `follow it with: orderbridge history ${result.orderCode ?? result.orderId}`);
  return EXIT.ok;
}

/** `orderbridge replay --needs-attention`: progress on stderr, the summary per target on stdout. */
export async function runReplayParked(options: { target?: SyncTarget; dryRun?: boolean }, io: CliIo): Promise<number> {
  const scope = options.target ? `parked on ${options.target}` : 'in needs-attention';
  const result = await replayParkedOrders({
    ...options,
    signal: io.signal,
    onProgress: ({ done, total, failed }) => {
      // At most ~20 progress lines, however many orders are parked.
      const step = Math.max(1, Math.ceil(total / 20));
      if (done === total || done % step === 0) println(io.stderr, `replay: ${done}/${total} re-queued${failed ? `, ${failed} failed` : ''}`);
    },
  });
  const { orders } = result;
  const sides = options.target ? [options.target] : SYNC_TARGETS;
  if (orders.length === 0) {
    println(io.stdout, `No order ${scope}; nothing to re-queue.`);
    return EXIT.ok;
  }
  const perSide = (list: ParkedReplay[]) => sides.map((side) => `${side} ${list.filter((o) => o.parkedOn.includes(side)).length}`).join(', ');
  const rows = (list: ParkedReplay[], last: (o: ParkedReplay) => string | undefined) =>
    renderTable(
      ['ORDER', 'ID', 'PARKED ON', options.dryRun ? 'UPSTREAM MESSAGE' : 'WHY'],
      list.map((o) => [o.entry.orderCode ?? '-', o.entry.orderId, o.parkedOn.join('+'), last(o)]),
    );
  if (result.dryRun) {
    println(io.stdout, `dry run: would re-queue ${orders.length} order(s) ${scope} (${perSide(orders)}); nothing enqueued`);
    println(io.stdout, rows(orders, (o) => o.parkedOn.map((side) => o.entry[side].error ?? '(no message)').join(' | ')));
    return EXIT.ok;
  }

  const requeued = orders.filter((o) => o.result);
  const failed = orders.filter((o) => o.error !== undefined);
  const notStarted = orders.length - requeued.length - failed.length;
  println(io.stdout, `re-queued ${requeued.length} of ${orders.length} order(s) ${scope} on orders.fifo; ${failed.length} failed${notStarted ? `, ${notStarted} not started (interrupted)` : ''}`);
  for (const side of sides) {
    const parked = orders.filter((o) => o.parkedOn.includes(side));
    if (parked.length === 0) continue;
    const sideFailed = parked.filter((o) => o.error !== undefined).length;
    println(io.stdout, `  ${side.padEnd(14)}${String(parked.filter((o) => o.result).length).padStart(5)} re-queued${sideFailed ? `, ${sideFailed} failed` : ''}`);
  }
  const vanished = requeued.filter((o) => o.result!.vanished);
  if (vanished.length) {
    println(io.stdout, `${vanished.length} the shop answers 404 for went without a snapshot; the order worker confirms the deletion and closes them`);
  }
  const withoutSnapshot = requeued.filter((o) => !o.result!.snapshot && !o.result!.vanished);
  if (withoutSnapshot.length) {
    println(io.stdout, `${withoutSnapshot.length} went without a snapshot (the shop could not be reached from here: ${withoutSnapshot[0]!.result!.fetchError}); the order worker fetches them`);
  }
  if (failed.length) {
    println(io.stdout, '\nNot re-queued (still parked):');
    println(io.stdout, rows(failed, (o) => o.error));
  }
  if (requeued.length) println(io.stdout, '\nThe order worker retries them now; follow with: orderbridge needs-attention');
  if (result.aborted) println(io.stderr, 'replay: interrupted; the orders not started stay parked');
  return failed.length ? EXIT.failed : EXIT.ok;
}
