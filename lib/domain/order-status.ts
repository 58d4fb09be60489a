/** What the shop's order status and payment status mean for the upstreams (seed 002). */

const CANCELED_STATUSES = new Set(['canceled', 'cancelled', 'returned']);

/** True for a shop status that ends the order: canceled, cancelled, returned (trimmed, case-insensitive). */
export function isCanceledStatus(status: string): boolean {
  return CANCELED_STATUSES.has(status.trim().toLowerCase());
}

/** True when the shop has canceled the order or it was returned. */
export function isCanceledInShop(order: { status: string }): boolean {
  return isCanceledStatus(order.status);
}

/** Shop payment states (seed 002 `new_payment_status`) in which the money has arrived. */
const PAID_STATUSES = new Set(['paid', 'captured', 'overpaid']);

/** True when the shop records the order as paid (`paid`, `captured`, `overpaid`; trimmed, case-insensitive). */
export function isPaidInShop(order: { payment_status?: string | null }): boolean {
  return PAID_STATUSES.has((order.payment_status ?? '').trim().toLowerCase());
}

/** Seed 002: `closed` is "sent and paid" — the order is finished and its money has arrived. */
export function isClosedInShop(order: { status: string }): boolean {
  return order.status.trim().toLowerCase() === 'closed';
}

/**
 * Settled in the shop: paid (`paid`, `captured`, `overpaid`) or `closed`. Komfortkasse has
 * nothing to remind about: a settled order is never submitted for the first time, and one
 * it already holds gets `stopReminder: true`.
 */
export function isSettledInShop(order: { status: string; payment_status?: string | null }): boolean {
  return isPaidInShop(order) || isClosedInShop(order);
}
