import type { Logger } from '@aws-lambda-powertools/logger';
import { worstCaseRecordMs } from '../config/budget.ts';
import { config } from '../config/index.ts';
import { klarPlanSettings, komfortkasseMappingSettings } from '../config/mapping.ts';
import { describeRemove, describeSubmit, provesNotApplied, removeOrder, submitOrder, type TimedUpstreamError } from '../clients/komfortkasse.ts';
import { countOrders, fetchOrder } from '../clients/versacommerce.ts';
import { ConcurrentUpdateError, InvalidMessageError, OrderVanishedError, ShopApiUnavailableError, UpstreamAuthError, UpstreamError, describeError, isPermanent } from '../domain/errors.ts';
import { needsKlarWorker, planKlarCost, stampOf } from '../domain/klar-plan.ts';
import { toKomfortkasseOrder } from '../domain/komfortkasse-mapping.ts';
import { isNewer, planKomfortkasse, type KomfortkassePlan, type ShopOrder } from '../domain/komfortkasse-plan.ts';
import type { KomfortkasseOrderResponse } from '../domain/komfortkasse.ts';
import { klarCostMessageFor, type OrderChangedMessage } from '../domain/messages.ts';
import type { Attempt, OrderRecord } from '../domain/sync-state.ts';
import { versaCommerceOrderSchema, type VersaCommerceOrder } from '../domain/versacommerce.ts';
import { count, countBy } from '../observability/metrics.ts';
import { enqueueKlarCost } from '../queue/orders.ts';
import { appendAttempt, withoutPersonalData } from '../store/attempts.ts';
import {
  advanceKomfortkasseSource,
  claimKomfortkasse,
  markKomfortkasseFirstAttempt,
  releaseKomfortkasse,
  settleKomfortkasse,
  type KomfortkasseClaim,
  type KomfortkasseOutcome,
} from '../store/komfortkasse-lease.ts';
import { settleKlar } from '../store/klar-record.ts';
import { getOrderRecord } from '../store/order-record.ts';
import { recordShopApiCheck } from '../store/shop-api-check.ts';

/*
 * The order worker, one orders.fifo record at a time:
 *   resolve  the snapshot, or one VersaCommerce fetch for a notification (with the record read)
 *   forward  the Klar cost to klar-costs, before Komfortkasse, and only if Klar needs it
 *   plan     the Komfortkasse difference (lib/domain/komfortkasse-plan.ts); a no-op ends here
 *   claim    a lease on the order's Komfortkasse side, and plan again under it
 *   call     Komfortkasse, once
 *   settle   outcome + attempt + needs-attention index in one DynamoDB request
 */

export type KomfortkasseResult = 'submitted' | 'updated' | 'removed' | 'skipped' | 'unchanged' | 'stale' | 'needs-attention' | 'dry-run' | 'off';

export interface SyncOrderResult {
  komfortkasse: KomfortkasseResult;
  /** a cost message went to klar-costs */
  klarForwarded: boolean;
}

export interface SyncContext {
  log: Logger;
  /** aborted shortly before the function's deadline: stops a call in flight */
  signal?: AbortSignal;
}

/** The longest one record may take: every upstream call it can make (lib/config/budget.ts) at its total deadline, plus DynamoDB. */
export function recordBudgetMs(): number {
  return worstCaseRecordMs(config().UPSTREAM_TOTAL_TIMEOUT_MS);
}

/**
 * Derives the desired state, compares it with the recorded one and makes only the calls
 * that close the difference. Transient failures throw (the record fails in the batch and
 * SQS retries it); the order's own permanent failures are recorded as needs-attention.
 */
export async function syncOrder(message: OrderChangedMessage, context: SyncContext): Promise<SyncOrderResult> {
  try {
    return await sync(message, context);
  } catch (error) {
    count(isPermanent(error) ? 'errors' : 'failedTransient');
    countBy('komfortkasseOutcome', 'outcome', 'failed');
    context.log.warn('order sync failed; the record will be retried', { outcome: 'failed', error: describeError(error) });
    throw error;
  }
}

async function sync(message: OrderChangedMessage, context: SyncContext): Promise<SyncOrderResult> {
  const { log } = context;
  // The shop and the record at once: a notification costs one round trip, not two.
  const [shop, record] = await Promise.all([resolveOrder(message, context.signal), getOrderRecord(message.orderId)]);
  const orderCode = shop.kind === 'order' ? shop.order.code : (message.orderCode ?? record?.orderCode);
  if (orderCode && !message.orderCode) log.appendKeys({ orderCode });

  const klarForwarded = shop.kind === 'order' && config().KLAR_ENABLED ? await forwardKlarCost(shop.order, record, message, log) : false;
  if (shop.kind === 'vanished') await unparkVanishedKlar(message.orderId, orderCode, record, log);
  // Switched off: no plan, no lease, no call, nothing recorded (history shows the side `off`).
  if (!config().KOMFORTKASSE_ENABLED) return { komfortkasse: 'off', klarForwarded };

  const input = {
    shop,
    mapping: komfortkasseMappingSettings(),
    authoritative: fromShopNow(message),
    operator: message.source === 'replay' || message.source === 'console',
  };
  const quick = planKomfortkasse({ ...input, recorded: record?.komfortkasse });
  if (quick.kind === 'none') {
    await advanceSource(message.orderId, shop, record, quick);
    return { komfortkasse: nothingToDo(quick, log), klarForwarded };
  }

  // The lease makes the plan and its call one step: no other worker plans this order meanwhile.
  // Only a submit may create the order upstream, so only its claim sets the first-attempt
  // mark: a mark left behind by a claim for anything else (its settle and release failed)
  // would make a settled order look as if Komfortkasse may hold it, and submit it.
  const claim = await claimKomfortkasse(message.orderId, orderCode, { leaseMs: config().KOMFORTKASSE_LEASE_SECONDS * 1000, markFirstAttempt: quick.kind === 'submit' });
  const run: Run = { message, shop, orderCode, claim, context, mayHaveSent: false, released: false };
  try {
    const plan = planKomfortkasse({ ...input, recorded: claim.previous?.komfortkasse });
    return { komfortkasse: await execute(run, plan), klarForwarded };
  } catch (error) {
    // Never leave the lease to time out. A submit that may have reached Komfortkasse keeps
    // firstAttemptedAt, so the retry re-sends without initialDunningLevel.
    if (!run.released) await releaseKomfortkasse(message.orderId, claim, { clearFirstAttempt: claim.firstAttempt && !run.mayHaveSent }).catch(() => undefined);
    throw error;
  }
}

/**
 * The order comes from the shop itself: fetched here, or by `orderbridge replay` just before
 * it queued the message (a deletion after that comes later in the order's FIFO group).
 * Only such an order may bring back one the shop had deleted; a webhook's snapshot may be late.
 */
function fromShopNow(message: OrderChangedMessage): boolean {
  return !message.order || message.source === 'replay';
}

/** The order as the message carried it, as the shop has it now, or why there is none. */
async function resolveOrder(message: OrderChangedMessage, signal: AbortSignal | undefined): Promise<ShopOrder> {
  if (message.order) {
    const parsed = versaCommerceOrderSchema.safeParse(message.order);
    if (parsed.success) return { kind: 'order', order: parsed.data };
    return { kind: 'unusable', error: `order snapshot does not match the schema: ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}` };
  }
  try {
    return { kind: 'order', order: (await fetchOrder(message.orderId, { signal })).order };
  } catch (error) {
    if (error instanceof OrderVanishedError) return confirmVanished(message.orderId, signal, error);
    // 401/403 are our credentials, not the order: transient, retried, then the DLQ.
    if (error instanceof UpstreamError && isPermanent(error) && !(error instanceof UpstreamAuthError)) {
      return { kind: 'unusable', error: upstreamMessage(error) };
    }
    throw error;
  }
}

/**
 * A 404 is a deletion only if the shop's API itself answers, with the same credentials: a
 * wrong base URL or a proxy answers 404 to everything, and must not remove every order from
 * Komfortkasse. Otherwise it is a configuration error: counted, recorded for `status`, and
 * transient for the order, which is left untouched (retried, then the DLQ).
 */
async function confirmVanished(orderId: number, signal: AbortSignal | undefined, notFound: OrderVanishedError): Promise<ShopOrder> {
  try {
    await countOrders({ signal });
  } catch (error) {
    count('shopApiCheckFailed');
    const check = error instanceof UpstreamError && error.status !== undefined ? upstreamMessage(error) : describeError(error);
    await recordShopApiCheck({ ok: false, error: check }).catch(() => undefined);
    throw new ShopApiUnavailableError(orderId, check, { cause: notFound });
  }
  await recordShopApiCheck({ ok: true }).catch(() => undefined);
  return { kind: 'vanished' };
}

/**
 * Klar first, so a Komfortkasse outage never delays it — and only when Klar needs the
 * cost (the same planner the Klar worker runs decides; duplicates forward nothing).
 */
async function forwardKlarCost(order: VersaCommerceOrder, record: OrderRecord | undefined, message: OrderChangedMessage, log: Logger): Promise<boolean> {
  const cost = klarCostMessageFor(order, { receivedAt: message.receivedAt, correlationId: message.correlationId });
  const plan = planKlarCost(cost, record?.klar, klarPlanSettings());
  if (!needsKlarWorker(plan)) return false;
  await enqueueKlarCost(cost);
  count('klarForwarded');
  log.debug('Klar cost forwarded', { klar: plan.kind });
  return true;
}

/**
 * A deleted order needs no cost any more: if its Klar side is parked, take it off the
 * needs-attention list (Klar has no delete; it keeps what it has). A compare-and-set on the
 * Klar version: a batch that changed the record meanwhile makes this record retry.
 */
async function unparkVanishedKlar(orderId: number, orderCode: string | undefined, record: OrderRecord | undefined, log: Logger): Promise<void> {
  if (record?.klar.state !== 'needs-attention') return;
  const { conflicts } = await settleKlar([
    {
      orderId,
      orderCode,
      expectedVersion: record.klar.version,
      outcome: { kind: 'unparked', stamp: stampOf(record.klar) },
      wasParked: true,
      forgotten: Boolean(record.forgottenAt),
    },
  ]);
  if (conflicts.length) throw new ConcurrentUpdateError(`the Klar side of order ${orderId} changed while unparking it`);
  log.info('Klar side unparked: the order vanished from the shop', { klar: 'unparked' });
}

interface Run {
  message: OrderChangedMessage;
  shop: ShopOrder;
  orderCode: string | undefined;
  claim: KomfortkasseClaim;
  context: SyncContext;
  /** set once a submit may have reached Komfortkasse; keeps firstAttemptedAt on failure */
  mayHaveSent: boolean;
  released: boolean;
}

async function execute(run: Run, plan: KomfortkassePlan): Promise<KomfortkasseResult> {
  const { claim, shop } = run;
  const sourceUpdatedAt = shop.kind === 'order' ? (shop.order.updated_at ?? undefined) : undefined;
  switch (plan.kind) {
    case 'none':
      await release(run, { clearFirstAttempt: claim.firstAttempt });
      await advanceSource(run.message.orderId, shop, claim.previous, plan);
      return nothingToDo(plan, run.context.log);
    case 'skip':
      await settle(run, { state: 'skipped', error: plan.reason, sourceUpdatedAt, clearFirstAttempt: claim.firstAttempt }, []);
      return done(run, 'skipped', 'not sent to Komfortkasse', { reason: plan.reason });
    case 'forget': {
      // Nothing to remove upstream; remember it so a late, older snapshot cannot submit it.
      const attempts = shop.kind === 'vanished' ? [attempt(run, { target: 'versacommerce', action: 'fetch', outcome: 'not-found', httpStatus: 404 })] : [];
      await settle(run, { state: 'removed', sourceUpdatedAt, clearFirstAttempt: claim.firstAttempt }, attempts);
      return done(run, 'unchanged', 'never reached Komfortkasse: nothing to remove', { reason: plan.reason });
    }
    case 'invalid': {
      const fromShop = shop.kind === 'unusable' && !run.message.order;
      const failed = attempt(run, { target: fromShop ? 'versacommerce' : 'komfortkasse', action: fromShop ? 'fetch' : 'map', outcome: 'failed-permanent', error: plan.error });
      await settle(run, { state: 'needs-attention', error: plan.error, sourceUpdatedAt, clearFirstAttempt: claim.firstAttempt }, [failed]);
      return done(run, 'needs-attention', 'order cannot be sent to Komfortkasse', { error: plan.error }, 'warn');
    }
    case 'remove':
      return remove(run, plan.reason, sourceUpdatedAt);
    case 'submit':
      if (shop.kind !== 'order') throw new InvalidMessageError('a submit needs the order');
      return submit(run, shop.order, plan);
  }
}

async function submit(run: Run, order: VersaCommerceOrder, plan: Extract<KomfortkassePlan, { kind: 'submit' }>): Promise<KomfortkasseResult> {
  const { claim, context } = run;
  const env = config();
  const orderCode = order.code;
  const payload = toKomfortkasseOrder(order, {
    ...komfortkasseMappingSettings(),
    initialDunningLevel: env.KOMFORTKASSE_INITIAL_DUNNING_LEVEL,
    // Only when no earlier attempt can have created the order upstream.
    firstSubmission: claim.firstAttempt,
    ...(plan.stopReminder === undefined ? {} : { stopReminder: plan.stopReminder }),
  });
  const previous = claim.previous?.komfortkasse;
  const action = previous?.everSubmitted ? 'update' : 'submit';

  if (env.DRY_RUN) {
    await release(run, { clearFirstAttempt: claim.firstAttempt, attempt: attempt(run, { target: 'komfortkasse', action, outcome: 'dry-run', request: describeSubmit(orderCode, payload) }) });
    return dryRun(run, action);
  }

  // An earlier attempt (crashed worker, timeout) may have created it: this repeats that call.
  const resend = !claim.firstAttempt && !previous?.everSubmitted;
  // Planned otherwise before the lease: the record must say a call may have created the order before it goes out.
  if (!claim.marked && !previous?.everSubmitted) await markKomfortkasseFirstAttempt(run.message.orderId, claim);
  let at = new Date().toISOString();
  let callAction = action;
  /** a creating submission Komfortkasse refused: it already holds the order */
  let refused: Attempt | undefined;
  let result;
  run.mayHaveSent = true;
  try {
    try {
      result = await submitOrder(orderCode, payload, { signal: context.signal });
    } catch (error) {
      if (payload.initialDunningLevel === undefined || !refusedOnCreation(error)) throw error;
      // Komfortkasse honours initialDunningLevel only when it creates an order and refuses it
      // on one it holds (migrated from an earlier integration): update that order, once, without it.
      refused = attempt(run, { at, target: 'komfortkasse', action, outcome: 'refused', httpStatus: statusOf(error), latencyMs: (error as TimedUpstreamError).latencyMs, error: upstreamMessage(error) });
      run.context.log.info('Komfortkasse already holds the order: re-sent without initialDunningLevel', { httpStatus: statusOf(error), error: describeError(error) });
      const { initialDunningLevel: _level, ...withoutLevel } = payload;
      at = new Date().toISOString();
      callAction = 'update';
      result = await submitOrder(orderCode, withoutLevel, { signal: context.signal });
    }
  } catch (error) {
    // Anything but an UpstreamError was raised before a request went out (e.g. no API key).
    const notApplied = !(error instanceof UpstreamError) || provesNotApplied(error);
    run.mayHaveSent = !notApplied;
    // After a refusal the order surely exists upstream: the retry must not send the level again.
    const clearFirstAttempt = claim.firstAttempt && notApplied && !refused;
    const failed = failedAttempt(run, at, callAction, error);
    if (!isOrderProblem(error)) {
      if (refused) await appendAttempt(run.message.orderId, claim.previous?.forgottenAt ? withoutPersonalData(refused) : refused);
      await release(run, { clearFirstAttempt, attempt: failed });
      throw error;
    }
    const message = upstreamMessage(error);
    await settle(
      run,
      { state: 'needs-attention', payloadHash: plan.hash, error: message, sourceUpdatedAt: order.updated_at ?? undefined, clearFirstAttempt },
      [...(refused ? [refused] : []), failed],
    );
    return done(run, 'needs-attention', 'Komfortkasse rejected the order', { action: callAction, httpStatus: statusOf(error), error: describeError(error) }, 'warn');
  }
  const success = attempt(run, { at, target: 'komfortkasse', action: callAction, outcome: resend ? 'success-resend' : 'success', httpStatus: result.status, latencyMs: result.latencyMs });
  await settle(
    run,
    {
      state: 'submitted',
      payloadHash: plan.hash,
      submitted: true,
      remindersStopped: plan.remindersStopped,
      sourceUpdatedAt: order.updated_at ?? undefined,
      ...komfortkasseAnswer(result.body),
    },
    [...(refused ? [refused] : []), success],
  );
  const outcome = callAction === 'update' ? 'updated' : 'submitted';
  const message = refused ? 'Komfortkasse already held the order (an earlier integration): updated it' : 'Komfortkasse in sync';
  return done(run, outcome, message, { action: callAction, resend, stopReminder: plan.stopReminder, httpStatus: result.status, latencyMs: result.latencyMs });
}

/**
 * Komfortkasse refused a creating submission as such (a 4xx that is neither our
 * credentials nor "slow down"): with `initialDunningLevel` that means it already holds the
 * order. 401/403 stay credentials and 408/425/429/5xx stay transient.
 */
function refusedOnCreation(error: unknown): boolean {
  return isOrderProblem(error) && error instanceof UpstreamError && error.status !== undefined && error.status >= 400 && error.status < 500;
}

async function remove(run: Run, reason: string | undefined, sourceUpdatedAt: string | undefined): Promise<KomfortkasseResult> {
  const { claim, context } = run;
  const orderCode = run.orderCode;
  if (!orderCode) {
    const error = 'cannot remove the order from Komfortkasse: its code is unknown';
    await settle(run, { state: 'needs-attention', error, sourceUpdatedAt }, [attempt(run, { target: 'komfortkasse', action: 'remove', outcome: 'failed-permanent', error })]);
    return done(run, 'needs-attention', error, {}, 'warn');
  }
  if (config().DRY_RUN) {
    await release(run, { clearFirstAttempt: false, attempt: attempt(run, { target: 'komfortkasse', action: 'remove', outcome: 'dry-run', request: describeRemove(orderCode) }) });
    return dryRun(run, 'remove');
  }
  const at = new Date().toISOString();
  let result;
  try {
    result = await removeOrder(orderCode, { signal: context.signal });
  } catch (error) {
    const failed = failedAttempt(run, at, 'remove', error);
    if (!isOrderProblem(error)) {
      await release(run, { clearFirstAttempt: false, attempt: failed });
      throw error;
    }
    await settle(run, { state: 'needs-attention', error: upstreamMessage(error), sourceUpdatedAt }, [failed]);
    return done(run, 'needs-attention', 'Komfortkasse refused to remove the order', { httpStatus: statusOf(error), error: describeError(error) }, 'warn');
  }
  const removed = attempt(run, {
    at,
    target: 'komfortkasse',
    action: 'remove',
    outcome: result.body.alreadyGone ? 'already-gone' : 'success',
    httpStatus: result.status,
    latencyMs: result.latencyMs,
  });
  await settle(run, { state: 'removed', sourceUpdatedAt, error: reason, ...komfortkasseAnswer(result.body.order) }, [removed]);
  return done(run, 'removed', 'removed from Komfortkasse', { httpStatus: result.status, alreadyGone: result.body.alreadyGone, reason });
}

/**
 * A newer copy of the order that changes nothing upstream still moves the recorded
 * `updated_at` on, so an older copy redriven later counts as stale and cannot overwrite
 * what the newer one confirmed (submitted, parked or removed content).
 */
async function advanceSource(orderId: number, shop: ShopOrder, record: OrderRecord | undefined, plan: Extract<KomfortkassePlan, { kind: 'none' }>): Promise<void> {
  if (plan.outcome !== 'unchanged' || shop.kind !== 'order' || !record) return;
  const updatedAt = shop.order.updated_at ?? undefined;
  if (updatedAt === undefined || !isNewer(updatedAt, record.komfortkasse.sourceUpdatedAt)) return;
  await advanceKomfortkasseSource(orderId, { from: record.komfortkasse.sourceUpdatedAt, to: updatedAt });
}

/**
 * Marked released only once it worked: a failed settle still gives the lease back (sync's catch).
 * Every settle also records what the shop said of the order's existence: a 404 marks it
 * deleted, an order fetched from the shop clears that mark.
 */
async function settle(run: Run, outcome: KomfortkasseOutcome, attempts: Attempt[]): Promise<void> {
  const vanished = run.shop.kind === 'vanished' ? true : run.shop.kind === 'order' && fromShopNow(run.message) ? false : undefined;
  await settleKomfortkasse({
    orderId: run.message.orderId,
    orderCode: run.orderCode,
    claim: run.claim,
    outcome: { ...outcome, ...(vanished === undefined ? {} : { vanished }) },
    attempts,
  });
  run.released = true;
}

/** What Komfortkasse's 200 answer says of the order, kept in its record (history shows it). */
function komfortkasseAnswer(body: KomfortkasseOrderResponse | undefined): Pick<KomfortkasseOutcome, 'referenceNumber' | 'paymentStatus'> {
  return {
    ...(body?.referenceNumber ? { referenceNumber: body.referenceNumber } : {}),
    ...(body?.paymentStatus ? { paymentStatus: body.paymentStatus } : {}),
  };
}

async function release(run: Run, options: { clearFirstAttempt: boolean; attempt?: Attempt }): Promise<void> {
  await releaseKomfortkasse(run.message.orderId, run.claim, options);
  run.released = true;
}

function attempt(run: Run, fields: Omit<Attempt, 'at' | 'correlationId'> & { at?: string }): Attempt {
  return { at: new Date().toISOString(), correlationId: run.message.correlationId, ...fields };
}

function failedAttempt(run: Run, at: string, action: string, error: unknown): Attempt {
  return attempt(run, {
    at,
    target: 'komfortkasse',
    action,
    outcome: isOrderProblem(error) ? 'failed-permanent' : 'failed-transient',
    httpStatus: statusOf(error),
    latencyMs: (error as TimedUpstreamError).latencyMs,
    error: upstreamMessage(error),
  });
}

const METRIC_OF: Partial<Record<KomfortkasseResult, 'submitted' | 'updated' | 'removed' | 'skipped' | 'unchanged' | 'needsAttention'>> = {
  submitted: 'submitted',
  updated: 'updated',
  removed: 'removed',
  skipped: 'skipped',
  unchanged: 'unchanged',
  stale: 'unchanged',
  'needs-attention': 'needsAttention',
};

function done(run: Run, outcome: KomfortkasseResult, message: string, fields: Record<string, unknown>, level: 'info' | 'warn' = 'info'): KomfortkasseResult {
  record(outcome);
  run.context.log[level](message, { outcome, ...fields });
  return outcome;
}

function dryRun(run: Run, action: string): KomfortkasseResult {
  count('dryRun');
  countBy('komfortkasseOutcome', 'outcome', 'dry-run');
  run.context.log.info(`dry run: would ${action}`, { outcome: 'dry-run', action });
  return 'dry-run';
}

function nothingToDo(plan: Extract<KomfortkassePlan, { kind: 'none' }>, log: Logger): KomfortkasseResult {
  record(plan.outcome);
  log.info('Komfortkasse already in step', { outcome: plan.outcome, reason: plan.why });
  return plan.outcome;
}

function record(outcome: KomfortkasseResult): void {
  const metric = METRIC_OF[outcome];
  if (metric) count(metric);
  countBy('komfortkasseOutcome', 'outcome', outcome === 'stale' ? 'unchanged' : outcome);
}

/** The input (or the upstream's verdict on it) is wrong; retrying cannot help. Never our credentials. */
function isOrderProblem(error: unknown): boolean {
  if (error instanceof UpstreamAuthError) return false;
  return error instanceof InvalidMessageError || (error instanceof UpstreamError && isPermanent(error));
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
