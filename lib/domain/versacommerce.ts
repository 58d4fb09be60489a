import * as z from './schema.ts';

/**
 * VersaCommerce order shapes (seed 002). Real payloads are loose: ids arrive as numbers
 * or numeric strings, money as decimal strings, optional fields as null. The schemas keep
 * unknown keys so a snapshot round-trips through the queue unchanged.
 */
const numericId = z.union([
  z.number().check(z.int(), z.nonnegative()),
  z.pipe(z.string().check(z.trim(), z.regex(/^\d+$/, 'must be a numeric id')), z.transform(Number)),
]);

const optionalText = z.pipe(
  z.nullish(z.union([z.string(), z.number()])),
  z.transform((v: string | number | null | undefined) => (v === null || v === undefined ? undefined : String(v))),
);

export const moneySchema = z.union([
  // (z.number() rejects Infinity and NaN by itself)
  z.number(),
  z.pipe(
    z.pipe(z.string().check(z.trim(), z.regex(/^-?\d+(\.\d+)?$/, 'must be a decimal amount like "15.94"')), z.transform(Number)),
    // 400 digits parse as Infinity: no amount any upstream could take.
    z.number(),
  ),
]);

export const versaCommerceAddressSchema = z.looseObject({
  title: optionalText,
  firstname: optionalText,
  lastname: optionalText,
  company: optionalText,
  street: optionalText,
  streetnumber: optionalText,
  extension: optionalText,
  zipcode: optionalText,
  city: optionalText,
  country: optionalText,
  phone: optionalText,
  email: optionalText,
});

export const versaCommerceItemSchema = z.looseObject({
  id: z.optional(numericId),
  code: optionalText,
  product_id: optionalText,
  title: optionalText,
  subtitle: optionalText,
  quantity: z.nullish(z.union([z.number(), z.string()])),
});

export const versaCommerceShipmentSchema = z.looseObject({
  tracking_code: optionalText,
  tracking_number: optionalText,
});

/** The order's nested customer (seed 002); only the email is read, the rest is kept as is. */
export const versaCommerceCustomerSchema = z.looseObject({
  email: optionalText,
});

export const ORDER_STATUSES = ['open', 'in_progress', 'canceled', 'closed', 'returned'] as const;

export const versaCommerceOrderSchema = z.looseObject({
  id: numericId,
  code: z.string().check(z.trim(), z.minLength(1, 'order code must not be empty')),
  status: z._default(z.optional(z.string().check(z.trim(), z.minLength(1))), 'open'),
  payment_type: z.nullish(z.string().check(z.trim())),
  payment_status: z.nullish(z.string()),
  total: moneySchema,
  currency: z.string().check(z.trim(), z.minLength(1)),
  created_at: z.string().check(z.trim(), z.minLength(1)),
  updated_at: z.nullish(z.string()),
  checkout_locale: optionalText,
  customer_email: optionalText,
  customer_id: optionalText,
  external_invoicing_id: optionalText,
  shop_id: optionalText,
  /** Marketplace the order came from (e.g. amazon) and its order number there (seed 002 create parameters). */
  origin_name: optionalText,
  origin_id: optionalText,
  customer: z.nullish(versaCommerceCustomerSchema),
  billing_address: z.nullish(versaCommerceAddressSchema),
  shipping_address: z.nullish(versaCommerceAddressSchema),
  items: z.nullish(z.array(versaCommerceItemSchema)),
  shipments: z.nullish(z.array(versaCommerceShipmentSchema)),
});

export type VersaCommerceOrder = z.infer<typeof versaCommerceOrderSchema>;
export type VersaCommerceAddress = z.infer<typeof versaCommerceAddressSchema>;

/** `{"order": {...}}` — the order webhook and GET /api/orders/{id}.json body. */
export const orderEnvelopeSchema = z.object({ order: versaCommerceOrderSchema });

/**
 * The list endpoint answers an array of `{"order": …}`. `element` is the entry schema, as on
 * a classic zod array (the client parses entry by entry); zod/mini arrays have no such property.
 */
export const orderListSchema = Object.assign(z.array(orderEnvelopeSchema), { element: orderEnvelopeSchema });

/** VersaCommerce notification: `subject` names the order id; `body` is not trusted. */
export const notificationSubjectPattern = /^\s*(create|update|cancel|delete|destroy)\s+order\s*:\s*(\d+)\s*$/i;

export const notificationEnvelopeSchema = z.looseObject({
  from: z.optional(z.string()),
  to: z.optional(z.string()),
  subject: z.string().check(z.regex(notificationSubjectPattern, 'subject must look like "create order: 37578"')),
  shop_id: z.optional(z.union([z.string(), z.number()])),
  subscription_id: z.optional(z.union([z.string(), z.number()])),
  domain: z.optional(z.string()),
  body: z.optional(z.unknown()),
});

export type NotificationEnvelope = z.infer<typeof notificationEnvelopeSchema>;

export function orderIdFromSubject(subject: string): number | undefined {
  const match = notificationSubjectPattern.exec(subject);
  return match?.[2] === undefined ? undefined : Number(match[2]);
}

// Timestamps: lib/domain/shop-dates.ts (no schemas, so the Klar worker can use them cheaply).
export { compareVersaCommerceDates, parseVersaCommerceDate } from './shop-dates.ts';

/** `GET /api/orders/count.json` answers `{"count": 117}` (seed 002). */
export const orderCountSchema = z.object({ count: z.number().check(z.int(), z.nonnegative()) });
