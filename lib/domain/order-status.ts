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
