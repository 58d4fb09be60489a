import * as z from './schema.ts';

/**
 * What Orderbridge knows about one order's upstreams: the recorded Komfortkasse and Klar
 * state (what the planners compare the order with) and the attempt log. The store maps
 * these shapes to and from DynamoDB items; sync code plans with them.
 */

export const KOMFORTKASSE_STATES = ['pending', 'submitted', 'removed', 'skipped', 'needs-attention'] as const;
export const KLAR_STATES = ['pending', 'uploaded', 'needs-attention'] as const;
export type KomfortkasseState = (typeof KOMFORTKASSE_STATES)[number];
export type KlarState = (typeof KLAR_STATES)[number];

export const SYNC_TARGETS = ['komfortkasse', 'klar'] as const;
export type SyncTarget = (typeof SYNC_TARGETS)[number];

export const recordedKomfortkasseSchema = z.object({
  state: z.enum(KOMFORTKASSE_STATES),
  payloadHash: z.optional(z.string()),
  error: z.optional(z.string()),
  everSubmitted: z.boolean(),
  firstSubmittedAt: z.optional(z.string()),
  lastChangedAt: z.optional(z.string()),
  /** `updated_at` of the newest snapshot applied */
  sourceUpdatedAt: z.optional(z.string()),
  /** set before a call that may create the order upstream; survives a crash */
  firstAttemptedAt: z.optional(z.string()),
  /** what Komfortkasse was last told about reminders (`stopReminder`); absent = never sent */
  remindersStopped: z.optional(z.boolean()),
  /**
   * When the shop answered 404 for the order (deleted). A deleted order cannot change, so
   * no snapshot brings it back, whatever its `updated_at`; only a successful fetch clears it.
   */
  vanishedAt: z.optional(z.string()),
  /** Komfortkasse's own reference for the order (its last 200 answer): what a customer quotes */
  referenceNumber: z.optional(z.string()),
  /** Komfortkasse's payment status of the order (its last 200 answer), e.g. UNPAID, PAID, DISAPPEARED */
  paymentStatus: z.optional(z.string()),
  leaseToken: z.optional(z.string()),
  leaseUntil: z.optional(z.number()),
});
export type RecordedKomfortkasse = z.infer<typeof recordedKomfortkasseSchema>;

export const recordedKlarSchema = z.object({
  state: z.enum(KLAR_STATES),
  /**
   * The newest cost known for the order. With state `uploaded` Klar holds it; with
   * `pending` it may not (an upload lost a race and gave up): the next event re-uploads it.
   */
  transactionCosts: z.optional(z.number()),
  currency: z.optional(z.string()),
  error: z.optional(z.string()),
  uploadedAt: z.optional(z.string()),
  /** `updated_at` of the order snapshot behind the recorded cost */
  sourceUpdatedAt: z.optional(z.string()),
  /** when the webhook behind the recorded cost arrived (tie-break without `updated_at`) */
  receivedAt: z.optional(z.string()),
  /** compare-and-set counter: every change of the Klar side increments it */
  version: z.number(),
});
export type RecordedKlar = z.infer<typeof recordedKlarSchema>;

export const orderRecordSchema = z.object({
  orderId: z.number(),
  orderCode: z.optional(z.string()),
  komfortkasse: recordedKomfortkasseSchema,
  klar: recordedKlarSchema,
  /** `orderbridge forget` ran: no personal data may be written for this order again */
  forgottenAt: z.optional(z.string()),
  updatedAt: z.optional(z.string()),
  expiresAt: z.optional(z.number()),
});
export type OrderRecord = z.infer<typeof orderRecordSchema>;

/** One upstream call (or would-be call under DRY_RUN), as the history shows it. */
export const attemptSchema = z.object({
  at: z.string(),
  target: z.enum(['komfortkasse', 'klar', 'versacommerce']),
  action: z.string(),
  outcome: z.string(),
  httpStatus: z.optional(z.number()),
  latencyMs: z.optional(z.number()),
  error: z.optional(z.string()),
  correlationId: z.optional(z.string()),
  /** dry-run: the exact request that would have been sent */
  request: z.optional(z.object({ method: z.string(), url: z.string(), body: z.optional(z.unknown()) })),
});
export type Attempt = z.infer<typeof attemptSchema>;

/** An order parked on one side, as the needs-attention index lists it. */
export const attentionSchema = z.object({
  orderId: z.number(),
  orderCode: z.optional(z.string()),
  target: z.enum(SYNC_TARGETS),
  error: z.optional(z.string()),
  since: z.string(),
});
export type Attention = z.infer<typeof attentionSchema>;

/** Error texts are kept short in the history (an upstream may answer a whole page). */
export const MAX_ERROR_LENGTH = 1000;
