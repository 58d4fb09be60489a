import type { Logger } from '@aws-lambda-powertools/logger';
import { config } from '../config/index.ts';
import { paymentTypeMap } from '../config/mapping.ts';
import type { PaymentTypeMap } from '../domain/payment-types.ts';
import { describeRemove, describeSubmit, provesNotApplied, removeOrder, submitOrder, type TimedUpstreamError } from '../clients/komfortkasse.ts';
import { fetchOrder } from '../clients/versacommerce.ts';
import { InvalidMessageError, UpstreamError, describeError, isPermanent } from '../domain/errors.ts';
import { desiredKomfortkasseState, payloadHash, toKomfortkasseOrder } from '../domain/komfortkasse-mapping.ts';
import type { OrderChangedMessage } from '../domain/messages.ts';
import { compareVersaCommerceDates, versaCommerceOrderSchema, type VersaCommerceOrder } from '../domain/versacommerce.ts';
import { count } from '../observability/metrics.ts';
import {
  appendAttempt,
  claimKomfortkasse,
  clearAttentionIfResolved,
  getOrderRecord,
  recordKomfortkasse,
  releaseKomfortkasse,
  type KomfortkasseClaim,
  type KomfortkasseOutcome,
  type OrderRecord,
} from '../store/history.ts';

export type SyncOutcome = 'submitted' | 'updated' | 'removed' | 'skipped' | 'unchanged' | 'stale' | 'needs-attention' | 'dry-run';

/** How long a worker may hold an order before another may take over (crash recovery). */
export const LEASE_MS = 60_000;

/** LEASE_MS unless KOMFORTKASSE_LEASE_SECONDS shortens it (tests of crash recovery). */
export function leaseMs(): number {
  return config().KOMFORTKASSE_LEASE_SECONDS * 1000;
}

type RecordedKomfortkasse = OrderRecord['komfortkasse'];

/** What closes the gap between the order and what Komfortkasse holds (per the record). */
export type KomfortkassePlan =
  | { kind: 'none'; outcome: 'unchanged' | 'stale'; why: string }
  /** not Komfortkasse's business (payment type): record it, no call */
  | { kind: 'skip'; reason: string }
  /** canceled before it ever reached Komfortkasse: remember it, no call */
  | { kind: 'forget' }
  | { kind: 'remove'; reason?: string }
  | { kind: 'submit'; hash: string }
  /** cannot be mapped: needs-attention, no call */
  | { kind: 'invalid'; error: string };

export interface PlanInput {
  order: VersaCommerceOrder;
  recorded: RecordedKomfortkasse | undefined;
  paymentTypes: PaymentTypeMap;
  /** the worker read the order from the shop just now, so it is current, not a late snapshot */
  authoritative: boolean;
  /** an operator asked for it (replay, console): retry what is parked as needs-attention */
  operator: boolean;
}

/**
 * Level-triggered and pure: the order's desired Komfortkasse state against the recorded
 * one. The worker plans once on a plain read (most deliveries end here with no write) and
 * again under the lease, and only the second plan is carried out.
 */
export function planKomfortkasse(input: PlanInput): KomfortkassePlan {
  const { order, recorded } = input;
  const updatedAt = order.updated_at ?? undefined;
  if (isNewer(recorded?.sourceUpdatedAt, updatedAt)) {
    return { kind: 'none', outcome: 'stale', why: 'a newer snapshot was already applied' };
  }

  let desired;
  try {
    desired = desiredKomfortkasseState(order, { paymentTypes: input.paymentTypes, firstSubmission: false });
  } catch (error) {
    if (!(error instanceof InvalidMessageError)) throw error;
    if (recorded?.state === 'needs-attention' && recorded.error === error.message.slice(0, 1000) && !input.operator) {
      return { kind: 'none', outcome: 'unchanged', why: 'already needs attention for the same reason' };
    }
    return { kind: 'invalid', error: error.message };
  }

  if (desired.action === 'skip') {
    // The order left Komfortkasse's business (e.g. now paid by PayPal): stop its reminders.
    if (mayExistUpstream(recorded)) return { kind: 'remove', reason: desired.reason };
    if (recorded?.state === 'skipped') return { kind: 'none', outcome: 'unchanged', why: 'already skipped' };
    return { kind: 'skip', reason: desired.reason };
  }

  if (desired.action === 'remove') {
    if (recorded?.state === 'removed') return { kind: 'none', outcome: 'unchanged', why: 'already removed' };
    // Never reached Komfortkasse: nothing to remove, but remember the cancellation so a
    // late, older "create" does not submit it.
    return mayExistUpstream(recorded) ? { kind: 'remove' } : { kind: 'forget' };
  }

  const hash = payloadHash(desired.payload);
  if (recorded?.state === 'submitted' && recorded.payloadHash === hash) {
    return { kind: 'none', outcome: 'unchanged', why: 'Komfortkasse already has this content' };
  }
  if (recorded?.state === 'removed' && !input.authoritative && !input.operator && !isNewer(updatedAt, recorded.sourceUpdatedAt)) {
    // Only a snapshot provably newer than the cancellation brings a removed order back.
    return { kind: 'none', outcome: 'stale', why: 'the order was canceled; this snapshot is not newer' };
  }
  if (recorded?.state === 'needs-attention' && recorded.payloadHash === hash && !input.operator) {
    return { kind: 'none', outcome: 'unchanged', why: 'Komfortkasse rejected this content before' };
  }
  return { kind: 'submit', hash };
}

/** Komfortkasse may hold the order: it accepted it once, or an attempt's fate is unknown. */
function mayExistUpstream(recorded: RecordedKomfortkasse | undefined): boolean {
  return recorded !== undefined && recorded.state !== 'removed' && (recorded.everSubmitted || recorded.firstAttemptedAt !== undefined);
}

/** True only when both timestamps parse and `a` is later than `b`. */
function isNewer(a: string | undefined, b: string | undefined): boolean {
  return (compareVersaCommerceDates(a, b) ?? 0) > 0;
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

interface Run {
  orderId: number;
  orderCode: string;
  order: VersaCommerceOrder;
  claim: KomfortkasseClaim;
  log: Logger;
  correlationId: string;
  /** set once a submit may have reached Komfortkasse; keeps firstAttemptedAt on failure */
  mayHaveSent: boolean;
}

/**
 * Derives the desired state, compares it with the recorded one and makes only the call
 * that closes the difference. Transient failures throw (the record fails in the batch and
 * SQS retries it); the order's own permanent failures are recorded as needs-attention.
 */
export async function syncKomfortkasse(message: OrderChangedMessage, log: Logger): Promise<SyncOutcome> {
  try {
    return await sync(message, log);
  } catch (error) {
    count(isPermanent(error) ? 'errors' : 'failedTransient');
    log.warn('Komfortkasse sync failed; the record will be retried', { outcome: 'failed', error: describeError(error) });
    throw error;
  }
}

async function sync(message: OrderChangedMessage, log: Logger): Promise<SyncOutcome> {
  const { orderId, correlationId } = message;
  let order: VersaCommerceOrder;
  try {
    order = await resolveOrder(message);
  } catch (error) {
    if (!isOrderProblem(error)) throw error;
    return parkWithoutOrder(orderId, message.orderCode, error, log, correlationId);
  }
  const orderCode = order.code;
  if (!message.orderCode) log.appendKeys({ orderCode });

  const base = {
    order,
    paymentTypes: paymentTypeMap(),
    authoritative: !message.order,
    operator: message.source === 'replay' || message.source === 'console',
  };
  const quick = planKomfortkasse({ ...base, recorded: (await getOrderRecord(orderId))?.komfortkasse });
  if (quick.kind === 'none') return nothingToDo(quick, log);

  // The lease makes the plan and its call one step: no other worker plans this order meanwhile.
  const claim = await claimKomfortkasse(orderId, orderCode, { leaseMs: leaseMs(), markFirstAttempt: true });
  const run: Run = { orderId, orderCode, order, claim, log, correlationId, mayHaveSent: false };
  try {
    const plan = planKomfortkasse({ ...base, recorded: claim.previous?.komfortkasse });
    switch (plan.kind) {
      case 'none':
        await release(run);
        return nothingToDo(plan, log);
      case 'skip':
        return await record(run, 'skipped', { state: 'skipped', error: plan.reason, sourceUpdatedAt: sourceUpdatedAt(order) });
      case 'forget':
        await record(run, 'unchanged', { state: 'removed', sourceUpdatedAt: sourceUpdatedAt(order) });
        count('unchanged');
        log.info('canceled before it reached Komfortkasse: nothing to remove', { outcome: 'unchanged' });
        return 'unchanged';
      case 'invalid':
        return await parkInvalid(run, plan.error);
      case 'remove':
        return await remove(run, plan.reason);
      case 'submit':
        return await submit(run, plan.hash);
    }
  } catch (error) {
    // Never leave the lease to time out. A submit that may have reached Komfortkasse keeps
    // firstAttemptedAt, so the retry re-sends without initialDunningLevel.
    await releaseKomfortkasse(orderId, claim.token, { clearFirstAttempt: claim.firstAttempt && !run.mayHaveSent }).catch(() => undefined);
    throw error;
  }
}

function nothingToDo(plan: Extract<KomfortkassePlan, { kind: 'none' }>, log: Logger): SyncOutcome {
  count('unchanged');
  log.info('Komfortkasse already in step', { outcome: plan.outcome, reason: plan.why });
  return plan.outcome;
}

/** The input (or the upstream's verdict on it) is wrong; retrying cannot help. */
function isOrderProblem(error: unknown): boolean {
  return error instanceof InvalidMessageError || (error instanceof UpstreamError && isPermanent(error));
}

function sourceUpdatedAt(order: VersaCommerceOrder): string | undefined {
  return order.updated_at ?? undefined;
}

/** Gives the lease back without a call made; drops the first-attempt mark this claim set. */
async function release(run: Run): Promise<void> {
  await releaseKomfortkasse(run.orderId, run.claim.token, { clearFirstAttempt: run.claim.firstAttempt });
}

/** Records a state reached without an upstream call and releases the lease. */
async function record(run: Run, outcome: SyncOutcome, state: KomfortkasseOutcome): Promise<SyncOutcome> {
  await recordKomfortkasse(run.orderId, run.orderCode, run.claim.token, { ...state, clearFirstAttempt: run.claim.firstAttempt });
  await clearAttentionIfResolved(run.orderId);
  if (outcome === 'skipped') {
    count('skipped');
    run.log.info('not sent to Komfortkasse', { outcome, reason: state.error });
  }
  return outcome;
}

async function submit(run: Run, hash: string): Promise<SyncOutcome> {
  const { orderId, orderCode, order, claim, log, correlationId } = run;
  const env = config();
  const previous = claim.previous?.komfortkasse;
  const payload = toKomfortkasseOrder(order, {
    paymentTypes: paymentTypeMap(),
    initialDunningLevel: env.KOMFORTKASSE_INITIAL_DUNNING_LEVEL,
    // Only when no earlier attempt can have created the order upstream.
    firstSubmission: claim.firstAttempt,
  });
  const action = previous?.everSubmitted ? 'update' : 'submit';
  const at = new Date().toISOString();

  if (env.DRY_RUN) {
    await appendAttempt(orderId, { at, target: 'komfortkasse', action, outcome: 'dry-run', correlationId, request: describeSubmit(orderCode, payload) });
    await release(run);
    count('dryRun');
    log.info('dry run: would submit', { outcome: 'dry-run', action });
    return 'dry-run';
  }

  // An earlier attempt (crashed worker, timeout) may have created it: this repeats that call.
  const resend = !claim.firstAttempt && !previous?.everSubmitted;
  let result;
  run.mayHaveSent = true;
  try {
    result = await submitOrder(orderCode, payload);
  } catch (error) {
    // Anything but an UpstreamError was raised before a request went out (e.g. no API key).
    const notApplied = !(error instanceof UpstreamError) || provesNotApplied(error);
    run.mayHaveSent = !notApplied;
    await appendAttempt(orderId, failedAttempt(at, action, error, correlationId));
    if (!isOrderProblem(error)) throw error;
    await recordKomfortkasse(orderId, orderCode, claim.token, {
      state: 'needs-attention',
      payloadHash: hash,
      error: upstreamMessage(error),
      clearFirstAttempt: claim.firstAttempt && notApplied,
    });
    count('needsAttention');
    log.warn('Komfortkasse rejected the order', { outcome: 'needs-attention', action, httpStatus: statusOf(error), error: describeError(error) });
    return 'needs-attention';
  }
  await appendAttempt(orderId, {
    at,
    target: 'komfortkasse',
    action,
    outcome: resend ? 'success-resend' : 'success',
    httpStatus: result.status,
    latencyMs: result.latencyMs,
    correlationId,
  });
  await recordKomfortkasse(orderId, orderCode, claim.token, { state: 'submitted', payloadHash: hash, submitted: true, sourceUpdatedAt: sourceUpdatedAt(order) });
  await clearAttentionIfResolved(orderId);
  const outcome = action === 'update' ? 'updated' : 'submitted';
  count(outcome);
  log.info('Komfortkasse in sync', { outcome, action, resend, httpStatus: result.status, latencyMs: result.latencyMs });
  return outcome;
}

async function remove(run: Run, reason: string | undefined): Promise<SyncOutcome> {
  const { orderId, orderCode, order, claim, log, correlationId } = run;
  const at = new Date().toISOString();
  if (config().DRY_RUN) {
    await appendAttempt(orderId, { at, target: 'komfortkasse', action: 'remove', outcome: 'dry-run', correlationId, request: describeRemove(orderCode) });
    await release(run);
    count('dryRun');
    log.info('dry run: would remove', { outcome: 'dry-run', action: 'remove' });
    return 'dry-run';
  }
  let result;
  try {
    result = await removeOrder(orderCode);
  } catch (error) {
    await appendAttempt(orderId, failedAttempt(at, 'remove', error, correlationId));
    if (!isOrderProblem(error)) throw error;
    await recordKomfortkasse(orderId, orderCode, claim.token, { state: 'needs-attention', error: upstreamMessage(error) });
    count('needsAttention');
    log.warn('Komfortkasse refused to remove the order', { outcome: 'needs-attention', httpStatus: statusOf(error), error: describeError(error) });
    return 'needs-attention';
  }
  await appendAttempt(orderId, {
    at,
    target: 'komfortkasse',
    action: 'remove',
    outcome: result.body.alreadyGone ? 'already-gone' : 'success',
    httpStatus: result.status,
    latencyMs: result.latencyMs,
    correlationId,
  });
  await recordKomfortkasse(orderId, orderCode, claim.token, { state: 'removed', sourceUpdatedAt: sourceUpdatedAt(order), error: reason });
  await clearAttentionIfResolved(orderId);
  count('removed');
  log.info('removed from Komfortkasse', { outcome: 'removed', httpStatus: result.status, alreadyGone: result.body.alreadyGone });
  return 'removed';
}

/** The order cannot be mapped: park it with the reason instead of retrying. */
async function parkInvalid(run: Run, error: string): Promise<SyncOutcome> {
  await appendAttempt(run.orderId, {
    at: new Date().toISOString(),
    target: 'komfortkasse',
    action: 'map',
    outcome: 'failed-permanent',
    error,
    correlationId: run.correlationId,
  });
  await recordKomfortkasse(run.orderId, run.orderCode, run.claim.token, { state: 'needs-attention', error, clearFirstAttempt: run.claim.firstAttempt });
  count('needsAttention');
  run.log.warn('order cannot be sent to Komfortkasse', { outcome: 'needs-attention', error });
  return 'needs-attention';
}

/** No usable order at all (snapshot invalid, or the shop refused or lost it). */
async function parkWithoutOrder(orderId: number, orderCode: string | undefined, error: unknown, log: Logger, correlationId: string): Promise<SyncOutcome> {
  const fromShop = error instanceof UpstreamError && error.upstream === 'VersaCommerce';
  await appendAttempt(orderId, {
    at: new Date().toISOString(),
    target: fromShop ? 'versacommerce' : 'komfortkasse',
    action: fromShop ? 'fetch' : 'map',
    outcome: 'failed-permanent',
    httpStatus: statusOf(error),
    error: upstreamMessage(error),
    correlationId,
  });
  const claim = await claimKomfortkasse(orderId, orderCode, { leaseMs: leaseMs(), markFirstAttempt: false });
  await recordKomfortkasse(orderId, orderCode, claim.token, { state: 'needs-attention', error: upstreamMessage(error) });
  count('needsAttention');
  log.warn('order needs attention', { outcome: 'needs-attention', error: describeError(error) });
  return 'needs-attention';
}

function failedAttempt(at: string, action: string, error: unknown, correlationId: string) {
  return {
    at,
    target: 'komfortkasse' as const,
    action,
    outcome: isOrderProblem(error) ? 'failed-permanent' : 'failed-transient',
    httpStatus: statusOf(error),
    latencyMs: (error as TimedUpstreamError).latencyMs,
    error: upstreamMessage(error),
    correlationId,
  };
}

function statusOf(error: unknown): number | undefined {
  return error instanceof UpstreamError ? error.status : undefined;
}

function upstreamMessage(error: unknown): string {
  if (error instanceof UpstreamError && error.upstreamMessage) {
    return `${error.upstream}${error.status ? ` ${error.status}` : ''}: ${error.upstreamMessage}`;
  }
  return error instanceof Error ? error.message : String(error);
}
