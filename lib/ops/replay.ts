import { randomUUID } from 'node:crypto';
import { fetchOrder, type FetchedOrder } from '../clients/versacommerce.ts';
import { OrderbridgeError, UpstreamError, describeError } from '../domain/errors.ts';
import { klarCostMessageFor } from '../domain/messages.ts';
import { enqueueKlarCost, enqueueOrderChanged } from '../queue/orders.ts';
import { getOrderRecord } from '../store/history.ts';
import { resolveOrderId } from './history-view.ts';
import { EXIT, println, type CliIo } from './io.ts';

export interface ReplayResult {
  orderId: number;
  orderCode?: string;
  /** the order as the shop has it now went along; otherwise the worker fetches it */
  snapshot: boolean;
  /** why no snapshot could be fetched */
  fetchError?: string;
  correlationId: string;
}

/** The order cannot be replayed: retrying will not help (exit 1). */
export class OrderNotFoundError extends OrderbridgeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'permanent', options);
  }
}

/**
 * Enqueues an order again on both queues. Sync is level-triggered, so this is always safe:
 * the workers compare with the recorded state and call upstream only if something differs.
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

  let fetched: FetchedOrder | undefined;
  let fetchError: string | undefined;
  try {
    fetched = await fetchOrder(orderId);
  } catch (error) {
    if (error instanceof UpstreamError && error.status === 404) {
      throw new OrderNotFoundError(`order ${orderId} does not exist in the shop (VersaCommerce answered 404); nothing enqueued`, { cause: error });
    }
    // Unreachable or not configured here (e.g. no VERSACOMMERCE_BASE_URL on this machine):
    // the worker fetches the order itself.
    fetchError = describeError(error);
  }

  const receivedAt = new Date().toISOString();
  const correlationId = `replay-${randomUUID()}`;
  const orderCode = fetched?.order.code ?? record?.orderCode;
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
  const order = fetched?.order;
  // Without a snapshot the Klar worker fetches the order itself.
  await enqueueKlarCost(order ? klarCostMessageFor(order, { receivedAt, correlationId }) : { kind: 'klar-cost', orderId, orderCode, receivedAt, correlationId });
  return { orderId, orderCode, snapshot: fetched !== undefined, fetchError, correlationId };
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
  } else {
    println(io.stdout, `enqueued order ${name} without a snapshot; the workers fetch it from the shop (correlation id ${result.correlationId})`);
    println(io.stderr, `orderbridge replay: could not fetch the order here: ${result.fetchError}`);
  }
  println(io.stdout, `follow it with: orderbridge history ${result.orderCode ?? result.orderId}`);
  return EXIT.ok;
}
