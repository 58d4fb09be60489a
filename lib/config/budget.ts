/**
 * The order worker's time budget, shared by the worker (which starts no record it cannot
 * finish before its deadline) and the package-time check (which refuses a deployment whose
 * settings could not fit even one record into sync-order's timeout).
 */

/**
 * Komfortkasse calls one record can make under its lease: a submission, and when Komfortkasse
 * refuses a creating one with initialDunningLevel (it already holds the order), the update
 * without it; or, for an order we never sent that is to be closed, the look-up
 * (`GET /order/{code}`) and the remove or update that closes it there.
 */
export const KOMFORTKASSE_CALLS_PER_RECORD = 2;

/**
 * Upstream calls one orders.fifo record can make, each up to UPSTREAM_TOTAL_TIMEOUT_MS: a shop
 * fetch, after a 404 the shop API check, then the Komfortkasse calls (a vanished order we never
 * sent: fetch, check, look-up, remove = 4).
 */
export const UPSTREAM_CALLS_PER_RECORD = 2 + KOMFORTKASSE_CALLS_PER_RECORD;

/** What a record spends besides its upstream calls: its DynamoDB requests (read, claim, settle) and the Klar forward. */
export const RECORD_OVERHEAD_MS = 2_000;

/** The longest one record may take: every upstream call at its total deadline, plus the overhead. */
export function worstCaseRecordMs(upstreamTotalTimeoutMs: number): number {
  return UPSTREAM_CALLS_PER_RECORD * upstreamTotalTimeoutMs + RECORD_OVERHEAD_MS;
}
