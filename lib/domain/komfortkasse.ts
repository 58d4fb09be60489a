import * as z from './schema.ts';

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
  .check(z.regex(/^(0[1-9]|[12]\d|3[01])-(0[1-9]|1[0-2])-\d{4}$/, 'must be a date formatted dd-MM-yyyy'));

const text = z.string().check(z.minLength(1, 'must not be empty'));
const textList = z.array(text).check(z.minLength(1, 'must not be an empty list'));

export const komfortkasseAddressSchema = z
  .strictObject({
    gender: z.optional(komfortkasseGenderSchema),
    firstName: z.optional(text),
    lastName: z.optional(text),
    company: z.optional(text),
    street: z.optional(text),
    postCode: z.optional(text),
    city: z.optional(text),
    countryCode: z.string().check(z.regex(/^[A-Z]{2}$/, 'must be a 2-letter ISO country code')),
    phone: z.optional(text),
  })
  .check(
    z.refine((address) => address.lastName !== undefined || address.company !== undefined, {
      message: 'lastName or company is required',
      path: ['lastName'],
    }),
  );
export type KomfortkasseAddress = z.infer<typeof komfortkasseAddressSchema>;

export const komfortkasseItemSchema = z.strictObject({
  number: text,
  name: z.optional(text),
});
export type KomfortkasseItem = z.infer<typeof komfortkasseItemSchema>;

/** Amounts are sent with at most two decimals (`Format: 0.00`). */
const amountSchema = z
  .number()
  .check(z.refine((v) => Math.abs(Math.round(v * 100) / 100 - v) < 1e-9, 'must have at most two decimals'));

/** Body of `POST /order/{orderNumber}` (submit or update). Key order follows seed 000. */
export const komfortkasseOrderSchema = z.strictObject({
  date: komfortkasseDateSchema,
  dueDate: z.optional(komfortkasseDateSchema),
  customerEmail: z.optional(text),
  customerNumber: z.optional(text),
  type: komfortkasseOrderTypeSchema,
  marketplaceNumber: z.optional(text),
  paymentMethod: z.optional(text),
  paymentMethodDescription: z.optional(text),
  statusDescription: z.optional(text),
  amount: amountSchema,
  currency: z.string().check(z.regex(/^[A-Z]{3}$/, 'must be an ISO 4217 currency code')),
  exchangeRate: z.optional(z.number().check(z.positive())),
  language: z.optional(z.string().check(z.regex(/^[a-z]{2}$/, 'must be a 2-letter ISO language code'))),
  /** @deprecated Komfortkasse prefers `items`. */
  itemNumbers: z.optional(textList),
  items: z.optional(z.array(komfortkasseItemSchema).check(z.minLength(1, 'must not be an empty list'))),
  invoiceNumbers: z.optional(textList),
  shippingNumbers: z.optional(textList),
  proformaNumbers: z.optional(textList),
  billing: komfortkasseAddressSchema,
  shipping: z.optional(komfortkasseAddressSchema),
  /** Honoured only on the first submission of an order; omit afterwards. */
  initialDunningLevel: z.optional(z.number().check(z.int(), z.nonnegative())),
  stopReminder: z.optional(z.boolean()),
});
export type KomfortkasseOrder = z.infer<typeof komfortkasseOrderSchema>;

const optionalResponseText = z.pipe(
  z.nullish(z.union([z.string(), z.number()])),
  z.transform((v: string | number | null | undefined) => (v === null || v === undefined ? undefined : String(v))),
);
const optionalResponseNumber = z.pipe(
  z.nullish(z.union([z.number(), z.pipe(z.string().check(z.trim(), z.regex(/^-?\d+(\.\d+)?$/)), z.transform(Number))])),
  z.transform((v: number | null | undefined) => (v === null ? undefined : v)),
);

/**
 * 200 answer of submit/update and remove. Loose: Komfortkasse echoes the order plus
 * read-only fields; unknown keys are kept, optional ones may arrive as `null`.
 */
export const komfortkasseOrderResponseSchema = z.looseObject({
  number: z.pipe(z.union([z.string(), z.number()]), z.transform(String)),
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

/**
 * An order as `GET /order/{n}` and `GET /orders` answer it: the submit answer's shape. The
 * reads need only the number and the read-only state, so everything else is passed over.
 */
export const komfortkasseOrderViewSchema = komfortkasseOrderResponseSchema;
export type KomfortkasseOrderView = KomfortkasseOrderResponse;

/** `GET /orders` answers a list; tolerate a `{"orders":[…]}` wrapper too. */
export const komfortkasseOrderListSchema = z.union([
  z.array(z.unknown()),
  z.pipe(z.looseObject({ orders: z.array(z.unknown()) }), z.transform((body: { orders: unknown[] }) => body.orders)),
]);

/** Error body, e.g. `{"error":"Invalid request"}` or `{"error":"Order not found"}`. */
export const komfortkasseErrorSchema = z.looseObject({
  error: z.string(),
});
export type KomfortkasseErrorBody = z.infer<typeof komfortkasseErrorSchema>;
