import * as z from 'zod';

/**
 * Komfortkasse API v2 shapes (seeds 000/001). The request schema is strict and describes
 * exactly what Orderbridge sends: optional fields are absent, never `null`, never empty
 * strings or empty arrays. The order number (VersaCommerce `code`) travels in the URL
 * (`POST /order/{orderNumber}`), not in the body.
 */

export const KOMFORTKASSE_ORDER_TYPES = ['INVOICE', 'PREPAYMENT', 'COD', 'OTHER'] as const;
export const komfortkasseOrderTypeSchema = z.enum(KOMFORTKASSE_ORDER_TYPES);
export type KomfortkasseOrderType = z.infer<typeof komfortkasseOrderTypeSchema>;

export const KOMFORTKASSE_GENDERS = ['male', 'female', 'company', 'unknown'] as const;
export const komfortkasseGenderSchema = z.enum(KOMFORTKASSE_GENDERS);
export type KomfortkasseGender = z.infer<typeof komfortkasseGenderSchema>;

export const KOMFORTKASSE_PAYMENT_STATUSES = [
  'UNPAID',
  'PAID',
  'PAID_PARTIAL',
  'CANCELLED',
  'REFUNDED',
  'REFUNDED_PARTIAL',
  'LEGACY',
  'DISAPPEARED',
  'COLLECTION',
] as const;

/** Komfortkasse dates are `dd-MM-yyyy`. */
export const komfortkasseDateSchema = z
  .string()
  .regex(/^(0[1-9]|[12]\d|3[01])-(0[1-9]|1[0-2])-\d{4}$/, 'must be a date formatted dd-MM-yyyy');

const text = z.string().min(1, 'must not be empty');
const textList = z.array(text).min(1, 'must not be an empty list');

export const komfortkasseAddressSchema = z
  .strictObject({
    gender: komfortkasseGenderSchema.optional(),
    firstName: text.optional(),
    lastName: text.optional(),
    company: text.optional(),
    street: text.optional(),
    postCode: text.optional(),
    city: text.optional(),
    countryCode: z.string().regex(/^[A-Z]{2}$/, 'must be a 2-letter ISO country code'),
    phone: text.optional(),
  })
  .refine((address) => address.lastName !== undefined || address.company !== undefined, {
    message: 'lastName or company is required',
    path: ['lastName'],
  });
export type KomfortkasseAddress = z.infer<typeof komfortkasseAddressSchema>;

export const komfortkasseItemSchema = z.strictObject({
  number: text,
  name: text.optional(),
});
export type KomfortkasseItem = z.infer<typeof komfortkasseItemSchema>;

/** Amounts are sent with at most two decimals (`Format: 0.00`). */
const amountSchema = z
  .number()
  .finite()
  .refine((v) => Math.abs(Math.round(v * 100) / 100 - v) < 1e-9, 'must have at most two decimals');

/** Body of `POST /order/{orderNumber}` (submit or update). Key order follows seed 000. */
export const komfortkasseOrderSchema = z.strictObject({
  date: komfortkasseDateSchema,
  dueDate: komfortkasseDateSchema.optional(),
  customerEmail: text.optional(),
  customerNumber: text.optional(),
  type: komfortkasseOrderTypeSchema,
  marketplaceNumber: text.optional(),
  paymentMethod: text.optional(),
  paymentMethodDescription: text.optional(),
  statusDescription: text.optional(),
  amount: amountSchema,
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 currency code'),
  exchangeRate: z.number().finite().positive().optional(),
  language: z.string().regex(/^[a-z]{2}$/, 'must be a 2-letter ISO language code').optional(),
  /** @deprecated Komfortkasse prefers `items`. */
  itemNumbers: textList.optional(),
  items: z.array(komfortkasseItemSchema).min(1, 'must not be an empty list').optional(),
  invoiceNumbers: textList.optional(),
  shippingNumbers: textList.optional(),
  proformaNumbers: textList.optional(),
  billing: komfortkasseAddressSchema,
  shipping: komfortkasseAddressSchema.optional(),
  /** Honoured only on the first submission of an order; omit afterwards. */
  initialDunningLevel: z.number().int().nonnegative().optional(),
  stopReminder: z.boolean().optional(),
});
export type KomfortkasseOrder = z.infer<typeof komfortkasseOrderSchema>;

const optionalResponseText = z
  .union([z.string(), z.number()])
  .nullish()
  .transform((v) => (v === null || v === undefined ? undefined : String(v)));
const optionalResponseNumber = z
  .union([z.number(), z.string().trim().regex(/^-?\d+(\.\d+)?$/).transform(Number)])
  .nullish()
  .transform((v) => (v === null ? undefined : v));

/**
 * 200 answer of submit/update and remove. Loose: Komfortkasse echoes the order plus
 * read-only fields; unknown keys are kept, optional ones may arrive as `null`.
 */
export const komfortkasseOrderResponseSchema = z.looseObject({
  number: z.union([z.string(), z.number()]).transform(String),
  referenceNumber: optionalResponseText,
  paymentStatus: optionalResponseText,
  dunningLevel: optionalResponseNumber,
  amountPaid: optionalResponseNumber,
  amount: optionalResponseNumber,
  currency: optionalResponseText,
  date: optionalResponseText,
  type: optionalResponseText,
});
export type KomfortkasseOrderResponse = z.infer<typeof komfortkasseOrderResponseSchema>;

/** Error body, e.g. `{"error":"Invalid request"}` or `{"error":"Order not found"}`. */
export const komfortkasseErrorSchema = z.looseObject({
  error: z.string(),
});
export type KomfortkasseErrorBody = z.infer<typeof komfortkasseErrorSchema>;
