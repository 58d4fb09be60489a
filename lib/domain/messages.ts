import * as z from 'zod';

/**
 * Queue message shapes. An "order changed" message means "order X may have changed":
 * the worker derives what to do from the order itself (level-triggered sync).
 */
export const orderChangedMessageSchema = z.object({
  kind: z.literal('order-changed'),
  orderId: z.number().int().nonnegative(),
  orderCode: z.string().min(1).optional(),
  /** The raw VersaCommerce order when the webhook carried it; absent → fetch it. */
  order: z.record(z.string(), z.unknown()).optional(),
  source: z.enum(['webhook', 'notification', 'replay', 'reconcile', 'console']),
  receivedAt: z.iso.datetime(),
  deliveryId: z.string().min(1),
  correlationId: z.string().min(1),
});
export type OrderChangedMessage = z.infer<typeof orderChangedMessageSchema>;

/** Small and PII-free, so a 1000-message batch stays far below Lambda's 6 MB limit. */
export const klarCostMessageSchema = z.object({
  kind: z.literal('klar-cost'),
  orderId: z.number().int().nonnegative(),
  orderCode: z.string().min(1).optional(),
  total: z.number().finite().optional(),
  currency: z.string().min(1).optional(),
  paymentType: z.string().optional(),
  status: z.string().optional(),
  createdAt: z.string().optional(),
  receivedAt: z.iso.datetime(),
  correlationId: z.string().min(1),
});
export type KlarCostMessage = z.infer<typeof klarCostMessageSchema>;
