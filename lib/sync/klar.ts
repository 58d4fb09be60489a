import type { Logger } from '@aws-lambda-powertools/logger';
import { config } from '../config/index.ts';
import { feeSchedule } from '../config/mapping.ts';
import { describeUpload, uploadTransactionCosts } from '../clients/klar.ts';
import { fetchOrder } from '../clients/versacommerce.ts';
import { ConcurrentUpdateError, UpstreamError, describeError, isPermanent } from '../domain/errors.ts';
import { feeFor } from '../domain/fees.ts';
import { KLAR_MAX_BATCH, mapInvalidErrors, type TransactionCosts } from '../domain/klar.ts';
import type { KlarCostMessage } from '../domain/messages.ts';
import { toIsoCurrency } from '../domain/komfortkasse-mapping.ts';
import { parseVersaCommerceDate } from '../domain/versacommerce.ts';
import { count } from '../observability/metrics.ts';
import { appendAttempt, clearAttentionIfResolved, getOrderRecords, recordKlar, type OrderRecord } from '../store/history.ts';
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
}

interface OrderFacts {
  orderId: number;
  orderCode?: string;
  total: number;
  currency: string;
  paymentType: string;
  status: string;
  createdAt: string;
}

/**
 * One SQS batch of cost messages → as few Klar POSTs as possible (≤ 1000 costs each),
 * uploading only orders whose cost changed since the last upload.
 */
export async function uploadKlarCosts(entries: KlarBatchEntry[], log: Logger): Promise<KlarBatchResult> {
  const env = config();
  const result: KlarBatchResult = { failed: [], uploaded: 0, unchanged: 0, skipped: 0, needsAttention: 0, requests: 0 };
  // The newest message per order decides; its duplicates share its fate.
  const byOrder = new Map<number, KlarBatchEntry[]>();
  for (const entry of entries) {
    const list = byOrder.get(entry.message.orderId) ?? [];
    list.push(entry);
    byOrder.set(entry.message.orderId, list);
  }
  const failOrder = (orderId: number) => result.failed.push(...(byOrder.get(orderId) ?? []).map((e) => e.recordId));
  const latest = [...byOrder.values()].map((list) => list.reduce((a, b) => (b.message.receivedAt >= a.message.receivedAt ? b : a)));

  const facts = await mapWithConcurrency(latest, 10, async (entry): Promise<OrderFacts | Error> => {
    try {
      return await factsOf(entry.message);
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  });
  const records = await getOrderRecords(latest.map((e) => e.message.orderId));
  const lines: CostLine[] = [];
  await mapWithConcurrency(latest, 25, async (entry, index) => {
    const { orderId, correlationId } = entry.message;
    const fact = facts[index];
    const record = records.get(orderId);
    if (fact === undefined || fact instanceof Error) {
      if (isPermanent(fact)) {
        await markKlarNeedsAttention(orderId, entry.message.orderCode, record, describeError(fact), correlationId);
        result.needsAttention++;
      } else {
        failOrder(orderId);
      }
      return;
    }
    if (/^cancell?ed$/i.test(fact.status.trim())) {
      // Klar has no delete; a canceled order keeps what it had.
      result.skipped++;
      return;
    }
    let transactionCosts: number;
    const currency = toIsoCurrency(fact.currency) ?? fact.currency;
    try {
      transactionCosts = feeFor(
        { paymentType: fact.paymentType, total: fact.total, currency, orderDate: parseVersaCommerceDate(fact.createdAt) ?? new Date(NaN) },
        feeSchedule(),
      );
    } catch (error) {
      if (!isPermanent(error)) throw error;
      await markKlarNeedsAttention(orderId, fact.orderCode, record, describeError(error), correlationId);
      result.needsAttention++;
      return;
    }
    const klar = record?.klar;
    if (klar && klar.transactionCosts === transactionCosts && klar.currency === currency && klar.state !== 'pending') {
      result.unchanged++;
      return;
    }
    const klarOrderId = env.KLAR_ORDER_ID_FIELD === 'code' ? fact.orderCode : String(orderId);
    if (!klarOrderId) {
      await markKlarNeedsAttention(orderId, fact.orderCode, record, 'order has no code, but KLAR_ORDER_ID_FIELD=code', correlationId);
      result.needsAttention++;
      return;
    }
    lines.push({ orderId, orderCode: fact.orderCode, costs: { orderId: klarOrderId, transactionCosts }, currency, correlationId });
  });

  for (let i = 0; i < lines.length; i += KLAR_MAX_BATCH) {
    await uploadChunk(lines.slice(i, i + KLAR_MAX_BATCH), records, result, failOrder, log);
  }
  return result;
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
    await mapWithConcurrency(lines, 25, (line) =>
      appendAttempt(line.orderId, { at, target: 'klar', action: 'upload', outcome: 'dry-run', correlationId: line.correlationId, request: describeUpload([line.costs]) }),
    );
    count('dryRun', lines.length);
    return;
  }
  let upload;
  try {
    result.requests++;
    count('klarRequests');
    upload = await uploadTransactionCosts(lines.map((l) => l.costs));
  } catch (error) {
    if (isPermanent(error)) {
      // e.g. 401: every order of the request needs attention, none is retried.
      await mapWithConcurrency(lines, 25, (line) =>
        markKlarNeedsAttention(line.orderId, line.orderCode, records.get(line.orderId), describeError(error), line.correlationId),
      );
      result.needsAttention += lines.length;
      count('needsAttention', lines.length);
      return;
    }
    log.warn('Klar upload failed, SQS will retry', { error: describeError(error), orders: lines.length });
    count('failedTransient', lines.length);
    for (const line of lines) failOrder(line.orderId);
    return;
  }
  if (upload.outcome === 'invalid') {
    const { invalid, unmatched } = mapInvalidErrors(lines.map((l) => l.costs), upload.errors);
    if (invalid.size === 0) {
      // Klar rejected the request but named no order we sent: nothing safe to retry alone.
      await mapWithConcurrency(lines, 25, (line) =>
        markKlarNeedsAttention(line.orderId, line.orderCode, records.get(line.orderId), `Klar INVALID: ${unmatched.join('; ')}`, line.correlationId),
      );
      result.needsAttention += lines.length;
      count('needsAttention', lines.length);
      return;
    }
    const bad = lines.filter((l) => invalid.has(l.costs.orderId));
    await mapWithConcurrency(bad, 25, (line) =>
      markKlarNeedsAttention(line.orderId, line.orderCode, records.get(line.orderId), `Klar INVALID: ${invalid.get(line.costs.orderId)}`, line.correlationId),
    );
    result.needsAttention += bad.length;
    count('needsAttention', bad.length);
    // INVALID rejects the whole request: send the rest again without the bad ones.
    await uploadChunk(lines.filter((l) => !invalid.has(l.costs.orderId)), records, result, failOrder, log);
    return;
  }
  await mapWithConcurrency(lines, 25, async (line) => {
    const record = records.get(line.orderId);
    try {
      await recordKlar(line.orderId, line.orderCode, record?.klar.version ?? 0, {
        state: 'uploaded',
        transactionCosts: line.costs.transactionCosts,
        currency: line.currency,
      });
      await appendAttempt(line.orderId, {
        at,
        target: 'klar',
        action: 'upload',
        outcome: 'success',
        httpStatus: upload.status,
        latencyMs: upload.latencyMs,
        correlationId: line.correlationId,
      });
      if (record?.klar.state === 'needs-attention') await clearAttentionIfResolved(line.orderId);
    } catch (error) {
      // Uploaded, but another batch recorded this order meanwhile: retry to re-compare.
      if (error instanceof ConcurrentUpdateError) failOrder(line.orderId);
      else throw error;
    }
  });
  result.uploaded += lines.length;
  count('klarUploaded', lines.length);
}

async function markKlarNeedsAttention(
  orderId: number,
  orderCode: string | undefined,
  record: OrderRecord | undefined,
  error: string,
  correlationId: string,
): Promise<void> {
  await appendAttempt(orderId, { at: new Date().toISOString(), target: 'klar', action: 'upload', outcome: 'failed-permanent', error, correlationId });
  await recordKlar(orderId, orderCode, record?.klar.version ?? 0, { state: 'needs-attention', error }).catch((e: unknown) => {
    if (!(e instanceof ConcurrentUpdateError)) throw e;
  });
}
