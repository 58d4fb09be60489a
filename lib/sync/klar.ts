import type { Logger } from '@aws-lambda-powertools/logger';
import { config } from '../config/index.ts';
import { klarPlanSettings } from '../config/mapping.ts';
import { describeUpload, uploadTransactionCosts, type UploadResult } from '../clients/klar.ts';
import { InvalidMessageError, UpstreamAuthError, UpstreamError, describeError, isPermanent } from '../domain/errors.ts';
import { compareStamps, planAfterLostRace, planKlarCost, type CostLine, type KlarFacts } from '../domain/klar-plan.ts';
import { KLAR_MAX_BATCH, mapInvalidErrors } from '../domain/klar.ts';
import type { KlarCostMessage } from '../domain/messages.ts';
import type { Attempt, OrderRecord } from '../domain/sync-state.ts';
import { count } from '../observability/metrics.ts';
import { appendAttempts } from '../store/attempts.ts';
import { markKlarUnconfirmed, settleKlar, type KlarSettlement } from '../store/klar-record.ts';
import { getOrderRecords } from '../store/order-record.ts';
import { mapWithConcurrency } from './concurrency.ts';

/*
 * The Klar worker: one SQS batch of cost messages → as few Klar POSTs as possible (≤ 1000
 * costs each), uploading only what Klar does not hold yet. It needs DynamoDB and Klar only:
 * the order worker resolved each order and forwarded its facts.
 *
 * Concurrent batches may carry the same order. Every record write is a compare-and-set on
 * the Klar version; a batch that loses one after its POST re-reads the record and uploads
 * the newest cost again (its own POST may have landed after a newer one), until its write
 * wins — so Klar ends with the newest cost and the history agrees.
 */

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

export interface KlarContext {
  log: Logger;
  /** aborted shortly before the function's deadline */
  signal?: AbortSignal;
  /** time left before the function's deadline: a repair round starts only if it fits */
  remainingMs?: () => number;
}

/** What a round spends besides its POSTs (each up to KLAR_TOTAL_TIMEOUT_MS): the record read and the settles. */
const ROUND_OVERHEAD_MS = 2_000;

/**
 * The longest a round for these orders may take: one POST per 1000 costs at its total
 * deadline, plus DynamoDB. (A rare re-send after INVALID is still stopped by the abort signal.)
 */
export function klarRoundBudgetMs(orders: number): number {
  return Math.ceil(orders / KLAR_MAX_BATCH) * config().KLAR_TOTAL_TIMEOUT_MS + ROUND_OVERHEAD_MS;
}

/** How often a batch that lost a race uploads the newest cost again before leaving it to SQS. */
const CONVERGE_ROUNDS = 3;

interface Batch {
  result: KlarBatchResult;
  context: KlarContext;
  /** the newest message of each order, whose duplicates share its fate */
  latest: Map<number, KlarCostMessage>;
  /** what this invocation last sent to Klar per order (a lost race must check it) */
  posted: Map<number, CostLine>;
  /** orders whose last POST a compare-and-set confirmed (the record holds what Klar got) */
  confirmed: Set<number>;
  failOrder(orderId: number): void;
}

export async function uploadKlarCosts(entries: KlarBatchEntry[], context: KlarContext): Promise<KlarBatchResult> {
  const result: KlarBatchResult = { failed: [], uploaded: 0, unchanged: 0, skipped: 0, needsAttention: 0, requests: 0 };
  if (!config().KLAR_ENABLED) return notApplicable(entries, result, context);
  const byOrder = new Map<number, KlarBatchEntry[]>();
  for (const entry of entries) byOrder.set(entry.message.orderId, [...(byOrder.get(entry.message.orderId) ?? []), entry]);
  const latest = new Map<number, KlarCostMessage>();
  for (const [orderId, list] of byOrder) {
    latest.set(orderId, list.map((e) => e.message).reduce((a, b) => (compareStamps(stampOfMessage(b), stampOfMessage(a)) >= 0 ? b : a)));
  }
  const batch: Batch = {
    result,
    context,
    latest,
    posted: new Map(),
    confirmed: new Set(),
    failOrder: (orderId) => result.failed.push(...(byOrder.get(orderId) ?? []).map((e) => e.recordId)),
  };
  try {
    await round(batch, [...latest.keys()], 0);
  } catch (error) {
    // A failed or aborted round (DynamoDB unreachable, the deadline): a POST of this
    // invocation may have landed with nothing recording it. Mark those orders unconfirmed
    // before every record fails, so the next event uploads the recorded cost again.
    const unconfirmed = [...batch.posted.keys()].filter((orderId) => !batch.confirmed.has(orderId));
    await mapWithConcurrency(unconfirmed, 25, (orderId) => markKlarUnconfirmed(orderId)).catch((markError: unknown) =>
      context.log.error('could not mark Klar uploads unconfirmed', { error: describeError(markError), orders: unconfirmed.length }),
    );
    throw error;
  }
  return result;
}

/**
 * Fails these orders' records after marking them unconfirmed: a POST of theirs may have
 * reached Klar without a compare-and-set recording it, so Klar may hold another cost than
 * the record. The mark (pending, version bumped) makes the next event upload the recorded
 * cost, and stops a batch still in flight from recording `uploaded`.
 */
async function failUnconfirmed(batch: Batch, orderIds: number[]): Promise<void> {
  await mapWithConcurrency(orderIds, 25, (orderId) => markKlarUnconfirmed(orderId));
  for (const orderId of orderIds) batch.failOrder(orderId);
  count('failedTransient', orderIds.length);
}

export const KLAR_OFF_REASON = 'Klar is switched off (KLAR_ENABLED=false): not uploaded';

/**
 * Klar switched off, yet costs arrived (forwarded before the switch, or redriven): they do
 * not apply. Each is recorded as an attempt and deleted from the queue; retrying them could
 * only end in the DLQ, and a later `replay` after switching Klar on forwards the cost again.
 */
async function notApplicable(entries: KlarBatchEntry[], result: KlarBatchResult, context: KlarContext): Promise<KlarBatchResult> {
  const at = new Date().toISOString();
  await appendAttempts(
    entries.map(({ message }) => ({
      orderId: message.orderId,
      attempt: { at, target: 'klar' as const, action: 'upload', outcome: 'not-applicable', error: KLAR_OFF_REASON, correlationId: message.correlationId },
    })),
  );
  result.skipped = entries.length;
  context.log.info('Klar is switched off: costs recorded as not applicable and dropped from the queue', { orders: entries.length });
  return result;
}

function stampOfMessage(message: KlarCostMessage) {
  return { sourceUpdatedAt: message.updatedAt, receivedAt: message.receivedAt };
}

/**
 * Plans every given order on a fresh read of its record, records what needs no call,
 * uploads the rest, and hands the orders that lost a race to the next round.
 */
async function round(batch: Batch, orderIds: number[], attempt: number): Promise<void> {
  if (orderIds.length === 0) return;
  const records = await getOrderRecords(orderIds);
  const settings = klarPlanSettings();
  const lines: CostLine[] = [];
  const settlements: KlarSettlement[] = [];
  for (const orderId of orderIds) {
    const message = batch.latest.get(orderId)!;
    const record = records.get(orderId);
    const posted = batch.posted.get(orderId);
    const plan = posted ? planAfterLostRace(message, record?.klar, posted, settings) : planKlarCost(message, record?.klar, settings);
    if (posted && plan.kind === 'unchanged') batch.confirmed.add(orderId); // the record holds what we sent
    switch (plan.kind) {
      case 'upload':
        lines.push(plan.line);
        break;
      case 'touch':
        settlements.push(settlement(message, record, { kind: 'touched', stamp: plan.stamp }));
        break;
      case 'unpark':
        settlements.push(settlement(message, record, { kind: 'unparked', stamp: plan.stamp }));
        batch.result.skipped++;
        break;
      case 'needs-attention':
        settlements.push(settlement(message, record, { kind: 'needs-attention', error: plan.error, stamp: plan.stamp }, failedAttempt(message, plan.error)));
        batch.result.needsAttention++;
        count('needsAttention');
        break;
      case 'skipped':
        batch.result.skipped++;
        break;
      case 'unchanged':
      case 'stale':
        batch.result.unchanged++;
        break;
    }
  }
  const lost: number[] = [];
  if (settlements.length && !config().DRY_RUN) lost.push(...(await settleKlar(settlements)).conflicts);
  for (let i = 0; i < lines.length; i += KLAR_MAX_BATCH) {
    lost.push(...(await upload(batch, lines.slice(i, i + KLAR_MAX_BATCH), records)));
  }
  if (lost.length === 0) return;
  if (attempt + 1 >= CONVERGE_ROUNDS) {
    // Klar may hold an older cost than the record: the next event uploads the recorded one.
    batch.context.log.warn('Klar uploads kept losing races; SQS will retry', { orders: lost.length });
    await failUnconfirmed(batch, lost);
    return;
  }
  const remaining = batch.context.remainingMs?.();
  if (remaining !== undefined && remaining < klarRoundBudgetMs(lost.length)) {
    // A repair round that could be cut off by the deadline would leave its own POST unconfirmed.
    batch.context.log.warn('no time left for another Klar round before the deadline; SQS will retry', { orders: lost.length, remainingMs: remaining });
    await failUnconfirmed(batch, lost);
    return;
  }
  await round(batch, lost, attempt + 1);
}

function settlement(message: KlarCostMessage, record: OrderRecord | undefined, outcome: KlarSettlement['outcome'], attempt?: Attempt): KlarSettlement {
  return {
    orderId: message.orderId,
    orderCode: message.orderCode ?? record?.orderCode,
    expectedVersion: record?.klar.version ?? 0,
    outcome,
    ...(attempt ? { attempt } : {}),
    wasParked: record?.klar.state === 'needs-attention',
    forgotten: Boolean(record?.forgottenAt),
  };
}

function failedAttempt(message: Pick<KlarFacts, 'orderId'> & { correlationId: string }, error: string, httpStatus?: number): Attempt {
  return { at: new Date().toISOString(), target: 'klar', action: 'upload', outcome: 'failed-permanent', error, correlationId: message.correlationId, ...(httpStatus ? { httpStatus } : {}) };
}

/** One POST (and, after INVALID, one more without the rejected orders). Returns the orders that lost a race. */
async function upload(batch: Batch, lines: CostLine[], records: Map<number, OrderRecord>): Promise<number[]> {
  if (lines.length === 0) return [];
  const { result, context } = batch;
  const at = new Date().toISOString();
  const correlationOf = (line: CostLine) => batch.latest.get(line.orderId)!.correlationId;
  if (config().DRY_RUN) {
    await appendAttempts(
      lines.map((line) => ({
        orderId: line.orderId,
        attempt: { at, target: 'klar' as const, action: 'upload', outcome: 'dry-run', correlationId: correlationOf(line), request: describeUpload([line.costs]) },
      })),
    );
    count('dryRun', lines.length);
    return [];
  }

  let answer: UploadResult;
  try {
    result.requests++;
    count('klarRequests');
    answer = await uploadTransactionCosts(
      lines.map((l) => l.costs),
      { signal: context.signal },
    );
  } catch (error) {
    // Only Klar's own refusal, or costs that break its schema, are the orders' problem. A
    // setting or secret that could not be read (SSM throttling, KMS, network, a missing
    // token) says nothing about them: it fails the records, counted and alarmed.
    if (!(error instanceof UpstreamError) && !(error instanceof InvalidMessageError)) {
      context.log.error('Klar upload not started: a setting or secret could not be read; SQS will retry', { error: describeError(error), orders: lines.length });
      count('configReadFailed');
      // Nothing went out now; an earlier POST of this invocation is still unconfirmed.
      await mapWithConcurrency(
        lines.filter((line) => batch.posted.has(line.orderId)).map((line) => line.orderId),
        25,
        (orderId) => markKlarUnconfirmed(orderId),
      );
      count('failedTransient', lines.length);
      for (const line of lines) batch.failOrder(line.orderId);
      return [];
    }
    if (isPermanent(error) && !(error instanceof UpstreamAuthError)) {
      // The request itself was refused (not INVALID, not our credentials): every order of it.
      context.log.error('Klar refused the upload', { error: describeError(error), orders: lines.length });
      return park(batch, lines, records, describeError(error), error instanceof UpstreamError ? error.status : undefined);
    }
    // Transient — our credentials (401/403) included: never one needs-attention per order.
    // A timeout, a network error or a 5xx may have landed: those orders, and any this
    // invocation posted before, are marked unconfirmed before their records fail.
    context.log.warn('Klar upload failed, SQS will retry', { error: describeError(error), orders: lines.length });
    const landed = mayHaveLanded(error);
    const unconfirmed = lines.filter((line) => landed || batch.posted.has(line.orderId)).map((line) => line.orderId);
    await mapWithConcurrency(unconfirmed, 25, (orderId) => markKlarUnconfirmed(orderId));
    count('failedTransient', lines.length);
    for (const line of lines) batch.failOrder(line.orderId);
    return [];
  }

  for (const line of lines) batch.posted.set(line.orderId, line);
  if (answer.outcome === 'valid') return recordUploaded(batch, lines, records, answer, at);
  const { invalid, unmatched } = mapInvalidErrors(
    lines.map((l) => l.costs),
    answer.errors,
  );
  if (unmatched.length) context.log.warn('Klar errors that name no order of the request', { errors: unmatched.slice(0, 20), status: answer.status });
  const bad = lines.filter((l) => invalid.has(l.costs.orderId));
  const rest = lines.filter((l) => !invalid.has(l.costs.orderId));
  const reasonOf = (prefix: string) => (line: CostLine) => `${prefix}: ${invalid.get(line.costs.orderId)}`;

  if (answer.outcome === 'partial') {
    if (bad.length === 0) {
      // Klar stored some entries but named none we sent: re-sending is a harmless upsert,
      // but until then Klar may hold what no record confirms.
      context.log.warn('Klar answered partially without naming our entries, SQS will retry', { status: answer.status, orders: lines.length });
      await failUnconfirmed(batch, lines.map((line) => line.orderId));
      return [];
    }
    const lost = await park(batch, bad, records, reasonOf('Klar rejected'), answer.status);
    return [...lost, ...(await recordUploaded(batch, rest, records, answer, at))];
  }

  // INVALID rejected the whole request: nothing is stored.
  if (bad.length === 0) return park(batch, lines, records, `Klar INVALID: ${unmatched.join('; ')}`, answer.status);
  const lost = await park(batch, bad, records, reasonOf('Klar INVALID'), answer.status);
  // Send the rest again without the bad ones.
  return [...lost, ...(await upload(batch, rest, records))];
}

/** Needs-attention with Klar's message, for each line; returns the orders that lost a race. */
async function park(batch: Batch, lines: CostLine[], records: Map<number, OrderRecord>, reason: string | ((line: CostLine) => string), httpStatus?: number): Promise<number[]> {
  const settlements = lines.map((line) => {
    const message = batch.latest.get(line.orderId)!;
    const error = typeof reason === 'string' ? reason : reason(line);
    return settlement(message, records.get(line.orderId), { kind: 'needs-attention', error, stamp: line.stamp }, failedAttempt(message, error, httpStatus));
  });
  batch.result.needsAttention += lines.length;
  count('needsAttention', lines.length);
  return (await settleKlar(settlements)).conflicts;
}

/** Compare-and-set per order, with its attempt; returns the orders whose record changed meanwhile. */
async function recordUploaded(batch: Batch, lines: CostLine[], records: Map<number, OrderRecord>, answer: UploadResult, at: string): Promise<number[]> {
  if (lines.length === 0) return [];
  const { conflicts } = await settleKlar(
    lines.map((line) => {
      const message = batch.latest.get(line.orderId)!;
      const success: Attempt = { at, target: 'klar', action: 'upload', outcome: 'success', httpStatus: answer.status, latencyMs: answer.latencyMs, correlationId: message.correlationId };
      return settlement(message, records.get(line.orderId), { kind: 'uploaded', transactionCosts: line.costs.transactionCosts, currency: line.currency, stamp: line.stamp }, success);
    }),
  );
  const lost = new Set(conflicts);
  for (const line of lines) if (!lost.has(line.orderId)) batch.confirmed.add(line.orderId);
  const recorded = lines.filter((line) => !lost.has(line.orderId)).length;
  batch.result.uploaded += recorded;
  count('klarUploaded', recorded);
  return conflicts;
}

/**
 * Whether a failed POST may still have reached Klar: no answer (network error, timeout,
 * abort), a 408, or a 5xx. A refusal (401/403, 425, 429) or an error before the request
 * went out did not.
 */
function mayHaveLanded(error: unknown): boolean {
  if (!(error instanceof UpstreamError) || error instanceof UpstreamAuthError) return false;
  return error.status === undefined || error.status === 408 || error.status === 207 || error.status >= 500;
}
