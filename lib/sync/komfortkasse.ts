import type { Logger } from '@aws-lambda-powertools/logger';
import { config } from '../config/index.ts';
import { paymentTypeMap } from '../config/mapping.ts';
import { describeRemove, describeSubmit, removeOrder, submitOrder, type TimedUpstreamError } from '../clients/komfortkasse.ts';
import { fetchOrder } from '../clients/versacommerce.ts';
import { InvalidMessageError, UpstreamError, describeError, isPermanent } from '../domain/errors.ts';
import { desiredKomfortkasseState, payloadHash, toKomfortkasseOrder } from '../domain/komfortkasse-mapping.ts';
import type { OrderChangedMessage } from '../domain/messages.ts';
import { parseVersaCommerceDate, versaCommerceOrderSchema, type VersaCommerceOrder } from '../domain/versacommerce.ts';
import { count } from '../observability/metrics.ts';
import {
  appendAttempt,
  claimKomfortkasse,
  clearAttentionIfResolved,
  getOrderRecord,
  recordKomfortkasse,
  releaseKomfortkasse,
  type OrderRecord,
} from '../store/history.ts';

export type SyncOutcome = 'submitted' | 'updated' | 'removed' | 'skipped' | 'unchanged' | 'stale' | 'needs-attention' | 'dry-run';

/** How long a worker may hold an order before another may take over (crash recovery). */
export const LEASE_MS = 60_000;

/** LEASE_MS unless KOMFORTKASSE_LEASE_SECONDS shortens it (tests of crash recovery). */
function leaseMs(): number {
  return config().KOMFORTKASSE_LEASE_SECONDS * 1000;
}

/** The order as the message carried it, or as the shop has it now. */
export async function resolveOrder(message: OrderChangedMessage): Promise<VersaCommerceOrder> {
  if (message.order) {
    const parsed = versaCommerceOrderSchema.safeParse(message.order);
    if (!parsed.success) {
      throw new InvalidMessageError(`order snapshot does not match the schema: ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}`);
    }
    return parsed.data;
  }
  try {
    return (await fetchOrder(message.orderId)).order;
  } catch (error) {
    if (error instanceof UpstreamError && error.status === 404) {
      throw new UpstreamError('VersaCommerce', `order ${message.orderId} does not exist in the shop`, 'permanent', { status: 404, cause: error });
    }
    throw error;
  }
}

function newer(a: string | undefined, b: string | undefined): boolean | undefined {
  if (!a || !b) return undefined;
  const da = parseVersaCommerceDate(a);
  const db = parseVersaCommerceDate(b);
  return da && db ? da.getTime() > db.getTime() : undefined;
}

/**
 * Level-triggered: derive what Komfortkasse should hold, compare with what we recorded,
 * and make only the call that closes the difference. Transient failures throw (the record
 * fails in the batch); permanent ones are recorded as needs-attention and return.
 */
export async function syncKomfortkasse(message: OrderChangedMessage, log: Logger): Promise<SyncOutcome> {
  const env = config();
  const { orderId, correlationId } = message;
  let order: VersaCommerceOrder;
  try {
    order = await resolveOrder(message);
  } catch (error) {
    if (!isPermanent(error)) throw error;
    return markNeedsAttention(orderId, message.orderCode, undefined, error, log, correlationId);
  }
  const orderCode = order.code;
  const record = await getOrderRecord(orderId);
  const recorded = record?.komfortkasse;
  const sourceUpdatedAt = typeof order.updated_at === 'string' ? order.updated_at : undefined;

  if (newer(recorded?.sourceUpdatedAt, sourceUpdatedAt)) {
    log.info('stale snapshot ignored', { outcome: 'stale' });
    return 'stale';
  }

  let desired;
  try {
    desired = desiredKomfortkasseState(order, { paymentTypes: paymentTypeMap(), firstSubmission: false });
  } catch (error) {
    if (!isPermanent(error)) throw error;
    return markNeedsAttention(orderId, orderCode, undefined, error, log, correlationId);
  }

  if (desired.action === 'skip') {
    if (recorded?.everSubmitted && recorded.state !== 'removed') {
      // The order left Komfortkasse's business (e.g. now paid by PayPal): stop reminders.
      return remove(orderId, orderCode, record, sourceUpdatedAt, log, correlationId, desired.reason);
    }
    if (recorded?.state === 'skipped') return 'unchanged';
    await transition(orderId, orderCode, { state: 'skipped', error: desired.reason, sourceUpdatedAt });
    count('skipped');
    log.info('not sent to Komfortkasse', { outcome: 'skipped', reason: desired.reason });
    return 'skipped';
  }

  if (desired.action === 'remove') {
    if (recorded?.state === 'removed') return 'unchanged';
    if (!recorded?.everSubmitted && !recorded?.firstAttemptedAt) {
      // Never reached Komfortkasse: nothing to remove, but remember the cancellation so a
      // late, older "create" does not submit it.
      await transition(orderId, orderCode, { state: 'removed', sourceUpdatedAt });
      log.info('canceled before it was submitted', { outcome: 'unchanged' });
      return 'unchanged';
    }
    return remove(orderId, orderCode, record, sourceUpdatedAt, log, correlationId);
  }

  const hash = payloadHash(desired.payload);
  if (recorded?.state === 'submitted' && recorded.payloadHash === hash) return 'unchanged';
  if (recorded?.state === 'removed' && !newer(sourceUpdatedAt, recorded.sourceUpdatedAt)) {
    // A canceled order is only resurrected by a snapshot that is provably newer.
    log.info('order was canceled; older snapshot not resubmitted', { outcome: 'stale' });
    return 'stale';
  }
  if (recorded?.state === 'needs-attention' && recorded.payloadHash === hash && message.source !== 'replay' && message.source !== 'console') {
    return 'unchanged';
  }
  return submit(orderId, orderCode, order, hash, sourceUpdatedAt, log, correlationId);
}

async function submit(
  orderId: number,
  orderCode: string,
  order: VersaCommerceOrder,
  hash: string,
  sourceUpdatedAt: string | undefined,
  log: Logger,
  correlationId: string,
): Promise<SyncOutcome> {
  const env = config();
  const claim = await claimKomfortkasse(orderId, orderCode, { leaseMs: leaseMs(), markFirstAttempt: true });
  const previous = claim.previous?.komfortkasse;
  if (previous?.state === 'submitted' && previous.payloadHash === hash) {
    await releaseKomfortkasse(orderId, claim.token, { clearFirstAttempt: false });
    return 'unchanged';
  }
  const payload = toKomfortkasseOrder(order, {
    paymentTypes: paymentTypeMap(),
    initialDunningLevel: env.KOMFORTKASSE_INITIAL_DUNNING_LEVEL,
    firstSubmission: claim.firstAttempt,
  });
  const action = previous?.everSubmitted ? 'update' : 'submit';
  const at = new Date().toISOString();

  if (env.DRY_RUN) {
    await appendAttempt(orderId, { at, target: 'komfortkasse', action, outcome: 'dry-run', correlationId, request: describeSubmit(orderCode, payload) });
    await releaseKomfortkasse(orderId, claim.token, { clearFirstAttempt: claim.firstAttempt });
    count('dryRun');
    log.info('dry run: would submit', { outcome: 'dry-run', action });
    return 'dry-run';
  }

  // A lease left by a crashed worker after it attempted: this may repeat its call.
  const resend = !claim.firstAttempt && !previous?.everSubmitted;
  try {
    const result = await submitOrder(orderCode, payload);
    await appendAttempt(orderId, {
      at,
      target: 'komfortkasse',
      action,
      outcome: resend ? 'success-resend' : 'success',
      httpStatus: result.status,
      latencyMs: result.latencyMs,
      correlationId,
    });
    await recordKomfortkasse(orderId, orderCode, claim.token, { state: 'submitted', payloadHash: hash, submitted: true, sourceUpdatedAt });
    await clearAttentionIfResolved(orderId);
    const outcome = action === 'update' ? 'updated' : 'submitted';
    count(outcome);
    log.info('Komfortkasse in sync', { outcome, action, httpStatus: result.status, latencyMs: result.latencyMs });
    return outcome;
  } catch (error) {
    // An HTTP answer proves the order was not created by this attempt.
    const answered = error instanceof UpstreamError && error.status !== undefined;
    await appendAttempt(orderId, {
      at,
      target: 'komfortkasse',
      action,
      outcome: isPermanent(error) ? 'failed-permanent' : 'failed-transient',
      httpStatus: error instanceof UpstreamError ? error.status : undefined,
      latencyMs: (error as TimedUpstreamError).latencyMs,
      error: upstreamMessage(error),
      correlationId,
    });
    if (isPermanent(error)) {
      await recordKomfortkasse(orderId, orderCode, claim.token, {
        state: 'needs-attention',
        payloadHash: hash,
        error: upstreamMessage(error),
        clearFirstAttempt: claim.firstAttempt && answered,
      });
      count('needsAttention');
      log.warn('Komfortkasse rejected the order', { outcome: 'needs-attention', httpStatus: (error as UpstreamError).status, error: describeError(error) });
      return 'needs-attention';
    }
    await releaseKomfortkasse(orderId, claim.token, { clearFirstAttempt: claim.firstAttempt && answered });
    count('failedTransient');
    log.warn('Komfortkasse call failed, will retry', { outcome: 'failed-transient', error: describeError(error) });
    throw error;
  }
}

async function remove(
  orderId: number,
  orderCode: string,
  record: OrderRecord | undefined,
  sourceUpdatedAt: string | undefined,
  log: Logger,
  correlationId: string,
  reason?: string,
): Promise<SyncOutcome> {
  const claim = await claimKomfortkasse(orderId, orderCode, { leaseMs: leaseMs(), markFirstAttempt: false });
  if (claim.previous?.komfortkasse.state === 'removed') {
    await releaseKomfortkasse(orderId, claim.token, { clearFirstAttempt: false });
    return 'unchanged';
  }
  const at = new Date().toISOString();
  if (config().DRY_RUN) {
    await appendAttempt(orderId, { at, target: 'komfortkasse', action: 'remove', outcome: 'dry-run', correlationId, request: describeRemove(orderCode) });
    await releaseKomfortkasse(orderId, claim.token, { clearFirstAttempt: false });
    count('dryRun');
    return 'dry-run';
  }
  try {
    const result = await removeOrder(orderCode);
    await appendAttempt(orderId, {
      at,
      target: 'komfortkasse',
      action: 'remove',
      outcome: result.body.alreadyGone ? 'already-gone' : 'success',
      httpStatus: result.status,
      latencyMs: result.latencyMs,
      correlationId,
    });
    await recordKomfortkasse(orderId, orderCode, claim.token, { state: 'removed', sourceUpdatedAt, error: reason });
    await clearAttentionIfResolved(orderId);
    count('removed');
    log.info('removed from Komfortkasse', { outcome: 'removed', httpStatus: result.status });
    void record;
    return 'removed';
  } catch (error) {
    await appendAttempt(orderId, {
      at,
      target: 'komfortkasse',
      action: 'remove',
      outcome: isPermanent(error) ? 'failed-permanent' : 'failed-transient',
      httpStatus: error instanceof UpstreamError ? error.status : undefined,
      error: upstreamMessage(error),
      correlationId,
    });
    if (isPermanent(error)) {
      await recordKomfortkasse(orderId, orderCode, claim.token, { state: 'needs-attention', error: upstreamMessage(error) });
      count('needsAttention');
      return 'needs-attention';
    }
    await releaseKomfortkasse(orderId, claim.token, { clearFirstAttempt: false });
    count('failedTransient');
    throw error;
  }
}

/** A state change without an upstream call (skipped, canceled before submission). */
async function transition(orderId: number, orderCode: string | undefined, outcome: Parameters<typeof recordKomfortkasse>[3]): Promise<void> {
  const claim = await claimKomfortkasse(orderId, orderCode, { leaseMs: leaseMs(), markFirstAttempt: false });
  await recordKomfortkasse(orderId, orderCode, claim.token, outcome);
}

async function markNeedsAttention(
  orderId: number,
  orderCode: string | undefined,
  payloadHashValue: string | undefined,
  error: unknown,
  log: Logger,
  correlationId: string,
): Promise<SyncOutcome> {
  await appendAttempt(orderId, {
    at: new Date().toISOString(),
    target: error instanceof UpstreamError && error.upstream === 'VersaCommerce' ? 'versacommerce' : 'komfortkasse',
    action: 'map',
    outcome: 'failed-permanent',
    httpStatus: error instanceof UpstreamError ? error.status : undefined,
    error: upstreamMessage(error),
    correlationId,
  });
  await transition(orderId, orderCode, { state: 'needs-attention', payloadHash: payloadHashValue, error: upstreamMessage(error) });
  count('needsAttention');
  log.warn('order needs attention', { outcome: 'needs-attention', error: describeError(error) });
  return 'needs-attention';
}

function upstreamMessage(error: unknown): string {
  if (error instanceof UpstreamError) return error.upstreamMessage ? `${error.upstream} ${error.status ?? ''}: ${error.upstreamMessage}`.replace('  ', ' ') : error.message;
  return error instanceof Error ? error.message : String(error);
}
