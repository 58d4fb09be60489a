import * as z from './schema.ts';
import type { VersaCommerceOrder } from './versacommerce.ts';

/**
 * Queue message shapes. An "order changed" message means "order X may have changed":
 * the worker derives what to do from the order itself (level-triggered sync).
 */
export const orderChangedMessageSchema = z.object({
  kind: z.literal('order-changed'),
  orderId: z.number().check(z.int(), z.nonnegative()),
  orderCode: z.optional(z.string().check(z.minLength(1))),
  /**
   * The raw VersaCommerce order when the webhook carried it; absent → fetch it. Kept as sent
   * (ingest validated it, the worker parses it): only its being an object is checked here.
   */
  order: z.optional(z.custom<Record<string, unknown>>((value) => value !== null && typeof value === 'object' && !Array.isArray(value), 'must be an object')),
  source: z.enum(['webhook', 'notification', 'replay', 'reconcile', 'console']),
  receivedAt: z.iso.datetime(),
  deliveryId: z.string().check(z.minLength(1)),
  correlationId: z.string().check(z.minLength(1)),
});
export type OrderChangedMessage = z.infer<typeof orderChangedMessageSchema>;

/**
 * What the Klar worker needs of one order (lib/domain/klar-plan.ts KlarFacts): small and
 * PII-free, so a 1000-message batch stays far below Lambda's 6 MB limit. The order worker
 * resolves the order and forwards this; the Klar worker never asks the shop.
 */
export const klarCostMessageSchema = z.object({
  kind: z.literal('klar-cost'),
  orderId: z.number().check(z.int(), z.nonnegative()),
  orderCode: z.optional(z.string().check(z.minLength(1))),
  // (z.number() rejects Infinity and NaN by itself)
  total: z.number(),
  currency: z.string().check(z.minLength(1)),
  paymentType: z.optional(z.string()),
  status: z.string(),
  createdAt: z.string(),
  /** the order's `updated_at`, so an older copy never overwrites a newer cost */
  updatedAt: z.optional(z.string()),
  /** when the webhook behind this copy arrived (tie-break without `updated_at`) */
  receivedAt: z.iso.datetime(),
  correlationId: z.string().check(z.minLength(1)),
});
export type KlarCostMessage = z.infer<typeof klarCostMessageSchema>;

/** The cost message for an order we hold: only the facts the fee needs, no personal data. */
export function klarCostMessageFor(
  order: Pick<VersaCommerceOrder, 'id' | 'code' | 'total' | 'currency' | 'payment_type' | 'status' | 'created_at' | 'updated_at'>,
  meta: { receivedAt: string; correlationId: string },
): KlarCostMessage {
  return {
    kind: 'klar-cost',
    orderId: order.id,
    orderCode: order.code,
    total: order.total,
    currency: order.currency,
    ...(order.payment_type ? { paymentType: order.payment_type } : {}),
    status: order.status,
    createdAt: order.created_at,
    ...(typeof order.updated_at === 'string' && order.updated_at ? { updatedAt: order.updated_at } : {}),
    receivedAt: meta.receivedAt,
    correlationId: meta.correlationId,
  };
}
