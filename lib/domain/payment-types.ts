import * as z from './schema.ts';

/**
 * Which VersaCommerce `payment_type` becomes which Komfortkasse order `type`. The table is
 * configuration (lib/config fills it from `PAYMENT_TYPE_MAP`, merged over the default
 * below); this module only says what a table is and how it is read.
 */
export const PAYMENT_TARGETS = ['INVOICE', 'PREPAYMENT', 'COD', 'SKIP'] as const;
export type PaymentTarget = (typeof PAYMENT_TARGETS)[number];
export type KomfortkassePaymentType = Exclude<PaymentTarget, 'SKIP'>;

export const paymentTargetSchema = z.pipe(
  z.string().check(z.trim(), z.toUpperCase()),
  z.enum(PAYMENT_TARGETS, { error: `must be one of ${PAYMENT_TARGETS.join(', ')}` }),
);

export const paymentTypeMapSchema = z.record(z.string().check(z.trim(), z.minLength(1, 'payment type must not be empty')), paymentTargetSchema);
export type PaymentTypeMap = Readonly<Record<string, PaymentTarget>>;

export const DEFAULT_PAYMENT_TYPE_MAP: PaymentTypeMap = Object.freeze({
  cod: 'COD',
  invoice: 'INVOICE',
  prepayment: 'PREPAYMENT',
  bank_deposit: 'PREPAYMENT',
  money_transfer: 'PREPAYMENT',
  paypal: 'SKIP',
  paypal_plus: 'SKIP',
  paypal_express: 'SKIP',
  cc: 'SKIP',
  credit_card: 'SKIP',
  creditcard: 'SKIP',
  sofort: 'SKIP',
  instant_transfer: 'SKIP',
  klarna: 'SKIP',
  amazon_pay: 'SKIP',
  apple_pay: 'SKIP',
  google_pay: 'SKIP',
  stripe: 'SKIP',
  // API/marketplace orders (seed 002 "Create Order"): already paid on the marketplace.
  misc: 'SKIP',
});

/** Payment types are compared trimmed and case-insensitively. */
export function normalizePaymentType(paymentType: string): string {
  return paymentType.trim().toLowerCase();
}

/** The Komfortkasse order type for a payment type, or `undefined` when it is not sent. */
export function komfortkasseTypeFor(
  paymentType: string | null | undefined,
  map: PaymentTypeMap = DEFAULT_PAYMENT_TYPE_MAP,
): KomfortkassePaymentType | undefined {
  if (paymentType === null || paymentType === undefined) return undefined;
  const key = normalizePaymentType(paymentType);
  if (key === '' || !Object.hasOwn(map, key)) return undefined;
  const target = map[key];
  return target === undefined || target === 'SKIP' ? undefined : target;
}

/**
 * What the table says about one order's payment type. One rule for Komfortkasse and Klar:
 * a type the table does not name (or no type at all) is a configuration gap to report,
 * never a silent skip; only an explicit `SKIP` is skipped.
 */
export type PaymentTypeVerdict =
  | { kind: 'komfortkasse'; paymentType: string; type: KomfortkassePaymentType }
  | { kind: 'skip'; paymentType: string }
  | { kind: 'unknown'; paymentType?: string; message: string };

/** `paymentType` in the verdict is the shop's value, trimmed (not lower-cased). */
export function paymentTypeVerdict(
  paymentType: string | null | undefined,
  map: PaymentTypeMap = DEFAULT_PAYMENT_TYPE_MAP,
): PaymentTypeVerdict {
  const trimmed = paymentType?.trim() ?? '';
  if (trimmed === '') return { kind: 'unknown', message: unknownPaymentTypeMessage(undefined) };
  const key = normalizePaymentType(trimmed);
  const target = Object.hasOwn(map, key) ? map[key] : undefined;
  if (target === undefined) return { kind: 'unknown', paymentType: trimmed, message: unknownPaymentTypeMessage(trimmed) };
  if (target === 'SKIP') return { kind: 'skip', paymentType: trimmed };
  return { kind: 'komfortkasse', paymentType: trimmed, type: target };
}

/**
 * Why an order's payment type cannot be handled, naming the variable that fixes it. Without
 * a subject: callers prefix it, e.g. `order 100: payment type "rechnung" is not in …`.
 */
export function unknownPaymentTypeMessage(paymentType: string | null | undefined): string {
  const targets = `${PAYMENT_TARGETS.slice(0, -1).join(', ')} or ${PAYMENT_TARGETS.at(-1)}`;
  const trimmed = paymentType?.trim() ?? '';
  if (trimmed === '') {
    return `has no payment type — PAYMENT_TYPE_MAP maps only named payment types (to ${targets}); give the order a payment type in the shop`;
  }
  return `payment type "${trimmed}" is not in the payment-type table — add it to PAYMENT_TYPE_MAP (as ${targets})`;
}

/** Readable payment method names for Komfortkasse's informational `paymentMethodDescription`. */
export const PAYMENT_METHOD_DESCRIPTIONS: Readonly<Record<string, string>> = Object.freeze({
  cod: 'Nachnahme',
  invoice: 'Rechnung',
  prepayment: 'Vorkasse',
  bank_deposit: 'Vorkasse (Überweisung)',
  money_transfer: 'Vorkasse (Überweisung)',
});

export function paymentMethodDescriptionFor(paymentType: string | null | undefined): string | undefined {
  if (paymentType === null || paymentType === undefined) return undefined;
  const key = normalizePaymentType(paymentType);
  return Object.hasOwn(PAYMENT_METHOD_DESCRIPTIONS, key) ? PAYMENT_METHOD_DESCRIPTIONS[key] : undefined;
}
