import { InvalidMessageError } from './errors.ts';
import { desiredKomfortkasseState, payloadHash } from './komfortkasse-mapping.ts';
import { isCanceledInShop, isPaidInShop, isSettledInShop } from './order-status.ts';
import type { PaymentTypeMap } from './payment-types.ts';
import { MAX_ERROR_LENGTH, type RecordedKomfortkasse } from './sync-state.ts';
import { compareVersaCommerceDates, type VersaCommerceOrder } from './versacommerce.ts';

/** What closes the gap between the order and what Komfortkasse holds (per the record). */
export type KomfortkassePlan =
  | { kind: 'none'; outcome: 'unchanged' | 'stale'; why: string }
  /** not Komfortkasse's business (payment type, or settled before it got there): record it, no call */
  | { kind: 'skip'; reason: string }
  /** canceled or vanished before it ever reached Komfortkasse: remember it, no call */
  | { kind: 'forget'; reason: string }
  | { kind: 'remove'; reason?: string }
  /**
   * submit or update; `stopReminder` is what to send (absent: leave Komfortkasse's setting
   * as it is), `remindersStopped` what Komfortkasse holds afterwards
   */
  | { kind: 'submit'; hash: string; stopReminder?: boolean; remindersStopped: boolean }
  /** cannot be mapped: needs-attention, no call */
  | { kind: 'invalid'; error: string };

/** What the worker learned of the order: the order, that it vanished, or why it is unusable. */
export type ShopOrder =
  | { kind: 'order'; order: VersaCommerceOrder }
  /** the shop answered 404 */
  | { kind: 'vanished' }
  /** a snapshot that fails the schema, or an order the shop refused to give */
  | { kind: 'unusable'; error: string };

export interface KomfortkassePlanInput {
  shop: ShopOrder;
  recorded: RecordedKomfortkasse | undefined;
  mapping: { paymentTypes: PaymentTypeMap; defaultCountryCode?: string };
  /** the order comes from the shop just now (fetched by the worker, or by replay), so it is current, not a late snapshot */
  authoritative: boolean;
  /** an operator asked for it (replay, console): retry what is parked as needs-attention */
  operator: boolean;
}

export const VANISHED_REASON = 'the order vanished from the shop (VersaCommerce answered 404)';

/**
 * Why a settled order is not submitted: Komfortkasse would mail payment instructions for an
 * order the customer has already paid (seed 002: `closed` is "sent and paid").
 */
export function settledReason(order: Pick<VersaCommerceOrder, 'status' | 'payment_status'>): string {
  const how = isPaidInShop(order) ? `payment_status ${String(order.payment_status).trim().toLowerCase()}` : 'status closed';
  return `settled in the shop (${how}) before it reached Komfortkasse: not submitted`;
}

/**
 * Level-triggered and pure: the order's desired Komfortkasse state against the recorded
 * one. The worker plans once on a plain read (most deliveries end here with no write) and
 * again under the lease, and only the second plan is carried out.
 */
export function planKomfortkasse(input: KomfortkassePlanInput): KomfortkassePlan {
  const { shop, recorded } = input;
  if (shop.kind === 'vanished') return planVanished(recorded);
  // A deleted order cannot change: every snapshot predates the deletion, whatever its
  // `updated_at`. Only the shop itself (a successful fetch) can show it exists again.
  if (recorded?.vanishedAt && !input.authoritative) {
    return { kind: 'none', outcome: 'stale', why: 'the order was deleted in the shop; only a fetch from the shop brings it back' };
  }
  if (shop.kind === 'unusable') return planInvalid(shop.error, input);
  const order = shop.order;

  const updatedAt = order.updated_at ?? undefined;
  if (isNewer(recorded?.sourceUpdatedAt, updatedAt)) {
    return { kind: 'none', outcome: 'stale', why: 'a newer snapshot was already applied' };
  }

  // Settled before Komfortkasse may hold it: never submitted (mapping problems do not matter then).
  const settledFirst = !isCanceledInShop(order) && isSettledInShop(order) && !mayExistUpstream(recorded);
  let desired;
  try {
    desired = desiredKomfortkasseState(order, { ...input.mapping, firstSubmission: false });
  } catch (error) {
    if (!(error instanceof InvalidMessageError)) throw error;
    return settledFirst ? planSettled(order, recorded) : planInvalid(error.message, input);
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
    return mayExistUpstream(recorded) ? { kind: 'remove' } : { kind: 'forget', reason: 'canceled before it reached Komfortkasse' };
  }

  if (settledFirst) return planSettled(order, recorded);

  const hash = payloadHash(desired.payload);
  // Settled in the shop (paid, or closed = "sent and paid"): Komfortkasse stops reminding.
  // Back to unpaid: tell it once.
  const remindersStopped = isSettledInShop(order);
  const stoppedBefore = recorded?.remindersStopped === true;
  const stopReminder = remindersStopped ? true : stoppedBefore ? false : undefined;
  if (recorded?.state === 'submitted' && recorded.payloadHash === hash && stoppedBefore === remindersStopped) {
    return { kind: 'none', outcome: 'unchanged', why: 'Komfortkasse already has this content' };
  }
  if (recorded?.state === 'removed' && !input.authoritative && !input.operator && !isNewer(updatedAt, recorded.sourceUpdatedAt)) {
    // Only a snapshot provably newer than the cancellation brings a removed order back.
    return { kind: 'none', outcome: 'stale', why: 'the order was removed; this snapshot is not newer' };
  }
  if (recorded?.state === 'needs-attention' && recorded.payloadHash === hash && stoppedBefore === remindersStopped && !input.operator) {
    return { kind: 'none', outcome: 'unchanged', why: 'Komfortkasse rejected this content before' };
  }
  return { kind: 'submit', hash, ...(stopReminder === undefined ? {} : { stopReminder }), remindersStopped };
}

/** Settled before Komfortkasse may hold it: recorded as skipped with the reason, no call. */
function planSettled(order: VersaCommerceOrder, recorded: RecordedKomfortkasse | undefined): KomfortkassePlan {
  const reason = settledReason(order);
  if (recorded?.state === 'removed') return { kind: 'none', outcome: 'unchanged', why: 'removed, and settled in the shop: nothing to remind' };
  if (recorded?.state === 'skipped' && recorded.error === reason) return { kind: 'none', outcome: 'unchanged', why: 'already skipped as settled' };
  return { kind: 'skip', reason };
}

/** Parked with the reason, unless it already is for the same one (an operator retries anyway). */
function planInvalid(error: string, { recorded, operator }: KomfortkassePlanInput): KomfortkassePlan {
  if (recorded?.state === 'needs-attention' && recorded.error === error.slice(0, MAX_ERROR_LENGTH) && !operator) {
    return { kind: 'none', outcome: 'unchanged', why: 'already needs attention for the same reason' };
  }
  return { kind: 'invalid', error };
}

/** The shop no longer has the order: remove it where Komfortkasse may hold it (seed 001). */
function planVanished(recorded: RecordedKomfortkasse | undefined): KomfortkassePlan {
  // Removed before (canceled) but not yet known as deleted: record that, so no snapshot revives it.
  if (recorded?.state === 'removed') {
    return recorded.vanishedAt ? { kind: 'none', outcome: 'unchanged', why: 'already removed' } : { kind: 'forget', reason: VANISHED_REASON };
  }
  return mayExistUpstream(recorded) ? { kind: 'remove', reason: VANISHED_REASON } : { kind: 'forget', reason: VANISHED_REASON };
}

/** Komfortkasse may hold the order: it accepted it once, or an attempt's fate is unknown. */
export function mayExistUpstream(recorded: RecordedKomfortkasse | undefined): boolean {
  return recorded !== undefined && recorded.state !== 'removed' && (recorded.everSubmitted || recorded.firstAttemptedAt !== undefined);
}

/** True only when both timestamps parse and `a` is later than `b`. */
export function isNewer(a: string | undefined, b: string | undefined): boolean {
  return (compareVersaCommerceDates(a, b) ?? 0) > 0;
}
