import * as z from 'zod';

/**
 * VersaCommerce order shapes (seed 002). Real payloads are loose: ids arrive as numbers
 * or numeric strings, money as decimal strings, optional fields as null. The schemas keep
 * unknown keys so a snapshot round-trips through the queue unchanged.
 */
const numericId = z.union([
  z.number().int().nonnegative(),
  z.string().trim().regex(/^\d+$/, 'must be a numeric id').transform(Number),
]);

const optionalText = z
  .union([z.string(), z.number()])
  .nullish()
  .transform((v) => (v === null || v === undefined ? undefined : String(v)));

export const moneySchema = z.union([
  z.number().finite(),
  z
    .string()
    .trim()
    .regex(/^-?\d+(\.\d+)?$/, 'must be a decimal amount like "15.94"')
    .transform(Number)
    // 400 digits parse as Infinity: no amount any upstream could take.
    .pipe(z.number().finite('must be a finite amount')),
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
  id: numericId.optional(),
  code: optionalText,
  product_id: optionalText,
  title: optionalText,
  subtitle: optionalText,
  quantity: z.union([z.number(), z.string()]).nullish(),
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
  code: z.string().trim().min(1, 'order code must not be empty'),
  status: z.string().trim().min(1).optional().default('open'),
  payment_type: z.string().trim().nullish(),
  payment_status: z.string().nullish(),
  total: moneySchema,
  currency: z.string().trim().min(1),
  created_at: z.string().trim().min(1),
  updated_at: z.string().nullish(),
  checkout_locale: optionalText,
  customer_email: optionalText,
  customer_id: optionalText,
  external_invoicing_id: optionalText,
  shop_id: optionalText,
  /** Marketplace the order came from (e.g. amazon) and its order number there (seed 002 create parameters). */
  origin_name: optionalText,
  origin_id: optionalText,
  customer: versaCommerceCustomerSchema.nullish(),
  billing_address: versaCommerceAddressSchema.nullish(),
  shipping_address: versaCommerceAddressSchema.nullish(),
  items: z.array(versaCommerceItemSchema).nullish(),
  shipments: z.array(versaCommerceShipmentSchema).nullish(),
});

export type VersaCommerceOrder = z.infer<typeof versaCommerceOrderSchema>;
export type VersaCommerceAddress = z.infer<typeof versaCommerceAddressSchema>;

/** `{"order": {...}}` — the order webhook and GET /api/orders/{id}.json body. */
export const orderEnvelopeSchema = z.object({ order: versaCommerceOrderSchema });

/** The list endpoint answers an array of `{"order": …}`. */
export const orderListSchema = z.array(orderEnvelopeSchema);

/** VersaCommerce notification: `subject` names the order id; `body` is not trusted. */
export const notificationSubjectPattern = /^\s*(create|update|cancel|delete|destroy)\s+order\s*:\s*(\d+)\s*$/i;

export const notificationEnvelopeSchema = z.looseObject({
  from: z.string().optional(),
  to: z.string().optional(),
  subject: z
    .string()
    .regex(notificationSubjectPattern, 'subject must look like "create order: 37578"'),
  shop_id: z.union([z.string(), z.number()]).optional(),
  subscription_id: z.union([z.string(), z.number()]).optional(),
  domain: z.string().optional(),
  body: z.unknown().optional(),
});

export type NotificationEnvelope = z.infer<typeof notificationEnvelopeSchema>;

export function orderIdFromSubject(subject: string): number | undefined {
  const match = notificationSubjectPattern.exec(subject);
  return match?.[2] === undefined ? undefined : Number(match[2]);
}

// Timestamps: lib/domain/shop-dates.ts (no schemas, so the Klar worker can use them cheaply).
export { compareVersaCommerceDates, parseVersaCommerceDate } from './shop-dates.ts';
