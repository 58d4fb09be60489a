import type { Logger } from '@aws-lambda-powertools/logger';
import { config } from '../config/index.ts';
import { feeSchedule } from '../config/mapping.ts';
import { describeUpload, uploadTransactionCosts, type UploadResult } from '../clients/klar.ts';
import { fetchOrder } from '../clients/versacommerce.ts';
import { ConcurrentUpdateError, UpstreamError, describeError, isPermanent } from '../domain/errors.ts';
import { orderCost } from '../domain/fees.ts';
import { KLAR_MAX_BATCH, mapInvalidErrors, transactionCostsSchema, type TransactionCosts } from '../domain/klar.ts';
import type { KlarCostMessage } from '../domain/messages.ts';
import { compareVersaCommerceDates } from '../domain/versacommerce.ts';
import { count } from '../observability/metrics.ts';
import { appendAttempt, appendAttempts, clearAttentionIfResolved, getOrderRecords, recordKlar, recordKlarMany, type OrderRecord } from '../store/history.ts';
import { mapWithConcurrency } from './concurrency.ts';

export interface KlarBatchEntry {
  recordId: string;
  message: KlarCostMessage;
}

export interface KlarBatchResult {
  /** SQS record ids to report as batch item failures */
  failed: string[];
  uploaded: number;
  unchanged: number;
  skipped: number;
  needsAttention: number;
  requests: number;
}

/** What one order's cost line is, once its facts are known. */
interface CostLine {
  orderId: number;
  orderCode?: string;
  costs: TransactionCosts;
  currency: string;
  correlationId: string;
  sourceUpdatedAt?: string;
}

interface OrderFacts {
  orderId: number;
  orderCode?: string;
  total: number;
  currency: string;
  paymentType: string;
  status: string;
  createdAt: string;
  updatedAt?: string;
}

/** What to do with one order of the batch. */
type Decision =
  | { kind: 'upload'; line: CostLine }
  | { kind: 'unchanged' | 'skipped' }
  | { kind: 'needs-attention'; error: string; orderCode?: string }
  | { kind: 'retry' };

/**
 * One SQS batch of cost messages → as few Klar POSTs as possible (≤ 1000 costs each),
 * uploading only orders whose cost changed since the last successful upload.
 */
export async function uploadKlarCosts(entries: KlarBatchEntry[], log: Logger): Promise<KlarBatchResult> {
  const result: KlarBatchResult = { failed: [], uploaded: 0, unchanged: 0, skipped: 0, needsAttention: 0, requests: 0 };
  // The newest message per order decides; its duplicates share its fate.
  const byOrder = new Map<number, KlarBatchEntry[]>();
  for (const entry of entries) {
    const list = byOrder.get(entry.message.orderId) ?? [];
    list.push(entry);
    byOrder.set(entry.message.orderId, list);
  }
  const failOrder = (orderId: number) => result.failed.push(...(byOrder.get(orderId) ?? []).map((e) => e.recordId));
  const latest = [...byOrder.values()].map((list) => list.reduce((a, b) => (isNewerMessage(b.message, a.message) ? b : a)));

  const [facts, records] = await Promise.all([
    mapWithConcurrency(latest, 10, async (entry): Promise<OrderFacts | Error> => {
      try {
        return await factsOf(entry.message);
      } catch (error) {
        return error instanceof Error ? error : new Error(String(error));
      }
    }),
    getOrderRecords(latest.map((e) => e.message.orderId)),
  ]);

  const decisions = latest.map((entry, index) => decide(entry.message, facts[index]!, records.get(entry.message.orderId)));
  const lines: CostLine[] = [];
  await mapWithConcurrency(latest, 25, async (entry, index) => {
    const { orderId, orderCode, correlationId } = entry.message;
    const decision = decisions[index]!;
    switch (decision.kind) {
      case 'upload':
        return;
      case 'unchanged':
        result.unchanged++;
        return;
      case 'skipped':
        result.skipped++;
        return;
      case 'retry':
        log.warn('order facts unavailable, SQS will retry', { orderId, correlationId, error: describeError(facts[index]) });
        failOrder(orderId);
        return;
      case 'needs-attention':
        await markKlarNeedsAttention(orderId, decision.orderCode ?? orderCode, records.get(orderId), decision.error, correlationId);
        result.needsAttention++;
        count('needsAttention');
        return;
    }
  });
  // Input order, so a request's positions (INVALID keys) are stable and reproducible.
  for (const decision of decisions) if (decision.kind === 'upload') lines.push(decision.line);

  for (let i = 0; i < lines.length; i += KLAR_MAX_BATCH) {
    await uploadChunk(lines.slice(i, i + KLAR_MAX_BATCH), records, result, failOrder, log);
  }
  return result;
}

/** The order's own `updated_at` decides when both carry one; otherwise arrival. */
function isNewerMessage(candidate: KlarCostMessage, current: KlarCostMessage): boolean {
  const newer = compareVersaCommerceDates(candidate.updatedAt, current.updatedAt);
  return newer === undefined ? candidate.receivedAt >= current.receivedAt : newer >= 0;
}

/** No I/O: the order's cost (per the configured fee schedule) against what was last uploaded. */
function decide(message: KlarCostMessage, fact: OrderFacts | Error, record: OrderRecord | undefined): Decision {
  const { orderId, correlationId } = message;
  if (fact instanceof Error) {
    return isPermanent(fact) ? { kind: 'needs-attention', error: describeError(fact) } : { kind: 'retry' };
  }
  if (/^cancell?ed$/i.test(fact.status.trim())) {
    // Klar has no delete; a canceled order keeps what it had.
    return { kind: 'skipped' };
  }
  // A copy older than the snapshot behind the recorded cost must not overwrite it.
  if ((compareVersaCommerceDates(fact.updatedAt, record?.klar.sourceUpdatedAt) ?? 0) < 0) return { kind: 'unchanged' };
  let cost: { transactionCosts: number; currency: string };
  try {
    cost = orderCost(fact, feeSchedule());
  } catch (error) {
    if (!isPermanent(error)) throw error;
    return { kind: 'needs-attention', error: describeError(error), orderCode: fact.orderCode };
  }
  const { transactionCosts, currency } = cost;
  const klar = record?.klar;
  // Only a successful upload counts: a needs-attention order is tried again on every event.
  if (klar?.state === 'uploaded' && klar.transactionCosts === transactionCosts && klar.currency === currency) {
    return { kind: 'unchanged' };
  }
  const klarOrderId = config().KLAR_ORDER_ID_FIELD === 'code' ? fact.orderCode : String(orderId);
  if (!klarOrderId) {
    return { kind: 'needs-attention', error: 'order has no code, but KLAR_ORDER_ID_FIELD=code', orderCode: fact.orderCode };
  }
  // Optional fields stay absent: Klar rejects null/0 in them (seed 003).
  const costs = transactionCostsSchema.safeParse({ orderId: klarOrderId, transactionCosts });
  if (!costs.success) {
    return { kind: 'needs-attention', error: `cannot build Klar costs: ${costs.error.issues[0]?.message}`, orderCode: fact.orderCode };
  }
  return { kind: 'upload', line: { orderId, orderCode: fact.orderCode, costs: costs.data, currency, correlationId, sourceUpdatedAt: fact.updatedAt } };
}

async function factsOf(message: KlarCostMessage): Promise<OrderFacts> {
  if (message.total !== undefined && message.currency && message.paymentType !== undefined && message.createdAt) {
    return {
      orderId: message.orderId,
      orderCode: message.orderCode,
      total: message.total,
      currency: message.currency,
      paymentType: message.paymentType,
      status: message.status ?? 'open',
      createdAt: message.createdAt,
      updatedAt: message.updatedAt,
    };
  }
  // A notification carried no order: ask the shop.
  const { order } = await fetchOrder(message.orderId).catch((error: unknown) => {
    if (error instanceof UpstreamError && error.status === 404) {
      throw new UpstreamError('VersaCommerce', `order ${message.orderId} does not exist in the shop`, 'permanent', { status: 404 });
    }
    throw error;
  });
  return {
    orderId: order.id,
    orderCode: order.code,
    total: order.total,
    currency: order.currency,
    paymentType: order.payment_type ?? '',
    status: order.status,
    createdAt: order.created_at,
    updatedAt: typeof order.updated_at === 'string' ? order.updated_at : undefined,
  };
}

async function uploadChunk(
  lines: CostLine[],
  records: Map<number, OrderRecord>,
  result: KlarBatchResult,
  failOrder: (orderId: number) => void,
  log: Logger,
): Promise<void> {
  if (lines.length === 0) return;
  const at = new Date().toISOString();
  if (config().DRY_RUN) {
    await appendAttempts(
      lines.map((line) => ({
        orderId: line.orderId,
        attempt: { at, target: 'klar' as const, action: 'upload', outcome: 'dry-run', correlationId: line.correlationId, request: describeUpload([line.costs]) },
      })),
    );
    count('dryRun', lines.length);
    return;
  }
  const markAll = async (targets: CostLine[], error: string, httpStatus?: number) => {
    await mapWithConcurrency(targets, 25, (line) =>
      markKlarNeedsAttention(line.orderId, line.orderCode, records.get(line.orderId), error, line.correlationId, httpStatus),
    );
    result.needsAttention += targets.length;
    count('needsAttention', targets.length);
  };

  let upload: UploadResult;
  try {
    result.requests++;
    count('klarRequests');
    upload = await uploadTransactionCosts(lines.map((l) => l.costs));
  } catch (error) {
    if (isPermanent(error)) {
      // e.g. 401: every order of the request needs attention, none is retried.
      log.error('Klar refused the upload', { error: describeError(error), orders: lines.length });
      await markAll(lines, describeError(error), error instanceof UpstreamError ? error.status : undefined);
      return;
    }
    log.warn('Klar upload failed, SQS will retry', { error: describeError(error), orders: lines.length });
    count('failedTransient', lines.length);
    for (const line of lines) failOrder(line.orderId);
    return;
  }

  if (upload.outcome === 'valid') {
    await recordUploaded(lines, records, upload, at, result, failOrder);
    return;
  }
  const { invalid, unmatched } = mapInvalidErrors(
    lines.map((l) => l.costs),
    upload.errors,
  );
  if (unmatched.length) log.warn('Klar errors that name no order of the request', { errors: unmatched.slice(0, 20), status: upload.status });
  const bad = lines.filter((l) => invalid.has(l.costs.orderId));
  const rest = lines.filter((l) => !invalid.has(l.costs.orderId));
  const markRejected = async (targets: CostLine[], prefix: string) => {
    await mapWithConcurrency(targets, 25, (line) =>
      markKlarNeedsAttention(line.orderId, line.orderCode, records.get(line.orderId), `${prefix}: ${invalid.get(line.costs.orderId)}`, line.correlationId, upload.status),
    );
    result.needsAttention += targets.length;
    count('needsAttention', targets.length);
  };

  if (upload.outcome === 'partial') {
    if (bad.length === 0) {
      // Klar stored some entries but named none we sent: re-sending is a harmless upsert.
      log.warn('Klar answered partially without naming our entries, SQS will retry', { status: upload.status, orders: lines.length });
      count('failedTransient', lines.length);
      for (const line of lines) failOrder(line.orderId);
      return;
    }
    await markRejected(bad, 'Klar rejected');
    await recordUploaded(rest, records, upload, at, result, failOrder);
    return;
  }

  // INVALID rejected the whole request: nothing is stored.
  if (bad.length === 0) {
    // Klar named no order we sent: nothing is safe to send again alone.
    await markAll(lines, `Klar INVALID: ${unmatched.join('; ')}`, upload.status);
    return;
  }
  await markRejected(bad, 'Klar INVALID');
  // Send the rest again without the bad ones.
  await uploadChunk(rest, records, result, failOrder, log);
}

async function recordUploaded(
  lines: CostLine[],
  records: Map<number, OrderRecord>,
  upload: UploadResult,
  at: string,
  result: KlarBatchResult,
  failOrder: (orderId: number) => void,
): Promise<void> {
  // Compare-and-set per order, 100 per transaction; an order that lost a race is retried.
  const { conflicts } = await recordKlarMany(
    lines.map((line) => ({
      orderId: line.orderId,
      orderCode: line.orderCode,
      expectedVersion: records.get(line.orderId)?.klar.version ?? 0,
      outcome: { state: 'uploaded' as const, transactionCosts: line.costs.transactionCosts, currency: line.currency, sourceUpdatedAt: line.sourceUpdatedAt },
    })),
  );
  const lost = new Set(conflicts);
  for (const orderId of lost) failOrder(orderId);
  const recorded = lines.filter((line) => !lost.has(line.orderId));
  // One attempt per order, written in batches: a 1000-cost POST is 40 writes, not 1000.
  await appendAttempts(
    recorded.map((line) => ({
      orderId: line.orderId,
      attempt: {
        at,
        target: 'klar' as const,
        action: 'upload',
        outcome: 'success',
        httpStatus: upload.status,
        latencyMs: upload.latencyMs,
        correlationId: line.correlationId,
      },
    })),
  );
  const resolved = recorded.filter((line) => records.get(line.orderId)?.klar.state === 'needs-attention');
  await mapWithConcurrency(resolved, 25, (line) => clearAttentionIfResolved(line.orderId));
  result.uploaded += recorded.length;
  count('klarUploaded', recorded.length);
}

async function markKlarNeedsAttention(
  orderId: number,
  orderCode: string | undefined,
  record: OrderRecord | undefined,
  error: string,
  correlationId: string,
  httpStatus?: number,
): Promise<void> {
  await appendAttempt(orderId, { at: new Date().toISOString(), target: 'klar', action: 'upload', outcome: 'failed-permanent', httpStatus, error, correlationId });
  await recordKlar(orderId, orderCode, record?.klar.version ?? 0, { state: 'needs-attention', error }).catch((e: unknown) => {
    if (!(e instanceof ConcurrentUpdateError)) throw e;
  });
}
