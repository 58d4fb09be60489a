/**
 * The order worker's time budget, shared by the worker (which starts no record it cannot
 * finish before its deadline) and the package-time check (which refuses a deployment whose
 * settings could not fit even one record into sync-order's timeout).
 */

/**
 * Komfortkasse calls one record can make under its lease: a submission, and when Komfortkasse
 * refuses a creating one with initialDunningLevel (it already holds the order), the update without it.
 */
export const KOMFORTKASSE_CALLS_PER_RECORD = 2;

/**
 * Upstream calls one orders.fifo record can make, each up to UPSTREAM_TOTAL_TIMEOUT_MS: a shop
 * fetch, then either the Komfortkasse calls, or (after a 404) the shop API check and a remove.
 */
export const UPSTREAM_CALLS_PER_RECORD = 1 + KOMFORTKASSE_CALLS_PER_RECORD;

/** What a record spends besides its upstream calls: its DynamoDB requests (read, claim, settle) and the Klar forward. */
export const RECORD_OVERHEAD_MS = 2_000;

/** The longest one record may take: every upstream call at its total deadline, plus the overhead. */
export function worstCaseRecordMs(upstreamTotalTimeoutMs: number): number {
  return UPSTREAM_CALLS_PER_RECORD * upstreamTotalTimeoutMs + RECORD_OVERHEAD_MS;
}
